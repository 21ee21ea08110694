"""Tests for the areas of neurograph.graph (order, names never reused, deletion, ages,
events, checkpoints) and for the ``area`` node attribute of GraphML files."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import networkx as nx
import numpy as np
import pytest

from neurograph.graph import Graph, GraphError
from neurograph.graphml import read_graphml, to_networkx, write_graphml

NS = "{http://graphml.graphdrawing.org/xmlns}"


@pytest.fixture
def graph() -> Graph:
    """input -> a -> b -> output, wired area to area, then at cycle 4 a neuron of ``a`` and
    area ``c`` (with its one neuron) deleted."""
    rng = np.random.default_rng(0)
    g = Graph(graveyard_size=8)
    for name, kind in (("input", "input"), ("output", "output"), ("a", "area"), ("b", "layer"), ("c", "layer")):
        g.add_area(name, kind=kind, before=None if name in ("input", "output") else "output")
    sizes = {"input": 2, "a": 3, "b": 2, "c": 1, "output": 2}
    for name, n in sizes.items():
        role = name if name in ("input", "output") else "hidden"
        for _ in range(n):
            g.add_neuron(role, area=name, bias=float(rng.normal()))
    for src, dst in (("input", "a"), ("a", "b"), ("b", "a"), ("b", "output"), ("c", "output")):
        t, s = g.area_ids(dst), g.area_ids(src)
        g.wire(t, s, rng.normal(size=(len(t), len(s))))
    g.cycle = 4
    g.delete_neuron(g.area_ids("a")[1])
    g.delete_neuron(g.area_ids("c")[0])
    g.delete_area("c", reason="empty")
    g.cycle = 9
    return g


def hand_graph() -> Graph:
    """Two inputs, two hidden, one output, no areas."""
    g = Graph()
    ins = [g.add_neuron("input").id for _ in range(2)]
    hid = [g.add_neuron("hidden").id for _ in range(2)]
    out = g.add_neuron("output").id
    g.wire(hid, ins, np.ones((2, 2)))
    g.wire([out], hid, np.ones((1, 2)))
    return g


# ------------------------------------------------------------------ order
def test_add_area_appends_or_places_before_a_living_area() -> None:
    g = Graph()
    g.add_area("input")
    g.add_area("output")
    g.add_area("a", before="output")
    g.add_area("b", before="output")
    g.add_area("c", before="a")
    g.add_area("z")
    assert list(g.areas) == ["input", "c", "a", "b", "output", "z"]
    with pytest.raises(GraphError, match="no living area 'nope'"):
        g.add_area("d", before="nope")
    assert "d" not in g.areas


def test_area_names_are_never_reused() -> None:
    g = Graph()
    g.add_area("a")
    with pytest.raises(GraphError, match="already used"):
        g.add_area("a")
    g.delete_area("a")
    with pytest.raises(GraphError, match="already used"):
        g.add_area("a")
    with pytest.raises(GraphError, match="empty"):
        g.add_area("")
    assert not g.areas and list(g.dead_areas) == ["a"]


def test_delete_area_is_refused_while_a_neuron_lives() -> None:
    g = Graph()
    g.add_area("a")
    first, second = g.add_neuron("hidden", area="a").id, g.add_neuron("hidden", area="a").id
    g.delete_neuron(first)
    with pytest.raises(GraphError, match="still has living neurons"):
        g.delete_area("a")
    assert "a" in g.areas and g.area_ids("a") == [second]
    g.delete_neuron(second)
    g.delete_area("a")
    assert "a" not in g.areas and g.dead[second].area == "a"
    with pytest.raises(GraphError, match="no living area 'a'"):
        g.delete_area("a")


def test_neurons_join_only_living_areas(graph: Graph) -> None:
    with pytest.raises(GraphError, match="no living area 'c'"):
        graph.add_neuron("hidden", area="c")
    with pytest.raises(GraphError, match="no living area 'd'"):
        graph.add_neuron("hidden", area="d")
    new = graph.add_neuron("hidden", area="b").id
    assert graph.area_ids("b")[-1] == new and graph.area_ids("b") == sorted(graph.area_ids("b"))
    graph.neurons[new].area = "c"  # moved into a dead area behind the graph's back
    with pytest.raises(GraphError, match="not living"):
        graph.check()


def test_area_ids_ages_and_events(graph: Graph) -> None:
    assert list(graph.areas) == ["input", "a", "b", "output"]
    assert [len(graph.area_ids(a)) for a in graph.areas] == [2, 2, 2, 2]
    assert graph.area_age("a") == 9 and graph.area_age("c") == 4  # a dead area's age stops at its death
    with pytest.raises(GraphError, match="no area 'x'"):
        graph.area_age("x")
    area_events = [e for e in graph.events if e.kind in ("add_area", "delete_area")]
    assert [(e.kind, e.area, e.neuron, e.cycle) for e in area_events] == [
        ("add_area", name, -1, 0) for name in ("input", "output", "a", "b", "c")
    ] + [("delete_area", "c", -1, 4)]
    assert area_events[-1].age == 4 and area_events[-1].reason == "empty"
    assert area_events[-1].to_dict()["area"] == "c"
    assert all("area" not in e.to_dict() for e in graph.events if e.kind not in ("add_area", "delete_area"))
    fossil_areas = sorted(f.neuron.area for f in graph.graveyard)
    assert fossil_areas == ["a", "c"]


# ---------------------------------------------------------- checkpoints
def test_state_round_trip_keeps_areas_dead_areas_and_neuron_areas(graph: Graph) -> None:
    state, arrays = graph.to_state()
    state = json.loads(json.dumps(state))  # checkpoints store it as JSON
    back = Graph.from_state(state, arrays)
    assert list(back.areas) == list(graph.areas)
    assert [a.to_dict() for a in back.areas.values()] == [a.to_dict() for a in graph.areas.values()]
    assert [a.to_dict() for a in back.dead_areas.values()] == [a.to_dict() for a in graph.dead_areas.values()]
    assert back.dead_areas["c"].died == 4 and back.areas["b"].kind == "layer"
    for a in back.areas:
        assert back.area_ids(a) == graph.area_ids(a) and back.area_age(a) == graph.area_age(a)
    assert {i: n.area for i, n in back.dead.items()} == {i: n.area for i, n in graph.dead.items()}
    assert [f.neuron.area for f in back.graveyard] == [f.neuron.area for f in graph.graveyard]
    assert [e.to_dict() for e in back.events] == [e.to_dict() for e in graph.events]
    back.check()
    with pytest.raises(GraphError, match="already used"):
        back.add_area("c")


def test_state_of_a_graph_without_areas_has_none() -> None:
    g = hand_graph()
    state, arrays = g.to_state()
    assert "areas" not in state and "dead_areas" not in state
    assert all("area" not in n for n in state["neurons"])
    back = Graph.from_state(state, arrays)
    assert not back.areas and not back.dead_areas and all(n.area == "" for n in back.neurons.values())


# --------------------------------------------------------------- GraphML
def key_names(path) -> set[str]:
    """Attribute names declared in a GraphML file, per domain ``node``/``edge``/``graph``."""
    root = ET.parse(path).getroot()
    return {f"{k.get('for')}:{k.get('attr.name')}" for k in root.iter(f"{NS}key")}


def test_graphml_round_trip_keeps_neuron_areas(graph: Graph, tmp_path) -> None:
    path = tmp_path / "g.graphml"
    write_graphml(graph, path, include_dead=True)
    assert "node:area" in key_names(path)
    back = read_graphml(path)
    assert {i: n.area for i, n in back.neurons.items()} == {i: n.area for i, n in graph.neurons.items()}
    assert {i: n.area for i, n in back.dead.items()} == {i: n.area for i, n in graph.dead.items()}
    assert {n.area for n in back.dead.values()} == {"a", "c"}


def test_networkx_reads_the_area_node_attribute(graph: Graph, tmp_path) -> None:
    path = tmp_path / "g.graphml"
    write_graphml(graph, path)
    g = nx.read_graphml(path)
    want = {graph.neurons[i].label: graph.neurons[i].area for i in graph.neurons}
    assert nx.get_node_attributes(g, "area") == want
    assert nx.get_node_attributes(to_networkx(graph), "area") == want


def test_a_graph_without_areas_writes_no_area_attribute(tmp_path) -> None:
    g = hand_graph()
    path = tmp_path / "g.graphml"
    write_graphml(g, path, include_dead=True)
    assert not any(name.endswith(":area") for name in key_names(path))
    assert not nx.get_node_attributes(nx.read_graphml(path), "area")
    assert all(n.area == "" for n in read_graphml(path).neurons.values())


def test_graphml_round_trip_keeps_the_area_records(graph: Graph, tmp_path) -> None:
    """Order, kinds, births, deaths and growth lineage of the areas come back: an imported
    layered graph can be compiled again (its projections follow from its areas)."""
    graph.add_area("d", before="output", kind="layer", grown_from="b")
    path = tmp_path / "g.graphml"
    write_graphml(graph, path, include_dead=True)
    back = read_graphml(path)
    assert list(back.areas) == ["input", "a", "b", "d", "output"]
    assert [a.to_dict() for a in back.areas.values()] == [a.to_dict() for a in graph.areas.values()]
    assert [a.to_dict() for a in back.dead_areas.values()] == [a.to_dict() for a in graph.dead_areas.values()]
    assert back.dead_areas["c"].died == 4 and back.areas["d"].grown_from == "b"
    assert not nx.read_graphml(path).graph.get("meta_areas")


def test_a_malformed_areas_attribute_is_one_line(graph: Graph, tmp_path) -> None:
    from neurograph.graphml import GraphMLError

    path = tmp_path / "g.graphml"
    write_graphml(graph, path)
    path.write_text(path.read_text().replace("input:input:0:-1:", "input:input:zero"))
    with pytest.raises(GraphMLError, match="graph: areas"):
        read_graphml(path)


def test_a_layered_graph_is_laid_out_in_one_column_per_area(graph: Graph) -> None:
    """Areas left to right in evaluation order (the deleted one before the output), each
    area's neurons down its own column, apart; positions stay put as neurons die."""
    from neurograph.graph_columns import node_columns

    c = node_columns(graph, include_dead=True)
    x = {}
    for area, xi, yi, i in zip(c.columns["area"], c.columns["x"], c.columns["y"], c.ids):
        x.setdefault(area, set()).add(xi)
    assert all(len(v) == 1 for v in x.values())
    column = {a: v.pop() for a, v in x.items()}
    assert column["input"] < column["a"] < column["b"] < column["c"] < column["output"]
    ys = {}
    for area, yi in zip(c.columns["area"], c.columns["y"]):
        ys.setdefault(area, []).append(yi)
    assert all(len(set(v)) == len(v) for v in ys.values())
    before = dict(zip(c.ids, zip(c.columns["x"], c.columns["y"])))
    graph.delete_neuron(graph.area_ids("b")[0])
    after = node_columns(graph, include_dead=True)
    assert dict(zip(after.ids, zip(after.columns["x"], after.columns["y"]))) == before
