"""Configs validate themselves and name the bad field (and file)."""

import json

import pytest

from mmlab.config import ConfigError, GovernorConfig, StrategyConfig, load_config, save_config


def test_negative_gamma_names_the_field():
    with pytest.raises(ConfigError, match=r"GovernorConfig\.gamma_base_per_usd must be > 0"):
        GovernorConfig(gamma_base_per_usd=-1.0)


@pytest.mark.parametrize("q_max", [0.0, -2.0])
def test_non_positive_q_max_names_the_field(q_max):
    with pytest.raises(ConfigError, match=r"GovernorConfig\.q_max"):
        GovernorConfig(q_max=q_max)


def test_nan_and_wrong_types_are_rejected():
    with pytest.raises(ConfigError, match="finite"):
        GovernorConfig(q_max=float("nan"))
    with pytest.raises(ConfigError, match="must be a number"):
        GovernorConfig(q_max="2")


def test_save_load_round_trip_keeps_the_hash(tmp_path):
    config = StrategyConfig(governor=GovernorConfig(q_max=3.0))
    path = save_config(config, tmp_path / "params.json", provenance={"source": "test"})
    loaded = load_config(path)
    assert loaded == config
    assert loaded.hash_id == config.hash_id
    assert loaded.hash_id != StrategyConfig().hash_id


def test_bad_value_in_file_names_file_and_field(tmp_path):
    path = save_config(StrategyConfig(), tmp_path / "params.json")
    document = json.loads(path.read_text())
    document["config"]["governor"]["gamma_base_per_usd"] = -0.5
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert "gamma_base_per_usd" in str(err.value)


def test_unknown_field_in_file_is_named(tmp_path):
    path = save_config(StrategyConfig(), tmp_path / "params.json")
    document = json.loads(path.read_text())
    document["config"]["governor"]["gamma"] = 1.0
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match=r"governor: GovernorConfig has no field 'gamma'"):
        load_config(path)


def test_corrupt_file_names_the_line(tmp_path):
    path = tmp_path / "params.json"
    path.write_text('{\n  "config": {\n    "governor": {,}\n')
    with pytest.raises(ConfigError, match=r"params\.json: line 3"):
        load_config(path)


def test_a_fitted_sensor_calibration_round_trips_through_the_parameters_file(tmp_path):
    from mmlab.config import SensorCalibration, SensorConfig

    calibration = SensorCalibration(
        names=("mid", "bim_l1"), coefs=(0.0, 5.5e-5), noise_cov=((4e-10, 1e-10), (1e-10, 3e-10)), samples=1234
    )
    config = StrategyConfig(sensor=SensorConfig(calibration=calibration))
    path = save_config(config, tmp_path / "params.json")
    loaded = load_config(path)
    assert loaded == config and loaded.hash_id == config.hash_id
    assert loaded.sensor.calibration.noise_cov[0][1] == 1e-10
    # a broken covariance in the file is named with its path in the config
    data = json.loads(path.read_text())
    data["config"]["sensor"]["calibration"]["noise_cov"] = [[1.0, 2.0], [2.0, 1.0]]
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="sensor.calibration.*positive definite"):
        load_config(path)
