"""Fit the change-point detector's hyperparameters to a tape by maximising its evidence.

The evaluator's detector (:mod:`mmlab.evaluator.changepoint`) has two numbers that say what a
"change" is: the hazard timescale T (prior mean time between changes) and the prior shape α₀
(how firmly a new run's variance is expected near the recent average). Their defaults describe the
synthetic market's regimes; on a real coin whose volatility moves all the time they make the
change-point probability sit above ½ most of the time, and the filter would keep resetting its
regimes.

Both are chosen here by type-II maximum likelihood (empirical Bayes): the detector's one-step
predictive densities multiply to the marginal likelihood of the returns,

    ln p(x_1:n | T, α₀) = Σ_t ln Σ_r P(r_{t−1} = r | x_1:t−1) p(x_t | r),

which the detector accumulates as ``log_evidence``; the grid point with the largest value wins.
The returns are the tape's 1 s log-mid returns in bps, sampled as the evaluator samples them (the
last usable mid at or before each second).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmlab.config import EvaluatorConfig
from mmlab.data.tape import Tape
from mmlab.evaluator.changepoint import ChangePointDetector

__all__ = ["ChangePointFit", "fit_changepoint", "sampled_returns_bps"]

#: candidate hazard timescales T, seconds, and prior shapes α₀
HAZARD_GRID_S = (60.0, 250.0, 1_000.0, 4_000.0)
PRIOR_SHAPE_GRID = (0.5, 1.0, 3.0, 10.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangePointFit:
    """The chosen hyperparameters, the evidence of every grid point and the detector's behaviour."""

    hazard_timescale_s: float
    prior_shape: float
    log_evidence: dict[tuple[float, float], float]
    samples: int
    alarm_fraction: float  # share of samples with changepoint_prob > ½ under the chosen values
    source: str = ""

    def summary(self) -> str:
        where = f" on {self.source}" if self.source else ""
        return (
            f"change points{where}: T = {self.hazard_timescale_s:g} s, α₀ = {self.prior_shape:g} "
            f"(max evidence over {len(self.log_evidence)} grid points, {self.samples} returns of 1 s); "
            f"P(change) > ½ on {100 * self.alarm_fraction:.1f} % of them"
        )

    def evaluator_config(self, base: EvaluatorConfig | None = None) -> EvaluatorConfig:
        """``base`` (default: the default config) with the fitted hazard and prior shape."""
        return (base or EvaluatorConfig()).replace(
            changepoint_hazard_timescale_s=self.hazard_timescale_s, changepoint_prior_shape=self.prior_shape
        )


def sampled_returns_bps(tape: Tape, interval_s: float = 1.0) -> np.ndarray:
    """1e4 × the log-mid change over each ``interval_s`` of the tape (the last usable mid at or
    before each boundary; intervals before the first usable mid are skipped)."""
    from mmlab.sensor.book_features import book_frame

    frame = book_frame(tape, levels=1)
    usable = np.isfinite(frame.mid)
    ts = frame.ts_local.astype(np.int64)[usable]
    mid = frame.mid[usable]
    if mid.size < 2:
        raise ValueError(f"sampled_returns_bps: tape {tape.source or tape.instrument.coin!r} has fewer than two usable mids")
    step = int(round(interval_s * 1e9))
    marks = np.arange(ts[0] + step, ts[-1] + 1, step)
    at = np.searchsorted(ts, marks, side="right") - 1
    return 1e4 * np.diff(np.log(mid[at]))


def fit_changepoint(
    tapes: Tape | Sequence[Tape],
    *,
    base: EvaluatorConfig | None = None,
    hazard_grid_s: Sequence[float] = HAZARD_GRID_S,
    prior_shape_grid: Sequence[float] = PRIOR_SHAPE_GRID,
) -> ChangePointFit:
    """Choose (T, α₀) on a grid by the detector's evidence over the tapes' 1 s returns (module
    docstring); the other detector settings come from ``base``. Each tape is a separate stream."""
    cfg = base or EvaluatorConfig()
    tapes = [tapes] if isinstance(tapes, Tape) else list(tapes)
    if not tapes:
        raise ValueError("fit_changepoint: no tape given")
    interval = cfg.changepoint_sample_interval_s
    streams = [sampled_returns_bps(tape, interval) for tape in tapes]
    samples = sum(len(x) for x in streams)
    if samples < 10 * cfg.changepoint_window_samples:
        raise ValueError(
            f"fit_changepoint: {samples} returns of {interval:g} s; need at least {10 * cfg.changepoint_window_samples} "
            "(ten change-point windows)"
        )

    def run(hazard_s: float, shape: float) -> tuple[float, np.ndarray]:
        evidence, probs = 0.0, []
        for returns in streams:
            detector = ChangePointDetector(
                hazard_timescale_samples=hazard_s / interval,
                max_run_length=cfg.changepoint_max_run_length,
                window_samples=cfg.changepoint_window_samples,
                prior_shape=shape,
                variance_half_life_samples=cfg.volatility_half_life_s / interval,
            )
            probs.extend(detector.update(float(x)) for x in returns)
            evidence += detector.log_evidence
        return evidence, np.asarray(probs)

    evidence = {(h, a): run(h, a)[0] for h in hazard_grid_s for a in prior_shape_grid}
    hazard_s, shape = max(evidence, key=evidence.get)
    _, probs = run(hazard_s, shape)
    if not all(math.isfinite(v) for v in evidence.values()):
        raise ValueError("fit_changepoint: the evidence is not finite on part of the grid")
    return ChangePointFit(
        hazard_timescale_s=hazard_s,
        prior_shape=shape,
        log_evidence=evidence,
        samples=samples,
        alarm_fraction=float(np.mean(probs > 0.5)),
        source=" + ".join(tape.source or tape.instrument.coin for tape in tapes),
    )
