"""Tests for neurograph.urn.analysis on a hand-built network whose layers are known.

The network (I = 3, ReLU, linear outputs), inputs always positive::

    i0, i1 --> ha --> hb --> o        forward chain: layers 0 -> 1 -> 2 -> 3
    i0 -----> hc                      hc: layer 1
    ha -----> hc                      lateral (1 -> 1)
    hb -----> ha                      backward (2 -> 1)
    hc -----> o (0.05)                below the weight threshold
    i0 -----> hd --> o                hd: bias -2, never active; its synapses leave the active network
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neurograph.compile import compile_graph
from neurograph.graph import Graph
import neurograph.urn.analysis as analysis_module
from neurograph.urn.analysis import (
    ABLATIONS,
    DIRECTIONS,
    ablation_check,
    ablations,
    active_synapses,
    analyse,
    edge_directions,
    first_active_layer,
)
from neurograph.urn.geometry import mean_pair_distance
from neurograph.urn.model import Dynamics

F64 = torch.float64
DYN = Dynamics(iterations=3, update="plain", activation="relu", output_activation="linear")
POSITIONS = {
    "i0": (0.0, 0.0, 1.0),
    "i1": (1.0, 0.0, 1.0),
    "ha": (0.0, 0.0, 2.0),
    "hb": (0.0, 0.0, 3.0),
    "hc": (3.0, 4.0, 2.0),
    "hd": (5.0, 5.0, 2.0),
    "o": (0.0, 1.0, 4.0),
}
SYNAPSES = [  # source, target, weight
    ("i0", "ha", 1.0),
    ("i1", "ha", 1.0),
    ("ha", "hb", 2.0),
    ("hb", "o", 1.5),
    ("i0", "hc", 0.5),
    ("ha", "hc", 0.3),
    ("hb", "ha", 0.2),
    ("hc", "o", 0.05),
    ("i0", "hd", 0.5),
    ("hd", "o", 3.0),
]
BETA = 4.0


def hand_built() -> tuple[Graph, dict[str, int]]:
    g = Graph()
    names = {}
    for name, pos in POSITIONS.items():
        role = "input" if name.startswith("i") else "output" if name == "o" else "hidden"
        names[name] = g.add_neuron(role, position=pos, bias=-2.0 if name == "hd" else 0.0).id
    for s, t, w in SYNAPSES:
        g.connect(names[s], names[t], w)
    return g, names


def samples() -> torch.Tensor:
    return torch.tensor(np.random.default_rng(0).uniform(0.5, 1.0, size=(20, 2)), dtype=F64)


@pytest.fixture
def analysed():
    graph, names = hand_built()
    c = compile_graph(graph, dtype=F64)
    a = analyse(c, graph, samples(), DYN, activity_threshold=1e-9, weight_threshold=0.1, beta=BETA)
    return graph, names, c, a


def layer_of(a, names):
    return {n: int(a.layer[a.ids.index(i)]) for n, i in names.items()}


def test_layers_are_first_active_iterations(analysed):
    graph, names, c, a = analysed
    assert layer_of(a, names) == {"i0": 0, "i1": 0, "ha": 1, "hb": 2, "hc": 1, "hd": -1, "o": 3}
    assert a.hidden_layers == [2, 1, 0]
    assert a.depth == 2 and a.path_depth == 2
    assert a.n_active_hidden == 3 and int(a.active.sum()) == 6
    assert sorted(a.active_ids("hidden")) == sorted(names[n] for n in ("ha", "hb", "hc"))


def test_edge_directions_and_counts(analysed):
    graph, names, c, a = analysed
    edges = zip(a.sources.tolist(), a.targets.tolist(), a.directions.tolist())
    found = {(a.ids[s], a.ids[t]): DIRECTIONS[d] for s, t, d in edges}
    n = names
    assert found == {
        (n["i0"], n["ha"]): "forward",
        (n["i1"], n["ha"]): "forward",
        (n["ha"], n["hb"]): "forward",
        (n["hb"], n["o"]): "forward",
        (n["i0"], n["hc"]): "forward",
        (n["ha"], n["hc"]): "lateral",
        (n["hb"], n["ha"]): "backward",
    }
    assert a.edge_counts == {"forward": 5, "backward": 1, "lateral": 1}
    assert a.forward_fraction == pytest.approx(5 / 7)


def test_synapse_lengths_from_positions(analysed):
    graph, names, c, a = analysed
    def length(s, t):
        (x1, y1, z1), (x2, y2, z2) = POSITIONS[s], POSITIONS[t]
        return float(np.sqrt((x1 - x2) ** 2 + (y1 - y2) ** 2 + BETA * (z1 - z2) ** 2))
    expected = [length(s, t) for s, t, w in SYNAPSES if w > 0.1 and "hd" not in (s, t)]
    assert sorted(a.lengths.tolist()) == pytest.approx(sorted(expected))
    assert a.mean_synapse_length == pytest.approx(np.mean(expected))


def test_ablation_of_inactive_neurons_leaves_outputs_unchanged(analysed):
    graph, names, c, a = analysed
    x = samples()
    y = torch.zeros(len(x), dtype=torch.int64)
    keep = active_synapses(c, a.active, 0.0)
    k_hd, k_o = a.ids.index(names["hd"]), a.ids.index(names["o"])
    assert not keep[k_o, k_hd] and c.weight[k_o, k_hd] == 3.0  # hd -> o is zeroed
    result = ablation_check(c, keep, x, y, DYN)
    assert result["max_output_change"] == 0.0
    assert result["zeroed_synapses"] == 2  # i0 -> hd, hd -> o
    # also zeroing the weak hc -> o synapse changes the output by 0.05 * hc
    strong = ablation_check(c, active_synapses(c, a.active, 0.1), x, y, DYN)
    assert strong["max_output_change"] > 0.0 and strong["zeroed_synapses"] == 3


def test_first_active_layer_and_edge_directions_helpers():
    peak = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.5, 0.0, 0.0], [0.0, 0.5, 0.2, 0.0]])
    assert first_active_layer(peak, 0.1).tolist() == [0, 1, 2, -1]
    layer = np.array([0, 1, 1, 2])
    assert edge_directions(layer, np.array([1, 2, 0, 3]), np.array([0, 1, 3, 3])).tolist() == [0, 2, 1, 2]


def test_summary_is_flat_and_json_able(analysed):
    import json

    summary = analysed[3].summary()
    json.dumps(summary)
    assert set(summary) >= {"active", "layers", "depth", "path_depth", "edges", "mean_synapse_length"}


# ------------------------------------------------- strict figures against naive re-computation
def naive_history(graph: Graph, x: list[float], dyn: Dynamics, weights: dict | None = None) -> list[dict[int, float]]:
    """N^(0..I) by neuron id, one neuron and one synapse at a time; ``weights``: (source, target) -> w to use."""
    inputs = dict(zip(graph.ids("input"), x))
    n = {i: inputs.get(i, 0.0) for i in graph.neurons}
    history = [n]
    for _ in range(dyn.iterations):
        new = {}
        for i, neuron in graph.neurons.items():
            incoming = graph.incoming(i) if weights is None else {s: w for (s, t), w in weights.items() if t == i}
            pre = neuron.bias + sum(w * n[j] for j, w in incoming.items())
            value = pre if neuron.role == "output" else max(pre, 0.0)  # ReLU, linear outputs
            if dyn.update == "residual_output" and neuron.role == "output":
                value += n[i]
            new[i] = value
        history.append(new)
        n = new
    return history


def test_active_per_iteration_counts_every_firing(analysed):
    graph, names, c, a = analysed
    histories = [naive_history(graph, x, DYN) for x in samples().tolist()]
    hidden = graph.ids("hidden")
    fires = {(i, l): any(abs(h[l][i]) > 1e-9 for h in histories) for i in hidden for l in range(1, 4)}
    assert a.active_per_iteration == [sum(fires[i, l] for i in hidden) for l in range(1, 4)]
    assert a.multi_iteration == sum(sum(fires[i, l] for l in range(1, 4)) > 1 for i in hidden)
    assert a.multi_iteration > 0  # ha fires at 1 and again at 3 (through hb -> ha): not an MLP
    assert sum(a.active_per_iteration) > sum(a.hidden_layers)  # first firings alone undercount


def test_z_directions_and_fractions_by_layer_and_by_z(analysed):
    graph, names, c, a = analysed
    n = {i: name for name, i in names.items()}
    by_z = {"forward": 0, "backward": 0, "lateral": 0}
    for s, t, w in SYNAPSES:
        if w > 0.1 and "hd" not in (s, t):
            dz = POSITIONS[t][2] - POSITIONS[s][2]
            by_z["forward" if dz > 0 else "backward" if dz < 0 else "lateral"] += 1
    assert a.z_edge_counts == by_z
    summary = a.summary()
    assert summary["edges_z"] == by_z and summary["synapses"] == 7
    assert summary["fractions"]["z"] == pytest.approx({k: v / 7 for k, v in by_z.items()})
    assert summary["fractions"]["layer"] == pytest.approx({"forward": 5 / 7, "backward": 1 / 7, "lateral": 1 / 7})
    assert summary["forward_fraction_z"] == pytest.approx(by_z["forward"] / 7)
    found = {(n[a.ids[s]], n[a.ids[t]]): DIRECTIONS[d] for s, t, d in zip(a.sources, a.targets, a.z_directions)}
    assert found[("hb", "ha")] == "backward" and found[("ha", "hc")] == "lateral" and found[("hb", "o")] == "forward"


def test_random_pair_length_is_the_mean_over_distinct_active_pairs(analysed):
    graph, names, c, a = analysed
    active = [POSITIONS[name] for name in ("i0", "i1", "ha", "hb", "hc", "o")]
    pairs = [
        math.sqrt((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 + BETA * (p[2] - q[2]) ** 2)
        for k, p in enumerate(active)
        for j, q in enumerate(active)
        if k != j
    ]
    assert a.random_pair_length == pytest.approx(sum(pairs) / len(pairs))
    summary = a.summary()
    assert summary["length_ratio"] == pytest.approx(a.mean_synapse_length / (sum(pairs) / len(pairs)))


def test_mean_pair_distance_in_blocks_equals_all_at_once():
    p = np.random.default_rng(3).uniform(0, 9, size=(57, 3))
    d = np.sqrt(((p[:, None, :] - p[None, :, :]) ** 2 * np.array([1.0, 1.0, 2.5])).sum(axis=2))
    assert mean_pair_distance(p, 2.5, block_values=100) == pytest.approx(d.sum() / (57 * 56))
    assert mean_pair_distance(p[:1], 2.5) == 0.0


def test_edges_found_in_row_blocks_equal_all_at_once(analysed, monkeypatch):
    graph, names, c, a = analysed
    monkeypatch.setattr(analysis_module, "ROW_BLOCK_VALUES", 3)  # one target row at a time
    b = analyse(c, graph, samples(), DYN, activity_threshold=1e-9, weight_threshold=0.1, beta=BETA)
    assert (b.targets.tolist(), b.sources.tolist(), b.weights.tolist()) == (
        a.targets.tolist(), a.sources.tolist(), a.weights.tolist()
    )  # fmt: skip
    assert a.targets.dtype == np.int32 and a.directions.dtype == np.int8


def naive_keep(a, name: str) -> dict[tuple[int, int], bool]:
    """(source id, target id) -> kept, from the analysis' per-neuron layers and the definitions in words."""
    keep = {}
    role = dict(zip(a.ids, a.roles))
    layer = dict(zip(a.ids, a.layer.tolist()))
    for s, t, w in zip(a.sources.tolist(), a.targets.tolist(), a.weights.tolist()):
        src, tgt = a.ids[s], a.ids[t]
        up = layer[tgt] - layer[src]
        if name == "synapses":
            keep[src, tgt] = True
        elif name == "forward":
            keep[src, tgt] = up > 0
        elif name == "adjacent":
            keep[src, tgt] = up == 1 or (up > 0 and role[tgt] == "output" and a.accumulating_outputs)
    return keep


def naive_ablation(graph: Graph, a, name: str, x: torch.Tensor, y: torch.Tensor, dyn: Dynamics) -> dict:
    """Largest logit change and accuracy with only the kept synapses, by plain neuron-by-neuron forwards."""
    active = set(a.active_ids())
    full = {(c.source, c.target): c.weight for c in graph.connections()}
    if name == "neurons":
        masked = {k: w for k, w in full.items() if k[0] in active and k[1] in active}
    else:
        kept = naive_keep(a, name)
        masked = {k: w for k, w in full.items() if kept.get(k, False)}
    outputs = graph.ids("output")
    change, right = 0.0, 0
    for xs, label in zip(x.tolist(), y.tolist()):
        before = [naive_history(graph, xs, dyn)[-1][o] for o in outputs]
        after = [naive_history(graph, xs, dyn, masked)[-1][o] for o in outputs]
        change = max(change, max(abs(p - q) for p, q in zip(before, after)))
        right += after[label] > max(v for k, v in enumerate(after) if k != label)
    return {"max_output_change": change, "accuracy_after": right / len(x)}


@pytest.mark.parametrize("update", ["plain", "residual_output"])
def test_ablations_equal_plain_forwards_with_masked_weights(update):
    dyn = Dynamics(iterations=3, update=update, activation="relu", output_activation="linear")
    graph, names = hand_built()
    graph.add_neuron("output", position=(1.0, 1.0, 4.0))  # a second class
    o2 = graph.ids("output")[-1]
    for s, w in (("ha", -0.7), ("hc", 0.9), ("i1", 0.4)):
        graph.connect(names[s], o2, w)
    c = compile_graph(graph, dtype=F64)
    x = samples()[:8]
    y = torch.tensor([0, 1] * 4)
    a = analyse(c, graph, x, dyn, activity_threshold=1e-9, weight_threshold=0.1, beta=BETA)
    results = ablations(c, a, x, y, dyn, weight_threshold=0.1)
    assert set(results) == set(ABLATIONS)
    for name in ABLATIONS:
        naive = naive_ablation(graph, a, name, x, y, dyn)
        assert results[name]["max_output_change"] == pytest.approx(naive["max_output_change"], abs=1e-12)
        assert results[name]["accuracy_after"] == pytest.approx(naive["accuracy_after"])
    kept = {name: results[name]["kept_synapses"] for name in ABLATIONS}
    assert kept["synapses"] == len(a.weights) and kept["forward"] == a.edge_counts["forward"]
    assert kept["adjacent"] == int(a.adjacent.sum())
    # ha, hc (layer 1) and i1 (0) -> o2 (3) skip layers, unless the outputs accumulate (eq. 6)
    assert kept["adjacent"] == kept["forward"] - (3 if update == "plain" else 0)
    assert results["forward"]["max_output_change"] > 0  # the backward hb -> ha carries signal


def test_ablations_of_a_trained_urn_equal_plain_forwards():
    """The same on a small trained URN, whose active network comes from training, not by hand."""
    from neurograph.urn.scenario import URNScenario
    from neurograph.urn.train import URNTrainer

    scenario = URNScenario.model_validate(
        {
            "model": "urn",
            "name": "tiny",
            "network": {"size": 14, "iterations": 3},
            "loss": {"c_w": 1e-3, "c_n": 1e-3, "activity_reduction": "mean"},
            "optimizer": {"kind": "adam", "lr": 0.05},
            "training": {"batch_size": 20},
            "analysis": {"samples": 60, "weight_threshold": 0.05},
            "phases": [{"task": {"kind": "spheres", "dim": 3, "train": 60, "test": 12, "radii": [1, 2]}, "epochs": 4}],
        }
    )
    trainer = URNTrainer(scenario)
    trainer.run()  # its final snapshot wrote the trained weights back to the graph
    a = trainer.analyse(0)
    split = trainer.splits[0]
    results = trainer.ablation(0)
    x, y = split.x_test.double(), split.y_test
    assert results["forward"]["max_output_change"] > 0  # not a trivial network: dropping synapses matters
    for name in ABLATIONS:
        naive = naive_ablation(trainer.graph, a, name, x, y, trainer.dynamics)
        assert results[name]["max_output_change"] == pytest.approx(naive["max_output_change"], rel=1e-4, abs=1e-5)
        assert results[name]["accuracy_after"] == pytest.approx(naive["accuracy_after"])
