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

import numpy as np
import pytest
import torch

from neurograph.compile import compile_graph
from neurograph.graph import Graph
from neurograph.urn.analysis import (
    DIRECTIONS,
    ablation_check,
    active_synapses,
    analyse,
    edge_directions,
    first_active_layer,
)
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
