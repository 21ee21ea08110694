"""Tests for neurograph.urn.connectome: GraphML of the active network and the figures."""

from __future__ import annotations

import warnings

import igraph
import networkx as nx
import numpy as np
import pytest
import torch

from neurograph.compile import compile_graph
from neurograph.graph import Graph
from neurograph.urn.analysis import analyse
from neurograph.urn.connectome import (
    connectome_graph,
    plot_connectome,
    weight_image,
    write_connectome,
    write_figures,
)
from test_urn_analysis import BETA, DYN, POSITIONS, hand_built, samples

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def network():
    graph, names = hand_built()
    graph.meta.update(scenario="hand", seed="3")
    c = compile_graph(graph, dtype=torch.float64)
    a = analyse(c, graph, samples(), DYN, activity_threshold=1e-9, weight_threshold=0.1, beta=BETA)
    return graph, names, a


def test_graphml_loads_with_the_expected_attributes(network, tmp_path):
    graph, names, a = network
    path = tmp_path / "connectome.graphml"
    write_connectome(path, graph, a)
    g = nx.read_graphml(path)
    assert isinstance(g, nx.DiGraph)
    assert g.graph["scenario"] == "hand" and g.graph["layers"] == "2/1/0" and g.graph["iterations"] == 3
    label = {n: graph.neurons[i].label for n, i in names.items()}
    assert set(g.nodes) == {label[n] for n in ("i0", "i1", "ha", "hb", "hc", "o")}  # hd is inactive
    ha = g.nodes[label["ha"]]
    assert (ha["x"], ha["y"], ha["z"]) == POSITIONS["ha"]
    assert ha["layer"] == 1 and ha["role"] == "hidden" and ha["neuron_id"] == names["ha"]
    assert g.nodes[label["o"]]["layer"] == 3 and g.nodes[label["o"]]["role"] == "output"
    edge = g.edges[label["hb"], label["ha"]]
    assert edge["direction"] == "backward" and edge["layer_diff"] == -1
    assert edge["z_direction"] == "backward" and edge["signed_weight"] == pytest.approx(0.2)
    assert edge["length"] == pytest.approx((BETA * 1.0) ** 0.5)
    assert g.edges[label["ha"], label["hc"]]["direction"] == "lateral"
    assert g.edges[label["i0"], label["ha"]]["direction"] == "forward"
    assert g.number_of_edges() == 7
    for _, _, data in g.edges(data=True):
        assert all(isinstance(v, (int, float, str)) for v in data.values())


def test_connectome_follows_the_export_schema(network, tmp_path):
    """An integer seed, and no node attribute named id: igraph keeps the labels as its ids."""
    graph, names, a = network
    path = tmp_path / "connectome.graphml"
    write_connectome(path, graph, a)
    assert nx.read_graphml(path).graph["seed"] == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ig = igraph.Graph.Read_GraphML(str(path))
    assert sorted(ig.vs["id"]) == sorted(nx.read_graphml(path).nodes)


def test_connectome_graph_matches_the_analysis(network):
    graph, names, a = network
    g = connectome_graph(graph, a)
    counts = {d: 0 for d in ("forward", "backward", "lateral")}
    for _, _, d in g.edges(data="direction"):
        counts[d] += 1
    assert counts == a.edge_counts


def test_figures_are_pngs(network, tmp_path):
    graph, names, a = network
    paths = write_figures(tmp_path / "figures", graph, a)
    assert [p.name for p in paths] == ["structure.png", "connectome.png"]
    assert all(p.read_bytes()[:8] == PNG for p in paths)
    plot_connectome(tmp_path / "top.png", graph, a, projection="xy")
    assert (tmp_path / "top.png").read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="projection"):
        plot_connectome(tmp_path / "bad.png", graph, a, projection="xw")


def test_connectome_keeps_the_strongest_synapses_up_to_the_cap(network, tmp_path):
    graph, names, a = network
    sizes = write_connectome(tmp_path / "c.graphml", graph, a, max_edges=3)
    assert sizes == {"synapses": 7, "synapses_written": 3}
    g = nx.read_graphml(tmp_path / "c.graphml")
    assert g.graph["synapses"] == 7 and g.graph["synapses_written"] == 3
    strongest = sorted((abs(w) for w in a.weights.tolist()), reverse=True)[:3]
    assert sorted((d for _, _, d in g.edges(data="weight")), reverse=True) == pytest.approx(strongest)
    assert g.number_of_nodes() == 6  # every active neuron, even those whose synapses were cut
    same = connectome_graph(graph, a, max_edges=3)
    assert {(u, v): d for u, v, d in same.edges(data=True)} == {(u, v): d for u, v, d in g.edges(data=True)}


def test_written_connectome_equals_the_networkx_graph(network, tmp_path):
    graph, names, a = network
    write_connectome(tmp_path / "c.graphml", graph, a)
    g, h = nx.read_graphml(tmp_path / "c.graphml"), connectome_graph(graph, a)
    assert {k: g.graph[k] for k in h.graph} == h.graph
    assert dict(g.nodes(data=True)) == dict(h.nodes(data=True))
    assert {(u, v): d for u, v, d in g.edges(data=True)} == {(u, v): d for u, v, d in h.edges(data=True)}


def test_weight_image_pools_blocks_to_their_largest_weight(monkeypatch):
    import neurograph.urn.connectome as connectome

    rng = np.random.default_rng(2)
    g = Graph()
    ids = [g.add_neuron("hidden").id for _ in range(10)]
    w = rng.normal(size=(10, 10))
    g.wire(ids, ids, w)
    monkeypatch.setattr(connectome, "ROW_BLOCK_VALUES", 25)  # several row blocks
    image, pool = weight_image(g, ids, pixels=4)
    assert pool == 3 and image.shape == (4, 4)
    for r in range(4):
        for c in range(4):
            block = w[3 * r : 3 * r + 3, 3 * c : 3 * c + 3]
            assert image[r, c] == block.flat[np.abs(block).argmax()]
    exact, one = weight_image(g, ids, pixels=10)
    assert one == 1 and np.array_equal(exact, w)


def test_figures_draw_a_capped_dense_network(tmp_path):
    graph, names = hand_built()
    c = compile_graph(graph, dtype=torch.float64)
    a = analyse(c, graph, samples(), DYN, activity_threshold=1e-9, weight_threshold=0.1, beta=BETA)
    plot_connectome(tmp_path / "cap.png", graph, a, max_drawn=2, by="layer")
    assert (tmp_path / "cap.png").read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="by"):
        plot_connectome(tmp_path / "bad.png", graph, a, by="depth")
