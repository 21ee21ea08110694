"""Tests for neurograph.urn.connectome: GraphML of the active network and the figures."""

from __future__ import annotations

import warnings

import igraph
import networkx as nx
import pytest
import torch

from neurograph.compile import compile_graph
from neurograph.urn.analysis import analyse
from neurograph.urn.connectome import connectome_graph, plot_connectome, write_connectome, write_figures
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
