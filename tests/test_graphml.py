"""GraphML export / import: round trip, interoperability, fixed types, bad files."""

from __future__ import annotations

import re
import warnings
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

import igraph
import networkx as nx
import numpy as np
import pytest

from neurograph.graph import Graph
from neurograph.graph_columns import RESERVED
from neurograph.graphml import (
    FORMAT_VERSION,
    GraphMLError,
    from_networkx,
    read_graphml,
    to_networkx,
    write_graphml,
)

NS = "{http://graphml.graphdrawing.org/xmlns}"
INT_ATTRS = {"neuron_id", "born", "died", "age", "generation", "inherited_from", "format_version",
             "cycle", "next_id", "seed", "graveyard_size"}  # fmt: skip
FLOAT_ATTRS = {"multiplier", "bias", "in_l1", "out_l1", "x", "y", "z", "weight", "signed_weight"}


@pytest.fixture
def graph() -> Graph:
    """3 inputs, hidden layer, 2 outputs, dense wiring, deletions, a two-step lineage."""
    rng = np.random.default_rng(0)
    g = Graph(graveyard_size=8)
    g.meta.update(scenario="xor", seed="7", note="hand made")
    ins = [g.add_neuron("input", position=(0.0, float(k), 0.0)).id for k in range(3)]
    tags = {"a", "b"}
    hid = [g.add_neuron("hidden", bias=0.25 * k, multiplier=2.0, tags=tags).id for k in range(4)]
    outs = [g.add_neuron("output", bias=-1.5, position=(2.0, 0.5, -3.0)).id for _ in range(2)]
    g.wire(hid, ins, rng.normal(size=(4, 3)))
    g.wire(outs, hid, rng.normal(size=(2, 4)))
    g.cycle = 5
    g.connect(hid[0], hid[1], -0.3)  # later connection: own born
    g.cycle = 9
    first = g.delete_neuron(hid[2]).neuron.id
    heir = g.add_neuron("hidden", inherited_from=first, tags={"heir"}).id
    g.connect(ins[0], heir, 1e-17, inherited_from=first)
    g.connect(heir, outs[1], -2.0 / 3.0, inherited_from=first)
    g.cycle = 12
    g.delete_neuron(heir)
    grandchild = g.add_neuron("hidden", inherited_from=heir, bias=0.1).id
    g.wire([grandchild], ins + hid[:2], rng.normal(size=(1, 5)))
    g.delete_neuron(hid[3])  # dead, no heir
    g.delete_neuron(g.add_neuron("output").id)  # next_id is now above every living id
    g.cycle = 20
    g.check()
    return g


def snapshot(g: Graph) -> dict:
    """Everything an import must reproduce (``Neuron`` equality ignores the slot)."""
    ids = g.ids()
    weights, present = g.block(ids, ids)
    return {
        "neurons": dict(g.neurons),
        "connections": {(c.source, c.target): c for c in g.connections()},
        "weights": weights.tolist(),
        "present": present.tolist(),
        "lineage": {i: g.lineage_label(i) for i in ids},
        "cycle": g.cycle,
        "next_id": g.next_id,
        "meta": g.meta,
        "graveyard_size": g.graveyard.maxlen,
    }


@pytest.fixture
def good_file(graph, tmp_path):
    path = tmp_path / "net.graphml"
    write_graphml(graph, path)
    return path


def edited(path, pattern: str, replacement: str):
    """Hand-edit a written file: one regex replacement, failing loudly if nothing matched."""
    text, n = re.subn(pattern, replacement, path.read_text(), count=1, flags=re.S)
    assert n, f"pattern {pattern!r} not found"
    path.write_text(text)
    return path


# --------------------------------------------------------------- round trip
def test_round_trip_reproduces_the_graph(graph, good_file):
    back = read_graphml(good_file)
    assert snapshot(back) == snapshot(graph)
    back.check()


def test_round_trip_keeps_lineage_of_dead_ancestors(graph, good_file):
    back = read_graphml(good_file)
    grandchild = max(graph.ids("hidden"))
    assert back.lineage_label(grandchild).count(">") == 2
    assert back.lineage_label(grandchild) == graph.lineage_label(grandchild)
    assert back.neuron(grandchild).generation == 2


def test_round_trip_through_networkx_without_file(graph):
    assert snapshot(from_networkx(to_networkx(graph))) == snapshot(graph)


def test_imported_graph_never_reuses_ids(graph, good_file):
    back = read_graphml(good_file)
    assert back.add_neuron("hidden").id == graph.next_id
    assert back.events[-1].kind == "add" and len(back.events) == 1


def test_include_dead_writes_deleted_nodes_and_restores_them(graph, tmp_path):
    path = tmp_path / "timeline.graphml"
    write_graphml(graph, path, include_dead=True)
    g = nx.read_graphml(path)
    deleted = {n for n, d in g.nodes(data=True) if d["state"] == "deleted"}
    assert {g.nodes[n]["neuron_id"] for n in deleted} == set(graph.dead)
    assert all(g.degree(n) == 0 for n in deleted)
    assert all(g.nodes[n]["died"] >= g.nodes[n]["born"] >= 0 for n in deleted)
    back = read_graphml(path)
    assert back.dead == graph.dead
    assert snapshot(back) == snapshot(graph)


def test_reserve_sets_state(graph):
    reserve = graph.ids("hidden")[:1]
    g = to_networkx(graph, reserve=reserve)
    states = {d["neuron_id"]: d["state"] for _, d in g.nodes(data=True)}
    assert {i for i, s in states.items() if s == "reserve"} == set(reserve)
    assert set(states.values()) == {"alive", "reserve"}
    assert snapshot(from_networkx(g)) == snapshot(graph)  # reserve neurons come back living


def test_reserve_must_name_living_neurons(graph):
    with pytest.raises(GraphMLError, match="reserve id"):
        to_networkx(graph, reserve=[next(iter(graph.dead))])


# ------------------------------------------------------------ file format
def test_igraph_reads_the_file_without_a_warning(graph, good_file):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # igraph warns when a node attribute clashes with its own "id"
        ig = igraph.Graph.Read_GraphML(str(good_file))
    assert ig.vcount() == len(graph)
    assert ig.ecount() == graph.num_connections()
    assert ig.is_directed()
    assert ig.vs["id"] == [graph.neurons[i].label for i in graph.ids()]  # the node keys, h10 and all
    assert ig.vs["neuron_id"] == graph.ids()


def test_no_attribute_takes_a_reserved_name(good_file):
    names = {k.get("attr.name") for k in ET.parse(good_file).getroot().findall(f"{NS}key")}
    assert not names & set(RESERVED)


def test_version_1_files_are_read(graph, good_file):
    """Before version 2 the node attribute neuron_id was called id."""
    text = good_file.read_text()
    text = text.replace('"neuron_id"', '"id"').replace('key="neuron_id"', 'key="id"')
    good_file.write_text(re.sub(r'(<data key="format_version">)2<', r"\g<1>1<", text))
    assert nx.read_graphml(good_file).graph["format_version"] == 1
    assert snapshot(read_graphml(good_file)) == snapshot(graph)


def char_rnn_like(penalty: str | None) -> Graph:
    """Inputs, outputs and hidden neurons without positions, as the char-RNN builds them."""
    g = Graph()
    g.meta.update(scenario="c", seed="3", model="charrnn", **({} if penalty is None else {"penalty": penalty}))
    ins = [g.add_neuron("input", tags=[f"char:{c}"]).id for c in "ab"]
    outs = [g.add_neuron("output").id for _ in "ab"]
    hid = [g.add_neuron("hidden", multiplier=0.5 if penalty == "multipliers" else 1.0).id for _ in range(3)]
    g.wire(hid, ins + hid, np.full((3, 5), 0.1))
    g.wire(outs, hid, np.full((2, 3), -0.2))
    return g


@pytest.mark.parametrize("penalty, written", [("multipliers", True), ("outgoing_l1", False), ("none", False)])
def test_multiplier_only_where_the_network_trains_it(penalty, written, tmp_path):
    g = char_rnn_like(penalty)
    nodes = to_networkx(g).nodes(data=True)
    assert all(("multiplier" in d) == written for _, d in nodes)
    write_graphml(g, tmp_path / "g.graphml")
    assert snapshot(read_graphml(tmp_path / "g.graphml")) == snapshot(g)  # absent: multipliers of 1


def test_char_rnn_neurons_get_a_layout_that_import_ignores(tmp_path):
    g = char_rnn_like("outgoing_l1")
    x = to_networkx(g)
    assert x.graph["positions"] == "layout"
    xy = {n: (d["x"], d["y"]) for n, d in x.nodes(data=True)}
    assert len(set(xy.values())) == len(g)  # no two neurons on one spot
    assert all(x.nodes[n.label]["x"] < 0 for n in g.inputs) and all(x.nodes[n.label]["x"] > 0 for n in g.outputs)
    radius = {round(float(np.hypot(*xy[n.label])), 9) for n in g.hidden}
    assert len(radius) == 1  # hidden neurons on one circle
    before = xy[g.hidden[0].label]
    g.delete_neuron(g.hidden[1].id)
    g.add_neuron("hidden")
    assert (to_networkx(g).nodes[g.hidden[0].label]["x"], to_networkx(g).nodes[g.hidden[0].label]["y"]) == before
    write_graphml(g, tmp_path / "g.graphml")
    assert all(n.position == (0.0, 0.0, 0.0) for n in read_graphml(tmp_path / "g.graphml").neurons.values())


def test_geometry_is_written_and_read_back(graph):
    x = to_networkx(graph)
    assert x.graph["positions"] == "geometry"
    assert (x.nodes["o7"]["x"], x.nodes["o7"]["y"], x.nodes["o7"]["z"]) == (2.0, 0.5, -3.0)


def test_keys_are_named_and_typed_once(good_file):
    keys = ET.parse(good_file).getroot().findall(f"{NS}key")
    types: dict[str, set[str]] = {}
    for key in keys:
        assert key.get("id") == key.get("attr.name")
        types.setdefault(key.get("attr.name"), set()).add(key.get("attr.type"))
    assert all(len(t) == 1 for t in types.values()), types
    assert {n for n, t in types.items() if t == {"long"}} == INT_ATTRS
    assert {n for n, t in types.items() if t == {"double"}} == FLOAT_ATTRS


def test_every_node_and_edge_has_every_attribute(good_file):
    root = ET.parse(good_file).getroot()
    wanted = {
        kind: {k.get("id") for k in root.findall(f"{NS}key") if k.get("for") == kind}
        for kind in ("node", "edge")
    }
    for kind in ("node", "edge"):
        for element in root.iter(f"{NS}{kind}"):
            assert {d.get("key") for d in element.findall(f"{NS}data")} == wanted[kind]


def test_attribute_values(graph):
    g = to_networkx(graph)
    assert g.graph["format_version"] == FORMAT_VERSION
    assert (g.graph["scenario"], g.graph["seed"], g.graph["cycle"]) == ("xor", 7, 20)
    assert g.graph["meta_note"] == "hand made"
    grandchild = graph.neuron(max(graph.ids("hidden")))
    node = g.nodes[grandchild.label]
    assert node["lineage"] == graph.lineage_label(grandchild.id)
    assert node["inherited_from"] == grandchild.inherited_from
    assert node["age"] == graph.cycle - grandchild.born and node["died"] == -1
    assert g.nodes[graph.inputs[0].label]["inherited_from"] == -1
    assert g.nodes[graph.hidden[0].label]["tags"] == "a,b"
    in_l1, out_l1 = graph.norms([grandchild.id])
    assert (node["in_l1"], node["out_l1"]) == (in_l1[0], out_l1[0])
    for _, _, d in g.edges(data=True):
        assert d["weight"] == abs(d["signed_weight"]) >= 0
    assert any(d["signed_weight"] < 0 for _, _, d in g.edges(data=True))


def test_write_is_atomic_and_leaves_no_temp_files(graph, tmp_path):
    path = tmp_path / "net.graphml"
    write_graphml(graph, path)
    before = path.read_bytes()
    graph.neuron(graph.ids()[0]).tags = frozenset({"bad,tag"})
    with pytest.raises(GraphMLError, match="bad,tag"):
        write_graphml(graph, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["net.graphml"]


# --------------------------------------------------------------- bad files
def test_not_xml(tmp_path):
    path = tmp_path / "junk.graphml"
    path.write_text("neurons: 3\n")
    with pytest.raises(GraphMLError, match=r"junk\.graphml: not XML"):
        read_graphml(path)


def test_xml_but_not_graphml(tmp_path):
    path = tmp_path / "page.graphml"
    path.write_text("<html><body/></html>")
    with pytest.raises(GraphMLError, match="not GraphML"):
        read_graphml(path)


def test_graphml_but_not_neurograph(tmp_path):
    path = tmp_path / "plain.graphml"
    nx.write_graphml(nx.path_graph(3, create_using=nx.DiGraph), path)
    with pytest.raises(GraphMLError, match=r"plain\.graphml: not a neurograph.*format_version"):
        read_graphml(path)


def node(label: str) -> str:
    return f'<node id="{label}">'


def edge(source: str, target: str) -> str:
    return f'<edge source="{source}" target="{target}">'


def set_data(owner: str, key: str, value=None) -> tuple[str, str]:
    """Edit of the first ``key`` attribute after ``owner``'s tag: set it, or remove it (None)."""
    pattern = rf'({re.escape(owner)}.*?)<data key="{key}">[^<]*</data>'
    new = "" if value is None else f'<data key="{key}">{escape(str(value))}</data>'
    return pattern, r"\g<1>" + new


# name: (pattern, replacement, expected message after the file name)
BAD_EDITS = {
    "newer format": (*set_data("<graph", "format_version", 3), "format_version 3 unsupported"),
    "missing graph attr": (*set_data("<graph", "next_id"), "graph lacks attribute 'next_id'"),
    "missing node attr": (*set_data(node("h4"), "bias"), "node 'h4' lacks attribute 'bias'"),
    "missing edge attr": (
        *set_data(edge("i0", "h3"), "signed_weight"),
        "edge 'i0' -> 'h3' lacks attribute 'signed_weight'",
    ),
    "not a number": (*set_data(node("h3"), "bias", "abc"), "malformed GraphML"),
    "edge to unknown node": (edge("i0", "h3"), edge("i0", "h99"), "unknown node 'h99'"),
    "duplicate node": (r'(<node id="h3">.*?</node>)', r"\1\1", "duplicate node 'h3'"),
    "duplicate edge": (r'(<edge source="i0" target="h3">.*?</edge>)', r"\1\1", "duplicate edge"),
    "undirected": ('edgedefault="directed"', 'edgedefault="undirected"', "undirected"),
    "id at next_id": (
        *set_data("<graph", "next_id", 9),
        r"node 'h10': id 10 is not in \[0, next_id 9\)",
    ),
    "bad role": (*set_data(node("h3"), "role", "glia"), "node 'h3': role 'glia'"),
    "bad state": (*set_data(node("h3"), "state", "asleep"), "node 'h3': state 'asleep'"),
    "label mismatch": (*set_data(node("h3"), "neuron_id", 4), "node 'h3': name does not match id 4"),
    "alive with died": (*set_data(node("h3"), "died", 4), "node 'h3': died 4"),
    "inherit from living": (
        *set_data(node("h10"), "inherited_from", 3),
        "node 'h10': inherited_from 3 is not a known dead neuron",
    ),
    "inherit from unknown": (
        *set_data(node("h10"), "inherited_from", 6),
        "node 'h10': inherited_from 6 is not a known dead neuron",
    ),
    "lineage too short": (*set_data(node("h10"), "lineage", "h9>h10"), "node 'h10': .*'h9>h10'"),
    "lineage of another": (
        *set_data(node("h10"), "lineage", "h5>h9>h4"),
        "node 'h10': lineage 'h5>h9>h4' does not end with the node's own label",
    ),
    "lineage not a chain": (
        *set_data(node("h10"), "lineage", "h5,h10"),
        "node 'h10': bad lineage 'h5,h10'",
    ),
    "living ancestor": (
        *set_data(node("h10"), "lineage", "h3>h9>h10"),
        "node 'h10': lineage 'h3>h9>h10' names living h3",
    ),
    "generation": (
        *set_data(node("h10"), "generation", 1),
        "node 'h10': generation 1 does not match lineage",
    ),
    "edge inherits from living": (
        *set_data(edge("i0", "h10"), "inherited_from", 3),
        "edge 'i0' -> 'h10': inherited_from 3 is not a dead neuron",
    ),
}


def test_fixture_ids_used_by_bad_edits(graph):
    """The edits above assume these ids; fail here, not obscurely, if the fixture changes."""
    assert graph.ids("hidden") == [3, 4, 10] and graph.ids("output") == [7, 8]
    assert graph.next_id == 12 and set(graph.dead) == {5, 6, 9, 11}
    assert graph.lineage_label(10) == "h5>h9>h10"


@pytest.mark.parametrize("edit", BAD_EDITS.values(), ids=BAD_EDITS.keys())
def test_hand_edited_file_is_rejected(good_file, edit):
    pattern, replacement, message = edit
    edited(good_file, pattern, replacement)
    with pytest.raises(GraphMLError, match=r"net\.graphml: .*" + message) as info:
        read_graphml(good_file)
    assert "\n" not in str(info.value)


def test_untouched_file_passes_the_checks(good_file):
    """Control for the edits above: the unedited file imports."""
    read_graphml(good_file)


def test_lineages_that_disagree_are_rejected(graph, tmp_path):
    path = tmp_path / "net.graphml"
    write_graphml(graph, path, include_dead=True)
    edited(path, *set_data(node("h10"), "lineage", "h6>h9>h10"))
    with pytest.raises(GraphMLError, match="disagrees with another lineage about h9"):
        read_graphml(path)


def test_duplicate_ids_are_rejected(graph):
    g = nx.relabel_nodes(to_networkx(graph), {"o7": "o3"})
    g.nodes["o3"]["neuron_id"] = 3
    with pytest.raises(GraphMLError, match=r"duplicate id 3 \(nodes 'h3' and 'o3'\)"):
        from_networkx(g)
