"""The whole quote cycle on a synthetic market with known truth, through the simulated venue."""

import math

import numpy as np
import pandas as pd
import pytest

from mmlab.calibrate.strategy import calibrate_strategy
from mmlab.cli import main
from mmlab.config import ActuaryConfig, SimConfig, StrategyConfig, load_config, save_config
from mmlab.data.synth import SynthConfig, generate
from mmlab.sim.backtest import load_backtest, run_backtest
from mmlab.units import is_valid_price, is_valid_size

MINUTES = 10.0


@pytest.fixture(scope="module")
def market():
    return generate(SynthConfig(minutes=MINUTES, seed=11))


# A maker rebate (Hyperliquid's top tier pays about 0.2-0.3 bps) makes quoting at the touch of
# this 1.6 bps-wide market worthwhile, so the run has enough fills to check the mechanics; at the
# base 1.5 bps fee the pipeline rightly waits behind the touch for sweeps.
MAKER_FEE_BPS = -0.2


@pytest.fixture(scope="module")
def result(market):
    # calibrated as a user would: on another market (seed 12), then run on this one
    base = StrategyConfig(instrument=market.tape.instrument, actuary=ActuaryConfig(maker_fee_bps=MAKER_FEE_BPS))
    strategy = calibrate_strategy(generate(SynthConfig(minutes=MINUTES, seed=12)).tape, base=base).config
    return run_backtest(market.tape, strategy, SimConfig(maker_fee_bps=MAKER_FEE_BPS))


def _latent_at(market, ts_local: np.ndarray) -> np.ndarray:
    """Latent ln V at the exchange time each local time describes (feed latency earlier)."""
    path = market.path
    feed_ns = int(round(market.config.feed_latency_s * 1e9))
    idx = np.searchsorted(path["ts_exch"].to_numpy(), ts_local - feed_ns, side="right") - 1
    return path["log_fair_value"].to_numpy()[np.clip(idx, 0, len(path) - 1)]


def test_fair_value_tracks_the_latent_value_better_than_the_mid(market, result):
    cycles = result.cycles.dropna(subset=["fair_value", "mid"])
    latent = _latent_at(market, cycles["ts_local"].to_numpy())
    rmse_vhat = 1e4 * math.sqrt(np.mean((np.log(cycles["fair_value"]) - latent) ** 2))
    rmse_mid = 1e4 * math.sqrt(np.mean((np.log(cycles["mid"]) - latent) ** 2))
    assert len(cycles) > 0.9 * MINUTES * 600
    assert rmse_vhat < rmse_mid, (rmse_vhat, rmse_mid)


def test_quotes_are_post_only_on_the_grid_and_inventory_is_capped(result):
    cycles = result.cycles.set_index("ts_local")
    quotes = result.quotes.join(cycles[["best_bid", "best_ask"]], on="ts_local")
    assert len(quotes) > 0
    bids, asks = quotes[quotes.side == 1], quotes[quotes.side == -1]
    assert (bids.price < bids.best_ask).all()
    assert (asks.price > asks.best_bid).all()
    szd = result.strategy.instrument.sz_decimals
    assert all(is_valid_price(p, szd) for p in quotes.price)
    assert all(is_valid_size(s, szd) for s in quotes["size"])
    q_max = result.strategy.governor.q_max
    assert result.summary.max_abs_position <= q_max + 1e-9
    assert result.cycles.position.abs().max() <= q_max + 1e-9
    assert result.summary.rejections == 0 or result.summary.rejections < 0.01 * result.summary.orders_placed


def test_pipeline_trades_and_marks_every_fill(result):
    s = result.summary
    assert s.fills > 20
    assert s.volume_usd > 0
    assert np.isfinite(result.fills["markout_1s_bps"]).mean() > 0.9
    assert math.isfinite(s.markout_10s_bps)


def test_pnl_reconciles_to_the_cent_with_independent_cash_accounting(result):
    s = result.summary
    fills = result.fills
    # cash from the fills table alone, plus funding received
    cash = -(fills.side * fills.price * fills["size"]).sum() - fills.fee_usd.sum() + s.funding_usd
    last_mid = result.cycles.mid.dropna().iloc[-1]
    equity = cash + s.final_position * last_mid
    assert equity == pytest.approx(s.pnl_usd, abs=0.005)
    parts = s.spread_capture_usd + s.inventory_pnl_usd + s.fees_usd + s.funding_usd
    assert parts == pytest.approx(s.pnl_usd, abs=1e-6)
    assert s.fees_usd == pytest.approx(-fills.fee_usd.sum())


def test_same_seed_same_backtest(market, result):
    again = run_backtest(market.tape, result.strategy, result.sim)
    assert again.summary.pnl_usd == result.summary.pnl_usd
    pd.testing.assert_frame_equal(again.fills, result.fills)


def test_cli_round_trip_synth_backtest(tmp_path):
    synth_dir = tmp_path / "synth"
    assert main(["synth", "--minutes", "2", "--seed", "3", "--out", str(synth_dir)]) == 0
    run_dir = tmp_path / "run"
    assert main(["backtest", "--tape", str(synth_dir / "tape.parquet"), "--out", str(run_dir)]) == 0
    loaded = load_backtest(run_dir)
    assert loaded.summary.cycles > 1000
    assert len(loaded.cycles) == loaded.summary.cycles


def test_cli_calibrate_writes_a_parameters_file_the_backtest_reads(tmp_path, capsys):
    train_dir, test_dir = tmp_path / "train", tmp_path / "test"
    assert main(["synth", "--minutes", "20", "--seed", "4", "--out", str(train_dir)]) == 0
    assert main(["synth", "--minutes", "2", "--seed", "3", "--out", str(test_dir)]) == 0
    params = tmp_path / "params.json"
    assert main(["calibrate", "--tape", str(train_dir / "tape.parquet"), "--maker-fee-bps", "-0.2", "--out", str(params)]) == 0
    out = capsys.readouterr().out
    assert "sensor layers" in out and "fill intensity" in out
    config = load_config(params)
    # fitted from the tape, not the defaults; the fee tier reaches both actuary and evaluator
    assert config.sensor.calibration is not None and config.sensor.calibration.samples > 0
    assert config.actuary.intensity_decay_bid_per_bps != ActuaryConfig().intensity_decay_bid_per_bps
    assert config.actuary.maker_fee_bps == config.evaluator.maker_fee_bps == -0.2
    run_dir = tmp_path / "run"
    assert main(["backtest", "--tape", str(test_dir / "tape.parquet"), "--config", str(params), "--out", str(run_dir)]) == 0
    assert load_backtest(run_dir).summary.strategy_config_hash == config.hash_id


def test_calibrate_rejects_tapes_of_two_coins_naming_them(tmp_path, capsys):
    import dataclasses

    from mmlab.data.tape import read_tape, write_tape

    synth_dir = tmp_path / "synth"
    assert main(["synth", "--minutes", "1", "--seed", "3", "--out", str(synth_dir)]) == 0
    tape = read_tape(synth_dir / "tape.parquet")
    other = write_tape(dataclasses.replace(tape, instrument=tape.instrument.replace(coin="OTHER")), tmp_path / "other.parquet")
    code = main(["calibrate", "--tape", str(synth_dir / "tape.parquet"), "--tape", str(other), "--out", str(tmp_path / "p.json")])
    err = capsys.readouterr().err
    assert code == 2 and "several coins" in err and str(other) in err
    assert not (tmp_path / "p.json").exists()


def test_truncated_tape_gives_one_clear_error(tmp_path, capsys):
    synth_dir = tmp_path / "synth"
    assert main(["synth", "--minutes", "1", "--seed", "3", "--out", str(synth_dir)]) == 0
    tape_path = synth_dir / "tape.parquet"
    data = tape_path.read_bytes()
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(data[: len(data) // 2])
    code = main(["backtest", "--tape", str(broken), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("mmlab: error:") and str(broken) in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_out_of_range_parameter_in_config_file_names_the_field(tmp_path, capsys):
    synth_dir = tmp_path / "synth"
    assert main(["synth", "--minutes", "1", "--seed", "3", "--out", str(synth_dir)]) == 0
    config_path = save_config(StrategyConfig(), tmp_path / "params.json")
    text = config_path.read_text().replace('"q_max": 2.0', '"q_max": -1.0')
    config_path.write_text(text)
    code = main(["backtest", "--tape", str(synth_dir / "tape.parquet"), "--config", str(config_path), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert "q_max" in err and str(config_path) in err


def test_missing_tape_and_bad_synth_parameter(tmp_path, capsys):
    assert main(["backtest", "--tape", str(tmp_path / "nope.parquet"), "--out", str(tmp_path / "run")]) == 2
    assert "nope.parquet" in capsys.readouterr().err
    assert main(["synth", "--minutes", "-5", "--out", str(tmp_path / "s")]) == 2
    assert "minutes" in capsys.readouterr().err
