"""Issue 4's requirements of the filter on synthetic markets with known regimes (seeds 6, 16, 28).

Two observation streams of each market (see ``conftest.py``): the model-consistent one checks the
filter against its own assumptions, the sensor one the pipeline as it is. With today's sensor the
two requirements below fail, by the margins in the ``xfail`` reasons: the public price of the
synthetic market lags V by 2 s, so the mid and micro-price are smooth at 100 ms (their normalized
innovations have variance 0.16-0.34, not 1), the filter's smallest-vol regime explains them best,
and the realized vol of the lagged mid is ~0.5 of σ (innovation mean ≈ −1 to −1.7 standard
deviations). The sensor's noise variances and features are being fitted from data; when they are
right the ``xfail`` tests pass and, being strict, fail until their marker is removed.
"""

import numpy as np
import pytest

from mmlab.types import Regime

MIN_ACCURACY = 0.8


def _report(run) -> str:
    recall = ", ".join(f"{Regime(r).name.lower()} {value:.2f}" for r, value in enumerate(run.recall))
    return f"seed {run.seed}: accuracy {run.accuracy:.3f}; recall {recall}; confusion (rows true) {run.confusion.tolist()}"


def _pooled_variances(runs) -> dict[str, float]:
    sources = sorted({source for run in runs.values() for source in run.normalized_innovations})
    return {
        source: float(np.var(np.concatenate([run.normalized_innovations[source] for run in runs.values() if source in run.normalized_innovations])))
        for source in sources
    }


def test_the_most_probable_regime_is_the_true_one_80_percent_of_the_time(consistent_runs):
    for run in consistent_runs.values():
        assert run.accuracy >= MIN_ACCURACY, _report(run)
        # not by answering "quiet": every regime the market visits is mostly recognised
        for regime, recall in enumerate(run.recall):
            assert recall >= 0.7, f"{Regime(regime).name}: {_report(run)}"


def test_normalized_innovations_have_unit_variance(consistent_runs):
    variances = _pooled_variances(consistent_runs)
    assert set(variances) == {"ln_v_direct", "realized_vol_true"}
    for source, variance in variances.items():
        assert abs(variance - 1.0) <= 0.2, f"{source}: variance {variance:.3f}"


def test_fair_value_beats_its_observations(consistent_runs):
    """V̂ pools the observations: its error is below the 0.5 bps of one observation."""
    for run in consistent_runs.values():
        rmse_bps = 1e4 * float(np.sqrt(np.mean(run.log_fair_value_error**2)))
        assert rmse_bps < 0.45, f"seed {run.seed}: RMSE {rmse_bps:.3f} bps"


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="sensor: the lagged mid makes the quiet regime explain everything; measured accuracy "
    "0.51 / 0.72 / 0.65 on seeds 6 / 16 / 28, trending recall 0.00-0.01, crisis recall 0.00-0.01",
)
def test_through_the_sensor_the_most_probable_regime_is_the_true_one_80_percent_of_the_time(sensor_runs):
    for run in sensor_runs.values():
        assert run.accuracy >= MIN_ACCURACY, _report(run)


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="sensor: measured variances pooled over seeds 6 / 16 / 28: mid ≈ 0.18, micro_l1 ≈ 0.30, "
    "realized_vol ≈ 2.9 (its mean ≈ −1.4 std: the realized vol of the lagged mid is ~0.5 σ)",
)
def test_through_the_sensor_normalized_innovations_have_unit_variance(sensor_runs):
    for source, variance in _pooled_variances(sensor_runs).items():
        assert abs(variance - 1.0) <= 0.2, f"{source}: variance {variance:.3f}"
