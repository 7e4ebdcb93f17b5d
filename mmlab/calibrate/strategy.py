"""Calibrate the whole strategy from tapes: what the pipeline fits from data, in one config.

This is the nightly job's core (and ``mmlab calibrate``'s): given recorded (or synthetic) tapes
of one coin, fit

- the sensor: its fair-value layers, noise covariance, selection and volatility observations
  (:func:`mmlab.calibrate.belief.calibrate_sensor`, on the first tape: its fit holds out the
  tape's last 30 % for selection, so one long tape is what it wants);
- the fill intensities Λ_s(δ) = A_s e^{−κ_s δ} per side
  (:func:`mmlab.calibrate.intensity.fit_fill_intensity`, on all tapes pooled);

and returns ``base`` (default: a default :class:`~mmlab.config.StrategyConfig` on the tape's
instrument) with those replaced. Preferences (γ, caps, Kelly fractions, the fee tier) are not
fitted: they come from ``base``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mmlab.calibrate.belief import calibrate_sensor
from mmlab.calibrate.intensity import IntensityFit, fit_fill_intensity
from mmlab.config import SensorCalibration, StrategyConfig
from mmlab.data.tape import Tape

__all__ = ["StrategyCalibration", "calibrate_strategy"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyCalibration:
    """The calibrated config and the fits behind it."""

    config: StrategyConfig
    sensor: SensorCalibration
    intensity: IntensityFit
    sources: tuple[str, ...]

    def summary(self) -> str:
        kept = ", ".join(self.sensor.names)
        dropped = ", ".join(name for name, _ in self.sensor.dropped) or "none"
        return (
            f"calibrated on {len(self.sources)} tape(s): {', '.join(self.sources)}\n"
            f"sensor layers: {kept} (dropped: {dropped}); σ = {1e4 * self.sensor.sigma_per_sqrt_s:.3g} bps/√s\n"
            f"{self.intensity.summary()}"
        )


def calibrate_strategy(tapes: Tape | Sequence[Tape], *, base: StrategyConfig | None = None) -> StrategyCalibration:
    """Fit the sensor on the first tape and the fill intensities on all of them (module docstring)."""
    tapes = [tapes] if isinstance(tapes, Tape) else list(tapes)
    if not tapes:
        raise ValueError("calibrate_strategy: no tape given")
    coins = {tape.instrument.coin for tape in tapes}
    if len(coins) > 1:
        raise ValueError(f"calibrate_strategy: the tapes are of several coins {sorted(coins)}; calibrate one coin at a time")
    first = tapes[0]
    base = base or StrategyConfig(instrument=first.instrument)
    sensor = calibrate_sensor(first)
    intensity = fit_fill_intensity(tapes)
    config = base.replace(
        instrument=first.instrument,
        sensor=base.sensor.replace(calibration=sensor),
        actuary=intensity.actuary_config(base.actuary),
    )
    return StrategyCalibration(
        config=config, sensor=sensor, intensity=intensity, sources=tuple(tape.source or tape.instrument.coin for tape in tapes)
    )
