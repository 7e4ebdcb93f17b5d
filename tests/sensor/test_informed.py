"""Informed-flow model: the likelihood against a forward recursion written from the docstring,
the filter's signals on hand-made flow, parameter recovery on data simulated from the model.

There is no simulator in :mod:`mmlab.sensor.informed`, so ``_simulate`` below draws from the model
as the module docstring states it: the gap g lives on K equal-probability cells ``s_g z_j`` of its
stationary law and moves between them with the Gaussian AR(1) transition integrated over the cells
(computed here with ``scipy.stats.norm``, not with the module's grid); each aggressor event is
informed with probability π and then trades toward V (side = sign g), else it is a buy with
probability h; the mid changes by ``(1 − a) g + ι₀ Σs + ι₁ Σs_prev`` plus N(0, ν max(Δt, Δt₀)).
Uninformed sides come from a Hawkes process without branching, so h = μ_buy / (μ_buy + μ_sell) for
every event and the venue updates can go through :func:`flow_steps` and the online filter.
"""

import math

import numpy as np
import pytest
from scipy.stats import norm

from mmlab.sensor.hawkes import HawkesParams
from mmlab.sensor.informed import (
    INFORMED_PARAM_NAMES,
    FlowSteps,
    InformedFlow,
    InformedFlowParams,
    fit_informed_flow,
    flow_steps,
    informed_filter,
    informed_loglik,
)
from mmlab.sensor.informed import _layout  # the quiet-run compression the likelihood relies on
from mmlab.testing import T0_NS as T0
from mmlab.types import L2Book, Side, Trade, VenueUpdate

S = 1_000_000_000
MS = 1_000_000
DT_S = 0.1
#: no branching: h = 0.6 / (0.6 + 0.4) = 0.6 for every event
HAWKES = HawkesParams(baseline_per_s=(0.6, 0.4), branching=((0.0, 0.0), (0.0, 0.0)), decay_per_s=1.0)
H_BUY = 0.6
TRUTH = InformedFlowParams(
    informed_fraction=0.3,
    adjustment_time_s=2.0,
    gap_std_bps=3.0,
    impact_bps=0.2,
    impact_lag_bps=0.05,
    noise_bps2_per_s=1.0,
    hawkes=HAWKES,
    min_interval_s=DT_S,
    gap_cells=8,
)
EVENTS_PER_S = 5.0


def _with(params: InformedFlowParams, **changes) -> InformedFlowParams:
    values = params.to_dict() | changes
    return InformedFlowParams(**values, hawkes=params.hawkes, min_interval_s=params.min_interval_s, gap_cells=params.gap_cells)


# --------------------------------------------------------------------------------------------
# An independent statement of the model
# --------------------------------------------------------------------------------------------


def _cells(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Centres z_j = Φ⁻¹((j − ½)/K) and edges (−∞, Φ⁻¹(1/K), …, +∞) of the K cells."""
    centres = norm.ppf((np.arange(k) + 0.5) / k)
    edges = np.concatenate([[-np.inf], norm.ppf(np.arange(1, k) / k), [np.inf]])
    return centres, edges


def _cell_transition(k: int, decay: float) -> np.ndarray:
    """P[i, j] = P(g' in cell j | g = z_i) for g' ~ N(a g, 1 − a²) (row-stochastic)."""
    centres, edges = _cells(k)
    if decay >= 1.0:
        return np.eye(k)
    sd = math.sqrt(1.0 - decay * decay)
    upper = norm.cdf((edges[None, 1:] - decay * centres[:, None]) / sd)
    lower = norm.cdf((edges[None, :-1] - decay * centres[:, None]) / sd)
    return upper - lower


def _forward_loglik(params: InformedFlowParams, steps: FlowSteps) -> tuple[float, np.ndarray]:
    """ln P(data) by the plain forward recursion, one update at a time, and E[g] after each."""
    k = params.gap_cells
    centres, _ = _cells(k)
    values_bps = params.gap_std_bps * centres
    pi = params.informed_fraction
    p = np.full(k, 1.0 / k)
    total = 0.0
    means = np.empty(len(steps))
    events_of = [[] for _ in range(len(steps))]
    for step, side, h in zip(steps.event_step, steps.event_side, steps.event_buy_prob):
        events_of[int(step)].append((int(side), float(h)))
    for n in range(len(steps)):
        dt = float(steps.dt_s[n])
        if n:
            p = _cell_transition(k, math.exp(-dt / params.adjustment_time_s)).T @ p
        likelihood = np.ones(k)
        for side, h in events_of[n]:
            h_side = h if side == 1 else 1.0 - h
            # P(side | g) = (1 − π) h_s + π [s = sign g]
            likelihood *= (1.0 - pi) * h_side + pi * (np.sign(values_bps) == side)
        change = steps.mid_change_bps[n]
        if np.isfinite(change):
            closed = 1.0 - math.exp(-dt / params.adjustment_time_s)
            mean = closed * values_bps + params.impact_bps * steps.signed_events[n] + params.impact_lag_bps * steps.signed_events_prev[n]
            var = params.noise_bps2_per_s * max(dt, params.min_interval_s)
            likelihood *= norm.pdf(change, loc=mean, scale=math.sqrt(var))
        joint = p * likelihood
        total += math.log(joint.sum())
        p = joint / joint.sum()
        means[n] = values_bps @ p
    return total, means


def _book(ts: int, mid: float) -> L2Book:
    return L2Book.from_levels(ts_exch=ts, ts_local=ts, bid_px=[mid * (1 - 1e-6)], bid_sz=[1.0], ask_px=[mid * (1 + 1e-6)], ask_sz=[1.0])


def _update(ts: int, book: L2Book | None, sides=(), *, prices=None) -> VenueUpdate:
    """A venue update whose events are one print each, 1 ms apart on the exchange clock."""
    trades = tuple(
        Trade(
            ts_exch=ts - 90 * MS + j * MS,
            ts_local=ts,
            price=100.0 if prices is None else prices[j],
            size=1.0,
            aggressor=Side(side),
        )
        for j, side in enumerate(sides)
    )
    return VenueUpdate(ts_local=ts, book=book, trades=trades, fills=(), position=0.0, open_orders=())


def _simulate(params: InformedFlowParams, n_updates: int, seed: int, *, quiet: slice | None = None):
    """Draw ``n_updates`` polls 100 ms apart from the model; returns (gap in bps, sides per
    update, venue updates). Updates inside ``quiet`` have no events and an unchanged mid."""
    rng = np.random.default_rng(seed)
    k = params.gap_cells
    centres, _ = _cells(k)
    decay = math.exp(-DT_S / params.adjustment_time_s)
    cumulative = np.cumsum(_cell_transition(k, decay), axis=1)
    cell = np.empty(n_updates, dtype=np.int64)
    cell[0] = rng.integers(k)  # p_0 uniform over the cells
    for n in range(1, n_updates):
        cell[n] = min(int(np.searchsorted(cumulative[cell[n - 1]], rng.random(), "right")), k - 1)
    gap_bps = params.gap_std_bps * centres[cell]
    counts = rng.poisson(EVENTS_PER_S * DT_S, n_updates)
    if quiet is not None:
        counts[quiet] = 0
    sides = []
    for n in range(n_updates):
        informed = rng.random(counts[n]) < params.informed_fraction
        noise_side = np.where(rng.random(counts[n]) < H_BUY, 1, -1)
        sides.append(tuple(int(s) for s in np.where(informed, int(np.sign(gap_bps[n])), noise_side)))
    signed = np.array([sum(s) for s in sides], dtype=np.float64)
    signed_prev = np.concatenate([[0.0], signed[:-1]])
    noise_sd = math.sqrt(params.noise_bps2_per_s * max(DT_S, params.min_interval_s))
    # Δ ln mid (bps) = (1 − a) g + ι₀ Σs + ι₁ Σs_prev + N(0, ν max(Δt, Δt₀))
    impact = params.impact_bps * signed + params.impact_lag_bps * signed_prev
    change = (1.0 - decay) * gap_bps + impact + rng.normal(0.0, noise_sd, n_updates)
    change[0] = 0.0
    if quiet is not None:
        change[quiet] = 0.0
    log_mid = math.log(100.0) + np.cumsum(change) * 1e-4
    updates = [_update(T0 + n * 100 * MS, _book(T0 + n * 100 * MS, math.exp(log_mid[n])), sides[n]) for n in range(n_updates)]
    return gap_bps, sides, updates


@pytest.fixture(scope="module")
def sample():
    """2,000 updates (200 s) with a 60-update quiet stretch, and their flow steps."""
    gap, sides, updates = _simulate(TRUTH, 2_000, seed=1, quiet=slice(500, 560))
    return gap, sides, updates, flow_steps(updates, HAWKES)


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def test_flow_steps_collects_what_the_updates_carry(sample):
    gap, sides, updates, steps = sample
    assert len(steps) == len(updates)
    np.testing.assert_array_equal(steps.signed_events, [sum(s) for s in sides])
    np.testing.assert_array_equal(steps.signed_events_prev[1:], [sum(s) for s in sides[:-1]])
    assert steps.signed_events_prev[0] == 0.0
    np.testing.assert_array_equal(steps.event_side, [s for group in sides for s in group])
    np.testing.assert_array_equal(steps.event_step, [n for n, group in enumerate(sides) for _ in group])
    # no branching: h = μ_buy / (μ_buy + μ_sell) for every event
    np.testing.assert_allclose(steps.event_buy_prob, H_BUY, rtol=0, atol=1e-15)
    np.testing.assert_allclose(steps.dt_s[1:], DT_S, rtol=1e-12)
    assert steps.dt_s[0] == 0.0 and math.isnan(steps.mid_change_bps[0])
    mids = [0.5 * (u.book.bid_px[0] + u.book.ask_px[0]) for u in updates]
    np.testing.assert_allclose(steps.mid_change_bps[1:], 1e4 * np.diff(np.log(mids)), rtol=0, atol=1e-9)
    assert steps.dropped_books == 0 and steps.dropped_prints == 0


def test_flow_steps_drops_bad_books_and_prints_and_counts_them():
    book = _book(T0, 100.0)
    crossed = L2Book.from_levels(ts_exch=T0, ts_local=T0, bid_px=[100.1], bid_sz=[1.0], ask_px=[100.0], ask_sz=[1.0])
    nan_book = L2Book.from_levels(ts_exch=T0, ts_local=T0, bid_px=[math.nan], bid_sz=[1.0], ask_px=[100.0], ask_sz=[1.0])
    updates = [
        _update(T0, book, (1,)),
        _update(T0 + 100 * MS, crossed, (1, -1)),
        _update(T0 + 200 * MS, nan_book),
        _update(T0 + 300 * MS, None),
        _update(T0 + 400 * MS, book, (1, 1), prices=[math.nan, 100.0]),
        _update(T0 + 500 * MS, book, (-1,), prices=[math.inf]),
    ]
    steps = flow_steps(updates, HAWKES)
    # the crossed and the NaN book are dropped (a missing book is no bad input); their events count
    assert steps.dropped_books == 2
    assert steps.dropped_prints == 2
    np.testing.assert_array_equal(steps.signed_events, [1, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(np.isnan(steps.log_mid), [False, True, True, True, False, False])
    # no mid change next to an update without a mid
    np.testing.assert_array_equal(np.isnan(steps.mid_change_bps), [True, True, True, True, True, False])
    flow = InformedFlow(TRUTH)
    for update in updates:
        flow.update(update)
        assert math.isfinite(flow.gap_bps)
    assert (flow.dropped_books, flow.dropped_prints, flow.dropped) == (2, 2, 4)


# --------------------------------------------------------------------------------------------
# Likelihood and filter
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [{}, {"informed_fraction": 0.0}, {"informed_fraction": 0.7, "adjustment_time_s": 0.3}, {"gap_std_bps": 10.0, "impact_bps": -0.5}],
)
def test_loglik_equals_the_forward_recursion_of_the_docstring(sample, changes):
    """The tree of rescaled products (with the quiet stretch as one matrix power), the batch filter
    and the online filter all give the plain forward recursion's log-likelihood."""
    _, _, updates, steps = sample
    # the quiet stretch is evaluated as one matrix power, the rest update by update
    assert _layout(steps, DT_S).multiplicity.max() >= 50
    params = _with(TRUTH, **changes)
    expected, expected_gap = _forward_loglik(params, steps)
    assert informed_loglik(params, steps) == pytest.approx(expected, rel=1e-9)
    batch = informed_filter(params, steps)
    assert batch["loglik"][-1] == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(batch["gap_bps"], expected_gap, rtol=1e-7, atol=1e-9)
    flow = InformedFlow(params)
    gaps = []
    for update in updates:
        flow.update(update)
        gaps.append(flow.gap_bps)
    assert flow.loglik == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(gaps, expected_gap, rtol=1e-7, atol=1e-9)


def test_loglik_is_highest_at_the_true_parameters(sample):
    _, _, _, steps = sample
    truth = informed_loglik(TRUTH, steps)
    wrong = {
        "no informed flow": _with(TRUTH, informed_fraction=0.0),
        "too much informed flow": _with(TRUTH, informed_fraction=0.8),
        "slow adjustment": _with(TRUTH, adjustment_time_s=20.0),
        "fast adjustment": _with(TRUTH, adjustment_time_s=0.2),
        "small gap": _with(TRUTH, gap_std_bps=0.3),
        "large gap": _with(TRUTH, gap_std_bps=30.0),
        "wrong impact sign": _with(TRUTH, impact_bps=-0.2),
        "noise too small": _with(TRUTH, noise_bps2_per_s=0.2),
        "noise too large": _with(TRUTH, noise_bps2_per_s=5.0),
    }
    for name, params in wrong.items():
        assert informed_loglik(params, steps) < truth - 5.0, name


def test_online_gap_takes_the_sign_of_the_recent_informed_flow():
    """Without impacts the mid says nothing about the sign of g, so the sign of E[g] is the
    sign of the recent one-sided flow; a reversal of the flow reverses it."""
    params = _with(TRUTH, impact_bps=0.0, impact_lag_bps=0.0)
    flow = InformedFlow(params, signal="gap")
    ts = T0
    flow.update(_update(ts, _book(ts, 100.0)))
    # nothing but an unchanged mid: E[g] = 0 by symmetry
    assert flow.gap_bps == pytest.approx(0.0, abs=1e-12)
    assert flow.direction == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(flow.informed_fraction)
    for _ in range(10):  # 1 s of buying, three buys per poll
        ts += 100 * MS
        flow.update(_update(ts, _book(ts, 100.0), (1, 1, 1)))
    assert flow.gap_bps > 0.0 and flow.value > 0.0 and flow.direction > 0.5 and flow.drift_per_s > 0.0
    assert flow.value == pytest.approx(flow.gap_bps * 1e-4)
    assert flow.drift_per_s == pytest.approx(flow.gap / params.adjustment_time_s)
    assert 0.0 < flow.informed_fraction < 1.0
    up_gap = flow.gap_bps
    for _ in range(20):  # 2 s of selling
        ts += 100 * MS
        flow.update(_update(ts, _book(ts, 100.0), (-1, -1, -1)))
    assert flow.gap_bps < 0.0 and flow.direction < -0.5
    # the mirror image of the flow gives the mirror image of the filter
    mirror = InformedFlow(params)
    ts = T0
    mirror.update(_update(ts, _book(ts, 100.0)))
    for _ in range(10):
        ts += 100 * MS
        mirror.update(_update(ts, _book(ts, 100.0), (-1, -1, -1)))
    # buys are more likely uninformed (h = 0.6) than sells, so sells say more: |gap| is larger
    assert mirror.gap_bps < -up_gap < 0.0


def test_online_gap_tracks_the_simulated_gap(sample):
    gap, _, updates, _ = sample
    flow = InformedFlow(TRUTH, signal="direction")
    direction = []
    for update in updates:
        flow.update(update)
        direction.append(flow.value)
    direction = np.array(direction)
    # the filter's sign agrees with the true sign of the gap far more often than chance
    agree = float(np.mean(np.sign(direction[100:]) == np.sign(gap[100:])))
    assert agree > 0.75
    assert np.corrcoef(direction, gap)[0, 1] > 0.5


def test_informed_fraction_averages_to_pi_under_the_model():
    """E[P(informed_k | data)] = π (tower property): the mean posterior over many events."""
    _, _, updates = _simulate(TRUTH, 6_000, seed=7)
    flow = InformedFlow(TRUTH, signal="fraction", window_events=100_000)
    for update in updates:
        flow.update(update)
    # window larger than the sample: the equal-weight mean of ~3,000 posteriors
    assert flow.value == pytest.approx(TRUTH.informed_fraction, abs=0.03)


# --------------------------------------------------------------------------------------------
# Fit
# --------------------------------------------------------------------------------------------


def test_fit_recovers_the_informed_fraction():
    """10,000 polls (17 min, ~5,000 events; the fit takes ~3 s): π̂ within 0.05 of the truth
    (its standard error is ~0.02 here) and inside its 99% interval; every parameter inside its
    99.9% interval."""
    _, _, updates = _simulate(TRUTH, 10_000, seed=3)
    steps = flow_steps(updates, HAWKES)
    fit = fit_informed_flow(steps, HAWKES)
    estimate = fit.params.informed_fraction
    assert abs(estimate - TRUTH.informed_fraction) < 0.05, fit.summary()
    low, high = fit.conf_int(0.99)["informed_fraction"]
    assert low < TRUTH.informed_fraction < high, fit.summary()
    assert fit.log_likelihood >= informed_loglik(TRUTH, steps) - 1e-6
    assert fit.likelihood_ratio_pvalue < 1e-6
    for name, truth in TRUTH.to_dict().items():
        low, high = fit.conf_int(0.999)[name]
        assert low < truth < high, (name, fit.summary())


def test_fit_on_flow_without_informed_traders_finds_little():
    params = _with(TRUTH, informed_fraction=0.0)
    _, _, updates = _simulate(params, 4_000, seed=5)
    fit = fit_informed_flow(updates, HAWKES)
    assert fit.params.informed_fraction < 0.08, fit.summary()
    assert fit.likelihood_ratio_pvalue > 0.01, fit.summary()
    assert "informed_fraction" in fit.summary()


def test_fit_needs_enough_events():
    _, _, updates = _simulate(TRUTH, 60, seed=2)
    with pytest.raises(ValueError, match="at least 50 and 100"):
        fit_informed_flow(updates, HAWKES)


# --------------------------------------------------------------------------------------------
# Bad arguments
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("informed_fraction", -0.1),
        ("informed_fraction", 1.0),
        ("informed_fraction", math.nan),
        ("adjustment_time_s", 0.0),
        ("gap_std_bps", -1.0),
        ("noise_bps2_per_s", 0.0),
        ("impact_bps", math.inf),
        ("min_interval_s", 0.0),
        ("min_interval_s", math.inf),
        ("gap_cells", 7),
        ("gap_cells", 0),
    ],
)
def test_params_out_of_range_raise_naming_the_field(field, value):
    values = TRUTH.to_dict() | {"hawkes": HAWKES, "min_interval_s": DT_S, "gap_cells": 8, field: value}
    with pytest.raises(ValueError, match=f"InformedFlowParams.{field}"):
        InformedFlowParams(**values)


def test_filter_arguments_are_checked():
    with pytest.raises(ValueError, match="signal"):
        InformedFlow(TRUTH, signal="price")
    with pytest.raises(ValueError, match="window_events"):
        InformedFlow(TRUTH, window_events=0)
    with pytest.raises(TypeError, match="InformedFlowParams"):
        InformedFlow(TRUTH.to_dict())
    with pytest.raises(ValueError, match="window_events"):
        informed_filter(TRUTH, flow_steps([_update(T0, _book(T0, 100.0))], HAWKES), window_events=0)
    assert INFORMED_PARAM_NAMES == tuple(TRUTH.to_dict())
