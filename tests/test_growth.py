"""Tests for neurograph.charrnn.growth (the Reserve rule) and neurograph.charrnn.selectors, on hand-made scores."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from neurograph.charrnn.growth import RTOL, Fixed, Plan, Reserve, build_rule
from neurograph.charrnn.scenario import (
    AgeWeightedSelector,
    FixedRule,
    MultipliersRule,
    OldestSelector,
    OutgoingL1Rule,
    Scenario,
    UniformSelector,
    YoungestSelector,
)
from neurograph.charrnn.selectors import AgeWeighted, Oldest, Uniform, Youngest, build_selector

T_D = 0.05
LOW, HIGH = 0.01, 0.2  # clearly below / above T_D
TRIALS = 4000
SIGMAS = 5.0


def rule(**kw) -> Reserve:
    args = dict(k=1, threshold=T_D, p_add=0.0, p_del=0.0, p_spontaneous=0.0, max_hidden=None, selector=Uniform())
    args.update(kw)
    return Reserve(**args)


def case(scores: list[float]):
    """ids (non-contiguous, as after deletions), scores and ages of hidden neurons."""
    n = len(scores)
    ids = np.arange(n, dtype=np.int64) * 3 + 10
    return ids, np.array(scores, dtype=np.float64), np.arange(n, dtype=np.int64) * 7 + 1


def assert_binomial(count: int, n: int, p: float) -> None:
    """``count`` successes of ``n`` Bernoulli(p) trials, within SIGMAS standard deviations."""
    sd = math.sqrt(n * p * (1 - p))
    assert abs(count - n * p) <= SIGMAS * max(sd, 0.5), f"{count} successes of {n}, expected {n * p:.1f} +- {sd:.1f}"


def run(r: Reserve, ids, scores, ages, trials: int = TRIALS, seed: int = 0) -> list[Plan]:
    rng = np.random.default_rng(seed)
    return [r.decide(ids, scores, ages, rng) for _ in range(trials)]


def chi2_sf_even(x: float, df: int) -> float:
    """Survival function of the chi-square distribution, even ``df`` (closed form)."""
    assert df % 2 == 0
    half = x / 2
    return math.exp(-half) * sum(half**i / math.factorial(i) for i in range(df // 2))


def chi2_p(counts: np.ndarray, probs: np.ndarray) -> float:
    expected = counts.sum() * probs
    stat = float(((counts - expected) ** 2 / expected).sum())
    return chi2_sf_even(stat, len(counts) - 1)


# ------------------------------------------------------------------ deletions
@pytest.mark.parametrize("k, p_del", [(1, 0.25), (2, 0.05), (0, 0.5)])
def test_excess_below_threshold_deleted_at_rate_p_del(k, p_del):
    ids, scores, ages = case([LOW, HIGH, LOW, LOW, HIGH, LOW, LOW, HIGH])
    below = set(ids[scores < T_D].tolist())
    excess = len(below) - k
    plans = run(rule(k=k, p_del=p_del, p_add=1.0), ids, scores, ages)
    per_neuron = dict.fromkeys(below, 0)
    for plan in plans:
        assert plan.add == 0
        assert set(plan.delete) <= below
        assert len(set(plan.delete)) == len(plan.delete) <= excess
        for i in plan.delete:
            per_neuron[i] += 1
    assert_binomial(sum(per_neuron.values()), excess * TRIALS, p_del)
    # uniform selector: each sub-threshold neuron is at risk with probability excess / below
    for count in per_neuron.values():
        assert_binomial(count, TRIALS, p_del * excess / len(below))


def test_deletion_reason_names_the_count():
    ids, scores, ages = case([LOW, LOW, LOW])
    plan = rule(k=1, p_del=1.0).decide(ids, scores, ages, np.random.default_rng(0))
    assert len(plan.delete) == 2
    assert plan.reasons["delete"] == "3 below threshold > k=1"


@pytest.mark.parametrize("n", [1, 2, 5])
def test_never_deletes_the_last_hidden_neuron(n):
    ids, scores, ages = case([LOW] * n)
    for plan in run(rule(k=0, p_del=1.0), ids, scores, ages, trials=50):
        assert len(plan.delete) == n - 1
        assert set(plan.delete) <= set(ids.tolist())


def test_only_sub_threshold_neurons_are_deleted_even_at_p_del_one():
    ids, scores, ages = case([HIGH, LOW, HIGH, LOW, LOW])
    for plan in run(rule(k=1, p_del=1.0), ids, scores, ages, trials=200):
        assert len(plan.delete) == 2
        assert set(plan.delete) <= {13, 19, 22}


# ------------------------------------------------------------------ additions
@pytest.mark.parametrize("k, n_below, p_add", [(1, 0, 0.05), (3, 1, 0.3), (2, 0, 0.7)])
def test_too_few_below_adds_at_rate_p_add(k, n_below, p_add):
    ids, scores, ages = case([LOW] * n_below + [HIGH] * 4)
    plans = run(rule(k=k, p_add=p_add, p_del=1.0), ids, scores, ages)
    assert all(not p.delete and p.add in (0, 1) for p in plans)
    assert_binomial(sum(p.add for p in plans), TRIALS, p_add)
    assert all(p.reasons["add"] == f"{n_below} below threshold < k={k}" for p in plans if p.add)


def test_too_few_below_with_spontaneous_adds_at_most_one():
    ids, scores, ages = case([HIGH] * 3)
    p_add, p_sp = 0.2, 0.3
    plans = run(rule(k=1, p_add=p_add, p_spontaneous=p_sp), ids, scores, ages)
    assert max(p.add for p in plans) == 1
    assert_binomial(sum(p.add for p in plans), TRIALS, p_add + (1 - p_add) * p_sp)


@pytest.mark.parametrize("k", [0, 1, 3])
def test_exactly_k_below_changes_nothing_but_spontaneous_additions(k):
    ids, scores, ages = case([LOW] * k + [HIGH] * 3)
    quiet = run(rule(k=k, p_add=1.0, p_del=1.0), ids, scores, ages, trials=300)
    assert not any(quiet)
    plans = run(rule(k=k, p_add=1.0, p_del=1.0, p_spontaneous=0.02), ids, scores, ages)
    assert all(not p.delete for p in plans)
    assert all(p.reasons["add"] == "spontaneous" for p in plans if p.add)
    assert_binomial(sum(p.add for p in plans), TRIALS, 0.02)


def test_spontaneous_addition_may_accompany_deletions():
    ids, scores, ages = case([LOW, LOW, LOW, HIGH])
    plan = rule(k=1, p_del=1.0, p_spontaneous=1.0).decide(ids, scores, ages, np.random.default_rng(0))
    assert len(plan.delete) == 2 and plan.add == 1


# ------------------------------------------------------------------ max_hidden
def test_max_hidden_blocks_additions_at_the_cap():
    ids, scores, ages = case([HIGH] * 4)
    at_cap = run(rule(k=1, p_add=1.0, p_spontaneous=1.0, max_hidden=4), ids, scores, ages, trials=100)
    assert not any(at_cap)
    below_cap = run(rule(k=1, p_add=1.0, max_hidden=5), ids, scores, ages, trials=100)
    assert all(p.add == 1 for p in below_cap)


def test_max_hidden_counts_deletions_of_the_same_cycle():
    ids, scores, ages = case([LOW, LOW, HIGH])
    plan = rule(k=1, p_del=1.0, p_spontaneous=1.0, max_hidden=3).decide(ids, scores, ages, np.random.default_rng(1))
    assert len(plan.delete) == 1 and plan.add == 1  # 3 - 1 = 2 < 3: room for one
    ids, scores, ages = case([LOW, HIGH, HIGH])
    plan = rule(k=1, p_del=1.0, p_spontaneous=1.0, max_hidden=3).decide(ids, scores, ages, np.random.default_rng(1))
    assert not plan


# ------------------------------------------------------------------ threshold
@pytest.mark.parametrize(
    "factor, below",
    [(1.0, True), (1 + 1e-9, True), (1 + RTOL / 2, True), (1 - 1e-9, True), (1 + 10 * RTOL, False), (1.01, False)],
)
def test_scores_within_rtol_of_threshold_count_as_below(factor, below):
    score = T_D * factor
    assert bool(Fixed(T_D).below(np.array([score]))[0]) is below
    ids, scores, ages = case([LOW, score])
    plan = rule(k=1, p_del=1.0).decide(ids, scores, ages, np.random.default_rng(0))
    assert len(plan.delete) == (1 if below else 0)


def test_fixed_rule_never_plans_anything():
    ids, scores, ages = case([LOW] * 5)
    rng = np.random.default_rng(0)
    assert not any(Fixed(T_D).decide(ids, scores, ages, rng) for _ in range(100))
    assert not Plan() and Plan(add=1) and Plan(delete=[3])


# ------------------------------------------------------------------ selectors
CANDIDATES = np.array([4, 9, 11, 17, 30], dtype=np.int64)
AGES = np.array([0, 2, 5, 10, 40], dtype=np.int64)  # age 0 is floored at 1


def test_uniform_picks_each_candidate_equally_often():
    rng = np.random.default_rng(123)
    firsts = [int(Uniform().pick(CANDIDATES, AGES, 1, rng)[0]) for _ in range(10000)]
    counts = np.array([firsts.count(int(c)) for c in CANDIDATES], dtype=np.float64)
    assert chi2_p(counts, np.full(5, 0.2)) > 1e-6
    skewed = np.array([0.3, 0.175, 0.175, 0.175, 0.175])
    assert chi2_p(counts, skewed) < 1e-6  # the check has power


def test_uniform_picks_distinct_candidates():
    rng = np.random.default_rng(5)
    for n in range(1, 6):
        picked = Uniform().pick(CANDIDATES, AGES, n, rng)
        assert len(picked) == n and len(set(picked.tolist())) == n and set(picked.tolist()) <= set(CANDIDATES.tolist())


def test_oldest_and_youngest_are_deterministic_with_ties_broken_by_id():
    candidates = np.array([5, 2, 9, 7, 3], dtype=np.int64)
    ages = np.array([10, 30, 30, 1, 1], dtype=np.int64)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        assert Oldest().pick(candidates, ages, 2, rng).tolist() == [2, 9]
        assert Oldest().pick(candidates, ages, 5, rng).tolist() == [2, 9, 5, 3, 7]
        assert Youngest().pick(candidates, ages, 2, rng).tolist() == [3, 7]
        assert Youngest().pick(candidates, ages, 5, rng).tolist() == [3, 7, 5, 2, 9]


@pytest.mark.parametrize("alpha", [1.0, 0.0, -1.0])
def test_age_weighted_first_pick_follows_age_power_alpha(alpha):
    selector = AgeWeighted(alpha)
    expected = np.maximum(AGES, 1).astype(np.float64) ** alpha
    expected /= expected.sum()
    np.testing.assert_allclose(selector.weights(AGES), expected, rtol=1e-12)
    rng = np.random.default_rng(2024)
    firsts = [int(selector.pick(CANDIDATES, AGES, 2, rng)[0]) for _ in range(10000)]
    counts = np.array([firsts.count(int(c)) for c in CANDIDATES], dtype=np.float64)
    assert chi2_p(counts, expected) > 1e-6
    other = np.maximum(AGES, 1).astype(np.float64) ** (alpha - 1.0)
    assert chi2_p(counts, other / other.sum()) < 1e-6  # the check tells alphas apart


def test_age_weighted_picks_distinct_and_survives_newborns():
    rng = np.random.default_rng(0)
    picked = AgeWeighted(-1.0).pick(CANDIDATES, np.zeros(5, dtype=np.int64), 5, rng)
    assert sorted(picked.tolist()) == sorted(CANDIDATES.tolist())


def test_reserve_uses_its_selector():
    ids, scores, ages = case([LOW] * 5)  # ages 1, 8, 15, 22, 29
    plan = rule(k=2, p_del=1.0, selector=Oldest()).decide(ids, scores, ages, np.random.default_rng(0))
    assert sorted(plan.delete) == ids[-3:].tolist()
    plan = rule(k=2, p_del=1.0, selector=Youngest()).decide(ids, scores, ages, np.random.default_rng(0))
    assert sorted(plan.delete) == ids[:3].tolist()


# ------------------------------------------------------------------ builders
@pytest.mark.parametrize(
    "config, cls",
    [
        (UniformSelector(), Uniform),
        (OldestSelector(), Oldest),
        (YoungestSelector(), Youngest),
        (AgeWeightedSelector(alpha=-0.5), AgeWeighted),
    ],
)
def test_build_selector_from_config(config, cls):
    selector = build_selector(config)
    assert type(selector) is cls
    if cls is AgeWeighted:
        assert selector.alpha == -0.5


def test_build_selector_rejects_unknown_kind():
    with pytest.raises(ValueError, match="bogus"):
        build_selector(SimpleNamespace(kind="bogus"))


def test_build_rule_multipliers_defaults_are_the_papers():
    r = build_rule(MultipliersRule())
    assert isinstance(r, Reserve)
    assert (r.k, r.threshold, r.p_add, r.p_del, r.p_spontaneous, r.max_hidden) == (1, 0.05, 0.05, 0.25, 0.0, None)
    assert isinstance(r.selector, Uniform)


def test_build_rule_outgoing_l1_carries_every_field():
    config = OutgoingL1Rule(
        k=2, threshold=0.1, p_add=0.3, p_del=0.4, p_spontaneous=1e-4, max_hidden=100,
        selector=AgeWeightedSelector(alpha=2.0),
    )  # fmt: skip
    r = build_rule(config)
    assert (r.k, r.threshold, r.p_add, r.p_del, r.p_spontaneous, r.max_hidden) == (2, 0.1, 0.3, 0.4, 1e-4, 100)
    assert isinstance(r.selector, AgeWeighted) and r.selector.alpha == 2.0


def test_build_rule_fixed():
    r = build_rule(FixedRule(hidden=3, threshold=0.07))
    assert type(r) is Fixed and r.threshold == 0.07


def test_build_rule_from_scenario_dict():
    scenario = Scenario.model_validate(
        {
            "name": "t",
            "structure": {"kind": "outgoing_l1", "k": 3, "selector": {"kind": "youngest"}},
            "optimizer": {"kind": "rmsprop"},
            "phases": [{"task": {"kind": "easy"}, "cycles": 10}],
        }
    )
    r = build_rule(scenario.structure)
    assert r.k == 3 and (r.p_add, r.p_del) == (0.01, 0.05) and isinstance(r.selector, Youngest)
