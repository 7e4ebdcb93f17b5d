"""The feature registry: every feature builds by name, fitted models go into the calibration and
come back from a parameters file unchanged, and bad names or missing fits raise naming the feature."""

import json
import math

import pytest

from mmlab.calibrate.belief import calibrate_sensor, split_tape
from mmlab.config import SensorConfig, StrategyConfig
from mmlab.data.synth import SynthConfig, generate
from mmlab.sensor import MicrostructureSensor
from mmlab.sensor.calibration import replay_updates
from mmlab.sensor.features import DEFAULT_FEATURES, FEATURES, fit_feature_params, make_features


@pytest.fixture(scope="module")
def tape():
    return generate(SynthConfig(seed=21, minutes=8.0)).tape


def test_every_feature_fits_builds_and_runs_on_a_synthetic_tape(tape):
    failures: dict[str, str] = {}
    params = fit_feature_params(DEFAULT_FEATURES, tape, failures=failures)
    assert failures == {}
    assert set(params) == {name for name in DEFAULT_FEATURES if FEATURES[name].fit is not None}
    features = make_features(DEFAULT_FEATURES, SensorConfig(), params)
    assert [f.name for f in features] == list(DEFAULT_FEATURES)
    defined = {f.name: 0 for f in features}
    for update in replay_updates(tape, 0.1):
        for feature in features:
            feature.update(update)
            value = feature.value
            assert not math.isinf(value), feature.name
            defined[feature.name] += value == value
    # every feature says something on a tape with books, trades, contexts and liquidations
    # (VPIN needs its window of buckets first, so it may stay undefined on a short tape)
    assert all(count > 0 for name, count in defined.items() if name != "vpin_order_imbalance"), defined


def test_calibration_with_fitted_models_survives_the_parameters_file(tape):
    first, _ = split_tape(tape)
    names = ("micro_stoikov", "micro_trade", "hawkes_imbalance", "bim_5", "ofi_5_1s")
    calibration = calibrate_sensor(first, features=names)
    assert set(calibration.names[1:]) <= set(names) and len(calibration.names) > 1
    assert {name for name, _ in calibration.feature_params} == {n for n in calibration.names[1:] if FEATURES[n].fit is not None}
    config = StrategyConfig(sensor=SensorConfig(calibration=calibration))
    stored = StrategyConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert stored == config and stored.hash_id == config.hash_id
    original, restored = MicrostructureSensor(config.sensor), MicrostructureSensor(stored.sensor)
    for update in replay_updates(tape, 0.1):
        assert original.observe(update) == restored.observe(update)


def test_bad_names_and_missing_fits_raise_naming_the_feature(tape):
    with pytest.raises(KeyError, match="unknown sensor feature 'bim_7'"):
        make_features(["bim_7"], SensorConfig())
    with pytest.raises(ValueError, match="'micro_stoikov' needs fitted parameters"):
        make_features(["micro_stoikov"], SensorConfig())
    # flow toxicity needs the addresses only Hyperliquid trades carry
    with pytest.raises(ValueError, match="'flow_toxicity'.*addresses"):
        fit_feature_params(["flow_toxicity"], tape.slice_time(None, int(tape.ts_local[0]) + 60_000_000_000))
