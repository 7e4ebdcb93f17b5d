"""Synthetic markets with known regimes, and observation streams made from them for the filter.

Two streams per market, both one step every 100 ms:

- **sensor**: the tape replayed through :class:`~mmlab.sim.venue.SimVenue`, polled every 100 ms,
  observed by :class:`~mmlab.sensor.MicrostructureSensor` fitted on another market (what the
  pipeline does).
- **model-consistent**: observations that satisfy the filter's observation model exactly, made
  from the truth: ln V plus Gaussian noise of the stated variance every step, and the sensor's
  own realized-vol observation of ln σ from ten 1-s log-returns of the true ln V every 10 s. It
  checks the filter against its own assumptions, apart from the sensor's.

Seeds 6, 16 and 28 are markets of 20 minutes that visit all three regimes (quiet 53 / 74 / 67 %
of the time), so always answering "quiet" cannot reach 80 % on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from mmlab.config import FilterConfig, SensorCalibration, SimConfig
from mmlab.data.synth import SynthConfig, SyntheticMarket, generate
from mmlab.filter import LatentStateFilter
from mmlab.sensor import MicrostructureSensor, realized_vol_observation
from mmlab.sim.venue import SimVenue
from mmlab.types import Observation, StateComponent

REGIME_SEEDS = (6, 16, 28)
MINUTES = 20.0
STEP_NS = 100_000_000
#: noise of the model-consistent ln V observations: 0.5 bps
CONSISTENT_NOISE_VAR = (0.5e-4) ** 2


@dataclass(frozen=True)
class Stream:
    """Observation batches at ``ts`` and the truth (regime, ln V) that holds at each."""

    seed: int
    ts: tuple[int, ...]
    observations: tuple[tuple[Observation, ...], ...]
    regime: np.ndarray
    log_fair_value: np.ndarray


def sensor_stream(market: SyntheticMarket, seconds: float | None = None, calibration: SensorCalibration | None = None) -> Stream:
    """Poll a SimVenue replaying the market every 100 ms and observe with the sensor (fitted with ``calibration``, if given).

    The truth at a poll is the grid point last published before the poll minus both feed
    latencies (the tape's and the venue's), i.e. the state the book the sensor sees was built from.
    """
    tape = market.tape
    sim = SimConfig()
    venue = SimVenue(tape, sim)
    sensor = MicrostructureSensor(calibration=calibration)
    lag_ns = int(round((market.config.feed_latency_s + sim.feed_latency_s) * 1e9))
    grid_ts = market.path["ts_exch"].to_numpy()
    end = int(tape.ts_local[-1]) if seconds is None else int(tape.ts_local[0]) + int(seconds * 1e9)
    stamps, batches = [], []
    ts = int(tape.ts_local[0]) + STEP_NS
    while ts <= end:
        batches.append(sensor.observe(venue.poll(ts)))
        stamps.append(ts)
        ts += STEP_NS
    rows = np.searchsorted(grid_ts, np.array(stamps) - lag_ns, side="right") - 1
    rows = np.clip(rows, 0, len(grid_ts) - 1)
    return Stream(
        seed=market.config.seed,
        ts=tuple(stamps),
        observations=tuple(batches),
        regime=market.path["regime"].to_numpy()[rows],
        log_fair_value=market.path["log_fair_value"].to_numpy()[rows],
    )


def consistent_stream(market: SyntheticMarket, seed: int) -> Stream:
    """Observations that follow the filter's observation model exactly (module docstring)."""
    rng = np.random.default_rng(seed)
    path = market.path
    log_value = path["log_fair_value"].to_numpy()
    grid_ts = path["ts_exch"].to_numpy()
    steps_per_s = int(round(1.0 / market.config.step_s))
    noise = rng.standard_normal(len(log_value)) * math.sqrt(CONSISTENT_NOISE_VAR)
    returns: list[float] = []
    batches = []
    for k, ts in enumerate(grid_ts):
        batch = [
            Observation(
                ts_local=int(ts),
                component=StateComponent.LOG_FAIR_VALUE,
                value=float(log_value[k] + noise[k]),
                noise_var=CONSISTENT_NOISE_VAR,
                source="ln_v_direct",
            )
        ]
        if k >= steps_per_s and k % steps_per_s == 0:
            returns.append(float(log_value[k] - log_value[k - steps_per_s]))
            if len(returns) == 10:
                z, noise_var = realized_vol_observation(sum(r * r for r in returns), 10.0, 10)
                returns.clear()
                batch.append(
                    Observation(
                        ts_local=int(ts), component=StateComponent.LOG_VOL, value=z, noise_var=noise_var, source="realized_vol_true"
                    )
                )
        batches.append(tuple(batch))
    return Stream(
        seed=market.config.seed,
        ts=tuple(int(t) for t in grid_ts),
        observations=tuple(batches),
        regime=path["regime"].to_numpy(),
        log_fair_value=log_value,
    )


@pytest.fixture(scope="session")
def regime_markets() -> dict[int, SyntheticMarket]:
    """The three 20-minute synthetic markets of REGIME_SEEDS."""
    return {seed: generate(SynthConfig(minutes=MINUTES, seed=seed)) for seed in REGIME_SEEDS}


@dataclass(frozen=True)
class FilterRun:
    """The default filter run over a stream: regimes, normalized innovations and errors.

    Steps in the first ``warmup_s`` seconds are left out of every figure.
    """

    seed: int
    regime_true: np.ndarray
    regime_pred: np.ndarray
    normalized_innovations: dict[str, np.ndarray]
    log_fair_value_error: np.ndarray

    @property
    def confusion(self) -> np.ndarray:
        """Counts of (true regime, most probable regime), rows true, in Regime order."""
        counts = np.zeros((3, 3), dtype=int)
        np.add.at(counts, (self.regime_true, self.regime_pred), 1)
        return counts

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.regime_true == self.regime_pred))

    @property
    def recall(self) -> tuple[float, ...]:
        counts = self.confusion
        return tuple(float(counts[r, r] / counts[r].sum()) if counts[r].sum() else math.nan for r in range(3))


def run_filter(stream: Stream, config: FilterConfig | None = None, warmup_s: float = 60.0) -> FilterRun:
    """Run :class:`~mmlab.filter.LatentStateFilter` (default config unless given) over ``stream``."""
    filt = LatentStateFilter(config)
    warmup = int(warmup_s * 1e9 / STEP_NS)
    predicted, errors, kept = [], [], []
    normalized: dict[str, list[float]] = {}
    for index, (ts, batch) in enumerate(zip(stream.ts, stream.observations)):
        belief = filt.step(ts, batch, ())
        if belief is None or index < warmup:
            continue
        kept.append(index)
        predicted.append(int(np.argmax(belief.regime_probs)))
        errors.append(math.log(belief.fair_value) - stream.log_fair_value[index])
        output = filt.last_output
        for source, value in zip(output.sources, output.normalized_innovation):
            normalized.setdefault(source, []).append(float(value))
    return FilterRun(
        seed=stream.seed,
        regime_true=stream.regime[kept].astype(int),
        regime_pred=np.array(predicted, dtype=int),
        normalized_innovations={source: np.array(values) for source, values in normalized.items()},
        log_fair_value_error=np.array(errors),
    )


@pytest.fixture(scope="session")
def consistent_runs(regime_markets) -> dict[int, FilterRun]:
    """The default filter over the model-consistent stream of each regime market."""
    return {seed: run_filter(consistent_stream(market, seed)) for seed, market in regime_markets.items()}


#: the sensor is fitted on another market of the same kind, as a user fits on yesterday: an hour
#: (seed 100) whose regime shares, 77 / 20 / 4 %, are the chain's stationary ones. The spread's
#: link to the vol cannot be learnt from data without a crisis (seed 99's 20 minutes have none).
CALIBRATION_SEED = 100
CALIBRATION_MINUTES = 60.0
CALIBRATION_FEATURES = ("micro_l1", "micro_depth5", "bim_5", "ofi_5_1s", "bpg_10")


@pytest.fixture(scope="session")
def sensor_runs(regime_markets) -> dict[int, FilterRun]:
    """The default filter over the fitted sensor's observations of each regime market."""
    from mmlab.calibrate.belief import calibrate_sensor

    calibration = calibrate_sensor(generate(SynthConfig(minutes=CALIBRATION_MINUTES, seed=CALIBRATION_SEED)).tape, features=CALIBRATION_FEATURES)
    # what the calibration fitted for the filter: the layers' regime evidence weight (the mid's
    # noise R₀ + c σ² stays off by default, FilterConfig.calibrated)
    config = FilterConfig().calibrated(calibration)
    return {seed: run_filter(sensor_stream(market, calibration=calibration), config) for seed, market in regime_markets.items()}


@pytest.fixture(scope="session")
def short_sensor_stream() -> Stream:
    """Three minutes of sensor observations of the synthetic market of seed 6 (quiet at first)."""
    return sensor_stream(generate(SynthConfig(minutes=3.0, seed=6)))
