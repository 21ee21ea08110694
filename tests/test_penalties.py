"""Tests for neurograph.charrnn.penalties (and the compiled update that fuses them
with the optimizer): scores against the graph, L1 placements, new-neuron scaling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurograph.charrnn.network import add_hidden, build_char_rnn
from neurograph.charrnn.padded import PaddedNets
from neurograph.charrnn.penalties import BatchedPenalty, MultiplierPenalty, NoPenalty, OutgoingL1Penalty, build_penalty
from neurograph.charrnn.scenario import FixedRule, MultipliersRule, OutgoingL1Rule
from neurograph.graph import Graph
from neurograph.kernels.charrnn_update import update_batch
from neurograph.optim import Adagrad, Adam, RMSProp

torch.set_num_threads(1)

F64 = torch.float64
T_D = 0.05
V = 4  # "ab()"


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


class Batch:
    """Graphs in padded batch tensors (hidden by id in slots 0..H-1, padded to ``capacity``)."""

    def __init__(self, graphs: list[Graph], penalties, *, dtype=F64, capacity: int | None = None, optimizer=None):
        self.graphs = graphs
        hidden = [g.ids("hidden") for g in graphs]
        self.optimizer = optimizer or Adagrad(lr=0.1)
        cap = capacity or max(len(h) for h in hidden)
        self.nets = PaddedNets(len(graphs), V, cap, dtype=dtype, device=torch.device("cpu"), optimizer=self.optimizer)
        for b, (g, h) in enumerate(zip(graphs, hidden)):
            ids = g.ids("input") + g.ids("output") + h
            self.nets.load(b, g, ids, list(range(2 * V + len(h))))
        self.penalty = BatchedPenalty(penalties, window=40, n_chars=V, dtype=dtype, device=torch.device("cpu"))
        self.penalty.n_hidden.copy_(torch.tensor([float(len(h)) for h in hidden]))
        self.hidden = hidden

    def params(self) -> dict:
        return self.nets.params

    def scores(self, b: int = 0) -> torch.Tensor:
        """(H,) member b's scores, hidden by id."""
        s = self.penalty.scores(self.nets.weight, self.nets.multiplier)
        return s[b, : len(self.hidden[b])]

    def block(self, tensor: torch.Tensor, part: str, b: int = 0) -> torch.Tensor:
        h = slice(2 * V, 2 * V + len(self.hidden[b]))
        rows = {"out": slice(V, 2 * V), "rec": h, "in": h}[part]
        cols = slice(0, V) if part == "in" else h
        return tensor[b, rows, cols].clone()


@pytest.fixture(params=[0, 1, 2])
def graph(request) -> Graph:
    return sparse_char_graph(request.param)


@pytest.fixture(params=["text", "original"])
def norm(request) -> str:
    return request.param


# ------------------------------------------------------------------ scores
def test_outgoing_l1_scores_equal_formula_from_graph(graph, norm):
    batch = Batch([graph], [OutgoingL1Penalty(1e-4, "after_update", norm)], capacity=9)
    expected = [naive_score(graph, j, norm) for j in graph.ids("hidden")]
    torch.testing.assert_close(batch.scores(), torch.tensor(expected, dtype=F64), rtol=1e-12, atol=1e-15)


def test_members_score_with_their_own_norm_and_size():
    graphs = [sparse_char_graph(3, hidden=2), sparse_char_graph(4, hidden=6)]
    penalties = [OutgoingL1Penalty(1e-4, "after_update", "text"), OutgoingL1Penalty(1e-4, "after_update", "original")]
    batch = Batch(graphs, penalties)
    for b, (g, norm) in enumerate(zip(graphs, ["text", "original"])):
        expected = [naive_score(g, j, norm) for j in g.ids("hidden")]
        torch.testing.assert_close(batch.scores(b), torch.tensor(expected, dtype=F64), rtol=1e-12, atol=1e-15)


def test_outgoing_l1_scores_ignore_incoming_weights(norm):
    batch = Batch([sparse_char_graph(4)], [OutgoingL1Penalty(1e-4, "after_update", norm)])
    before = batch.scores().clone()
    w, h = batch.nets.weight, slice(2 * V, None)
    w[0, h, :V] *= 10.0
    torch.testing.assert_close(batch.scores(), before)
    w[0, V : 2 * V, h] *= 2.0
    assert (batch.scores() > before).all()


def test_multiplier_scores_are_hidden_multipliers(graph):
    batch = Batch([graph], [MultiplierPenalty(3e-5, "gradient_per_step", 0.025)])
    expected = [graph.neurons[j].multiplier for j in graph.ids("hidden")]
    torch.testing.assert_close(batch.scores(), torch.tensor(expected, dtype=F64))


def test_no_penalty_never_scores_below_anything(graph):
    batch = Batch([graph], [NoPenalty()])
    assert torch.isinf(batch.scores()).all()


def test_a_batch_shares_one_penalty_kind():
    with pytest.raises(ValueError, match="share one penalty kind"):
        Batch([sparse_char_graph(0), sparse_char_graph(1)], [NoPenalty(), MultiplierPenalty(1e-4, "gradient", 0.0)])


# ------------------------------------------------------------------ new neurons
@pytest.mark.parametrize("fraction", [0.5, 1.0])
def test_start_new_outgoing_l1_puts_new_neuron_at_fraction_of_threshold(graph, norm, fraction):
    rng = np.random.default_rng(9)
    new = add_hidden(graph, rng=rng, std=0.01)
    penalty = OutgoingL1Penalty(1e-4, "after_update", norm)
    incoming_before = {s: w for s, w in graph.incoming(new).items() if s != new}
    others_before = {j: graph.outgoing(j) for j in graph.ids("hidden") if j != new}
    penalty.start_new(graph, new, T_D, fraction)
    assert Batch([graph], [penalty]).scores()[-1].item() == pytest.approx(fraction * T_D, rel=1e-12)
    assert naive_score(graph, new, norm) == pytest.approx(fraction * T_D, rel=1e-12)
    # only the new neuron's outgoing weights were rescaled
    assert {s: w for s, w in graph.incoming(new).items() if s != new} == incoming_before
    for j, outgoing in others_before.items():
        assert {t: w for t, w in graph.outgoing(j).items() if t != new} == {
            t: w for t, w in outgoing.items() if t != new
        }
    # float32: within rounding, still "at threshold" for the rule's RTOL
    score32 = Batch([graph], [penalty], dtype=torch.float32).scores()[-1].item()
    assert score32 == pytest.approx(fraction * T_D, rel=1e-6)


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
    assert Batch([g], [penalty]).scores()[-1].item() == fraction * T_D


# ------------------------------------------------------------------ placements
def test_after_update_subtracts_l1_sign_from_outgoing_weights(graph, norm):
    l1 = 1e-3
    batch = Batch([graph], [OutgoingL1Penalty(l1, "after_update", norm)])
    w = batch.nets.weight
    before = {part: batch.block(w, part) for part in ("out", "rec", "in")}
    bias_before = batch.nets.bias.clone()
    grads = {"weight": torch.zeros_like(w), "bias": torch.zeros_like(batch.nets.bias)}
    batch.penalty.add_gradient(batch.params(), grads)
    assert (grads["weight"] == 0).all()  # not a gradient placement
    batch.penalty.after_update(batch.params(), batch.nets.alive)
    for part in ("out", "rec"):
        after = batch.block(w, part)
        torch.testing.assert_close(after, before[part] - l1 * torch.sign(before[part]))
        assert (after[before[part] == 0] == 0).all()  # absent connections stay absent
    torch.testing.assert_close(batch.block(w, "in"), before["in"])
    torch.testing.assert_close(batch.nets.bias, bias_before)


@pytest.mark.parametrize("placement, factor", [("gradient", 1), ("gradient_per_step", 40)])
def test_gradient_placements_add_l1_sign_to_outgoing_gradients(graph, norm, placement, factor):
    l1 = 1e-3
    batch = Batch([graph], [OutgoingL1Penalty(l1, placement, norm)])
    w = batch.nets.weight
    weight_before = w.clone()
    g0 = torch.as_tensor(np.random.default_rng(0).normal(size=w.shape), dtype=F64)
    grads = {"weight": g0.clone(), "bias": torch.zeros_like(batch.nets.bias)}
    batch.penalty.add_gradient(batch.params(), grads)
    expected = g0.clone()
    expected[:, V:, 2 * V :] += factor * l1 * torch.sign(w[:, V:, 2 * V :])  # readout and recurrent columns
    torch.testing.assert_close(grads["weight"], expected, rtol=0, atol=1e-15)
    assert not torch.equal(grads["weight"], g0)
    batch.penalty.after_update(batch.params(), batch.nets.alive)  # no post-update step for gradient placements
    assert torch.equal(w, weight_before)


@pytest.mark.parametrize("placement, factor", [("gradient", 1), ("gradient_per_step", 40)])
def test_multiplier_gradient_placements(placement, factor):
    batch = Batch([sparse_char_graph(7)], [MultiplierPenalty(3e-5, placement, 0.0)])
    m = batch.nets.multiplier
    g0 = torch.as_tensor(np.random.default_rng(1).normal(size=m.shape), dtype=F64)
    grads = {"weight": torch.zeros_like(batch.nets.weight), "bias": torch.zeros_like(m), "multiplier": g0.clone()}
    batch.penalty.add_gradient(batch.params(), grads)
    expected = g0.clone()
    expected[:, 2 * V :] += factor * 3e-5 * torch.sign(m[:, 2 * V :])
    torch.testing.assert_close(grads["multiplier"], expected, rtol=0, atol=1e-15)
    assert (grads["weight"] == 0).all()


def test_multiplier_after_update_subtracts_then_clamps_at_m_min():
    l1, m_min = 1e-3, 0.025
    batch = Batch([sparse_char_graph(8, hidden=5)], [MultiplierPenalty(l1, "after_update", m_min)], capacity=7)
    m = batch.nets.multiplier
    m[0, 2 * V : 2 * V + 5] = torch.tensor([0.5, 0.026, 0.01, -0.3, 0.0251], dtype=F64)
    m[0, V : 2 * V] = 0.001  # not hidden: never clamped
    batch.penalty.after_update(batch.params(), batch.nets.alive)
    expected = torch.tensor([0.499, 0.025, 0.025, 0.025, 0.025], dtype=F64)
    torch.testing.assert_close(m[0, 2 * V : 2 * V + 5], expected)
    assert (m[0, V : 2 * V] == 0.001).all()
    assert (m[0, 2 * V + 5 :] == 0).all()  # padding slots stay empty


@pytest.mark.parametrize("placement", ["gradient", "gradient_per_step"])
def test_multiplier_clamp_applies_with_gradient_placements(placement):
    batch = Batch([sparse_char_graph(9, hidden=3)], [MultiplierPenalty(3e-5, placement, 0.025)])
    m = batch.nets.multiplier
    m[0, 2 * V :] = torch.tensor([0.5, 0.02, -1.0], dtype=F64)
    batch.penalty.after_update(batch.params(), batch.nets.alive)
    torch.testing.assert_close(m[0, 2 * V :], torch.tensor([0.5, 0.025, 0.025], dtype=F64))


def test_zero_l1_leaves_everything_alone(norm):
    for placement in ("gradient", "gradient_per_step", "after_update"):
        batch = Batch([sparse_char_graph(10)], [OutgoingL1Penalty(0.0, placement, norm)])
        weight = batch.nets.weight.clone()
        grads = {"weight": torch.ones_like(weight), "bias": torch.ones_like(batch.nets.bias)}
        batch.penalty.add_gradient(batch.params(), grads)
        batch.penalty.after_update(batch.params(), batch.nets.alive)
        assert torch.equal(batch.nets.weight, weight) and (grads["weight"] == 1).all()


# --------------------------------------------------- the compiled update
OPTIMIZERS = {
    "adagrad": lambda: Adagrad(lr=0.1, grad_clip=5.0, memory_init=0.01),
    "rmsprop": lambda: RMSProp(lr=0.01, decay=0.01, update_clip=0.01, memory_init=0.01),
    "adam": lambda: Adam(lr=0.01),
}
PENALTIES = {
    "multipliers-step": lambda: MultiplierPenalty(3e-3, "gradient_per_step", 0.3),
    "multipliers-after": lambda: MultiplierPenalty(3e-3, "after_update", 0.3),
    "outgoing-after": lambda: OutgoingL1Penalty(1e-3, "after_update", "original"),
    "outgoing-gradient": lambda: OutgoingL1Penalty(1e-3, "gradient", "text"),
    "none": lambda: NoPenalty(),
}


def torch_update(batch: Batch, grads: dict) -> np.ndarray:
    """The reference: penalty gradient, optimizer step, post-update step, scores, as torch operations."""
    params, trainable = batch.params(), batch.penalty.trainable
    batch.penalty.add_gradient(params, grads)
    batch.optimizer.step({k: params[k] for k in trainable}, grads, batch.nets.masks)
    batch.penalty.after_update(params, batch.nets.alive)
    return batch.penalty.scores(batch.nets.weight, batch.nets.multiplier).double().numpy()


def compiled_update(batch: Batch, grads: dict) -> np.ndarray:
    nets, trainable, opt = batch.nets, batch.penalty.trainable, batch.optimizer
    opt.steps += 1
    memories = {
        k: tuple(None if t is None else t.numpy() for t in pair)
        for k, pair in opt.memories({k: nets.params[k] for k in trainable}).items()
    }
    scores = np.empty((len(batch.graphs), nets.capacity))
    update_batch(
        {k: t.numpy() for k, t in nets.params.items()}, {k: grads[k].numpy() for k in trainable},
        {"weight": nets.mask.numpy(), "bias": nets.alive.numpy()}, memories, opt.settings(),
        batch.penalty.kernel_args(), scores,
    )  # fmt: skip
    return scores


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("penalty", sorted(PENALTIES))
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_compiled_update_equals_the_torch_operations(optimizer, penalty, dtype):
    """Three members of different sizes with padding, three cycles of random gradients:
    parameters, memories and scores agree to rounding (torch's vector kernels may fuse a
    multiply-add, and the scores' sums run in another order)."""
    graphs = [sparse_char_graph(s, hidden=h) for s, h in ((11, 2), (12, 5), (13, 3))]
    one = lambda: Batch(graphs, [PENALTIES[penalty]() for _ in graphs], dtype=dtype, capacity=6,  # noqa: E731
                        optimizer=OPTIMIZERS[optimizer]())  # fmt: skip
    ref, fast = one(), one()
    rng = np.random.default_rng(5)
    for _ in range(3):
        grads = {
            k: torch.as_tensor(rng.normal(size=t.shape), dtype=dtype) * (ref.nets.alive if t.dim() == 2 else 1)
            for k, t in ref.params().items()
        }
        want = torch_update(ref, {k: g.clone() for k, g in grads.items()})
        got = compiled_update(fast, {k: g.clone() for k, g in grads.items()})
        tol = dict(rtol=1e-12, atol=1e-15) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-7)
        for name, t in ref.params().items():
            torch.testing.assert_close(fast.params()[name], t, **tol, msg=name)
        for name, memories in ref.optimizer.state.items():
            for key, mem in memories.items():
                torch.testing.assert_close(fast.optimizer.state[name][key], mem, **tol, msg=f"{name}.{key}")
        for b, g in enumerate(graphs):
            h = len(g.ids("hidden"))
            np.testing.assert_allclose(got[b, :h], want[b, :h], **tol)


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
