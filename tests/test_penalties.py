"""Tests for neurograph.charrnn.penalties: scores against the graph, L1 placements, new-neuron scaling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurograph.charrnn.network import add_hidden, build_char_rnn
from neurograph.compile import compile_graph
from neurograph.graph import Graph
from neurograph.charrnn.penalties import MultiplierPenalty, NoPenalty, OutgoingL1Penalty, build_penalty
from neurograph.scenario import FixedRule, MultipliersRule, OutgoingL1Rule

torch.set_num_threads(1)

F64 = torch.float64
T_D = 0.05


def sparse_char_graph(seed: int, hidden: int = 5) -> Graph:
    """Char-RNN with larger weights, some connections removed and varied multipliers."""
    rng = np.random.default_rng(seed)
    g = build_char_rnn("ab()", hidden, rng=rng, std=0.3)
    for j in g.ids("hidden"):
        g.neurons[j].multiplier = float(rng.uniform(0.0, 1.0))
        for target in list(g.outgoing(j)):
            if rng.random() < 0.3:
                g.disconnect(j, target)
    return g


def naive_score(g: Graph, j: int, norm: str) -> float:
    """Outgoing norm of hidden neuron ``j`` from ``graph.outgoing``, one connection at a time."""
    out = sum(abs(w) for t, w in g.outgoing(j).items() if g.neurons[t].role == "output")
    rec = sum(abs(w) for t, w in g.outgoing(j).items() if g.neurons[t].role == "hidden")
    if norm == "text":
        return out + rec
    return 0.5 * (out + 4 * rec / len(g.ids("hidden")))


@pytest.fixture(params=[0, 1, 2])
def graph(request) -> Graph:
    return sparse_char_graph(request.param)


@pytest.fixture(params=["text", "original"])
def norm(request) -> str:
    return request.param


# ------------------------------------------------------------------ scores
def test_outgoing_l1_scores_equal_formula_from_graph(graph, norm):
    c = compile_graph(graph, dtype=F64)
    scores = OutgoingL1Penalty(1e-4, "after_update", norm).scores(c)
    expected = [naive_score(graph, j, norm) for j in c.hidden_ids]
    torch.testing.assert_close(scores, torch.tensor(expected, dtype=F64), rtol=1e-12, atol=1e-15)


def test_outgoing_l1_scores_ignore_incoming_weights(norm):
    g = sparse_char_graph(4)
    c = compile_graph(g, dtype=F64)
    penalty = OutgoingL1Penalty(1e-4, "after_update", norm)
    before = penalty.scores(c).clone()
    c.weight[c.hidden, c.inputs] *= 10.0
    torch.testing.assert_close(penalty.scores(c), before)
    c.weight[c.outputs, c.hidden] *= 2.0
    assert (penalty.scores(c) > before).all()


def test_multiplier_scores_are_hidden_multipliers(graph):
    c = compile_graph(graph, dtype=F64)
    scores = MultiplierPenalty(3e-5, "gradient_per_step", 0.025).scores(c)
    expected = [graph.neurons[j].multiplier for j in c.hidden_ids]
    torch.testing.assert_close(scores, torch.tensor(expected, dtype=F64))


def test_no_penalty_never_scores_below_anything(graph):
    c = compile_graph(graph)
    scores = NoPenalty().scores(c)
    assert scores.shape == (c.n_hidden,) and torch.isinf(scores).all()


# ------------------------------------------------------------------ new neurons
@pytest.mark.parametrize("fraction", [0.5, 1.0])
def test_start_new_outgoing_l1_puts_new_neuron_at_fraction_of_threshold(graph, norm, fraction):
    rng = np.random.default_rng(9)
    new = add_hidden(graph, rng=rng, std=0.01)
    penalty = OutgoingL1Penalty(1e-4, "after_update", norm)
    incoming_before = {s: w for s, w in graph.incoming(new).items() if s != new}
    others_before = {j: graph.outgoing(j) for j in graph.ids("hidden") if j != new}
    penalty.start_new(graph, new, T_D, fraction)
    c = compile_graph(graph, dtype=F64)
    score = penalty.scores(c)[c.hidden_ids.index(new)].item()
    assert score == pytest.approx(fraction * T_D, rel=1e-12)
    assert naive_score(graph, new, norm) == pytest.approx(fraction * T_D, rel=1e-12)
    # only the new neuron's outgoing weights were rescaled
    assert {s: w for s, w in graph.incoming(new).items() if s != new} == incoming_before
    for j, outgoing in others_before.items():
        assert {t: w for t, w in graph.outgoing(j).items() if t != new} == {
            t: w for t, w in outgoing.items() if t != new
        }
    # float32 compile: within rounding, still "at threshold" for the rule's RTOL
    c32 = compile_graph(graph)
    assert penalty.scores(c32)[c32.hidden_ids.index(new)].item() == pytest.approx(fraction * T_D, rel=1e-6)


def test_start_new_original_norm_splits_readout_and_recurrent_halves():
    g = sparse_char_graph(5)
    new = add_hidden(g, rng=np.random.default_rng(0), std=0.01)
    OutgoingL1Penalty(1e-4, "after_update", "original").start_new(g, new, T_D, 0.5)
    out = sum(abs(w) for t, w in g.outgoing(new).items() if g.neurons[t].role == "output")
    rec = sum(abs(w) for t, w in g.outgoing(new).items() if g.neurons[t].role == "hidden")
    assert 0.5 * out == pytest.approx(0.25 * T_D, rel=1e-12)
    assert 2 * rec / len(g.ids("hidden")) == pytest.approx(0.25 * T_D, rel=1e-12)


@pytest.mark.parametrize("fraction", [0.5, 1.0])
def test_start_new_multiplier_sets_multiplier(fraction):
    g = sparse_char_graph(6)
    new = add_hidden(g, rng=np.random.default_rng(1), std=0.01)
    penalty = MultiplierPenalty(3e-5, "gradient_per_step", 0.025)
    penalty.start_new(g, new, T_D, fraction)
    c = compile_graph(g, dtype=F64)
    assert penalty.scores(c)[c.hidden_ids.index(new)].item() == fraction * T_D


# ------------------------------------------------------------------ placements
def _blocks_of(c, tensor):
    return {
        "out": tensor[c.outputs, c.hidden].clone(),
        "rec": tensor[c.hidden, c.hidden].clone(),
        "in": tensor[c.hidden, c.inputs].clone(),
    }


def test_after_update_subtracts_l1_sign_from_outgoing_weights(graph, norm):
    c = compile_graph(graph, dtype=F64)
    l1 = 1e-3
    before = _blocks_of(c, c.weight)
    bias_before = c.bias.clone()
    penalty = OutgoingL1Penalty(l1, "after_update", norm)
    grads = {"weight": torch.zeros_like(c.weight), "bias": torch.zeros_like(c.bias)}
    penalty.add_gradient(c, grads, 40)
    assert (grads["weight"] == 0).all()  # not a gradient placement
    penalty.after_update(c)
    after = _blocks_of(c, c.weight)
    for part in ("out", "rec"):
        torch.testing.assert_close(after[part], before[part] - l1 * torch.sign(before[part]))
        assert (after[part][before[part] == 0] == 0).all()  # absent connections stay absent
    torch.testing.assert_close(after["in"], before["in"])
    torch.testing.assert_close(c.bias, bias_before)


@pytest.mark.parametrize("placement, factor", [("gradient", 1), ("gradient_per_step", 40)])
def test_gradient_placements_add_l1_sign_to_outgoing_gradients(graph, norm, placement, factor):
    c = compile_graph(graph, dtype=F64)
    l1 = 1e-3
    weight_before = c.weight.clone()
    g0 = torch.as_tensor(np.random.default_rng(0).normal(size=c.weight.shape), dtype=F64)
    grads = {"weight": g0.clone(), "bias": torch.zeros_like(c.bias)}
    penalty = OutgoingL1Penalty(l1, placement, norm)
    penalty.add_gradient(c, grads, 40)
    expected = g0.clone()
    expected[c.outputs, c.hidden] += factor * l1 * torch.sign(c.weight[c.outputs, c.hidden])
    expected[c.hidden, c.hidden] += factor * l1 * torch.sign(c.weight[c.hidden, c.hidden])
    torch.testing.assert_close(grads["weight"], expected, rtol=0, atol=1e-15)
    assert not torch.equal(grads["weight"], g0)
    penalty.after_update(c)  # no post-update step for gradient placements
    assert torch.equal(c.weight, weight_before)


@pytest.mark.parametrize("placement, factor", [("gradient", 1), ("gradient_per_step", 40)])
def test_multiplier_gradient_placements(placement, factor):
    g = sparse_char_graph(7)
    c = compile_graph(g, dtype=F64)
    l1 = 3e-5
    g0 = torch.as_tensor(np.random.default_rng(1).normal(size=c.n), dtype=F64)
    grads = {"weight": torch.zeros_like(c.weight), "bias": torch.zeros_like(c.bias), "multiplier": g0.clone()}
    MultiplierPenalty(l1, placement, 0.0).add_gradient(c, grads, 40)
    expected = g0.clone()
    expected[c.hidden] += factor * l1 * torch.sign(c.multiplier[c.hidden])
    torch.testing.assert_close(grads["multiplier"], expected, rtol=0, atol=1e-15)
    assert (grads["weight"] == 0).all()


def test_multiplier_after_update_subtracts_then_clamps_at_m_min():
    g = sparse_char_graph(8, hidden=5)
    c = compile_graph(g, dtype=F64)
    c.multiplier[c.hidden] = torch.tensor([0.5, 0.026, 0.01, -0.3, 0.0251], dtype=F64)
    c.multiplier[c.outputs] = 0.001  # not hidden: never clamped
    l1, m_min = 1e-3, 0.025
    MultiplierPenalty(l1, "after_update", m_min).after_update(c)
    expected = torch.tensor([0.499, 0.025, 0.025, 0.025, 0.025], dtype=F64)
    torch.testing.assert_close(c.multiplier[c.hidden], expected)
    assert (c.multiplier[c.outputs] == 0.001).all()


@pytest.mark.parametrize("placement", ["gradient", "gradient_per_step"])
def test_multiplier_clamp_applies_with_gradient_placements(placement):
    g = sparse_char_graph(9, hidden=3)
    c = compile_graph(g, dtype=F64)
    c.multiplier[c.hidden] = torch.tensor([0.5, 0.02, -1.0], dtype=F64)
    MultiplierPenalty(3e-5, placement, 0.025).after_update(c)
    torch.testing.assert_close(c.multiplier[c.hidden], torch.tensor([0.5, 0.025, 0.025], dtype=F64))


def test_zero_l1_leaves_everything_alone(norm):
    c = compile_graph(sparse_char_graph(10), dtype=F64)
    weight = c.weight.clone()
    grads = {"weight": torch.ones_like(c.weight), "bias": torch.ones_like(c.bias)}
    for placement in ("gradient", "gradient_per_step", "after_update"):
        penalty = OutgoingL1Penalty(0.0, placement, norm)
        penalty.add_gradient(c, grads, 40)
        penalty.after_update(c)
    assert torch.equal(c.weight, weight) and (grads["weight"] == 1).all()


# ------------------------------------------------------------------ builder
def test_build_penalty_from_configs():
    p = build_penalty(MultipliersRule())
    assert isinstance(p, MultiplierPenalty)
    assert (p.l1, p.placement, p.m_min) == (3e-5, "gradient_per_step", 0.025)
    assert "multiplier" in p.trainable
    q = build_penalty(OutgoingL1Rule(norm="text", l1=2e-4))
    assert isinstance(q, OutgoingL1Penalty) and (q.l1, q.placement, q.norm) == (2e-4, "after_update", "text")
    assert "multiplier" not in q.trainable
    assert type(build_penalty(FixedRule(hidden=3, penalty="none"))) is NoPenalty
    f = build_penalty(FixedRule(hidden=3, penalty="multipliers", m_min=0.01, l1_placement="gradient"))
    assert isinstance(f, MultiplierPenalty) and (f.m_min, f.placement) == (0.01, "gradient")
    o = build_penalty(FixedRule(hidden=3))
    assert isinstance(o, OutgoingL1Penalty) and o.norm == "original"
