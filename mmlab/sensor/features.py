"""The registry of online features the sensor can build by name.

Every feature follows :class:`~mmlab.sensor.calibration.Feature`: ``update(update)`` absorbs one
venue update, ``value`` is the current value (NaN until defined); positive means evidence for a
higher price. A book missing a side, crossed or not finite is ignored and counted in ``dropped``.

Some features carry a model fitted from data before they can run (Stoikov's micro-price, the
Hawkes intensities, VPIN's bucket volume, the informed-flow filter, the trade layer's decay,
the participants' toxicity scores). Their :class:`FeatureSpec` has a ``fit`` that takes the
calibration tape (normally the first half of a recording) and returns the fitted parameters as
plain JSON-able numbers; :class:`~mmlab.config.SensorCalibration` keeps them in
``feature_params``, so the parameters file rebuilds exactly the features that were judged.

Feature names (the number in a name is its levels or window):

=====================  ==================================================================
``micro_l1``           L1 size-weighted micro-price (log offset from the mid)
``micro_depth5``       depth-weighted micro-price over 5 levels
``micro_stoikov``      Stoikov's micro-price, imbalance × spread Markov model fitted
``micro_trade``        trade-informed layer: last trade price decayed toward the mid
``bim_l1``, ``bim_5``  book imbalance at the touch / over 5 levels (distance-weighted)
``dbim_1s``            change of the touch imbalance over 1 s
``bpg_10``             book pressure gradient over 10 levels
``ofi_1s``             order-flow imbalance (Cont–Kukanov–Stoikov) over 1 s, touch
``ofi_5_1s``           multi-level OFI over 5 levels and 1 s
``book_sweep``         decayed signed sweeps seen in the book (levels taken)
``sweep_depth_bps``    decayed signed sweeps from the trades (bps walked)
``hawkes_imbalance``   (λ_buy − λ_sell)/(λ_buy + λ_sell) of the fitted bivariate Hawkes
``vpin_order_imbalance``  signed VPIN bucket imbalance, bucket volume fitted
``informed_gap``       the informed-flow filter's expected gap V − mid
``flow_toxicity``      toxicity-weighted taker flow (needs Hyperliquid addresses)
``open_interest``      position-building rate from asset contexts
``liquidation_pressure``  decayed signed liquidation flow
=====================  ==================================================================
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from mmlab.config import SensorConfig
from mmlab.types import L2Book

if TYPE_CHECKING:
    from mmlab.data.tape import Tape

__all__ = [
    "FEATURES",
    "DEFAULT_FEATURES",
    "FeatureSpec",
    "FitContext",
    "fit_feature_params",
    "make_features",
    "usable_touch",
]


def usable_touch(book: L2Book | None) -> tuple[float, float, float, float] | None:
    """``(bid, ask, bid_size, ask_size)`` of a finite, uncrossed two-sided book, else None."""
    if book is None or book.bid_px.size == 0 or book.ask_px.size == 0:
        return None
    bid, ask = float(book.bid_px[0]), float(book.ask_px[0])
    bid_size, ask_size = float(book.bid_sz[0]), float(book.ask_sz[0])
    if not (0.0 < bid < ask < math.inf and 0.0 < bid_size < math.inf and 0.0 < ask_size < math.inf):
        return None
    return bid, ask, bid_size, ask_size


class FitContext:
    """The calibration tape and the sub-model fits several features share (the Hawkes fit)."""

    def __init__(self, tape: "Tape", interval_s: float) -> None:
        self.tape = tape
        self.interval_s = interval_s
        self._hawkes = None

    def hawkes(self):
        if self._hawkes is None:
            from mmlab.sensor.hawkes import fit_hawkes_tape

            self._hawkes = fit_hawkes_tape(self.tape)
        return self._hawkes


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """How to build a feature, and, when it needs one, how to fit its model.

    ``build(config, params)`` returns a fresh online feature; ``params`` is what ``fit(context)``
    returned (a JSON-able dict), or None for a feature without a fit.
    """

    name: str
    build: Callable[[SensorConfig, Mapping[str, Any] | None], Any]
    fit: Callable[[FitContext], dict[str, Any]] | None = None
    needs: str = ""  # what the tape must carry, for the error when it does not


def _named(feature, name: str):
    feature.name = name
    return feature


def _hawkes_params(data: Mapping[str, Any]):
    from mmlab.sensor.hawkes import HawkesParams

    branching = tuple(tuple(float(x) for x in row) for row in data["branching"])
    return HawkesParams(baseline_per_s=tuple(float(x) for x in data["baseline_per_s"]), branching=branching, decay_per_s=float(data["decay_per_s"]))


def _fit_hawkes(context: FitContext) -> dict[str, Any]:
    return asdict(context.hawkes().params)


def _build_hawkes(config: SensorConfig, params: Mapping[str, Any] | None):
    from mmlab.sensor.hawkes import HawkesIntensity

    return HawkesIntensity(_hawkes_params(_required(params, "hawkes_imbalance")))


def _fit_stoikov(context: FitContext) -> dict[str, Any]:
    from mmlab.sensor.microprice import fit_stoikov_microprice

    return fit_stoikov_microprice(context.tape, n_bootstrap=0).table.to_dict()


def _build_stoikov(config: SensorConfig, params: Mapping[str, Any] | None):
    from mmlab.sensor.microprice import StoikovMicroPrice, StoikovTable

    return StoikovMicroPrice(StoikovTable.from_dict(_required(params, "micro_stoikov")), name="micro_stoikov")


def _fit_trade(context: FitContext) -> dict[str, Any]:
    from mmlab.sensor.microprice import fit_trade_microprice

    fit = fit_trade_microprice(context.tape, interval_s=context.interval_s)
    return {"decay_s": float(fit.decay_s)}


def _build_trade(config: SensorConfig, params: Mapping[str, Any] | None):
    from mmlab.sensor.microprice import TradeMicroPrice

    return TradeMicroPrice(float(_required(params, "micro_trade")["decay_s"]), name="micro_trade")


def _fit_vpin(context: FitContext) -> dict[str, Any]:
    from mmlab.sensor.vpin import fit_vpin

    return asdict(fit_vpin(context.tape).params)


def _build_vpin(config: SensorConfig, params: Mapping[str, Any] | None):
    from mmlab.sensor.vpin import VPIN, VPINParams

    data = dict(_required(params, "vpin_order_imbalance"))
    data["window_buckets"] = int(data["window_buckets"])
    return VPIN(VPINParams(**data), signed=True)


def _fit_informed(context: FitContext) -> dict[str, Any]:
    from mmlab.sensor.informed import fit_informed_flow

    params = fit_informed_flow(context.tape, context.hawkes(), interval_s=context.interval_s).params
    return asdict(params)


def _build_informed(config: SensorConfig, params: Mapping[str, Any] | None):
    from mmlab.sensor.informed import InformedFlow, InformedFlowParams

    data = dict(_required(params, "informed_gap"))
    data["hawkes"] = _hawkes_params(data["hawkes"])
    data["gap_cells"] = int(data["gap_cells"])
    return InformedFlow(InformedFlowParams(**data), signal="gap")


def _fit_toxicity(context: FitContext) -> dict[str, Any]:
    from mmlab.sensor.participants import fit_participants

    if not context.tape.has_addresses:
        raise ValueError("flow_toxicity needs a tape with Hyperliquid buyer/seller addresses")
    fit = fit_participants(context.tape)
    return {"params": asdict(fit.params), "toxicity_bps": dict(fit.toxicity_bps)}


def _build_toxicity(config: SensorConfig, params: Mapping[str, Any] | None):
    from mmlab.sensor.participants import FlowToxicity, ParticipantsParams, participants_result

    data = _required(params, "flow_toxicity")
    fit = participants_result(ParticipantsParams(**data["params"]), data["toxicity_bps"])
    return FlowToxicity(fit)


def _required(params: Mapping[str, Any] | None, name: str) -> Mapping[str, Any]:
    if params is None:
        raise ValueError(f"sensor feature {name!r} needs fitted parameters (SensorCalibration.feature_params); fit it with calibrate_sensor")
    return params


def _registry() -> dict[str, FeatureSpec]:
    from mmlab.sensor.book_features import BookImbalance, BookImbalanceChange, BookPressureGradient, BookSweep, OrderFlowImbalance
    from mmlab.sensor.context import LiquidationPressure, OpenInterestFlow
    from mmlab.sensor.flow import SweepPressure
    from mmlab.sensor.microprice import DepthMicroPrice, MicroPriceL1

    specs = [
        FeatureSpec("micro_l1", lambda c, p: MicroPriceL1(name="micro_l1")),
        FeatureSpec("micro_depth5", lambda c, p: DepthMicroPrice(5, name="micro_depth5")),
        FeatureSpec("micro_stoikov", _build_stoikov, _fit_stoikov),
        FeatureSpec("micro_trade", _build_trade, _fit_trade, needs="trades"),
        FeatureSpec("bim_l1", lambda c, p: BookImbalance(1, name="bim_l1")),
        FeatureSpec("bim_5", lambda c, p: BookImbalance(5, name="bim_5")),
        FeatureSpec("dbim_1s", lambda c, p: BookImbalanceChange(1.0, 1, name="dbim_1s")),
        FeatureSpec("bpg_10", lambda c, p: BookPressureGradient(10, name="bpg_10")),
        FeatureSpec("ofi_1s", lambda c, p: OrderFlowImbalance(1.0, 1, name="ofi_1s")),
        FeatureSpec("ofi_5_1s", lambda c, p: OrderFlowImbalance(1.0, 5, name="ofi_5_1s")),
        FeatureSpec("book_sweep", lambda c, p: BookSweep(1.0, weight="levels", name="book_sweep")),
        FeatureSpec("sweep_depth_bps", lambda c, p: _named(SweepPressure(decay_s=1.0, weight="depth_bps"), "sweep_depth_bps"), needs="trades"),
        FeatureSpec("hawkes_imbalance", _build_hawkes, _fit_hawkes, needs="trades"),
        FeatureSpec("vpin_order_imbalance", _build_vpin, _fit_vpin, needs="trades"),
        FeatureSpec("informed_gap", _build_informed, _fit_informed, needs="trades"),
        FeatureSpec("flow_toxicity", _build_toxicity, _fit_toxicity, needs="addresses"),
        FeatureSpec("open_interest", lambda c, p: OpenInterestFlow(name="open_interest"), needs="asset contexts"),
        FeatureSpec("liquidation_pressure", lambda c, p: LiquidationPressure(name="liquidation_pressure"), needs="liquidation fills"),
    ]
    return {spec.name: spec for spec in specs}


#: feature name -> spec; the sensor builds a calibration's layers from here
FEATURES: dict[str, FeatureSpec] = _registry()


#: the candidates :func:`mmlab.calibrate.belief.calibrate_sensor` offers the fit when not told
#: otherwise: every feature, ``flow_toxicity`` only for tapes with addresses. The fit keeps the
#: few that predict on the data (:func:`~mmlab.sensor.calibration.fit_sensor`'s selection).
DEFAULT_FEATURES: tuple[str, ...] = tuple(name for name in FEATURES if name != "flow_toxicity")


def _check_names(names: Sequence[str]) -> None:
    unknown = [name for name in names if name not in FEATURES]
    if unknown:
        raise KeyError(f"unknown sensor feature {unknown[0]!r}; known: {', '.join(sorted(FEATURES))}")


def fit_feature_params(
    names: Sequence[str], tape: "Tape", *, interval_s: float = 0.1, failures: dict[str, str] | None = None
) -> dict[str, str]:
    """Fit the models of the named features that need one, on ``tape``: name -> parameters as JSON text.

    A fit that fails (a tape without trades, without addresses, too short) raises, unless
    ``failures`` is given: then the feature is left out and ``failures[name]`` says why.

    Raises
    ------
    ValueError
        Naming the feature whose fit failed.
    """
    _check_names(names)
    context = FitContext(tape, interval_s)
    fitted: dict[str, str] = {}
    for name in names:
        spec = FEATURES[name]
        if spec.fit is None:
            continue
        try:
            params = spec.fit(context)
        except (ValueError, RuntimeError, ArithmeticError, IndexError) as exc:
            needs = f" (it needs {spec.needs})" if spec.needs else ""
            message = f"fit failed{needs}: {exc}"
            if failures is None:
                raise ValueError(f"sensor feature {name!r}: {message}") from exc
            failures[name] = message
            continue
        fitted[name] = json.dumps(params, sort_keys=True)
    return fitted


def make_features(names: Sequence[str], config: SensorConfig, params: Mapping[str, str] | None = None) -> list:
    """Fresh online features for ``names``, in order; ``params`` maps name -> fitted parameters (JSON text).

    ``params`` defaults to ``config.calibration.feature_params``.

    Raises
    ------
    KeyError
        If a name is not registered (the message lists the known ones).
    ValueError
        If a feature that needs a fit has no parameters.
    """
    _check_names(names)
    if params is None:
        params = dict(config.calibration.feature_params) if config.calibration is not None else {}
    features = []
    for name in names:
        text = params.get(name)
        features.append(FEATURES[name].build(config, json.loads(text) if text is not None else None))
    return features
