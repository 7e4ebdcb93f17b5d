"""Issue 4's requirements of the filter on synthetic markets with known regimes (seeds 6, 16, 28).

Two observation streams of each market (see ``conftest.py``): the model-consistent one checks the
filter against its own assumptions, the sensor one the pipeline as it is, with the sensor fitted on
another synthetic market. Through the sensor the two requirements below fail, by the margins in the
``xfail`` reasons: the public price of the synthetic market is an exponential average of V over
2 s, so its 1 s changes carry a quarter of V's variance (the fitted κ is 0.25) and its changes are
autocorrelated. The fitted κ puts the realized vol back on σ's scale, and the trending regime is
now mostly recognised; the crisis regime is not, because its wider spread and faster vol reach
the filter only through a realized vol whose returns are not independent, so its noise variance
ψ'(N/2)/4 is too small (normalized innovation variance 2–3).

Now the sensor observes ln σ also through the quoted spread (its link to ln σ fitted on the
calibration tape), the realized vol's noise is fitted from data, and the filter tempers the
regime evidence of the persistent ln V layers (``FilterConfig.fair_value_evidence_weight``): the
regime requirement holds. The mid layer's innovations still have about 4 times the variance
the filter predicts (strict ``xfail``, which fails when the sensor gets it right).
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
def test_through_the_sensor_the_most_probable_regime_is_the_true_one_80_percent_of_the_time(sensor_runs):
    # measured: accuracy 0.865 / 0.925 / 0.964 on seeds 6 / 16 / 28 (0.57 / 0.75 / 0.72 before the
    # spread observation, the fitted realized-vol noise and the tempered layer evidence)
    for run in sensor_runs.values():
        assert run.accuracy >= MIN_ACCURACY, _report(run)
        for regime, recall in enumerate(run.recall):
            assert recall >= 0.7, f"{Regime(regime).name}: {_report(run)}"


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="fitted sensor, pooled over seeds 6 / 16 / 28: realized_vol 0.93, ofi_5_1s 1.05, but the mid layer "
    "3.9 (its error persists over seconds; the filter takes it as white) and spread_vol 0.74. With the fitted "
    "mid noise R0 + c sigma^2 (FilterConfig.calibrated(mid_noise=True)) the mid is 0.93 and ofi 1.03, but "
    "realized_vol 0.76 and spread_vol 0.37, and V-hat predicts the mid 1 s ahead worse (off by default)",
)
def test_through_the_sensor_normalized_innovations_have_unit_variance(sensor_runs):
    for source, variance in _pooled_variances(sensor_runs).items():
        assert abs(variance - 1.0) <= 0.2, f"{source}: variance {variance:.3f}"
