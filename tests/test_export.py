"""Tests for neurograph.run.export and neurograph.run.reader: GEXF timeline, CSV and GraphML export, run folder reading."""

from __future__ import annotations

import csv
import json
import shutil
import xml.etree.ElementTree as ET

import warnings

import igraph
import networkx as nx
import numpy as np
import pytest
import torch

from neurograph.run.export import export_run, timeline, write_gexf
from neurograph.run.reader import (
    ExportError,
    graph_file,
    load_graph,
    read_events,
    read_fossils,
    read_jsonl,
    run_phases,
    run_summary,
    snapshot_cycles,
)
from neurograph.graph import Graph
from neurograph.graph_columns import EDGE_ATTRIBUTES, NODE_ATTRIBUTES
from neurograph.graphml import read_graphml, write_graphml
from neurograph.run.reporters import ReporterSet
from neurograph.run.folder import RunFolder, RunFolderError, prepare_run_folder
from neurograph.scenario import Scenario
from neurograph.charrnn.trainer import Trainer
from neurograph.urn.runfolder import URNRunFolder
from neurograph.urn.scenario import URNScenario
from neurograph.urn.train import URNTrainer

torch.set_num_threads(1)

GEXF = "{http://www.gexf.net/1.2draft}"
# Fast churn (adds and deletes within a few hundred cycles), two phases, snapshots at 100 and 200.
SCENARIO = {
    "name": "tiny",
    "seed": 3,
    "loss_smoothing": 0.99,
    "structure": {
        "kind": "outgoing_l1", "k": 1, "threshold": 0.5, "l1": 1e-3, "p_add": 0.3, "p_del": 0.3,
        "p_spontaneous": 0.05, "max_hidden": 9,
    },
    "optimizer": {"kind": "rmsprop"},
    "phases": [{"task": {"kind": "easy"}, "cycles": 150}, {"task": {"kind": "hard", "length": 4}, "cycles": 150}],
    "report": {"every": 10, "graph_every": 100, "checkpoint_every": 100},
}  # fmt: skip


@pytest.fixture(scope="session")
def run(tmp_path_factory):
    """(run folder, trainer after the run): the trainer's graph still has the full dead records."""
    scenario = Scenario.model_validate(SCENARIO)
    folder = prepare_run_folder(tmp_path_factory.mktemp("runs") / "tiny", scenario)
    trainer = Trainer(scenario, reporters=ReporterSet([RunFolder(folder)]))
    trainer.run()
    assert trainer.graph.dead, "the fixture run should delete neurons"
    return folder, trainer


def gexf_graph(path):
    root = ET.parse(path).getroot()
    assert root.tag == f"{GEXF}gexf"
    return root.find(f"{GEXF}graph")


def spans(graph_element) -> dict[str, tuple[int, int | None]]:
    """Label -> (first cycle alive, last cycle alive or None)."""
    nodes = graph_element.iter(f"{GEXF}node")
    return {n.get("id"): (int(n.get("start")), None if n.get("end") is None else int(n.get("end"))) for n in nodes}


def lived(data: dict, cycle: int) -> bool:
    """Whether a node or edge read by ``nx.read_gexf`` lived at ``cycle`` (spells: both ends included)."""
    lives = data.get("spells") or [(data.get("start"), data.get("end"))]
    return any(start <= cycle and (end is None or cycle <= end) for start, end in lives)


def value_at(value, cycle: int):
    """A static value, or the value of the dynamic attribute's spell holding ``cycle``."""
    if not isinstance(value, list):
        return value
    found = [v for v, start, end in value if start <= cycle <= end]
    assert len(found) == 1, (value, cycle)
    return found[0]


NOT_COMPARED = {"label", "start", "end", "spells", "viz", "id", "age", "died"}  # GEXF's own, or as of its end


def gexf_at(path, cycle: int) -> nx.DiGraph:
    """The dynamic GEXF restricted to ``cycle``: what lived then, with the values it had then."""
    g = nx.read_gexf(path)
    out = nx.DiGraph()
    for name, d in g.nodes(data=True):
        if lived(d, cycle):
            out.add_node(name, **{k: value_at(v, cycle) for k, v in d.items() if k not in NOT_COMPARED})
    for u, v, d in g.edges(data=True):
        if lived(d, cycle):
            assert u in out and v in out, (u, v, cycle)
            values = {k: value_at(x, cycle) for k, x in d.items() if k not in NOT_COMPARED}
            values["weight"] = abs(values["signed_weight"])  # networkx keeps only the last of weight's spells
            out.add_edge(u, v, **values)
    return out


def without(g: nx.DiGraph, keys=NOT_COMPARED) -> nx.DiGraph:
    out = nx.DiGraph()
    out.add_nodes_from((n, {k: v for k, v in d.items() if k not in keys}) for n, d in g.nodes(data=True))
    out.add_edges_from((u, v, {k: x for k, x in d.items() if k not in keys}) for u, v, d in g.edges(data=True))
    return out


def same(a: nx.DiGraph, b: nx.DiGraph) -> None:
    assert dict(a.nodes(data=True)) == dict(b.nodes(data=True))
    assert {(u, v): d for u, v, d in a.edges(data=True)} == {(u, v): d for u, v, d in b.edges(data=True)}


# ---------------------------------------------------------------------- GEXF
def test_gexf_is_dynamic_with_integer_time(run, tmp_path):
    folder, _ = run
    g = gexf_graph(export_run(folder, "gexf", tmp_path / "g.gexf"))
    assert g.get("mode") == "dynamic"
    assert g.get("timeformat") == "integer"
    assert g.get("defaultedgetype") == "directed"


def test_gexf_nodes_live_from_birth_to_the_cycle_before_death(run, tmp_path):
    folder, trainer = run
    graph = trainer.graph
    got = spans(gexf_graph(export_run(folder, "gexf", tmp_path / "g.gexf")))
    assert len(got) == len(graph) + len(graph.dead)
    living = {n.label: (n.born, None) for n in graph.neurons.values()}
    dead = {n.label: (n.born, n.died - 1) for n in graph.dead.values()}
    assert got == living | dead


@pytest.mark.parametrize("cycle", [100, 200, 300])
def test_gexf_at_a_snapshot_cycle_is_that_snapshot(run, tmp_path, cycle):
    """The lifetime view replays the run: restricted to a snapshot's cycle, it is that snapshot's graph."""
    folder, _ = run
    path = export_run(folder, "gexf", tmp_path / "g.gexf")
    snapshot = folder / ("graph.graphml" if cycle == 300 else f"graphs/cycle-{cycle}.graphml")
    same(gexf_at(path, cycle), without(nx.read_graphml(snapshot)))


def test_gexf_of_a_snapshot_replays_up_to_it(run, tmp_path):
    folder, _ = run
    path = export_run(folder, "gexf", tmp_path / "g.gexf", cycle=200)
    for cycle in (100, 200):
        same(gexf_at(path, cycle), without(nx.read_graphml(folder / f"graphs/cycle-{cycle}.graphml")))


def test_gexf_gives_deleted_neurons_their_wiring(run, tmp_path):
    """Connections of deleted neurons come from the fossils the run logged as they died, and end with them."""
    folder, trainer = run
    g = nx.read_gexf(export_run(folder, "gexf", tmp_path / "g.gexf"))
    dead = {n.label: n for n in trainer.graph.dead.values()}
    wired = {end for u, v in g.edges() for end in (u, v) if end in dead}
    fossils = read_fossils(folder)
    assert {f.neuron.id for f in fossils} == set(trainer.graph.dead) and wired == dead.keys()
    for u, v, d in g.edges(data=True):
        for end in {u, v} & dead.keys():
            assert d["end"] <= dead[end].died - 1
    for f in fossils:
        n = trainer.graph.dead[f.neuron.id]
        assert (f.neuron.born, f.neuron.died, f.neuron.bias) == (n.born, n.died, n.bias)
        for source, w in f.incoming.items():
            label = (trainer.graph.neurons.get(source) or trainer.graph.dead[source]).label
            assert value_at(g.edges[label, n.label]["signed_weight"], n.died - 1) == w  # the weight at death


def test_gexf_state_and_weights_change_over_time(run, tmp_path):
    folder, _ = run
    g = nx.read_gexf(export_run(folder, "gexf", tmp_path / "g.gexf"))
    for _, d in g.nodes(data=True):
        assert all(state in ("alive", "reserve") for state, _, _ in d.get("state", []))  # never "deleted" alive
    assert any(len(d["signed_weight"]) > 1 for _, _, d in g.edges(data=True))
    for edge in gexf_graph(tmp_path / "g.gexf").iter(f"{GEXF}edge"):  # weight: |w|, spell by spell
        spells = {k: [] for k in ("weight", "signed_weight")}
        for v in edge.iter(f"{GEXF}attvalue"):
            if v.get("for") in spells:
                spells[v.get("for")].append((float(v.get("value")), v.get("start"), v.get("end")))
        assert spells["weight"] == [(abs(w), a, b) for w, a, b in spells["signed_weight"]]


def test_gexf_dates_agree_with_event_log(run, tmp_path):
    folder, _ = run
    got = spans(gexf_graph(export_run(folder, "gexf", tmp_path / "g.gexf")))
    by_id = {int(label[1:]): span for label, span in got.items()}
    events = read_events(folder)
    deletes = [e for e in events if e.kind == "delete"]
    assert deletes
    for e in events:
        start, end = by_id[e.neuron]
        if e.kind == "add":
            assert start == e.cycle
        elif e.kind == "delete":
            assert (start, end) == (e.cycle - e.age, e.cycle - 1)


def test_gexf_edges_start_at_connection_birth(run, tmp_path):
    folder, trainer = run
    g = nx.read_gexf(export_run(folder, "gexf", tmp_path / "g.gexf"))
    labels = {i: n.label for i, n in trainer.graph.neurons.items()}
    living = [(labels[c.source], labels[c.target], c) for c in trainer.graph.connections()]
    assert sum(1 for _, _, d in g.edges(data=True) if "end" not in d) == len(living)
    for u, v, c in living:
        d = g.edges[u, v]
        assert (d["start"], d["born"]) == (c.born, c.born) and "end" not in d
        assert value_at(d["weight"], 300) == abs(c.weight) and value_at(d["signed_weight"], 300) == c.weight


def test_gexf_of_snapshot_ignores_later_events(run, tmp_path):
    folder, _ = run
    got = spans(gexf_graph(export_run(folder, "gexf", tmp_path / "g.gexf", cycle=100)))
    snapshot = read_graphml(folder / "graphs" / "cycle-100.graphml")
    assert all(start <= 100 and (end is None or end <= 100) for start, end in got.values())
    assert {label for label, (_, end) in got.items() if end is None} == {n.label for n in snapshot.neurons.values()}
    died_by_100 = {e.neuron for e in read_events(folder) if e.kind == "delete" and e.cycle <= 100}
    assert len(got) == len(snapshot) + len(died_by_100)


def lineage_graph() -> Graph:
    """h2 dies at 5, h3 inherits its wiring at 7 and dies at 9; h4 inherits from h3 at 12."""
    g = Graph()
    i, o = g.add_neuron("input").id, g.add_neuron("output").id
    g.cycle = 1
    h2 = g.add_neuron("hidden").id
    g.wire([h2, o], [i, h2], np.array([[0.5, 0.0], [0.0, -2.0]]), present=np.array([[1, 0], [0, 1]]))
    g.cycle = 5
    g.delete_neuron(h2)
    g.cycle = 7
    h3 = g.add_neuron("hidden", inherited_from=h2).id
    g.connect(i, h3, 0.25, inherited_from=h2)
    g.cycle = 9
    g.delete_neuron(h3)
    g.cycle = 12
    h4 = g.add_neuron("hidden", inherited_from=h3).id
    g.connect(h4, o, 1.5, inherited_from=h3)
    g.cycle = 15
    return g


def test_timeline_rebuilds_dead_lineage_from_events(tmp_path):
    g = lineage_graph()
    write_graphml(g, tmp_path / "g.graphml")
    imported = read_graphml(tmp_path / "g.graphml")  # dead ancestors come back undated
    assert all(n.born == -1 for n in imported.dead.values())
    got = {n.id: (n, lineage) for n, lineage in timeline(imported, g.events)}
    assert sorted(got) == [0, 1, 2, 3, 4]
    h2, h3, h4 = got[2][0], got[3][0], got[4][0]
    assert (h2.born, h2.died, h2.generation, h2.inherited_from) == (1, 5, 0, None)
    assert (h3.born, h3.died, h3.generation, h3.inherited_from) == (7, 9, 1, 2)
    assert (h4.born, h4.died, h4.inherited_from) == (12, None, 3)
    assert [got[k][1] for k in (2, 3, 4)] == ["h2", "h2>h3", "h2>h3>h4"]


def test_gexf_writes_dead_attributes(tmp_path):
    g = lineage_graph()
    write_gexf(g, g.events, tmp_path / "g.gexf", reserve=[4])
    nodes = {n.get("id"): n for n in gexf_graph(tmp_path / "g.gexf").iter(f"{GEXF}node")}
    values = {k: {v.get("for"): v.get("value") for v in n.iter(f"{GEXF}attvalue")} for k, n in nodes.items()}
    assert (nodes["h3"].get("start"), nodes["h3"].get("end")) == ("7", "8")  # deleted at 9
    assert {"died": "9", "inherited_from": "2", "lineage": "h2>h3"}.items() <= values["h3"].items()
    assert values["h4"]["state"] == "reserve" and values["h4"]["died"] == "-1"
    assert values["i0"]["state"] == "alive"


def test_timeline_rejects_a_log_that_kills_a_living_neuron():
    g = lineage_graph()
    events = list(g.events)
    g2 = Graph()
    g2.add_neuron("input"), g2.add_neuron("output"), g2.add_neuron("hidden")  # h2 alive here
    g2.cycle = 15
    with pytest.raises(ExportError, match="h2 died at cycle 5"):
        timeline(g2, events)


# ----------------------------------------------------------------------- CSV
def read_rows(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_csv_round_trip(run, tmp_path):
    folder, _ = run
    out = export_run(folder, "csv", tmp_path / "csv")
    graph, reserve = load_graph(folder / "graph.graphml")
    neurons, connections = read_rows(out / "neurons.csv"), read_rows(out / "connections.csv")
    assert len(neurons) == len(graph)
    assert len(connections) == graph.num_connections()
    ids = {n.label: i for i, n in graph.neurons.items()}
    for row in neurons:
        n = graph.neuron(int(row["neuron_id"]))
        assert (row["label"], row["role"], int(row["born"]), row["died"]) == (n.label, n.role, n.born, "-1")
        assert int(row["age"]) == graph.age(n.id)
        assert row["lineage"] == graph.lineage_label(n.id)
        assert "multiplier" not in row and float(row["bias"]) == n.bias  # an outgoing-L1 run trains none
        assert row["state"] == ("reserve" if n.id in reserve else "alive")
    for row in connections:
        c = graph.connection(ids[row["source"]], ids[row["target"]])
        assert float(row["signed_weight"]) == c.weight  # exact: floats are written with repr
        assert float(row["weight"]) == abs(c.weight)
        assert int(row["born"]) == c.born
        assert int(row["inherited_from"]) == (-1 if c.inherited_from is None else c.inherited_from)


# ------------------------------------------------------------ one schema
TYPES = {a.name: a.type for a in (*NODE_ATTRIBUTES, *EDGE_ATTRIBUTES)}


def typed(row: dict) -> dict:
    """A CSV row with the schema's types (labels and endpoints stay text)."""
    return {k: TYPES[k](v) if k in TYPES else v for k, v in row.items()}


def csv_graph(folder) -> nx.DiGraph:
    g = nx.DiGraph()
    for row in map(typed, read_rows(folder / "neurons.csv")):
        g.add_node(row.pop("label"), **row)
    for row in map(typed, read_rows(folder / "connections.csv")):
        g.add_edge(row.pop("source"), row.pop("target"), **row)
    return g


def igraph_as_networkx(ig: igraph.Graph, key: str) -> nx.DiGraph:
    """An igraph graph keyed by its ``key`` vertex attribute (GraphML: the node ids)."""
    g = nx.DiGraph()
    for v in ig.vs:
        g.add_node(v[key], **{k: x for k, x in v.attributes().items() if k != key})
    for e in ig.es:
        ends = ("source", "target")  # DictList keeps the CSV's endpoint columns as edge attributes too
        g.add_edge(ig.vs[e.source][key], ig.vs[e.target][key], **{k: x for k, x in e.attributes().items() if k not in ends})
    return g


def test_every_format_holds_the_same_graph(run, tmp_path):
    """GraphML, GEXF (at the last cycle) and CSV: the same nodes, edges, attribute names and values,
    read by networkx and by igraph (which reads GraphML, and CSV rows; GEXF it cannot read)."""
    folder, _ = run
    graphml = export_run(folder, "graphml", tmp_path / "g.graphml")
    gexf = export_run(folder, "gexf", tmp_path / "g.gexf")
    table = export_run(folder, "csv", tmp_path / "csv")
    want = without(nx.read_graphml(graphml), {"age", "died"})
    assert want.number_of_nodes() > 10 and want.number_of_edges() > 50
    attributes = {k: v for k, v in nx.read_graphml(graphml).graph.items() if not k.endswith("_default")}  # networkx's
    (row,) = read_rows(table / "graph.csv")
    assert {k: type(v)(row[k]) for k, v in attributes.items()} == attributes and attributes["seed"] == 3
    description = ET.parse(gexf).getroot().find(f"{GEXF}meta/{GEXF}description").text
    assert description.split() == [f"{k}={v}" for k, v in attributes.items()]
    same(gexf_at(gexf, 300), want)
    same(without(csv_graph(table), {"age", "died"}), want)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no clash with igraph's own vertex attribute "id"
        from_graphml = igraph.Graph.Read_GraphML(str(graphml))
    neurons, connections = (list(map(typed, read_rows(table / name))) for name in ("neurons.csv", "connections.csv"))
    from_csv = igraph.Graph.DictList(neurons, connections, directed=True, vertex_name_attr="label")
    for ig, key in ((from_graphml, "id"), (from_csv, "label")):
        assert (ig.vcount(), ig.ecount()) == (want.number_of_nodes(), want.number_of_edges())
        same(without(igraph_as_networkx(ig, key), {"age", "died"}), want)  # igraph's 10.0 equals 10


# ------------------------------------------------------------------- GraphML
def test_graphml_export_equals_run_file(run, tmp_path):
    folder, _ = run
    out = export_run(folder, "graphml", tmp_path / "g.graphml")
    a, b = read_graphml(folder / "graph.graphml"), read_graphml(out)
    assert a.ids() == b.ids()
    assert [a.neurons[i] for i in a.ids()] == [b.neurons[i] for i in b.ids()]
    assert sorted(a.connections(), key=lambda c: (c.source, c.target)) == sorted(
        b.connections(), key=lambda c: (c.source, c.target)
    )
    assert load_graph(folder / "graph.graphml")[1] == load_graph(out)[1]  # reserve states kept


def test_finished_run_without_its_final_graph_exports_its_checkpoint(run, tmp_path):
    folder, _ = run
    copy = shutil.copytree(folder, tmp_path / "run")
    (copy / "graph.graphml").unlink()
    a, b = read_graphml(folder / "graph.graphml"), read_graphml(export_run(copy, "graphml", tmp_path / "g.graphml"))
    assert [a.neurons[i] for i in a.ids()] == [b.neurons[i] for i in b.ids()]  # trained values, exactly
    assert list(a.connections()) == list(b.connections())
    assert (export_run(copy, "csv", tmp_path / "csv") / "connections.csv").is_file()
    same(gexf_at(export_run(copy, "gexf", tmp_path / "g.gexf"), 300), without(nx.read_graphml(tmp_path / "g.graphml")))
    (copy / "summary.json").unlink()  # not finished: no final graph to export
    with pytest.raises(RunFolderError, match="no final graph.graphml"):
        export_run(copy, "graphml", tmp_path / "h.graphml")


def urn_scenario() -> URNScenario:
    task = {"kind": "spheres", "dim": 4, "train": 200, "test": 60, "radii": [1, 2]}
    return URNScenario.model_validate(
        {
            "model": "urn", "name": "tiny-urn", "seed": 2, "network": {"size": 60, "iterations": 3},
            "loss": {"c_w": 1e-3, "c_n": 1e-2, "activity_reduction": "mean"}, "optimizer": {"kind": "adam", "lr": 0.02},
            "training": {"batch_size": 40}, "analysis": {"samples": 100, "activity_threshold": 1e-2},
            "deletion": {"enabled": True, "patience": 1}, "phases": [{"task": task, "epochs": 3}],
        }
    )  # fmt: skip


def test_large_urn_run_without_graph_graphml_exports_in_every_format(tmp_path):
    """A URN run folder skips graph.graphml above a size; its export comes from the checkpoint."""
    s = urn_scenario()
    trainer = URNTrainer(s)
    trainer.reporters = ReporterSet([URNRunFolder(prepare_run_folder(tmp_path / "urn", s), max_graph_connections=10)])
    assert trainer.run()["status"] == "finished"
    assert not (tmp_path / "urn" / "graph.graphml").exists()
    graphml = export_run(tmp_path / "urn", "graphml")
    got = read_graphml(graphml)
    assert [got.neurons[i] for i in got.ids()] == [trainer.graph.neurons[i] for i in trainer.graph.ids()]
    assert list(got.connections()) == list(trainer.graph.connections())
    g = nx.read_graphml(graphml)
    assert g.graph["positions"] == "geometry" and g.graph["model"] == "urn" and g.graph["seed"] == 2
    assert all("multiplier" not in d for _, d in g.nodes(data=True))
    same(gexf_at(export_run(tmp_path / "urn", "gexf"), 3), without(g))
    assert len(read_rows(export_run(tmp_path / "urn", "csv") / "connections.csv")) == g.number_of_edges()


def test_default_export_paths(run, tmp_path):
    folder, _ = run
    copy = shutil.copytree(folder, tmp_path / "run")
    assert export_run(copy, "gexf") == copy / "export" / "graph.gexf"
    assert export_run(copy, "graphml", cycle=200) == copy / "export" / "cycle-200.graphml"
    assert (export_run(copy, "csv") / "neurons.csv").is_file()


def test_missing_snapshot_lists_available_cycles(run, tmp_path):
    folder, _ = run
    assert snapshot_cycles(folder) == [100, 200]
    with pytest.raises(RunFolderError, match="no snapshot at cycle 150; snapshot cycles: 100, 200"):
        export_run(folder, "gexf", tmp_path / "g.gexf", cycle=150)


def test_not_a_run_folder(tmp_path):
    with pytest.raises(RunFolderError, match="not a run folder"):
        export_run(tmp_path, "csv")
    with pytest.raises(RunFolderError, match="not a run folder"):
        run_summary(tmp_path)


def test_unfinished_run_has_no_final_graph(run, tmp_path):
    folder, _ = run
    copy = shutil.copytree(folder, tmp_path / "run")
    (copy / "graph.graphml").unlink()
    with pytest.raises(RunFolderError, match="no final graph.graphml"):
        graph_file(copy)


# --------------------------------------------------------------- run reading
def test_summary_of_finished_run_is_its_file(run):
    folder, _ = run
    assert run_summary(folder) == json.loads((folder / "summary.json").read_text())


def test_summary_of_crashed_run_is_rebuilt(run, tmp_path):
    folder, _ = run
    copy = shutil.copytree(folder, tmp_path / "run")
    (copy / "summary.json").unlink()
    last = read_jsonl(copy / "metrics.jsonl")[-1]
    s = run_summary(copy)
    assert s["status"] == "incomplete"
    assert (s["scenario"], s["seed"], s["total_cycles"]) == ("tiny", 3, 300)
    assert (s["cycles"], s["checkpoint_cycle"]) == (300, 300)
    for key in ("hidden", "loss", "adds", "deletes"):
        assert s[key] == last[key]
    assert [p["phase"] for p in s["phases"]] == [0, 1]


def test_read_jsonl_skips_only_a_cut_last_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"cycle": 1}\n{"cycle": 2}\n{"cyc')
    assert read_jsonl(path) == [{"cycle": 1}, {"cycle": 2}]
    path.write_text('{"cycle": 1}\n{"cyc\n{"cycle": 3}\n')
    with pytest.raises(RunFolderError, match="line 2 is not JSON"):
        read_jsonl(path)
    assert read_jsonl(tmp_path / "absent.jsonl") == []


def test_run_phases(run):
    folder, _ = run
    phases = run_phases(folder, read_jsonl(folder / "metrics.jsonl"))
    assert [(p["task"], p["start"], p["end"]) for p in phases] == [("easy", 0, 150), ("hard", 150, 300)]
    assert all(p["optimum"] > 0 for p in phases)
