"""Tests for neurograph.urn.model: the compiled URN against a naive neuron-by-neuron
evaluation of the graph, and the loss gradients against finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neurograph.compile import compile_graph
from neurograph.graph import Graph
from neurograph.urn.geometry import distance_matrix, lattice_for, place_neurons, vector_grid
from neurograph.urn.model import (
    ACTIVATIONS,
    UPDATES,
    Dynamics,
    build_urn_graph,
    correct,
    forward,
    loss_terms,
    weight_coefficients,
)

F64 = torch.float64


def small_graph(seed: int = 0, *, d_in: int = 3, d_out: int = 2, hidden: int = 6) -> Graph:
    """A dense URN with random biases, positions from the default lattice."""
    size = d_in + d_out + hidden
    grid = vector_grid(d_in)
    positions = place_neurons(lattice_for(size, grid, x=None, y=None, z=3), grid, d_in, d_out, hidden)
    graph = build_urn_graph(positions, generator=torch.Generator().manual_seed(seed), gain=1.5)
    rng = np.random.default_rng(seed)
    for n in graph.neurons.values():
        n.bias = float(rng.normal(0, 0.3))
    return graph


def naive_states(graph: Graph, x: list[float], dyn: Dynamics) -> dict[int, float]:
    """N^(I) by neuron id, one neuron and one connection at a time (eqs. 2, 3, 6, 7)."""
    phi = lambda v: float(ACTIVATIONS[dyn.activation](torch.tensor(v, dtype=F64)))  # noqa: E731
    inputs = dict(zip(graph.ids("input"), x))
    n = {i: inputs.get(i, 0.0) for i in graph.neurons}
    for _ in range(dyn.iterations):
        new = {}
        for i, neuron in graph.neurons.items():
            pre = neuron.bias + sum(w * n[j] for j, w in graph.incoming(i).items())
            linear = neuron.role == "output" and dyn.output_activation == "linear"
            value = pre if linear else phi(pre)
            if dyn.update == "residual_output" and neuron.role == "output":
                value += n[i]
            if dyn.update == "residual_input" and neuron.role == "input":
                value += inputs[i]
            new[i] = value
        n = new
    return n


@pytest.mark.parametrize("update", UPDATES)
@pytest.mark.parametrize("output_activation", ["linear", "phi"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_compiled_forward_equals_naive_graph_evaluation(update, output_activation, activation):
    graph = small_graph(1)
    dyn = Dynamics(iterations=3, update=update, activation=activation, output_activation=output_activation)
    c = compile_graph(graph, dtype=F64)
    x = torch.tensor(np.random.default_rng(2).normal(size=(4, 3)), dtype=F64)
    states = forward(c.weight, c.bias, x, outputs=c.outputs, dynamics=dyn)
    assert len(states) == 4
    for b in range(len(x)):
        expected = naive_states(graph, x[b].tolist(), dyn)
        got = {i: float(states[-1][b, k]) for k, i in enumerate(c.ids)}
        assert got == pytest.approx(expected, abs=1e-12)


def test_initial_state_and_he_normal_init():
    graph = small_graph(0, hidden=200)
    c = compile_graph(graph, dtype=F64)
    std = float(c.weight.std())
    assert std == pytest.approx(1.5 * math.sqrt(2.0 / c.n), rel=0.05)
    assert graph.num_connections() == c.n**2
    # paper order by id: inputs, hidden, outputs; compiled order: inputs, outputs, hidden
    ids = graph.ids()
    assert [graph.neurons[i].role for i in ids[:3]] == ["input"] * 3
    assert [graph.neurons[i].role for i in ids[-2:]] == ["output"] * 2
    assert c.ids[:3] == ids[:3] and c.ids[3:5] == ids[-2:]
    x = torch.ones(2, 3, dtype=F64)
    n0 = forward(c.weight, c.bias, x, outputs=c.outputs, dynamics=Dynamics(iterations=1))[0]
    assert n0[:, :3].eq(1).all() and n0[:, 3:].eq(0).all()


def test_same_generator_seed_same_weights():
    a, b, other = (compile_graph(small_graph(s)).weight for s in (4, 4, 5))
    assert torch.equal(a, b) and not torch.equal(a, other)


def tiny_problem(update: str):
    graph = small_graph(3, hidden=3)
    c = compile_graph(graph, dtype=F64)
    dyn = Dynamics(iterations=3, update=update, activation="relu")
    x = torch.tensor(np.random.default_rng(4).normal(size=(5, 3)), dtype=F64)
    y = torch.tensor([0, 1, 1, 0, 1])
    coef = weight_coefficients(c, graph, c_w=0.01, c_syn=0.02, gamma=1.5, beta=2.0)
    return c, dyn, x, y, coef


@pytest.mark.parametrize(
    "update, term",
    [("plain", "ce"), ("plain", "weight"), ("plain", "activity"), *[(u, "total") for u in UPDATES]],
)
def test_loss_gradients_match_finite_differences(update, term):
    c, dyn, x, y, coef = tiny_problem(update)

    def value(w, b):
        states = forward(w, b, x, outputs=c.outputs, dynamics=dyn)
        return loss_terms(states, y, w, outputs=c.outputs, coefficients=coef, c_n=0.05)[term]

    w = c.weight.clone().requires_grad_(True)
    b = c.bias.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(value, (w, b), eps=1e-6, atol=1e-6, fast_mode=True)


def test_loss_terms_values():
    c, dyn, x, y, coef = tiny_problem("plain")
    states = forward(c.weight, c.bias, x, outputs=c.outputs, dynamics=dyn)
    t = loss_terms(states, y, c.weight, outputs=c.outputs, coefficients=coef, c_n=0.05)
    manual_activity = 0.05 * sum(float(s.abs().sum(1).mean()) for s in states[1:])
    assert float(t["activity"]) == pytest.approx(manual_activity)
    assert float(t["weight"]) == pytest.approx(float((c.weight.abs() * coef).sum()))
    assert float(t["total"]) == pytest.approx(float(t["ce"] + t["weight"] + t["activity"]))


def test_weight_coefficients_from_positions():
    graph = small_graph(0)
    c = compile_graph(graph, dtype=F64)
    assert weight_coefficients(c, graph, c_w=0.1, c_syn=0.0, gamma=1.0, beta=1.0) == 0.1
    coef = weight_coefficients(c, graph, c_w=0.1, c_syn=0.5, gamma=2.0, beta=3.0)
    p = np.array([graph.neurons[i].position for i in c.ids])
    for t, s in [(0, 1), (4, 9), (10, 2)]:
        d2 = ((p[t, :2] - p[s, :2]) ** 2).sum() + 3.0 * (p[t, 2] - p[s, 2]) ** 2
        assert float(coef[t, s]) == pytest.approx(0.1 + 0.5 * d2)
    assert np.allclose(coef.numpy(), 0.1 + 0.5 * distance_matrix(p, 3.0) ** 2)


def test_synapse_pairs_i_below_j_penalises_only_targets_before_their_source():
    """eq. 9 as printed: c_syn d^gamma on W_ij with i < j in the paper's order (graph ids), c_W elsewhere."""
    graph = small_graph(1)
    c = compile_graph(graph, dtype=F64)
    every = weight_coefficients(c, graph, c_w=0.1, c_syn=0.5, gamma=1.0, beta=2.0, pairs="all")
    assert torch.equal(every, weight_coefficients(c, graph, c_w=0.1, c_syn=0.5, gamma=1.0, beta=2.0))
    upper = weight_coefficients(c, graph, c_w=0.1, c_syn=0.5, gamma=1.0, beta=2.0, pairs="i<j")
    for t, target in enumerate(c.ids):  # compiled order is not the paper's: compare ids, not indices
        for s, source in enumerate(c.ids):
            expected = float(every[t, s]) if target < source else 0.1
            assert float(upper[t, s]) == pytest.approx(expected)
    assert weight_coefficients(c, graph, c_w=0.1, c_syn=0.0, gamma=1.0, beta=2.0, pairs="i<j") == 0.1
    with pytest.raises(ValueError, match="pairs"):
        weight_coefficients(c, graph, c_w=0.1, c_syn=0.5, gamma=1.0, beta=2.0, pairs="j<i")


def test_correct_counts_ties_as_wrong():
    logits = torch.tensor([[1.0, 1.0], [2.0, 1.0], [0.0, 3.0]])
    assert correct(logits, torch.tensor([0, 0, 0])).tolist() == [False, True, False]


def test_dynamics_rejects_unknown_rule():
    with pytest.raises(ValueError, match="update must be one of"):
        Dynamics(update="skip")
    with pytest.raises(ValueError, match="iterations"):
        Dynamics(iterations=0)
