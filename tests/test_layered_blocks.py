"""Tests for neurograph.layered.blocks: the compiled forward against a neuron-by-neuron
evaluation of the graph, the column layout, gradients against central differences,
write-back, and :meth:`Blocks.resync` / :class:`Moves` across structural edits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurograph.graph import Graph
from neurograph.layered.blocks import Blocks, bias_key, forward, weight_key
from neurograph.layered.network import add_layer, add_neuron, build_graph, delete_layer, projections_of
from neurograph.layered.scenario import LayeredScenario

F64 = torch.float64
N_INPUT, N_OUTPUT = 3, 2
EASY = {"kind": "easy"}
FEEDBACK = {  # feed-forward a -> b, feedback b -> a, recurrence b -> b, both feed the output
    "areas": [{"name": "a", "size": 3}, {"name": "b", "size": 2}],
    "projections": ["input -> a", "a -> b", "b -> a", "b -> b", "b -> output", "a -> output"],
}
NETWORKS = {
    "stack-all-tanh": ({"stack": {"layers": 3, "size": 2, "skips": "all"}}, None),
    "stack-output-relu": ({"activation": "relu", "stack": {"layers": 3, "size": 3, "skips": "output"}}, None),
    "stack-none-tanh": ({"stack": {"layers": 2, "size": 3, "skips": "none"}}, None),
    "stack-all-recurrent": ({"stack": {"layers": 2, "size": 2, "skips": "all", "recurrent": True}}, EASY),
    "feedback-tanh": (FEEDBACK, EASY),
    "feedback-relu": ({**FEEDBACK, "activation": "relu"}, EASY),
}
RECURRENT = ("stack-all-recurrent", "feedback-tanh", "feedback-relu")


def make_scenario(network: dict, task: dict | None = None, **extra) -> LayeredScenario:
    return LayeredScenario.model_validate({
        "model": "layered", "name": "blocks", "dtype": "float64", "network": network,
        "phases": [{"task": task or {"kind": "parity", "bits": N_INPUT}, "cycles": 10}], **extra,
    })  # fmt: skip


def randomize(graph: Graph, rng: np.random.Generator, std: float = 0.8) -> None:
    """Every existing connection and every non-input bias set to O(1) random values."""
    for i, n in graph.neurons.items():
        if n.role == "input":
            continue
        n.bias = float(rng.normal(0.0, 0.5))
        sources = list(graph.incoming(i))
        graph.set_weights([i], sources, rng.normal(0.0, std, (1, len(sources))))


def setup(name: str, seed: int = 0):
    """(scenario, graph with O(1) weights, fresh blocks) of ``NETWORKS[name]``."""
    s = make_scenario(*NETWORKS[name])
    rng = np.random.default_rng(seed)
    graph = build_graph(s, N_INPUT, N_OUTPUT, rng)
    randomize(graph, rng)
    return s, graph, compile_graph(graph, s)


def compile_graph(graph: Graph, s: LayeredScenario) -> Blocks:
    return Blocks(graph, projections_of(s.network, graph), dtype=F64, device="cpu")


def carried(h: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The hidden areas' activity, as the next step's ``previous`` (as the trainer carries it)."""
    return {k: v for k, v in h.items() if k not in ("input", "output")}


# ----------------------------------------------------------- the reference
def naive_step(graph: Graph, x: np.ndarray, activation: str, previous: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Neuron id -> (B,) activity after one step, one neuron and one connection at a time.

    Areas in the graph's order; a source whose area comes earlier gives its activity
    of this step, any other (the same area, or a later one) its ``previous`` one
    (zeros when absent). Inputs are ``x``'s columns in ascending id order.
    """
    rank = {a: k for k, a in enumerate(graph.areas)}
    squash = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0.0)}[activation]
    now = {i: x[:, k] for k, i in enumerate(graph.area_ids("input"))}
    for area in list(graph.areas)[1:]:
        for i in graph.area_ids(area):
            total = np.full(len(x), graph.neurons[i].bias)
            for s, w in graph.incoming(i).items():
                early = rank[graph.neurons[s].area] < rank[area]
                total = total + w * (now[s] if early else previous.get(s, np.zeros(len(x))))
            now[i] = total if area == "output" else squash(total)
    return now


def as_areas(blocks: Blocks, activity: dict[int, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-neuron activity laid out as the blocks' (B, n_area) arrays."""
    return {a: np.stack([activity[i] for i in ids], axis=1) for a, ids in blocks.ids.items()}


# ------------------------------------------------------------ forward pass
@pytest.mark.parametrize("name", NETWORKS)
def test_forward_matches_the_neuron_by_neuron_evaluation(name: str) -> None:
    s, graph, blocks = setup(name)
    rng = np.random.default_rng(1)
    steps = 4 if name in RECURRENT else 1
    previous, naive_previous = None, {}
    for _ in range(steps):
        x = rng.normal(0.0, 1.0, (5, N_INPUT))
        h = forward(blocks, torch.from_numpy(x), s.network.activation, previous)
        naive = naive_step(graph, x, s.network.activation, naive_previous)
        want = as_areas(blocks, naive)
        assert list(h) == list(graph.areas)
        for area in graph.areas:
            assert h[area].dtype == F64
            np.testing.assert_allclose(h[area].detach().numpy(), want[area], rtol=0, atol=1e-12, err_msg=area)
        previous, naive_previous = carried(h), naive


@pytest.mark.parametrize("name", RECURRENT)
def test_recurrent_graphs_depend_on_the_previous_step(name: str) -> None:
    """The check above can fail: carrying ``previous`` changes what a recurrent graph computes."""
    s, graph, blocks = setup(name)
    x = torch.from_numpy(np.random.default_rng(2).normal(0.0, 1.0, (4, N_INPUT)))
    first = forward(blocks, x, s.network.activation)
    second = forward(blocks, x, s.network.activation, carried(first))
    assert (second["output"] - first["output"]).abs().max() > 1e-3


def test_a_delayed_projection_reads_previous_and_a_forward_one_does_not() -> None:
    """``a`` is read only by forward projections, so its ``previous`` is ignored; ``b``'s
    (read by b -> a and b -> b) changes a, b and the output."""
    s, graph, blocks = setup("feedback-tanh")
    x = torch.from_numpy(np.random.default_rng(3).normal(0.0, 1.0, (2, N_INPUT)))
    base = forward(blocks, x, s.network.activation)
    ones = lambda area: torch.ones((2, len(blocks.ids[area])), dtype=F64)  # noqa: E731
    with_a = forward(blocks, x, s.network.activation, {"a": ones("a")})
    with_b = forward(blocks, x, s.network.activation, {"b": ones("b")})
    for area in ("a", "b", "output"):
        assert torch.equal(with_a[area], base[area])
        assert (with_b[area] - base[area]).abs().max() > 1e-6
    assert blocks.delayed("b", "a") and blocks.delayed("b", "b") and not blocks.delayed("a", "b")


# ---------------------------------------------------------- column layout
@pytest.mark.parametrize("name", NETWORKS)
def test_segments_tile_each_block_by_source_in_area_order(name: str) -> None:
    s, graph, blocks = setup(name)
    rank = {a: k for k, a in enumerate(graph.areas)}
    assert set(blocks.projections) == set(projections_of(s.network, graph))
    for area in blocks.order[1:]:
        segments = blocks.segments[area]
        sources = [src for src, _, _ in segments]
        assert sources == sorted(sources, key=rank.get)
        assert set(sources) == {src for src, dst in blocks.projections if dst == area}
        stops = [0] + [b for _, _, b in segments]
        assert [a for _, a, _ in segments] == stops[:-1]
        assert [b - a for src, a, b in segments] == [len(graph.area_ids(src)) for src in sources]
        assert blocks.params[weight_key(area)].shape == (len(graph.area_ids(area)), stops[-1])
        assert blocks.params[bias_key(area)].shape == (len(graph.area_ids(area)),)


@pytest.mark.parametrize("name", ["stack-all-tanh", "stack-output-relu", "feedback-tanh"])
def test_perturbing_one_graph_weight_changes_only_its_entry(name: str) -> None:
    s, graph, blocks = setup(name)
    rng = np.random.default_rng(4)
    pairs = [(t, src) for t in graph.neurons for src in graph.incoming(t)]
    for k in rng.choice(len(pairs), size=8, replace=False):
        target, source = pairs[k]
        area, src_area = graph.neurons[target].area, graph.neurons[source].area
        original = graph.incoming(target)[source]
        graph.set_weights([target], [source], [[original + 0.375]])
        changed = compile_graph(graph, s)
        graph.set_weights([target], [source], [[original]])
        start = next(a for src, a, _ in blocks.segments[area] if src == src_area)
        row, col = blocks.ids[area].index(target), start + blocks.ids[src_area].index(source)
        for key, p in blocks.params.items():
            diff = (changed.params[key] - p).detach().numpy()
            if key != weight_key(area):
                assert not diff.any(), key
                continue
            assert np.count_nonzero(diff) == 1 and diff[row, col] == pytest.approx(0.375, abs=1e-12)


def test_perturbing_one_bias_changes_only_its_entry() -> None:
    s, graph, blocks = setup("stack-all-tanh")
    target = graph.area_ids("layer2")[1]
    graph.neurons[target].bias += 0.5
    changed = compile_graph(graph, s)
    for key, p in blocks.params.items():
        diff = (changed.params[key] - p).detach().numpy()
        if key == bias_key("layer2"):
            assert np.flatnonzero(diff).tolist() == [1] and diff[1] == pytest.approx(0.5)
        else:
            assert not diff.any(), key


# --------------------------------------------------------------- gradients
def sequence_loss(blocks: Blocks, s: LayeredScenario, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy over the steps of ``xs`` (T, B, n_input) with labels ``ys`` (T, B)."""
    previous, loss = None, torch.zeros((), dtype=F64)
    for x, y in zip(xs, ys):
        h = forward(blocks, x, s.network.activation, previous)
        loss = loss + F.cross_entropy(h["output"], y, reduction="sum")
        previous = carried(h)
    return loss


@pytest.mark.parametrize("name", ["stack-all-tanh", "stack-none-tanh", "stack-all-recurrent", "feedback-tanh"])
def test_gradients_match_central_differences(name: str) -> None:
    s, graph, blocks = setup(name)
    rng = np.random.default_rng(5)
    steps = 4 if name in RECURRENT else 1
    xs = torch.from_numpy(rng.normal(0.0, 1.0, (steps, 4, N_INPUT)))
    ys = torch.from_numpy(rng.integers(0, N_OUTPUT, (steps, 4)))
    loss = sequence_loss(blocks, s, xs, ys)
    grads = dict(zip(blocks.params, torch.autograd.grad(loss, list(blocks.params.values()))))
    h, worst, checked = 1e-5, 0.0, 0
    with torch.no_grad():
        for key, p in blocks.params.items():
            flat = p.view(-1)
            for k in rng.choice(flat.numel(), size=min(6, flat.numel()), replace=False):
                keep = float(flat[k])
                flat[k] = keep + h
                up = float(sequence_loss(blocks, s, xs, ys))
                flat[k] = keep - h
                down = float(sequence_loss(blocks, s, xs, ys))
                flat[k] = keep
                numeric, exact = (up - down) / (2 * h), float(grads[key].view(-1)[k])
                worst = max(worst, abs(numeric - exact) / max(abs(exact), 1e-4))
                checked += abs(exact) > 1e-4
    assert worst < 1e-6
    assert checked >= 2 * len(blocks.params)  # most sampled entries have a gradient worth checking


# ------------------------------------------------------ derived quantities
def test_outgoing_norms_and_l1_mask_follow_the_graph() -> None:
    s, graph, blocks = setup("stack-output-relu")
    norms = blocks.outgoing_norms()
    assert list(norms) == ["layer1", "layer2", "layer3"]
    for area, values in norms.items():
        want = [sum(abs(w) for w in graph.outgoing(i).values()) for i in graph.area_ids(area)]
        np.testing.assert_allclose(values, want, rtol=1e-12)
    for key, mask in blocks.l1_mask().items():
        area = key.removeprefix("w:")
        sources = [src for src, a, b in blocks.segments[area] for _ in range(b - a)]
        want = [[0.0 if src == "input" else 1.0 for src in sources]] * len(blocks.ids[area])
        assert mask.tolist() == want


def test_write_back_of_some_areas_copies_their_incoming_outgoing_and_biases() -> None:
    s, graph, blocks = setup("stack-all-tanh")
    before = {t: dict(graph.incoming(t)) for t in graph.neurons}
    biases = {i: n.bias for i, n in graph.neurons.items()}
    with torch.no_grad():
        for p in blocks.params.values():
            p.add_(0.25)
    blocks.write_back(graph, ["layer2"])
    for t, incoming in before.items():
        area = graph.neurons[t].area
        for src, w in incoming.items():
            touched = "layer2" in (area, graph.neurons[src].area)
            assert graph.incoming(t)[src] == pytest.approx(w + 0.25 if touched else w, abs=1e-12)
        want = biases[t] + 0.25 if area == "layer2" else biases[t]
        assert graph.neurons[t].bias == pytest.approx(want, abs=1e-12)
    blocks.write_back(graph)
    again = compile_graph(graph, s)
    for key, p in blocks.params.items():
        assert torch.equal(again.params[key], p.detach())


# ------------------------------------------------------------------ resync
def by_ids(blocks: Blocks, tensors: dict[str, torch.Tensor]) -> dict[tuple, float]:
    """Every entry keyed by neuron ids: ``("w", target, source)`` and ``("b", target)``."""
    out = {}
    for area in blocks.order[1:]:
        if weight_key(area) not in tensors:
            continue
        w, b = tensors[weight_key(area)].detach(), tensors[bias_key(area)].detach()
        for r, t in enumerate(blocks.ids[area]):
            out[("b", t)] = float(b[r])
            for src, a, _ in blocks.segments[area]:
                for c, source in enumerate(blocks.ids[src]):
                    out[("w", t, source)] = float(w[r, a + c])
    return out


def graph_entries(graph: Graph) -> dict[tuple, float]:
    """The graph's weights and biases keyed as :func:`by_ids` keys the compiled ones."""
    out = {}
    for t, n in graph.neurons.items():
        if n.role != "input":
            out[("b", t)] = n.bias
            out.update({("w", t, s): w for s, w in graph.incoming(t).items()})
    return out


def edit_delete_neuron(graph, s, rng):
    graph.delete_neuron(graph.area_ids("layer2")[1])


def edit_add_neuron(graph, s, rng):
    add_neuron(graph, "layer2", projections_of(s.network, graph), s, rng, norm=0.02)


def edit_delete_and_add(graph, s, rng):
    graph.delete_neuron(graph.area_ids("layer1")[0])
    edit_add_neuron(graph, s, rng)


def edit_add_layer(graph, s, rng):
    add_layer(graph, s, rng)


def edit_delete_middle_layer(graph, s, rng):
    delete_layer(graph, "layer2", s)


def edit_delete_first_layer(graph, s, rng):
    delete_layer(graph, "layer1", s)


def edit_feedback_area(graph, s, rng):
    graph.delete_neuron(graph.area_ids("a")[1])
    add_neuron(graph, "b", projections_of(s.network, graph), s, rng, norm=0.02)


EDITS = {
    "delete-neuron": ("stack-output", edit_delete_neuron),
    "add-neuron": ("stack-output", edit_add_neuron),
    "delete-and-add": ("stack-all", edit_delete_and_add),
    "add-layer-all": ("stack-all", edit_add_layer),
    "add-layer-output": ("stack-output", edit_add_layer),
    "delete-middle-layer": ("stack-output", edit_delete_middle_layer),
    "delete-first-layer": ("stack-output", edit_delete_first_layer),
    "delete-middle-layer-all": ("stack-all", edit_delete_middle_layer),
    "add-layer-recurrent": ("stack-recurrent", edit_add_layer),
    "feedback-areas": ("feedback", edit_feedback_area),
}


def resync_case(kind: str):
    """(scenario, graph, blocks): the feedback areas, or a stack of 3 layers of 3 that can grow in depth."""
    if kind == "feedback":
        return setup("feedback-tanh")
    recurrent = kind == "stack-recurrent"
    stack = {"layers": 3, "size": 3, "skips": "all" if recurrent else kind.split("-")[1], "recurrent": recurrent}
    s = make_scenario({"stack": stack}, EASY if recurrent else None, depth={"enabled": True})
    rng = np.random.default_rng(6)
    graph = build_graph(s, N_INPUT, N_OUTPUT, rng)
    randomize(graph, rng)
    return s, graph, compile_graph(graph, s)


@pytest.mark.parametrize("edit", EDITS)
def test_resync_keeps_trained_survivors_reads_new_entries_and_moves_memories(edit: str) -> None:
    kind, apply_edit = EDITS[edit]
    s, graph, blocks = resync_case(kind)
    rng = np.random.default_rng(7)
    with torch.no_grad():  # "training": the blocks move ahead of the graph
        for p in blocks.params.values():
            p.add_(torch.from_numpy(rng.normal(0.0, 0.1, tuple(p.shape))))
    memory = {k: torch.from_numpy(rng.uniform(1.0, 2.0, tuple(p.shape))) for k, p in blocks.params.items()}
    trained, remembered = by_ids(blocks, blocks.params), by_ids(blocks, memory)
    old_keys = set(blocks.params)
    apply_edit(graph, s, np.random.default_rng(8))
    moves = blocks.resync(graph, projections_of(s.network, graph))
    from_graph = graph_entries(graph)
    moved = {k: moves.apply(k, m, -1.0) for k, m in memory.items() if k in blocks.params}
    now, now_memory = by_ids(blocks, blocks.params), by_ids(blocks, moved)
    assert now.keys() == from_graph.keys()  # one compiled entry per graph connection and bias
    kept = now.keys() & trained.keys()
    assert kept and now.keys() != trained.keys()  # the edit kept some entries and changed others
    for entry, value in now.items():
        if entry in kept:
            assert value == trained[entry] != from_graph[entry], entry
            assert now_memory[entry] == remembered[entry], entry
        else:
            assert value == from_graph[entry], entry
            if _key_of(blocks, entry) in old_keys:
                assert now_memory[entry] == -1.0, entry
    for key, p in blocks.params.items():
        assert p.requires_grad and p.dtype == F64
        if key in moved:
            assert moved[key].shape == p.shape
        else:
            assert (moves.rows[key] == -1).all()  # a new area: nothing to move


def _key_of(blocks: Blocks, entry: tuple) -> str:
    area = next(a for a, ids in blocks.ids.items() if entry[1] in ids)
    return (weight_key if entry[0] == "w" else bias_key)(area)


def test_resync_without_an_edit_keeps_every_tensor() -> None:
    s, graph, blocks = setup("feedback-tanh")
    before = dict(blocks.params)
    moves = blocks.resync(graph, projections_of(s.network, graph))
    for key, p in blocks.params.items():
        assert p is before[key]
        assert (moves.rows[key] == np.arange(p.shape[0])).all()


@pytest.mark.parametrize("case", ["stack-output-relu", "stack-all-tanh"])
def test_the_original_norm_is_the_char_rnn_codes_generalised_to_areas(case) -> None:
    """0.5 * (sum |w| into the output + 4 * sum |w| into each hidden area / its size), neuron by neuron."""
    s, graph, blocks = setup(case)
    norms = blocks.outgoing_norms("original")
    for area, values in norms.items():
        want = []
        for i in graph.area_ids(area):
            total = 0.0
            for target, w in graph.outgoing(i).items():
                t_area = graph.neurons[target].area
                total += 0.5 * abs(w) if t_area == "output" else 0.5 * 4 * abs(w) / len(graph.area_ids(t_area))
            want.append(total)
        np.testing.assert_allclose(values, want, rtol=1e-12)
    assert any((norms[a] != blocks.outgoing_norms("text")[a]).any() for a in norms)


def test_a_new_neuron_starts_at_its_norm_under_either_definition() -> None:
    for norm in ("text", "original"):
        s = make_scenario({"stack": {"layers": 2, "size": 3, "skips": "all"}}, width={"norm": norm})
        graph = build_graph(s, N_INPUT, N_OUTPUT, np.random.default_rng(0))
        projections = projections_of(s.network, graph)
        nid = add_neuron(graph, "layer1", projections, s, np.random.default_rng(1), norm=0.02)
        blocks = Blocks(graph, projections, dtype=torch.float64, device="cpu")
        position = blocks.ids["layer1"].index(nid)
        assert blocks.outgoing_norms(norm)["layer1"][position] == pytest.approx(0.02, rel=1e-12)
