"""AdaHedge over candidate spread adjustments: convergence to the best one and its regret bound."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmlab.evaluator.weights import AdaHedge


def _stream(rng: np.random.Generator, rounds: int, means: np.ndarray, noise: float) -> np.ndarray:
    """Gains per round and candidate: a fixed mean per candidate plus common and own noise."""
    common = rng.normal(0.0, noise, size=(rounds, 1))
    own = rng.normal(0.0, noise, size=(rounds, means.size))
    return means[None, :] + common + own


def test_weights_concentrate_on_the_consistently_best_candidate():
    rng = np.random.default_rng(11)
    candidates = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0])
    # the +1.5 bps candidate earns most on average (a concave PnL in the adjustment)
    means = -2.0 * (candidates - 1.5) ** 2
    gains = _stream(rng, 3000, means, noise=3.0)
    hedge = AdaHedge(candidates.size)
    adjustments = []
    for g in gains:
        weights = hedge.update(-g)
        adjustments.append(float(weights @ candidates))
    assert hedge.weights.argmax() == 5
    assert hedge.weights[5] > 0.9
    assert abs(adjustments[-1] - 1.5) < 0.1
    # and it got there: the last 500 rounds stay near the best candidate
    assert max(abs(a - 1.5) for a in adjustments[-500:]) < 0.25


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_regret_against_the_best_fixed_candidate_is_within_the_adahedge_bound(seed):
    rng = np.random.default_rng(seed)
    n = 9
    # a hard stream: candidates close together, heavy-tailed gains, the leader changes
    means = rng.normal(0.0, 0.05, n)
    gains = means[None, :] + rng.standard_t(3, size=(2000, n)) * 2.0
    gains[:700, 0] += 0.3  # candidate 0 leads early, then falls back
    hedge = AdaHedge(n)
    for g in gains:
        hedge.update(-g)
    losses = -gains
    best = losses.sum(axis=0).min()
    assert math.isclose(hedge.regret, hedge.hedge_loss - best)
    # Lemma: R ≤ 2Δ; Theorem: 2Δ ≤ 2√(V ln N) + S(4/3 ln N + 2); and V ≤ T S²/4
    assert hedge.regret <= 2.0 * hedge.mixability_gap + 1e-9
    assert 2.0 * hedge.mixability_gap <= hedge.regret_bound() + 1e-9
    assert hedge.variance <= len(gains) * hedge.loss_range**2 / 4.0
    # the bound is not vacuous: it is far below the worst case T S
    assert hedge.regret_bound() < 0.2 * len(gains) * hedge.loss_range


def test_weights_are_invariant_to_the_scale_of_the_gains():
    rng = np.random.default_rng(5)
    gains = rng.normal(0.0, 1.0, size=(200, 4)) + np.array([0.0, 0.1, 0.2, 0.0])
    small, large = AdaHedge(4), AdaHedge(4)
    for g in gains:
        small.update(-g)
        large.update(-1000.0 * g)
    np.testing.assert_allclose(small.weights, large.weights, rtol=1e-9)


def test_follows_the_leader_until_experts_disagree_and_rejects_bad_losses():
    hedge = AdaHedge(3)
    np.testing.assert_allclose(hedge.weights, [1 / 3, 1 / 3, 1 / 3])
    hedge.update(np.zeros(3))
    assert math.isinf(hedge.learning_rate)
    hedge.update(np.array([1.0, 0.0, 1.0]))
    assert hedge.learning_rate < math.inf
    assert hedge.weights.argmax() == 1
    with pytest.raises(ValueError, match="shape"):
        hedge.update(np.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        hedge.update(np.array([0.0, math.nan, 0.0]))
