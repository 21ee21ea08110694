"""GraphML export / import: round trip, interoperability, fixed types, bad files."""

from __future__ import annotations

import re
import warnings
import xml.etree.ElementTree as ET

import igraph
import networkx as nx
import numpy as np
import pytest

from neurograph.graph import Graph
from neurograph.graphml import (
    FORMAT_VERSION,
    GraphMLError,
    from_networkx,
    read_graphml,
    to_networkx,
    write_graphml,
)

NS = "{http://graphml.graphdrawing.org/xmlns}"
INT_ATTRS = {"id", "born", "died", "age", "generation", "inherited_from", "format_version",
             "cycle", "next_id", "seed", "graveyard_size"}  # fmt: skip
FLOAT_ATTRS = {"multiplier", "bias", "in_l1", "out_l1", "x", "y", "z", "weight", "signed_weight"}


@pytest.fixture
def graph() -> Graph:
    """3 inputs, hidden layer, 2 outputs, dense wiring, deletions, a two-step lineage."""
    rng = np.random.default_rng(0)
    g = Graph(graveyard_size=8)
    g.meta.update(scenario="xor", seed="7", note="hand made")
    ins = [g.add_neuron("input", position=(0.0, float(k), 0.0)).id for k in range(3)]
    hid = [g.add_neuron("hidden", bias=0.25 * k, multiplier=2.0, tags={"a", "b"}).id for k in range(4)]
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


def edited(path, pattern: str, replacement: str, count: int = 1):
    """Hand-edit a written file: regex replace, failing loudly if nothing matched."""
    text, n = re.subn(pattern, replacement, path.read_text(), count=count, flags=re.S)
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
    assert {g.nodes[n]["id"] for n in deleted} == set(graph.dead)
    assert all(g.degree(n) == 0 for n in deleted)
    assert all(g.nodes[n]["died"] >= g.nodes[n]["born"] >= 0 for n in deleted)
    back = read_graphml(path)
    assert back.dead == graph.dead
    assert snapshot(back) == snapshot(graph)


def test_reserve_sets_state(graph):
    reserve = graph.ids("hidden")[:1]
    g = to_networkx(graph, reserve=reserve)
    states = {d["id"]: d["state"] for _, d in g.nodes(data=True)}
    assert {i for i, s in states.items() if s == "reserve"} == set(reserve)
    assert set(states.values()) == {"alive", "reserve"}


def test_reserve_must_name_living_neurons(graph):
    with pytest.raises(GraphMLError, match="reserve id"):
        to_networkx(graph, reserve=[next(iter(graph.dead))])


# ------------------------------------------------------------ file format
def test_igraph_reads_the_file(graph, good_file):
    with warnings.catch_warnings():  # igraph notes that 'id' is already a vertex attribute
        warnings.simplefilter("ignore", RuntimeWarning)
        ig = igraph.Graph.Read_GraphML(str(good_file))
    assert ig.vcount() == len(graph)
    assert ig.ecount() == graph.num_connections()
    assert ig.is_directed()
    assert sorted(ig.vs["id"]) == graph.ids()


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
    with pytest.raises(GraphMLError, match=r"plain\.graphml: not a neurograph graph.*format_version"):
        read_graphml(path)


def node_with(label: str) -> str:
    """Regex of the <data> block of the node labelled ``label``."""
    return rf'(<node id="{label}">.*?)'


BAD_EDITS = {
    "newer format": (r'(<data key="format_version">)1<', r"\g<1>2<", "unsupported format_version 2"),
    "missing node attr": (node_with("h4") + r'<data key="bias">[^<]*</data>', r"\1", r"node 'h4' lacks attribute 'bias'"),
    "missing edge attr": (r'(<edge source="i0" target="h3">.*?)<data key="signed_weight">[^<]*</data>', r"\1",
                          r"edge 'i0' -> 'h3' lacks attribute 'signed_weight'"),
    "missing graph attr": (r'<data key="next_id">[^<]*</data>', "", r"graph lacks attribute 'next_id'"),
    "wrong type": (node_with("h3") + r'<data key="bias">[^<]*<', r'\1<data key="bias">abc<', "malformed GraphML"),
    "edge to unknown node": (r'<edge source="i0" target="h3">', '<edge source="i0" target="h99">',
                             r"refers to unknown node 'h99'"),
    "duplicate node": (r'(<node id="h3">.*?</node>)', r"\1\1", r"duplicate node 'h3'"),
                         "id at next_id": (r'<data key="next_id">[^<]*<', '<data key="next_id">9<', r"node 'h\d+': id \d+ is not in \[0, next_id 9\)"),
    "bad role": (node_with("h3") + r'<data key="role">hidden<', r'\1<data key="role">glia<', r"node 'h3': role 'glia'"),
    "bad state": (node_with("h3") + r'<data key="state">alive<', r'\1<data key="state">asleep<', r"node 'h3': state 'asleep'"),
    "label mismatch": (node_with("h3") + r'<data key="id">3<', r'\1<data key="id">4<', r"node 'h3': name does not match id 4"),
    "inherit from living": (node_with("h10") + r'<data key="inherited_from">9<', r'\1<data key="inherited_from">3<',
                            r"node 'h10': inherited_from 3 is not a known dead neuron"),
    "inherit from unknown": (node_with("h10") + r'<data key="inherited_from">9<', r'\1<data key="inherited_from">6<',
                             r"node 'h10': inherited_from 6 is not a known dead neuron"),
    "lineage too short": (node_with("h10") + r'<data key="lineage">h5&gt;h9&gt;h10<', r'\1<data key="lineage">h9&gt;h10<',
                          r"node 'h10': .*lineage 'h9>h10'"),
    "lineage of another": (node_with("h10") + r'<data key="lineage">h5&gt;h9&gt;h10<', r'\1<data key="lineage">h5&gt;h9&gt;h4<',
                           r"node 'h10': lineage 'h5>h9>h4' does not end with the node's own label"),
    "lineage not a chain": (node_with("h10") + r'<data key="lineage">[^<]*<', r'\1<data key="lineage">h5,h10<',
                            r"node 'h10': bad lineage 'h5,h10'"),
    "living ancestor": (node_with("h10") + r'<data key="lineage">h5&gt;', r'\1<data key="lineage">h3&gt;',
                        r"node 'h10': .*h3"),
    "generation": (node_with("h10") + r'<data key="generation">2<', r'\1<data key="generation">1<',
                   r"node 'h10': generation 1 does not match lineage"),
    "alive with died": (node_with("h3") + r'<data key="died">-1<', r'\1<data key="died">4<', r"node 'h3': died 4"),
    "edge inherits from living": (r'(<edge source="i0" target="h10">.*?<data key="inherited_from">)-1<', r"\g<1>3<",
                                  r"edge 'i0' -> 'h10': inherited_from 3 is not a dead neuron"),
    "duplicate edge": (r'(<edge source="i0" target="h3">.*?</edge>)', r"\1\1", r"duplicate edge 'i0' -> 'h3'"),
    "undirected": (r'edgedefault="directed"', 'edgedefault="undirected"', "undirected"),
}  # fmt: skip


def test_fixture_ids_used_by_bad_edits(graph):
    """The edits above assume these ids; fail here, not obscurely, if the fixture changes."""
    assert graph.ids("hidden") == [3, 4, 10] and graph.ids("output") == [7, 8]
    assert graph.next_id == 11 and set(graph.dead) == {5, 6, 9}
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
    edited(path, node_with("h10") + r'<data key="lineage">h5&gt;', r'\1<data key="lineage">h6&gt;')
    with pytest.raises(GraphMLError, match="disagrees with another lineage about h9"):
        read_graphml(path)


def test_duplicate_ids_are_rejected(graph):
    g = nx.relabel_nodes(to_networkx(graph), {"o7": "o3"})
    g.nodes["o3"]["id"] = 3
    with pytest.raises(GraphMLError, match=r"duplicate id 3 \(nodes 'h3' and 'o3'\)"):
        from_networkx(g)
