"""Tests for neurograph.compile against a naive neuron-by-neuron evaluation of the graph."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from neurograph.compile import (
    AXES,
    Compiled,
    Remap,
    compile_graph,
    compile_order,
    sync,
    write_back,
)
from neurograph.graph import ROLES, Graph, GraphError

F64 = torch.float64


def random_graph(seed: int, *, n_input: int = 3, n_output: int = 2, n_hidden: int = 7, density: float = 0.4) -> Graph:
    """Roles interleaved by id, a few deaths and inheritances, partial connectivity."""
    rng = np.random.default_rng(seed)
    g = Graph(capacity=4)
    roles = ["input"] * n_input + ["output"] * n_output + ["hidden"] * (n_hidden + 2)
    for role in rng.permutation(roles).tolist():
        g.add_neuron(role, bias=rng.normal(), multiplier=rng.uniform(0.5, 2.0))
    for victim in rng.choice(g.ids("hidden"), size=2, replace=False).tolist():
        g.delete_neuron(victim)
    g.cycle = 3
    g.add_neuron("hidden", inherited_from=min(g.dead), bias=rng.normal(), multiplier=rng.uniform(0.5, 2.0))
    g.delete_neuron(g.ids("hidden")[0])
    g.add_neuron("hidden", bias=rng.normal(), multiplier=rng.uniform(0.5, 2.0))
    for t in g.ids():
        for s in g.ids():
            if rng.random() < density:
                g.connect(s, t, rng.normal())
    return g


@pytest.fixture(params=[0, 1, 2])
def graph(request) -> Graph:
    return random_graph(request.param)


def naive_forward(g: Graph, x: dict[int, float]) -> dict[int, float]:
    """y[i] = bias_i + sum_j w_ij * multiplier_j * x_j, one neuron and one connection at a time."""
    return {
        i: g.neurons[i].bias + sum(w * g.neurons[j].multiplier * x[j] for j, w in g.incoming(i).items())
        for i in g.neurons
    }


def compiled_forward(c: Compiled, x: torch.Tensor) -> torch.Tensor:
    """(N,) -> (N,) in compiled order."""
    return c.weight @ (c.multiplier * x) + c.bias


def as_compiled_vector(c: Compiled, values: dict[int, float]) -> torch.Tensor:
    return torch.tensor([values[i] for i in c.ids], dtype=c.weight.dtype)


def assert_same_compiled(got: Compiled, want: Compiled) -> None:
    assert got.ids == want.ids
    assert (got.n_input, got.n_output) == (want.n_input, want.n_output)
    for name in ("weight", "mask", "bias", "multiplier"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and torch.equal(a, b), name


# ------------------------------------------------------------------ layout
def test_compile_order_is_inputs_outputs_hidden_by_id(graph: Graph) -> None:
    c = compile_graph(graph)
    order = compile_order(graph)
    assert c.ids == order == graph.ids("input") + graph.ids("output") + graph.ids("hidden")
    assert [graph.neurons[i].role for i in c.ids[c.inputs]] == ["input"] * c.n_input
    assert [graph.neurons[i].role for i in c.ids[c.outputs]] == ["output"] * c.n_output
    assert c.hidden_ids == graph.ids("hidden") and c.n_hidden == len(graph.hidden)
    assert c.index == {i: k for k, i in enumerate(order)} and c.n == len(graph)
    assert c.synced_events == len(graph.events)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_compiled_tensors_match_graph_entries(graph: Graph, dtype: torch.dtype) -> None:
    c = compile_graph(graph, dtype=dtype)
    assert {t.dtype for t in (c.weight, c.mask, c.bias, c.multiplier)} == {dtype}
    assert c.weight.shape == c.mask.shape == (c.n, c.n) and c.bias.shape == (c.n,)
    for a, t in enumerate(c.ids):
        incoming = graph.incoming(t)
        for b, s in enumerate(c.ids):
            assert c.mask[a, b].item() == (1.0 if s in incoming else 0.0)
            assert c.weight[a, b].item() == torch.tensor(incoming.get(s, 0.0), dtype=dtype).item()
        assert c.bias[a].item() == torch.tensor(graph.neurons[t].bias, dtype=dtype).item()
    assert set(c.params) == set(AXES)


def test_empty_graph_compiles() -> None:
    c = compile_graph(Graph())
    assert c.n == 0 and c.weight.shape == (0, 0) and c.bias.shape == (0,)


# ------------------------------------------------------ against naive evaluation
def test_forward_matches_naive_evaluation(graph: Graph) -> None:
    rng = np.random.default_rng(7)
    c = compile_graph(graph, dtype=F64)
    for _ in range(3):
        x = {i: float(rng.normal()) for i in graph.neurons}
        y = compiled_forward(c, as_compiled_vector(c, x))
        expected = as_compiled_vector(c, naive_forward(graph, x))
        torch.testing.assert_close(y, expected, rtol=1e-12, atol=1e-12)


def test_recurrent_steps_match_naive_evaluation(graph: Graph) -> None:
    rng = np.random.default_rng(8)
    c = compile_graph(graph, dtype=F64)
    state = {i: float(rng.normal()) for i in graph.neurons}
    h = as_compiled_vector(c, state)
    for _ in range(5):
        h = torch.tanh(compiled_forward(c, h))
        state = {i: math.tanh(v) for i, v in naive_forward(graph, state).items()}
        torch.testing.assert_close(h, as_compiled_vector(c, state), rtol=1e-12, atol=1e-12)
    assert h.abs().max() > 0.05  # the comparison is not between zeros


# --------------------------------------------------------------- write_back
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_compile_write_back_compile_is_identity(graph: Graph, dtype: torch.dtype) -> None:
    c = compile_graph(graph, dtype=dtype)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        c.weight += torch.randn(c.weight.shape, generator=gen, dtype=dtype) * c.mask
        c.bias += torch.randn(c.bias.shape, generator=gen, dtype=dtype)
        c.multiplier *= torch.rand(c.multiplier.shape, generator=gen, dtype=dtype) + 0.5
    write_back(c, graph)
    again = compile_graph(graph, dtype=dtype)
    assert_same_compiled(again, c)
    write_back(again, graph)
    assert_same_compiled(compile_graph(graph, dtype=dtype), c)


def test_write_back_keeps_absent_connections_absent(graph: Graph) -> None:
    c = compile_graph(graph, dtype=F64)
    n_connections, n_events = graph.num_connections(), len(graph.events)
    with torch.no_grad():
        c.weight.fill_(3.0)
    write_back(c, graph)
    again = compile_graph(graph, dtype=F64)
    assert torch.equal(again.weight, 3.0 * c.mask) and torch.equal(again.mask, c.mask)
    assert graph.num_connections() == n_connections and len(graph.events) == n_events


def test_write_back_values_reach_the_graph(graph: Graph) -> None:
    c = compile_graph(graph, dtype=F64)
    t, s = next((t, s) for t in c.ids for s in graph.incoming(t))
    k = c.ids[c.hidden][0]
    with torch.no_grad():
        c.weight[c.index[t], c.index[s]] = 0.125
        c.bias[c.index[k]] = -4.0
        c.multiplier[c.index[k]] = 0.25
    write_back(c, graph)
    assert graph.incoming(t)[s] == 0.125
    assert (graph.neurons[k].bias, graph.neurons[k].multiplier) == (-4.0, 0.25)


# --------------------------------------------------------------------- sync
def test_sync_without_changes_returns_none(graph: Graph) -> None:
    c = compile_graph(graph)
    before = c.weight.clone()
    assert sync(c, graph) is None
    assert torch.equal(c.weight, before)


def test_sync_of_connection_edits_needs_no_remap(graph: Graph) -> None:
    c = compile_graph(graph, dtype=F64)
    t, s = next((t, s) for t in c.ids for s in graph.incoming(t))
    graph.disconnect(s, t)
    graph.connect(t, s, 0.5)
    assert sync(c, graph) is None
    assert_same_compiled(c, compile_graph(graph, dtype=F64))


def test_new_hidden_is_appended_and_survivors_keep_compiled_values(graph: Graph) -> None:
    c = compile_graph(graph, dtype=F64)
    with torch.no_grad():  # training moved the compiled copy ahead of the graph
        c.weight += c.mask
        c.bias += 1.0
    trained = c.weight.clone(), c.bias.clone()
    h = graph.add_neuron("hidden", bias=0.3, multiplier=1.5).id
    graph.wire([h], c.ids, np.full((1, c.n), 0.5))
    remap = sync(c, graph)
    n = len(trained[1])
    assert c.ids[-1] == h and remap.old_index.tolist() == list(range(n)) + [-1]
    assert torch.equal(c.weight[:n, :n], trained[0]) and torch.equal(c.bias[:n], trained[1])
    assert torch.equal(c.weight[n, :n], torch.full((n,), 0.5, dtype=F64))
    assert c.weight[:, n].abs().sum() == 0 and (c.bias[n].item(), c.multiplier[n].item()) == (0.3, 1.5)


def test_sync_inserts_inputs_and_outputs_in_their_blocks(graph: Graph) -> None:
    c = compile_graph(graph, dtype=F64)
    victim = c.ids[c.outputs][0]
    graph.delete_neuron(victim)
    new_input = graph.add_neuron("input").id
    new_output = graph.add_neuron("output").id
    graph.connect(new_input, new_output, 2.0)
    old_ids = list(c.ids)
    remap = sync(c, graph)
    assert_same_compiled(c, compile_graph(graph, dtype=F64))
    expected = [old_ids.index(i) if i in old_ids else -1 for i in c.ids]
    assert remap.old_index.tolist() == expected
    assert victim not in c.ids


def test_sync_after_1x1_wire_of_deleted_neuron() -> None:
    g = Graph()
    a, b = g.add_neuron("input").id, g.add_neuron("hidden").id
    c = compile_graph(g, dtype=F64)
    g.wire([b], [a], np.ones((1, 1)))  # logged as rewire with neuron=b, other=a
    g.delete_neuron(b)
    remap = sync(c, g)
    assert remap.old_index.tolist() == [0]
    assert_same_compiled(c, compile_graph(g, dtype=F64))


# -------------------------------------------------------------------- Remap
def test_remap_apply_moves_survivors_and_fills_new() -> None:
    remap = Remap(torch.tensor([2, -1, 0]))
    assert remap.kept_new.tolist() == [0, 2] and remap.kept_old.tolist() == [2, 0]
    vector = torch.tensor([10.0, 11.0, 12.0])
    assert remap.apply(vector, (0,)).tolist() == [12.0, 0.0, 10.0]
    assert remap.apply(vector, (0,), fill=-1.0).tolist() == [12.0, -1.0, 10.0]
    matrix = torch.arange(9.0).reshape(3, 3)
    assert remap.apply(matrix, (0, 1)).tolist() == [[8.0, 0.0, 6.0], [0.0, 0.0, 0.0], [2.0, 0.0, 0.0]]


def test_remap_with_no_survivors() -> None:
    out = Remap(torch.tensor([-1, -1])).apply(torch.ones(3, 3), (0, 1))
    assert torch.equal(out, torch.zeros(2, 2))


def test_remap_rejects_unknown_axes() -> None:
    with pytest.raises(ValueError, match="unsupported neuron axes"):
        Remap(torch.tensor([0])).apply(torch.ones(1, 1), (1,))


# ------------------------------------------------------------ devices
def test_compile_on_cuda_without_gpu_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        compile_graph(random_graph(0), device="cuda")


def test_compile_accepts_a_torch_device() -> None:
    assert compile_graph(random_graph(0), device=torch.device("cpu")).weight.device.type == "cpu"


# ------------------------------------------------- random edits, incrementally synced
def id_indexed(ids: list[int], tensor: torch.Tensor, new_ids: list[int]) -> torch.Tensor:
    """``tensor`` (indexed by ``ids`` on both axes) re-indexed by id to ``new_ids``; 0 for unknown ids."""
    pos = {i: k for k, i in enumerate(ids)}
    out = torch.zeros(len(new_ids), len(new_ids), dtype=tensor.dtype)
    for a, t in enumerate(new_ids):
        for b, s in enumerate(new_ids):
            if t in pos and s in pos:
                out[a, b] = tensor[pos[t], pos[s]]
    return out


class EditAndSync(RuleBasedStateMachine):
    """Structural edits interleaved with training of the compiled copy, write_back and sync.

    A plain-dict model (connections, biases, multipliers, parents) is the reference.
    Training moves the compiled copy ahead of the graph (``dirty``) until a write_back.
    """

    @initialize(seed=st.integers(0, 2**16), density=st.sampled_from([0.0, 0.3, 1.0]))
    def start(self, seed: int, density: float) -> None:
        rng = np.random.default_rng(seed)
        self.g = Graph(capacity=2, graveyard_size=4)
        self.alive: dict[int, dict] = {}
        self.dead: dict[int, dict] = {}
        self.conns: dict[tuple[int, int], float] = {}
        for role in ("input", "hidden", "output", "hidden", "input"):
            self._add(role, rng, inherit=False)
        for t in list(self.alive):
            for s in list(self.alive):
                if rng.random() < density:
                    self._connect(s, t, float(rng.normal()))
        self.c = compile_graph(self.g, dtype=F64)
        self.dirty = False
        self._snapshot()

    # -- model helpers
    def _add(self, role: str, rng: np.random.Generator, *, inherit: bool) -> int:
        parent = int(rng.choice(sorted(self.dead))) if inherit and self.dead else None
        bias, mult = float(rng.normal()), float(rng.uniform(0.5, 2.0))
        expected_id = len(self.alive) + len(self.dead)
        n = self.g.add_neuron(role, bias=bias, multiplier=mult, inherited_from=parent)
        assert n.id == expected_id
        self.alive[n.id] = dict(role=role, bias=bias, mult=mult, parent=parent, born=self.g.cycle)
        return n.id

    def _connect(self, s: int, t: int, w: float) -> None:
        self.g.connect(s, t, w)
        self.conns[(s, t)] = w

    def _snapshot(self) -> None:
        """Optimizer-like state equal to the compiled weight now, kept through remaps."""
        self.state = self.c.weight.clone()
        self.state_bias = self.c.bias.clone()
        self.snap_ids = list(self.c.ids)
        self.snap_weight = self.c.weight.clone()
        self.snap_bias = self.c.bias.clone()

    def _sync(self) -> None:
        remap = sync(self.c, self.g)
        if remap is not None:
            self.state = remap.apply(self.state, AXES["weight"])
            self.state_bias = remap.apply(self.state_bias, AXES["bias"])
        assert self.c.synced_events == len(self.g.events)
        assert torch.equal(self.state, id_indexed(self.snap_ids, self.snap_weight, self.c.ids))
        pos = {i: k for k, i in enumerate(self.snap_ids)}
        expected_bias = [self.snap_bias[pos[i]].item() if i in pos else 0.0 for i in self.c.ids]
        assert self.state_bias.tolist() == expected_bias

    # -- structural rules
    @rule(role=st.sampled_from(ROLES), inherit=st.booleans(), seed=st.integers(0, 2**16))
    def add(self, role: str, inherit: bool, seed: int) -> None:
        self._add(role, np.random.default_rng(seed), inherit=inherit)

    @precondition(lambda self: self.alive)
    @rule(seed=st.integers(0, 2**16))
    def delete(self, seed: int) -> None:
        victim = int(np.random.default_rng(seed).choice(sorted(self.alive)))
        fossil = self.g.delete_neuron(victim)
        if not self.dirty:
            assert fossil.incoming == {s: w for (s, t), w in self.conns.items() if t == victim}
            assert fossil.outgoing == {t: w for (s, t), w in self.conns.items() if s == victim}
        assert self.g.graveyard[-1] is fossil
        self.conns = {k: w for k, w in self.conns.items() if victim not in k}
        self.dead[victim] = dict(self.alive.pop(victim), died=self.g.cycle)

    @precondition(lambda self: self.alive)
    @rule(seed=st.integers(0, 2**16), weight=st.floats(-2, 2))
    def connect(self, seed: int, weight: float) -> None:
        s, t = np.random.default_rng(seed).choice(sorted(self.alive), size=2).tolist()
        self._connect(s, t, weight)

    @precondition(lambda self: self.conns)
    @rule(seed=st.integers(0, 2**16))
    def disconnect(self, seed: int) -> None:
        keys = sorted(self.conns)
        s, t = keys[int(np.random.default_rng(seed).integers(len(keys)))]
        self.g.disconnect(s, t)
        del self.conns[(s, t)]

    @rule(seed=st.integers(0, 2**16), inherit=st.booleans())
    def wire_new_hidden(self, seed: int, inherit: bool) -> None:
        rng = np.random.default_rng(seed)
        h = self._add("hidden", rng, inherit=inherit)
        others = sorted(self.alive)
        w_in, w_out = rng.normal(size=(1, len(others))), rng.normal(size=(len(others), 1))
        p_in, p_out = rng.random((1, len(others))) < 0.5, rng.random((len(others), 1)) < 0.5
        self.g.wire([h], others, w_in, present=p_in)
        self.g.wire(others, [h], w_out, present=p_out)
        for k, i in enumerate(others):
            for key, w, p in (((i, h), w_in[0, k], p_in[0, k]), ((h, i), w_out[k, 0], p_out[k, 0])):
                if p:
                    self.conns[key] = float(w)
                else:
                    self.conns.pop(key, None)

    @rule(cycles=st.integers(1, 5))
    def tick(self, cycles: int) -> None:
        self.g.cycle += cycles

    # -- training rules
    @rule(seed=st.integers(0, 2**16))
    def train(self, seed: int) -> None:
        """Sync (as the loop does before a step), then move the compiled values."""
        self._sync()
        gen = torch.Generator().manual_seed(seed)
        c = self.c
        dw = torch.randn(c.weight.shape, generator=gen, dtype=F64) * c.mask
        db = torch.randn(c.bias.shape, generator=gen, dtype=F64)
        dm = torch.rand(c.multiplier.shape, generator=gen, dtype=F64) * 0.1
        with torch.no_grad():
            c.weight += dw
            c.bias += db
            c.multiplier += dm
        pos = c.index
        for (s, t) in self.conns:
            self.conns[(s, t)] += dw[pos[t], pos[s]].item()
        for i, n in self.alive.items():
            n["bias"] += db[pos[i]].item()
            n["mult"] += dm[pos[i]].item()
        self.dirty = True
        self._snapshot()

    @precondition(lambda self: self.c.synced_events == len(self.g.events))
    @rule()
    def write_back(self) -> None:
        write_back(self.c, self.g)
        self.dirty = False

    @rule()
    def sync_and_compare(self) -> None:
        self._sync()
        if not self.dirty:
            assert_same_compiled(self.c, compile_graph(self.g, dtype=F64))
        write_back(self.c, self.g)
        self.dirty = False
        assert_same_compiled(self.c, compile_graph(self.g, dtype=F64))
        self._graph_matches_model(values=True)

    # -- invariants
    @invariant()
    def structure_matches_model(self) -> None:
        self.g.check()
        assert set(self.g.neurons) == set(self.alive) and set(self.g.dead) == set(self.dead)
        assert self.g.next_id == len(self.alive) + len(self.dead)
        self._graph_matches_model(values=not self.dirty)

    @invariant()
    def sync_now_would_match_fresh_compile(self) -> None:
        """On copies, so that edits keep accumulating between the real syncs."""
        c, g = copy.deepcopy(self.c), copy.deepcopy(self.g)
        sync(c, g)
        write_back(c, g)
        assert_same_compiled(c, compile_graph(g, dtype=F64))

    @invariant()
    def lineage_is_consistent(self) -> None:
        records = {**self.dead, **self.alive}
        for i, rec in records.items():
            chain = [i]
            while records[chain[-1]]["parent"] is not None:
                chain.append(records[chain[-1]]["parent"])
            chain.reverse()
            assert self.g.lineage(i) == chain
            assert (self.g.neurons.get(i) or self.g.dead[i]).generation == len(chain) - 1
            assert all(a in self.dead for a in chain[:-1])
            for parent, child in zip(chain, chain[1:]):
                assert self.dead[parent]["died"] <= records[child]["born"]

    @invariant()
    def ages_follow_cycle(self) -> None:
        for i, rec in self.alive.items():
            assert self.g.age(i) == self.g.cycle - rec["born"]
        for i, rec in self.dead.items():
            assert self.g.age(i) == rec["died"] - rec["born"]

    def _graph_matches_model(self, *, values: bool) -> None:
        got = {(c.source, c.target): c.weight for c in self.g.connections()}
        assert set(got) == set(self.conns)
        assert self.g.num_connections() == len(self.conns)
        if values:
            assert got == self.conns
            for i, rec in self.alive.items():
                n = self.g.neurons[i]
                assert (n.role, n.bias, n.multiplier) == (rec["role"], rec["bias"], rec["mult"])

EditAndSync.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_edit_and_sync = EditAndSync.TestCase


def test_partial_write_back_touches_only_the_given_neurons() -> None:
    graph = random_graph(3)
    c = compile_graph(graph, dtype=F64)
    before, _ = graph.block(c.ids, c.ids)
    c.weight += c.mask * 0.5
    c.bias += 1.0
    victim = c.hidden_ids[0]
    write_back(c, graph, [victim])
    after, _ = graph.block(c.ids, c.ids)
    k = c.ids.index(victim)
    changed = np.abs(after - before) > 0
    expected = np.zeros_like(changed)
    expected[k, :] = expected[:, k] = True
    present = c.mask.numpy() > 0
    assert np.array_equal(changed, expected & present)
    assert graph.neurons[victim].bias == c.bias[k].item()
    assert graph.neurons[c.hidden_ids[1]].bias != c.bias[k + 1].item()
