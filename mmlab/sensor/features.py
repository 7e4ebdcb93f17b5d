"""The registry of online features the sensor can build by name, and the simplest ones.

Every feature follows :class:`~mmlab.sensor.calibration.Feature`: ``update(update)`` absorbs one
venue update, ``value`` is the current value (NaN until defined); positive means evidence for a
higher price. A book missing a side, crossed or not finite is ignored and counted in ``dropped``.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

from mmlab.config import SensorConfig
from mmlab.types import L2Book

__all__ = ["FEATURES", "DEFAULT_FEATURES", "make_features", "usable_touch"]


def usable_touch(book: L2Book | None) -> tuple[float, float, float, float] | None:
    """``(bid, ask, bid_size, ask_size)`` of a finite, uncrossed two-sided book, else None."""
    if book is None or book.bid_px.size == 0 or book.ask_px.size == 0:
        return None
    bid, ask = float(book.bid_px[0]), float(book.ask_px[0])
    bid_size, ask_size = float(book.bid_sz[0]), float(book.ask_sz[0])
    if not (0.0 < bid < ask < math.inf and 0.0 < bid_size < math.inf and 0.0 < ask_size < math.inf):
        return None
    return bid, ask, bid_size, ask_size


#: feature name -> factory(config); the sensor builds a calibration's layers from here
FEATURES: dict[str, Callable[[SensorConfig], object]] = {}


#: the features :func:`mmlab.calibrate.belief.calibrate_sensor` fits when not told otherwise
DEFAULT_FEATURES: tuple[str, ...] = ()


def make_features(names: Sequence[str], config: SensorConfig) -> list:
    """Fresh online features for ``names``, in order.

    Raises
    ------
    KeyError
        If a name is not registered (the message lists the known ones).
    """
    unknown = [name for name in names if name not in FEATURES]
    if unknown:
        raise KeyError(f"unknown sensor feature {unknown[0]!r}; known: {', '.join(sorted(FEATURES))}")
    return [FEATURES[name](config) for name in names]
