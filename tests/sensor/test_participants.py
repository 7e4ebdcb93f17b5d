"""Participants: markouts by hand, empirical-Bayes toxicity, recovery of informed addresses, flow toxicity."""

from __future__ import annotations

import gzip
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mmlab.data.synth import SynthConfig, generate
from mmlab.data.tape import EventKind, Tape, encode_addresses
from mmlab.sensor.participants import (
    FlowToxicity,
    assign_synthetic_addresses,
    fit_participants,
    flow_toxicity_series,
    out_of_sample_flow_toxicity,
    trade_markouts,
    trades_of,
)
from mmlab.testing import T0_NS, make_tape, make_update
from mmlab.types import Side, Trade

S = 1_000_000_000
CLEAR, BOOK, TRADE = int(EventKind.BOOK_CLEAR), int(EventKind.BOOK), int(EventKind.TRADE)
NAN = float("nan")


def hand_tape() -> Tape:
    """Mid 100.00, a buy by A at 1 s (mid → 100.01), a sell by B at 1.5 s, mid 100.02 at 2.5 s, 100.03 at 12 s."""
    rows = [
        (T0_NS, CLEAR, 0, NAN, 0.0, NAN, 0),
        (T0_NS, BOOK, 1, 99.99, 1.0, NAN, 0),
        (T0_NS, BOOK, -1, 100.01, 1.0, NAN, 0),
        (T0_NS + S, TRADE, 1, 100.01, 2.0, NAN, 1),
        (T0_NS + S, BOOK, -1, 100.01, 0.0, NAN, 0),
        (T0_NS + S, BOOK, -1, 100.03, 1.0, NAN, 0),
        (T0_NS + 3 * S // 2, TRADE, -1, 99.99, 1.0, NAN, 2),
        (T0_NS + 5 * S // 2, BOOK, 1, 100.01, 1.0, NAN, 0),
        (T0_NS + 12 * S, BOOK, -1, 100.05, 1.0, NAN, 0),
        (T0_NS + 12 * S, BOOK, -1, 100.03, 0.0, NAN, 0),
        (T0_NS + 20 * S, BOOK, 1, 99.98, 1.0, NAN, 0),
    ]
    tape = make_tape(rows)
    buyer = [None] * len(rows)
    seller = [None] * len(rows)
    buyer[3], seller[3] = "0xA", "0xM"
    buyer[6], seller[6] = "0xM", "0xB"
    return tape.with_addresses(*encode_addresses(buyer, seller))


def test_markouts_and_fingerprints_by_hand() -> None:
    tape = hand_tape()
    marks = trade_markouts(tape, horizons_s=(1.0, 10.0))
    m1 = 1e4 * np.log([100.01 / 100.00, 100.02 / 100.01])
    m10 = 1e4 * np.log([100.02 / 100.00, 100.02 / 100.01])
    np.testing.assert_allclose(marks["markout_1s_bps"], m1, rtol=1e-9)
    np.testing.assert_allclose(marks["markout_10s_bps"], m10, rtol=1e-9)

    result = fit_participants(tape, horizons_s=(1.0, 10.0), toxicity_horizon_s=1.0)
    table = result.table
    assert set(table.index) == {"0xA", "0xB", "0xM"}
    a, b, m = table.loc["0xA"], table.loc["0xB"], table.loc["0xM"]
    assert (a["trades"], a["volume_coins"], a["aggressor_share"], a["net_bought_coins"]) == (1, 2.0, 1.0, 2.0)
    assert (m["trades"], m["aggressor_share"], m["net_bought_coins"]) == (2, 0.0, -1.0)
    assert a["trades_per_s"] == pytest.approx(1 / 20.0)
    assert a["notional_usd"] == pytest.approx(200.02)
    # signed to each address's side: the seller B gains when the price falls
    assert a["markout_1s_bps"] == pytest.approx(m1[0])
    assert b["markout_1s_bps"] == pytest.approx(-m1[1])
    assert m["markout_1s_bps"] == pytest.approx(0.5 * (-m1[0] + m1[1]))
    # a maker-only address has no taker orders and no toxicity
    assert m["taker_orders"] == 0 and m["toxicity_bps"] == 0.0
    assert result.params.n_taker_orders == 2 and result.params.n_trades == 2
    assert result.params.volume_rate_coins_per_s == pytest.approx(3.0 / 20.0)
    for address in ("0xA", "0xB"):
        row = table.loc[address]
        # shrunk toward zero, never past it
        assert abs(row["toxicity_bps"]) <= abs(row["taker_markout_bps"]) + 1e-12
        assert row["toxicity_bps"] * row["taker_markout_bps"] >= 0
    assert "0xA" in result.summary()


def test_a_trade_without_a_mid_before_it_has_no_markout() -> None:
    tape = hand_tape()
    rows = [(T0_NS - S, TRADE, 1, 100.0, 1.0, NAN, 9)] + [
        (int(tape.ts_local[i]), int(tape.kind[i]), int(tape.side[i]), float(tape.price[i]), float(tape.size[i]), float(tape.rate[i]), int(tape.trade_id[i]))
        for i in range(len(tape))
    ]
    marks = trade_markouts(make_tape(rows))
    assert math.isnan(marks["markout_1s_bps"].iloc[0]) and np.isfinite(marks["markout_1s_bps"].iloc[1])


@pytest.fixture(scope="module")
def synthetic() -> Tape:
    return assign_synthetic_addresses(generate(SynthConfig(seed=1, minutes=30)), informed_addresses=10, noise_addresses=200, seed=0)


def test_informed_addresses_are_found_on_the_synthetic_market(synthetic: Tape) -> None:
    result = fit_participants(synthetic)
    table = result.table
    informed = table.index.str.startswith("0xinf")
    noise = table.index.str.startswith("0xnoise")
    assert informed.sum() == 10
    assert table.loc[informed, "toxicity_bps"].mean() > table.loc[noise, "toxicity_bps"].mean() + 0.2
    assert table.head(10).index.str.startswith("0xinf").sum() >= 7
    assert result.params.prior_var_bps2 > 0
    # B_a = τ²/(τ² + σ²/n_a) grows with the number of orders
    takers = table[table["taker_orders"] > 0].sort_values("taker_orders")
    shrink = (takers["toxicity_bps"] / takers["taker_markout_bps"]).to_numpy()
    assert np.all(np.diff(shrink) >= -1e-12) and shrink.max() < 1.0
    # the table's counts add up to two parties per trade
    assert table["trades"].sum() == 2 * synthetic.count(EventKind.TRADE)


def test_flow_toxicity_predicts_the_synthetic_mid_out_of_sample(synthetic: Tape) -> None:
    fit, table = out_of_sample_flow_toxicity(synthetic, horizons_s=(1.0, 10.0))
    by_horizon = table.set_index("horizon_s")
    assert by_horizon.loc[1.0, "correlation"] > 0.05
    assert by_horizon.loc[1.0, "n"] > 5000
    assert np.isfinite(by_horizon["correlation_blind"]).all()


def test_online_flow_toxicity_matches_the_batch_series(synthetic: Tape) -> None:
    fit = fit_participants(synthetic.slice_time(None, int(synthetic.ts_local[len(synthetic) // 2])))
    grid = np.arange(int(synthetic.ts_local[0]) + S, int(synthetic.ts_local[-1]), S // 4)
    feature = FlowToxicity(fit)
    trades = trades_of(synthetic)
    trade_ts = np.array([t.ts_local for t in trades])
    online, start = [], 0
    for t in grid.tolist():
        end = int(np.searchsorted(trade_ts, t, side="right"))
        feature.update(make_update(None, ts=t, trades=trades[start:end]))
        start = end
        online.append(feature.value)
    batch = flow_toxicity_series(synthetic, fit, grid)
    np.testing.assert_allclose(online, batch, rtol=1e-9, atol=1e-14)
    assert np.abs(batch).max() > 0.01
    assert 0.0 < feature.known_volume_share <= 1.0


def _trade(ts: int, side: Side, size: float, buyer: str | None, seller: str | None) -> Trade:
    return Trade(ts_exch=ts, ts_local=ts, price=100.0, size=size, aggressor=side, buyer=buyer, seller=seller)


def test_flow_toxicity_signs_dilution_decay_and_bad_trades(synthetic: Tape) -> None:
    fit = fit_participants(synthetic)
    toxic = fit.table.index[0]
    score = fit.toxicity_bps[toxic]
    assert score > 0
    feature = FlowToxicity(fit, half_life_s=5.0)
    assert math.isnan(feature.value)
    feature.update(make_update(None, ts=T0_NS))
    assert feature.value == 0.0
    q0 = feature.volume_scale_coins
    # a buy by a toxic taker says "up"
    feature.update(make_update(None, ts=T0_NS + 1, trades=[_trade(T0_NS + 1, Side.BUY, 1.0, toxic, "0xM")]))
    assert feature.value == pytest.approx(score / (1.0 + q0), rel=1e-6)
    up = feature.value
    # an unknown taker adds volume, not toxicity
    feature.update(make_update(None, ts=T0_NS + 2, trades=[_trade(T0_NS + 2, Side.BUY, 1.0, "0xNEW", "0xM")]))
    assert 0 < feature.value < up
    # five seconds later everything has halved, and Q_0 pulls the value toward 0
    value = feature.value
    feature.update(make_update(None, ts=T0_NS + 2 + 5 * S))
    assert 0 < feature.value < value
    # the same taker selling says "down"
    feature.update(make_update(None, ts=T0_NS + 3 + 5 * S, trades=[_trade(T0_NS + 3 + 5 * S, Side.SELL, 5.0, "0xM", toxic)]))
    assert feature.value < 0
    feature.update(make_update(None, ts=T0_NS + 4 + 5 * S, trades=[_trade(T0_NS + 4 + 5 * S, Side.SELL, float("nan"), "0xM", toxic)]))
    assert feature.dropped == 1 and np.isfinite(feature.value)


def test_fit_needs_addresses() -> None:
    plain = make_tape([(T0_NS, CLEAR, 0, NAN, 0.0, NAN, 0), (T0_NS, BOOK, 1, 99.0, 1.0, NAN, 0), (T0_NS, BOOK, -1, 101.0, 1.0, NAN, 0)])
    with pytest.raises(ValueError, match="'buyer'/'seller'"):
        fit_participants(plain)
    with pytest.raises(ValueError, match="'horizons_s'"):
        trade_markouts(hand_tape(), horizons_s=(0.0,))


def test_real_hyperliquid_recording(shared_data: Path) -> None:
    """64 trades of BTC with both addresses (hftbacktest's recording, 25 s)."""
    from mmlab.data.importers import import_file

    path = shared_data / "hyperliquid-api-samples/hftbacktest-ws-recording/btcusd_20250126.gz"
    counts: Counter[str] = Counter()
    seen: set[int] = set()
    with gzip.open(path, "rt") as stream:
        for line in stream:
            message = json.loads(line.partition(" ")[2])
            if message["channel"] == "trades":
                for trade in message["data"]:
                    if trade["tid"] not in seen:
                        seen.add(trade["tid"])
                        counts.update(trade["users"])
    tape = import_file(path, "hyperliquid-ws").tape
    result = fit_participants(tape)
    table = result.table
    assert result.params.n_addresses == len(counts) and result.params.n_trades == 64
    assert table["trades"].to_dict() == dict(counts)
    busiest, busiest_count = counts.most_common(1)[0]
    assert table.loc[busiest, "trades"] == busiest_count
    # the first trades message replays ~50 s of trades from before the first book: no markout
    marks = trade_markouts(tape)
    assert marks["markout_1s_bps"].notna().sum() < 64
    fit, oos = out_of_sample_flow_toxicity(tape)
    assert list(oos["horizon_s"]) == [1.0, 10.0]
