"""Tests for neurograph.run.export and neurograph.run.reader: GEXF timeline, CSV and GraphML export, run folder reading."""

from __future__ import annotations

import csv
import json
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch

from neurograph.run.export import export_run, timeline, write_gexf
from neurograph.run.reader import (
    ExportError,
    graph_file,
    load_graph,
    read_events,
    read_jsonl,
    run_phases,
    run_summary,
    snapshot_cycles,
)
from neurograph.graph import Graph
from neurograph.graphml import read_graphml, write_graphml
from neurograph.run.reporters import ReporterSet
from neurograph.run.folder import RunFolder, RunFolderError, prepare_run_folder
from neurograph.scenario import Scenario
from neurograph.charrnn.trainer import Trainer

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
    nodes = graph_element.iter(f"{GEXF}node")
    return {n.get("id"): (int(n.get("start")), None if n.get("end") is None else int(n.get("end"))) for n in nodes}


# ---------------------------------------------------------------------- GEXF
def test_gexf_is_dynamic_with_integer_time(run, tmp_path):
    folder, _ = run
    g = gexf_graph(export_run(folder, "gexf", tmp_path / "g.gexf"))
    assert g.get("mode") == "dynamic"
    assert g.get("timeformat") == "integer"
    assert g.get("defaultedgetype") == "directed"


def test_gexf_nodes_span_birth_to_death(run, tmp_path):
    folder, trainer = run
    graph = trainer.graph
    got = spans(gexf_graph(export_run(folder, "gexf", tmp_path / "g.gexf")))
    assert len(got) == len(graph) + len(graph.dead)
    living = {n.label: (n.born, None) for n in graph.neurons.values()}
    dead = {n.label: (n.born, n.died) for n in graph.dead.values()}
    assert got == living | dead


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
            assert (start, end) == (e.cycle - e.age, e.cycle)


def test_gexf_edges_start_at_connection_birth(run, tmp_path):
    folder, trainer = run
    g = gexf_graph(export_run(folder, "gexf", tmp_path / "g.gexf"))
    labels = {i: n.label for i, n in trainer.graph.neurons.items()}
    want = {(labels[c.source], labels[c.target]): c for c in trainer.graph.connections()}
    edges = list(g.iter(f"{GEXF}edge"))
    assert len(edges) == trainer.graph.num_connections()
    for e in edges:
        c = want[(e.get("source"), e.get("target"))]
        assert int(e.get("start")) == c.born
        assert e.get("end") is None
        assert float(e.get("weight")) == abs(c.weight)
        signed = {v.get("for"): v.get("value") for v in e.iter(f"{GEXF}attvalue")}["signed_weight"]
        assert float(signed) == c.weight


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
    assert (nodes["h3"].get("start"), nodes["h3"].get("end")) == ("7", "9")
    assert {"state": "deleted", "died": "9", "inherited_from": "2", "lineage": "h2>h3"}.items() <= values["h3"].items()
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
    for row in neurons:
        n = graph.neuron(int(row["id"]))
        assert (row["label"], row["role"], int(row["born"]), row["died"]) == (n.label, n.role, n.born, "")
        assert int(row["age"]) == graph.age(n.id)
        assert row["lineage"] == graph.lineage_label(n.id)
        assert float(row["multiplier"]) == n.multiplier and float(row["bias"]) == n.bias
        assert row["state"] == ("reserve" if n.id in reserve else "alive")
    for row in connections:
        c = graph.connection(int(row["pre"]), int(row["post"]))
        assert float(row["weight"]) == c.weight  # exact: floats are written with repr
        assert int(row["born"]) == c.born
        assert row["inherited_from"] == ("" if c.inherited_from is None else str(c.inherited_from))


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
