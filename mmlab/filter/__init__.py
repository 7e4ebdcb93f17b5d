"""Filter: a Bayesian posterior over ``x = [ln V, μ, ln σ]`` and the market regime.

The stage is an interacting multiple model (IMM) over three regimes (quiet, trending, crisis),
each an unscented Kalman filter over x that differs in process noise; see
:mod:`mmlab.filter.imm` for the IMM equations, :mod:`mmlab.filter.ukf` for the UKF and its
process model, and :mod:`mmlab.filter.fills` for the Glosten–Milgrom update by our own fills and
the online estimate of the informed fraction π.

The pure core is :func:`step` (``step(state, ts_local, observations, fills, params, updates)
-> (state, output)``); :class:`LatentStateFilter` only holds the state between cycles and is the
pipeline's default :class:`Filter`. Tests check that the two agree exactly.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from mmlab.config import FilterConfig
from mmlab.filter.fills import PendingFill, fill_responsibility, gm_fill_update
from mmlab.filter.imm import FilterOutput, FilterState, ImmParams, changepoint_reset, combine, initial_state, step
from mmlab.filter.ukf import FilterError
from mmlab.types import Fill, MarketBelief, Observation, ParameterUpdates

__all__ = [
    "Filter",
    "LatentStateFilter",
    "FilterError",
    "FilterOutput",
    "FilterState",
    "ImmParams",
    "PendingFill",
    "changepoint_reset",
    "combine",
    "fill_responsibility",
    "gm_fill_update",
    "initial_state",
    "step",
]


class Filter(Protocol):
    def step(
        self,
        ts_local: int,
        observations: Sequence[Observation],
        fills: Sequence[Fill],
        updates: ParameterUpdates | None,
    ) -> MarketBelief | None:
        """Advance to ``ts_local``, absorb observations and fills; None until initialised."""
        ...


class LatentStateFilter:
    """IMM of three UKFs over ``[ln V, μ, ln σ]`` with Glosten–Milgrom fill updates.

    Holds the :class:`FilterState` between calls of the pure :func:`step`. A step that raises
    :class:`FilterError` (time going backwards, a non-finite or non-positive-definite result)
    leaves the state as it was.
    """

    def __init__(self, config: FilterConfig | None = None) -> None:
        self.config = config or FilterConfig()
        self.params = ImmParams.from_config(self.config)
        self.state: FilterState | None = None
        #: what the last step produced (innovations, mode likelihoods, judged fills)
        self.last_output: FilterOutput | None = None

    @property
    def initialised(self) -> bool:
        return self.state is not None

    @property
    def informed_fraction(self) -> float:
        """π in use: the evaluator's override, else the estimate, else the prior."""
        if self.state is None:
            return self.config.informed_fraction_prior
        return self.state.informed_fraction

    @property
    def last_innovations(self) -> tuple[tuple[str, float], ...]:
        """(source, innovation) of the last step's observations."""
        if self.last_output is None:
            return ()
        return tuple(zip(self.last_output.sources, (float(y) for y in self.last_output.innovation)))

    def step(
        self,
        ts_local: int,
        observations: Sequence[Observation],
        fills: Sequence[Fill],
        updates: ParameterUpdates | None = None,
    ) -> MarketBelief | None:
        state, output = step(self.state, ts_local, observations, fills, self.params, updates)
        self.state, self.last_output = state, output
        return output.belief if output is not None else None

    def belief(self) -> MarketBelief:
        """The belief of the last step."""
        if self.last_output is None:
            raise RuntimeError("LatentStateFilter.belief: the filter has not been initialised")
        return self.last_output.belief
