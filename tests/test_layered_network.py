"""Tests for neurograph.layered.network: the starting area graph, and structural edits
(add_neuron, add_layer, delete_layer) that change the network's function by no more
than the outgoing weights of what they add or remove, with their events and fossils."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurograph.graph import Graph
from neurograph.layered.blocks import Blocks, forward
from neurograph.layered.network import (
    add_layer,
    add_neuron,
    build_graph,
    delete_layer,
    layer_names,
    projections_of,
    stack_projections,
)
from neurograph.layered.scenario import LayeredScenario

F64 = torch.float64
N_INPUT, N_OUTPUT = 4, 3


def make_scenario(network: dict, *, task: dict | None = None, **extra) -> LayeredScenario:
    return LayeredScenario.model_validate({
        "model": "layered", "name": "network", "dtype": "float64", "network": network,
        "phases": [{"task": task or {"kind": "parity", "bits": N_INPUT}, "cycles": 10}], **extra,
    })  # fmt: skip


def stack(skips: str, *, layers: int = 3, size: int = 3, **extra) -> LayeredScenario:
    return make_scenario({"stack": {"layers": layers, "size": size, "skips": skips}}, **extra)


def randomize(graph: Graph, rng: np.random.Generator, std: float = 0.8) -> None:
    """Every existing connection and every non-input bias set to O(1) random values."""
    for i, n in graph.neurons.items():
        if n.role == "input":
            continue
        n.bias = float(rng.normal(0.0, 0.5))
        sources = list(graph.incoming(i))
        graph.set_weights([i], sources, rng.normal(0.0, std, (1, len(sources))))


def built(s: LayeredScenario, seed: int = 0) -> tuple[Graph, Blocks]:
    rng = np.random.default_rng(seed)
    graph = build_graph(s, N_INPUT, N_OUTPUT, rng)
    randomize(graph, rng)
    return graph, Blocks(graph, projections_of(s.network, graph), dtype=F64, device="cpu")


def logits(blocks: Blocks, s: LayeredScenario, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return forward(blocks, x, s.network.activation)["output"]


def inputs(seed: int = 1, n: int = 16) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).uniform(-1.0, 1.0, (n, N_INPUT)))


def change_bound(graph: Graph, perturbed: list[int]) -> np.ndarray:
    """(n_output,) bound on |change of each logit| when ``perturbed`` neurons (|activity| <= 1)
    appear or vanish in a feed-forward graph: each later neuron's change is at most
    sum |w| * (its sources' changes), as tanh and relu are 1-Lipschitz and the output is linear."""
    delta = dict.fromkeys(perturbed, 1.0)
    for area in list(graph.areas)[1:]:
        for i in graph.area_ids(area):
            if i not in delta:
                delta[i] = sum(abs(w) * delta.get(s, 0.0) for s, w in graph.incoming(i).items())
    return np.array([delta[i] for i in graph.area_ids("output")])


def outgoing_l1(graph: Graph, ids: list[int]) -> float:
    return sum(abs(w) for i in ids for w in graph.outgoing(i).values())


def pairs_of(graph: Graph) -> set[tuple[int, int]]:
    return {(s, t) for t in graph.neurons for s in graph.incoming(t)}


# ------------------------------------------------------------ the start
@pytest.mark.parametrize(
    ("skips", "want"),
    [
        ("none", [("input", "l1"), ("l1", "l2"), ("l2", "l3"), ("l3", "output")]),
        ("output", [("input", "l1"), ("l1", "l2"), ("l2", "l3"), ("l1", "output"), ("l2", "output"),
                    ("l3", "output")]),  # fmt: skip
        ("all", [("input", "l1"), ("input", "l2"), ("l1", "l2"), ("input", "l3"), ("l1", "l3"), ("l2", "l3"),
                 ("l1", "output"), ("l2", "output"), ("l3", "output")]),  # fmt: skip
    ],
)
def test_stack_projections_by_skips(skips: str, want: list) -> None:
    assert stack_projections(["l1", "l2", "l3"], skips, recurrent=False) == want
    with_self = stack_projections(["l1", "l2", "l3"], skips, recurrent=True)
    assert sorted(with_self) == sorted(want + [("l1", "l1"), ("l2", "l2"), ("l3", "l3")])


@pytest.mark.parametrize(
    "network",
    [
        {"stack": {"layers": 3, "size": 2, "skips": "all"}},
        {"stack": {"layers": 2, "size": 3, "skips": "output"}},
        {"areas": [{"name": "v1", "size": 2}, {"name": "v2", "size": 3}],
         "projections": ["input -> v1", "v1 -> v2", "v2 -> v1", "v2 -> output", "v1 -> output"]},  # fmt: skip
    ],
)
def test_build_graph_wires_exactly_the_projections(network: dict) -> None:
    task = {"kind": "easy"} if "areas" in network else None
    s = make_scenario(network, task=task)
    graph = build_graph(s, N_INPUT, N_OUTPUT, np.random.default_rng(0))
    hidden = [a for a in graph.areas if a not in ("input", "output")]
    sizes = {a["name"]: a["size"] for a in network["areas"]} if "areas" in network else {
        f"layer{k + 1}": network["stack"]["size"] for k in range(network["stack"]["layers"])}  # fmt: skip
    assert list(graph.areas) == ["input", *sizes, "output"] and hidden == layer_names(graph)
    assert {a: len(graph.area_ids(a)) for a in hidden} == sizes
    assert len(graph.area_ids("input")) == N_INPUT and len(graph.area_ids("output")) == N_OUTPUT
    want = {(s_, t) for src, dst in projections_of(s.network, graph)
            for s_ in graph.area_ids(src) for t in graph.area_ids(dst)}  # fmt: skip
    assert pairs_of(graph) == want
    for area in hidden:
        for i in graph.area_ids(area):
            assert graph.neurons[i].role == "hidden"
            assert outgoing_l1(graph, [i]) == pytest.approx(s.width.new_norm * s.width.threshold, rel=1e-12)
    graph.check()


# ------------------------------------------------------------- add_layer
@pytest.mark.parametrize("skips", ["all", "output"])
def test_add_layer_changes_logits_by_at_most_its_outgoing_norm(skips: str) -> None:
    s = stack(skips, layers=2, depth={"enabled": True, "new_size": 2})
    graph, blocks = built(s)
    x = inputs()
    before = logits(blocks, s, x)
    graph.cycle = 7
    name = add_layer(graph, s, np.random.default_rng(3), reason="grow")
    blocks.resync(graph, projections_of(s.network, graph))
    after = logits(blocks, s, x)
    new = graph.area_ids(name)
    bound = s.depth.new_norm * s.depth.threshold
    assert name == "layer3" and list(graph.areas)[-2:] == [name, "output"] and len(new) == 2
    assert outgoing_l1(graph, new) == pytest.approx(bound, rel=1e-12)
    assert {t for i in new for t in graph.outgoing(i)} == set(graph.area_ids("output"))
    change = (after - before).abs()
    assert 0 < change.max() and (change.max(dim=0).values <= bound).all()
    h_new = forward(blocks, x, s.network.activation)[name].detach()  # the change is exactly what it adds
    w_out = torch.tensor([[graph.incoming(o)[i] for i in new] for o in graph.area_ids("output")], dtype=F64)
    torch.testing.assert_close(after - before, h_new @ w_out.T, rtol=0, atol=1e-12)


def test_add_layer_logs_the_area_and_its_neurons() -> None:
    s = stack("output", layers=2, depth={"enabled": True, "new_size": 2})
    graph, _ = built(s)
    graph.cycle = 7
    start = len(graph.events)
    name = add_layer(graph, s, np.random.default_rng(3), reason="grow")
    events = graph.events[start:]
    assert (events[0].kind, events[0].area, events[0].neuron, events[0].reason) == ("add_area", name, -1, "grow")
    assert events[0].to_dict()["area"] == name
    added = [e.neuron for e in events if e.kind == "add"]
    assert added == graph.area_ids(name) and all(graph.neurons[i].area == name for i in added)
    area = graph.areas[name]
    assert (area.born, area.kind, area.grown_from) == (7, "layer", "layer2")
    graph.cycle = 10
    assert graph.area_age(name) == 3


def test_add_layer_never_reuses_a_deleted_layers_name() -> None:
    s = stack("all", layers=2, depth={"enabled": True})
    graph, _ = built(s)
    delete_layer(graph, "layer2", s)
    assert add_layer(graph, s, np.random.default_rng(0)) == "layer3"
    delete_layer(graph, "layer3", s)
    assert add_layer(graph, s, np.random.default_rng(0)) == "layer4"
    assert layer_names(graph) == ["layer1", "layer4"] and set(graph.dead_areas) == {"layer2", "layer3"}


# ---------------------------------------------------------- delete_layer
@pytest.mark.parametrize("skips", ["all", "output"])
@pytest.mark.parametrize("layer", ["layer1", "layer2", "layer3"])
def test_delete_layer_of_small_norm_changes_logits_by_about_that_norm(skips: str, layer: str) -> None:
    eps = 1e-3
    s = stack(skips, depth={"enabled": True})
    graph, _ = built(s)
    ids = graph.area_ids(layer)
    targets = sorted({t for i in ids for t in graph.outgoing(i)})
    w = graph.block(targets, ids)[0]
    graph.set_weights(targets, ids, w * (eps / np.abs(w).sum()))  # the layer's outgoing L1 is eps
    blocks = Blocks(graph, projections_of(s.network, graph), dtype=F64, device="cpu")
    bound = change_bound(graph, ids)
    x = inputs()
    before = logits(blocks, s, x)
    old = set(projections_of(s.network, graph))
    delete_layer(graph, layer, s)
    blocks.resync(graph, projections_of(s.network, graph))
    after = logits(blocks, s, x)
    change = (after - before).abs().max(dim=0).values.numpy()
    assert change.max() > 0 and (change <= bound).all()
    assert bound.max() <= 20 * eps  # "about eps": the rest of the network amplifies it little
    bridges = set(projections_of(s.network, graph)) - old
    if skips == "all" or layer == "layer3":
        assert not bridges  # every path around the layer already existed
    else:
        assert bridges == {("input" if layer == "layer1" else "layer1", "layer2" if layer == "layer1" else "layer3")}
    for src, dst in bridges:
        weights, present = graph.block(graph.area_ids(dst), graph.area_ids(src))
        assert present.all() and not weights.any()


def test_delete_layer_logs_the_area_and_leaves_fossils_with_their_area() -> None:
    s = stack("output", graveyard=16, depth={"enabled": True})
    graph, _ = built(s)
    graph.cycle = 5
    ids = graph.area_ids("layer2")
    wiring = {i: (graph.incoming(i), graph.outgoing(i)) for i in ids}
    start = len(graph.events)
    fossils = delete_layer(graph, "layer2", s, reason="fade")
    events = graph.events[start:]
    assert [e.neuron for e in events if e.kind == "delete"] == ids
    area_events = [e for e in events if e.kind in ("add_area", "delete_area")]
    assert [(e.kind, e.area, e.age, e.reason, e.neuron) for e in area_events] == [
        ("delete_area", "layer2", 5, "fade", -1)
    ]
    assert [f.neuron.id for f in fossils] == ids and list(graph.graveyard)[-len(ids):] == fossils
    for f in fossils:
        assert (f.neuron.area, f.neuron.died, f.neuron.role) == ("layer2", 5, "hidden")
        assert graph.dead[f.neuron.id].area == "layer2"
        assert (dict(f.incoming), dict(f.outgoing)) == wiring[f.neuron.id]  # its weights at death
    assert "layer2" not in graph.areas and graph.dead_areas["layer2"].died == 5
    assert graph.area_age("layer2") == 5 and not graph.area_ids("layer2")
    graph.check()


# ------------------------------------------------------------ add_neuron
@pytest.mark.parametrize(
    ("skips", "area"), [("all", "layer1"), ("all", "layer3"), ("output", "layer2"), ("none", "layer1")]
)
def test_add_neuron_changes_logits_by_at_most_its_outgoing_norm(skips: str, area: str) -> None:
    norm = 0.01
    s = stack(skips)
    graph, blocks = built(s)
    x = inputs()
    before = logits(blocks, s, x)
    projections = projections_of(s.network, graph)
    nid = add_neuron(graph, area, projections, s, np.random.default_rng(4), norm=norm)
    blocks.resync(graph, projections_of(s.network, graph))
    after = logits(blocks, s, x)
    assert graph.neurons[nid].area == area and graph.neurons[nid].role == "hidden"
    assert outgoing_l1(graph, [nid]) == pytest.approx(norm, rel=1e-12)
    assert set(graph.incoming(nid)) == {i for src, dst in projections if dst == area for i in graph.area_ids(src)}
    assert set(graph.outgoing(nid)) == {i for src, dst in projections if src == area for i in graph.area_ids(dst)}
    change = (after - before).abs().max(dim=0).values.numpy()
    bound = change_bound(graph, [nid])
    assert change.max() > 0 and (change <= bound).all()
    assert bound.max() <= 20 * norm
    if area == "layer3":
        assert (change <= norm).all()  # a top-layer neuron feeds only the output


def test_add_neuron_in_a_recurrent_area_wires_its_self_connection() -> None:
    s = make_scenario({"areas": [{"name": "a", "size": 2}, {"name": "b", "size": 2}],
                       "projections": ["input -> a", "a -> b", "b -> a", "b -> b", "b -> output"]},
                      task={"kind": "easy"})  # fmt: skip
    graph = build_graph(s, N_INPUT, N_OUTPUT, np.random.default_rng(0))
    nid = add_neuron(graph, "b", projections_of(s.network, graph), s, np.random.default_rng(1), norm=0.02)
    b = graph.area_ids("b")
    assert set(graph.incoming(nid)) == set(graph.area_ids("a")) | set(b)
    assert set(graph.outgoing(nid)) == set(graph.area_ids("a")) | set(b) | set(graph.area_ids("output"))
    assert outgoing_l1(graph, [nid]) == pytest.approx(0.02, rel=1e-12)


def test_add_neuron_inherits_only_a_fossil_of_its_own_area() -> None:
    s = stack("all", width={"init": {"kind": "inherit"}})
    graph, _ = built(s)
    graph.cycle = 3
    projections = projections_of(s.network, graph)
    other = graph.delete_neuron(graph.area_ids("layer1")[0])
    heir = add_neuron(graph, "layer2", projections, s, np.random.default_rng(0), norm=0.02)
    assert graph.neurons[heir].inherited_from is None and other in graph.graveyard
    fossil = graph.delete_neuron(graph.area_ids("layer2")[0])
    heir = add_neuron(graph, "layer2", projections, s, np.random.default_rng(0), norm=0.02)
    assert graph.neurons[heir].inherited_from == fossil.neuron.id and fossil not in graph.graveyard
    assert graph.neurons[heir].bias == fossil.neuron.bias
    living = {k: w for k, w in fossil.incoming.items() if k in graph.neurons}
    assert {k: w for k, w in graph.incoming(heir).items() if k in living} == living
    out = graph.outgoing(heir)
    scale = 0.02 / sum(abs(w) for k, w in fossil.outgoing.items() if k in graph.neurons)
    for k, w in fossil.outgoing.items():
        if k in graph.neurons:
            assert out[k] == pytest.approx(w * scale, rel=1e-12)


@pytest.mark.parametrize("init", [{"kind": "random", "std": 5.0}, {"kind": "inherit", "std": 5.0}])
def test_add_neuron_draws_random_weights_with_width_init_std(init: dict) -> None:
    s = make_scenario({"init_std": 0.1, "stack": {"layers": 2, "size": 2, "skips": "all"}}, width={"init": init})
    graph = build_graph(s, 64, N_OUTPUT, np.random.default_rng(0))  # graveyard empty: inherit falls back to random
    nid = add_neuron(graph, "layer2", projections_of(s.network, graph), s, np.random.default_rng(1), norm=0.02)
    incoming = np.array(list(graph.incoming(nid).values()))
    assert len(incoming) == 64 + 2 and 2.5 < incoming.std() < 10.0
