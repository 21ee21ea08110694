"""Tests for neurograph.graphml_writer: the streamed file is the one networkx writes."""

from __future__ import annotations

import io

import networkx as nx
import numpy as np
import pytest

import neurograph.graphml_writer as gw
from neurograph.graph import Graph
from neurograph.graphml import read_graphml, to_networkx, write_graphml
from neurograph.graphml_writer import write_graphml_columns


def parsed(data: bytes) -> nx.DiGraph:
    return nx.read_graphml(io.BytesIO(data))


def same_graph(a: nx.DiGraph, b: nx.DiGraph) -> None:
    assert a.graph == b.graph
    assert dict(a.nodes(data=True)) == dict(b.nodes(data=True))
    assert {(u, v): d for u, v, d in a.edges(data=True)} == {(u, v): d for u, v, d in b.edges(data=True)}


def grown_graph() -> Graph:
    """Every feature a file holds: dead neurons, late and inherited connections, odd meta text."""
    rng = np.random.default_rng(0)
    g = Graph(graveyard_size=4)
    g.meta.update(scenario='a&b <"c">', seed="7", note="x'y")
    ins = [g.add_neuron("input", position=(k, 0, 1)).id for k in range(3)]
    hid = [g.add_neuron("hidden", bias=0.1 * k, tags={"t"} if k == 1 else ()).id for k in range(5)]
    out = [g.add_neuron("output").id for _ in range(2)]
    g.wire(hid, ins, rng.normal(size=(5, 3)))
    g.wire(out, hid, rng.normal(size=(2, 5)))
    g.cycle = 4
    g.delete_neuron(hid[0], reason="test")
    child = g.add_neuron("hidden", inherited_from=hid[0]).id
    g.connect(ins[0], child, 0.25, inherited_from=hid[0])
    g.connect(child, out[0], -1 / 3)
    g.cycle = 9
    return g


@pytest.mark.parametrize("include_dead", [False, True])
def test_write_graphml_is_networkx_file(tmp_path, include_dead):
    g = grown_graph()
    reserve = [g.ids("hidden")[1]]
    write_graphml(g, tmp_path / "stream.graphml", reserve=reserve, include_dead=include_dead)
    buffer = io.BytesIO()
    nx.write_graphml(to_networkx(g, reserve=reserve, include_dead=include_dead), buffer, named_key_ids=True)
    same_graph(nx.read_graphml(tmp_path / "stream.graphml"), parsed(buffer.getvalue()))
    back = read_graphml(tmp_path / "stream.graphml")  # and neurograph's own reader rebuilds the graph
    assert back.ids() == g.ids() and back.num_connections() == g.num_connections()
    for c in g.connections():
        assert back.connection(c.source, c.target) == c  # exact weights, births, origins


def test_connection_arrays_match_connections():
    g = grown_graph()
    ids, c = g.connection_arrays()
    listed = [
        (ids[s], ids[t], w, b, None if i < 0 else i)
        for s, t, w, b, i in zip(*(c[k].tolist() for k in ("source", "target", "weight", "born", "inherited_from")))
    ]
    assert listed == [(x.source, x.target, x.weight, x.born, x.inherited_from) for x in g.connections()]


def columns(n_nodes: int, n_edges: int):
    rng = np.random.default_rng(1)
    flat = rng.choice(n_nodes * n_nodes, size=n_edges, replace=False)  # a DiGraph holds one edge per pair
    ends = np.stack([flat // n_nodes, flat % n_nodes])
    nodes = {"id": np.arange(n_nodes), "role": ["hidden"] * n_nodes, "x": rng.normal(size=n_nodes)}
    edges = {
        "weight": rng.normal(size=n_edges),
        "direction": np.array(["forward", "back<ward>"], dtype=object)[rng.integers(0, 2, n_edges)],
        "layer_diff": rng.integers(-3, 3, n_edges),
    }
    return nodes, edges, ends


def written(nodes, edges, ends, labels, **graph) -> bytes:
    f = io.BytesIO()
    write_graphml_columns(
        f,
        graph_attributes=graph,
        node_labels=labels,
        nodes=nodes,
        edge_sources=ends[0],
        edge_targets=ends[1],
        edges=edges,
    )
    return f.getvalue()


def test_columns_round_trip_through_networkx_in_any_chunking(monkeypatch):
    nodes, edges, ends = columns(30, 400)
    labels = [f"n{k}" for k in range(30)]
    whole = written(nodes, edges, ends, labels, name="t&t", cycle=3, rate=0.5)
    monkeypatch.setattr(gw, "CHUNK_ROWS", 7)
    assert written(nodes, edges, ends, labels, name="t&t", cycle=3, rate=0.5) == whole
    g = parsed(whole)
    assert {k: g.graph[k] for k in ("name", "cycle", "rate")} == {"name": "t&t", "cycle": 3, "rate": 0.5}
    assert [g.nodes[f"n{k}"]["x"] for k in range(30)] == nodes["x"].tolist()  # floats exactly
    for e, (s, t) in enumerate(ends.T.tolist()):
        data = g.edges[f"n{s}", f"n{t}"]
        assert data == {
            "weight": edges["weight"][e], "direction": edges["direction"][e], "layer_diff": edges["layer_diff"][e]
        }  # fmt: skip


def test_boolean_columns_are_refused():
    with pytest.raises(ValueError, match="boolean"):
        written({"on": np.array([True])}, {}, np.zeros((2, 0), dtype=int), ["a"])
