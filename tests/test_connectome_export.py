"""Tests for the connectome exports: neurograph.run.lived (everything that lived), neurograph.run.sonata
(SONATA, read back with h5py against the spec and with libsonata, the reference reader) and the
neuPrint-style CSV (neurograph.run.export), checked against the run's graph, its dead included."""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys

import numpy as np
import pytest
import torch

from neurograph.charrnn.trainer import Trainer
from neurograph.graph import ROLES, Graph
from neurograph.graphml import read_graphml, write_graphml
from neurograph.run.export import export_run
from neurograph.run.folder import RunFolder, prepare_run_folder
from neurograph.run.lived import lived_columns
from neurograph.run.reader import ExportError, read_events, read_fossils
from neurograph.run.reporters import ReporterSet
from neurograph.run.sonata import EDGE_POPULATION, NODE_POPULATION, edge_index
from neurograph.scenario import Scenario
from neurograph.urn.runfolder import URNRunFolder
from neurograph.urn.scenario import URNScenario
from neurograph.urn.train import URNTrainer

try:
    import h5py
except ImportError:  # the sonata extra: the SONATA tests are skipped, the others run
    h5py = None
needs_h5py = pytest.mark.skipif(h5py is None, reason="h5py (neurograph[sonata]) is not installed")
torch.set_num_threads(1)

# Fast churn: neurons added and deleted within a few hundred cycles; snapshots at 100 and 200.
SCENARIO = {
    "name": "tiny-connectome", "seed": 3, "loss_smoothing": 0.99,
    "structure": {
        "kind": "outgoing_l1", "k": 1, "threshold": 0.5, "l1": 1e-3, "p_add": 0.3, "p_del": 0.3,
        "p_spontaneous": 0.05, "max_hidden": 9,
    },
    "optimizer": {"kind": "rmsprop"},
    "phases": [{"task": {"kind": "easy"}, "cycles": 150}, {"task": {"kind": "hard", "length": 4}, "cycles": 150}],
    "report": {"every": 10, "graph_every": 100, "checkpoint_every": 100},
}  # fmt: skip
URN = {
    "model": "urn", "name": "tiny-urn", "seed": 2, "network": {"size": 60, "iterations": 3},
    "loss": {"c_w": 1e-3, "c_n": 1e-2, "activity_reduction": "mean"}, "optimizer": {"kind": "adam", "lr": 0.02},
    "training": {"batch_size": 40}, "analysis": {"samples": 100, "activity_threshold": 1e-2},
    "deletion": {"enabled": True, "patience": 1},
    "phases": [{"task": {"kind": "spheres", "dim": 4, "train": 200, "test": 60, "radii": [1, 2]}, "epochs": 3}],
}  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(run folder, trainer after the run): the trainer's graph has every dead neuron's record."""
    scenario = Scenario.model_validate(SCENARIO)
    folder = prepare_run_folder(tmp_path_factory.mktemp("runs") / "tiny", scenario)
    trainer = Trainer(scenario, reporters=ReporterSet([RunFolder(folder)]))
    trainer.run()
    assert len(trainer.graph.dead) >= 3, "the fixture run should delete neurons"
    return folder, trainer


@pytest.fixture(scope="module")
def urn_run(tmp_path_factory):
    scenario = URNScenario.model_validate(URN)
    trainer = URNTrainer(scenario)
    folder = prepare_run_folder(tmp_path_factory.mktemp("runs") / "urn", scenario)
    trainer.reporters = ReporterSet([URNRunFolder(folder)])
    assert trainer.run()["status"] == "finished" and trainer.graph.dead, "the fixture run should delete neurons"
    return folder, trainer


def everyone(graph: Graph) -> dict:
    """Neuron id -> record, living and dead."""
    return {**graph.dead, **graph.neurons}


def living_edges(graph: Graph) -> dict:
    """(source, target) -> (w, born, inherited_from, died) of the graph's connections."""
    return {(c.source, c.target): (c.weight, c.born, -1 if c.inherited_from is None else c.inherited_from, -1)
            for c in graph.connections()}  # fmt: skip


def fossil_edges(graph: Graph, fossils) -> dict:
    """(source, target) -> (w at death, born: the later birth of its ends, -1, death) of the deleted neurons' wiring."""
    known = everyone(graph)
    out = {}
    for f in fossils:
        n = f.neuron
        wiring = [*(((s, n.id), w) for s, w in f.incoming.items()), *(((n.id, t), w) for t, w in f.outgoing.items())]
        for key, w in wiring:
            born = max(known[key[0]].born, known[key[1]].born)
            assert out.setdefault(key, (w, born, -1, n.died)) == (w, born, -1, n.died)
    return out


# ------------------------------------------------------------------- lived
def churned() -> Graph:
    """i0 -> h2 -> o1 with a self-loop on h2; h2 dies at 5 (its wiring in the graveyard); h3 lives from 7."""
    g = Graph()
    i, o = g.add_neuron("input").id, g.add_neuron("output").id
    g.cycle = 1
    h2 = g.add_neuron("hidden", bias=0.25).id
    g.connect(i, h2, 0.5), g.connect(h2, h2, -1.5), g.connect(h2, o, 2.0)
    g.cycle = 5
    g.delete_neuron(h2)
    g.cycle = 7
    h3 = g.add_neuron("hidden", inherited_from=h2).id
    g.connect(i, h3, 0.125, inherited_from=h2)
    g.cycle = 9
    return g


def test_lived_holds_the_dead_with_their_wiring_at_death():
    g = churned()
    lived = lived_columns(g, g.events, fossils=g.graveyard)
    nodes, edges = lived.nodes, lived.edges
    assert nodes.ids == [0, 1, 2, 3] and nodes.labels == ["i0", "o1", "h2", "h3"]
    c = nodes.columns
    assert list(c["state"]) == ["alive", "alive", "deleted", "alive"]
    assert list(c["born"]) == [0, 0, 1, 7] and list(c["died"]) == [-1, -1, 5, -1] and c["age"][2] == 4
    assert (c["bias"][2], c["in_l1"][2], c["out_l1"][2]) == (0.25, 2.0, 3.5)  # the self-loop counts both ways
    assert (c["inherited_from"][3], c["lineage"][3]) == (2, "h2>h3")
    ids = np.array(nodes.ids)
    got = {(ids[s], ids[t]): tuple(edges.columns[k][e] for k in ("signed_weight", "born", "inherited_from", "died"))
           for e, (s, t) in enumerate(zip(edges.source, edges.target))}  # fmt: skip
    assert len(got) == len(edges.source) == 4  # the self-loop once
    dead = {(0, 2): (0.5, 1, -1, 5), (2, 2): (-1.5, 1, -1, 5), (2, 1): (2.0, 1, -1, 5)}  # born: h2's, the later end
    assert got == dead | {(0, 3): (0.125, 7, 2, -1)}
    assert list(zip(edges.target, edges.source)) == sorted(zip(edges.target, edges.source))
    assert np.array_equal(edges.columns["weight"], np.abs(edges.columns["signed_weight"]))


def test_lived_of_an_imported_graph_knows_only_what_the_run_kept(tmp_path):
    """A GraphML file keeps no dead records: values the events cannot date are NaN, and no fossil: no wiring."""
    g = churned()
    write_graphml(g, tmp_path / "g.graphml")
    imported = read_graphml(tmp_path / "g.graphml")
    bare = lived_columns(imported, g.events)
    assert list(bare.nodes.columns["died"]) == [-1, -1, 5, -1] and len(bare.edges.source) == 1
    assert all(math.isnan(bare.nodes.columns[k][2]) for k in ("bias", "in_l1", "out_l1"))
    assert not math.isnan(bare.nodes.columns["x"][2])  # a layout: every neuron has a place
    full = lived_columns(imported, g.events, fossils=g.graveyard, records=g.dead)
    same = lived_columns(g, g.events, fossils=g.graveyard)
    for k, column in same.nodes.columns.items():
        assert list(full.nodes.columns[k]) == list(column), k
    assert all(np.array_equal(full.edges.columns[k], v) for k, v in same.edges.columns.items())


def test_lived_of_a_snapshot_ignores_later_deaths():
    g = churned()
    g2 = Graph()
    for role in ("input", "output", "hidden"):
        g2.add_neuron(role)
    g2.cycle = 3  # a snapshot at 3, h2 still alive: its fossil of cycle 5 does not apply
    lived = lived_columns(g2, [e for e in g.events if e.cycle <= 3], fossils=g.graveyard)
    assert list(lived.nodes.columns["state"]) == ["alive"] * 3 and len(lived.edges.source) == 0


# ------------------------------------------------------------------ SONATA
def sonata(folder, tmp_path, **kw):
    return export_run(folder, "sonata", tmp_path / "sonata", **kw)


@needs_h5py
def test_sonata_files_follow_the_spec(run, tmp_path):
    """Read with h5py against the SONATA developer guide: layout, dtypes, populations, types."""
    folder, trainer = run
    out = sonata(folder, tmp_path)
    assert sorted(p.name for p in out.iterdir()) == [
        "circuit_config.json", "edge_types.csv", "edges.h5", "node_types.csv", "nodes.h5"
    ]  # fmt: skip
    n = len(trainer.graph) + len(trainer.graph.dead)
    with h5py.File(out / "nodes.h5") as f:
        assert f.attrs["magic"] == 0x0A7A and list(f.attrs["version"]) == [0, 1]
        pop = f[f"nodes/{NODE_POPULATION}"]
        assert list(pop["node_id"][:]) == list(range(n)) and pop["node_id"].dtype == np.uint64
        assert list(pop["node_group_index"][:]) == list(range(n)) and not pop["node_group_id"][:].any()
        assert all(pop["0"][k].shape == (n,) for k in pop["0"])
        roles = [r.decode() for r in pop["0/role"][:]]
        assert [ROLES[k] for k in pop["node_type_id"][:]] == roles
        assert (pop.attrs["cycle"], pop.attrs["scenario"], pop.attrs["seed"]) == (300, "tiny-connectome", 3)
    with h5py.File(out / "edges.h5") as f:
        assert f.attrs["magic"] == 0x0A7A
        pop = f[f"edges/{EDGE_POPULATION}"]
        e = len(pop["source_node_id"])
        for end in ("source_node_id", "target_node_id"):
            assert pop[end].attrs["node_population"] == NODE_POPULATION and pop[end].dtype == np.uint64
        assert list(pop["edge_group_index"][:]) == list(range(e)) and not pop["edge_group_id"][:].any()
        assert sorted(pop["0"]) == ["born", "died", "inherited_from", "syn_weight"]
        sources, targets = pop["source_node_id"][:], pop["target_node_id"][:]
        want = [3 * ROLES.index(roles[s]) + ROLES.index(roles[t]) for s, t in zip(sources, targets)]
        assert list(pop["edge_type_id"][:]) == want
    types = [line.split() for line in (out / "node_types.csv").read_text().splitlines()]
    assert types[0][:2] == ["node_type_id", "model_type"]
    assert {int(r[0]): (r[1], r[3]) for r in types[1:]} == {
        0: ("virtual", "input"), 1: ("point_neuron", "hidden"), 2: ("point_neuron", "output")
    }  # fmt: skip
    edge_types = [line.split() for line in (out / "edge_types.csv").read_text().splitlines()]
    assert edge_types[0][0] == "edge_type_id" and set(want) <= {int(r[0]) for r in edge_types[1:]}


@needs_h5py
def test_sonata_holds_the_run_dead_and_alive(run, tmp_path):
    """Every neuron that lived, with birth, death and values; living connections and the deleted ones' wiring."""
    libsonata = pytest.importorskip("libsonata")
    folder, trainer = run
    graph = trainer.graph
    out = sonata(folder, tmp_path)
    nodes = libsonata.NodeStorage(str(out / "nodes.h5"))
    assert nodes.population_names == {NODE_POPULATION}
    pop = nodes.open_population(NODE_POPULATION)
    known = everyone(graph)
    assert pop.size == len(known)
    assert pop.attribute_names == {"neuron_id", "role", "state", "born", "died", "age", "generation", "inherited_from",
                                   "lineage", "bias", "in_l1", "out_l1", "x", "y", "z", "tags"}  # fmt: skip
    every = pop.select_all()
    a = {k: pop.get_attribute(k, every) for k in pop.attribute_names}
    assert list(a["neuron_id"]) == sorted(known)
    for row, i in enumerate(a["neuron_id"]):
        n = known[int(i)]
        assert (a["role"][row], a["born"][row], a["bias"][row]) == (n.role, n.born, n.bias)  # bias at death, exact
        assert a["died"][row] == (-1 if n.died is None else n.died)
        assert (a["state"][row] == "deleted") == (n.died is not None)
        assert a["lineage"][row] == graph.lineage_label(n.id)
    assert sum(a["state"] == "deleted") == len(graph.dead)
    edges = libsonata.EdgeStorage(str(out / "edges.h5"))
    assert edges.population_names == {EDGE_POPULATION}
    e = edges.open_population(EDGE_POPULATION)
    assert (e.source, e.target) == (NODE_POPULATION, NODE_POPULATION)
    every = e.select_all()
    ids = a["neuron_id"]
    source, target = ids[e.source_nodes(every)], ids[e.target_nodes(every)]
    values = zip(*(e.get_attribute(k, every) for k in ("syn_weight", "born", "inherited_from", "died")))
    got = {(int(s), int(t)): tuple(v) for s, t, v in zip(source, target, values)}
    assert len(got) == e.size
    want = living_edges(graph) | fossil_edges(graph, read_fossils(folder))
    assert got == want and sum(d == -1 for *_, d in got.values()) == graph.num_connections()


@needs_h5py
def test_sonata_indices_are_libsonatas(run, tmp_path):
    """The indices equal those libsonata writes, and its connectivity queries agree with the edge list."""
    libsonata = pytest.importorskip("libsonata")
    folder, _ = run
    out = sonata(folder, tmp_path)
    copy = shutil.copy(out / "edges.h5", tmp_path / "copy.h5")
    with h5py.File(copy, "a") as f:
        index = f[f"edges/{EDGE_POPULATION}/indices"]
        ours = {(k, d): index[k][d][:] for k in index for d in index[k]}
        del f[f"edges/{EDGE_POPULATION}/indices"]
        n = len(f[f"edges/{EDGE_POPULATION}/source_node_id"])
    nodes = libsonata.NodeStorage(str(out / "nodes.h5")).open_population(NODE_POPULATION).size
    libsonata.EdgePopulation.write_indices(str(copy), EDGE_POPULATION, nodes, nodes)
    assert len(ours) == 4
    with h5py.File(copy) as f:
        for (k, d), ours_ in ours.items():
            theirs = f[f"edges/{EDGE_POPULATION}/indices/{k}/{d}"]
            assert theirs.dtype == ours_.dtype and np.array_equal(theirs[:], ours_), (k, d)
    e = libsonata.EdgeStorage(str(out / "edges.h5")).open_population(EDGE_POPULATION)
    source, target = e.source_nodes(e.select_all()), e.target_nodes(e.select_all())
    assert e.size == n
    for node in range(nodes):
        assert list(e.efferent_edges(node).flatten()) == list(np.flatnonzero(source == node))
        assert list(e.afferent_edges(node).flatten()) == list(np.flatnonzero(target == node))


@needs_h5py
@pytest.mark.parametrize("seed", range(4))
def test_edge_index_equals_libsonatas_on_any_edge_order(tmp_path, seed):
    libsonata = pytest.importorskip("libsonata")
    rng = np.random.default_rng(seed)
    n, e = 12, int(rng.integers(0, 40))
    source, target = rng.integers(0, n - 3, e), rng.integers(2, n, e)  # nodes 0, 1 and n-3.. lack one side
    path = tmp_path / "e.h5"
    with h5py.File(path, "w") as f:
        for name, rows in (("source_node_id", source), ("target_node_id", target)):
            f[f"edges/p/{name}"] = rows.astype(np.uint64)
            f[f"edges/p/{name}"].attrs["node_population"] = "n"
        f["edges/p/edge_type_id"] = np.zeros(e, dtype=np.int64)
        f["edges/p/edge_group_id"] = np.zeros(e, dtype=np.uint32)
        f["edges/p/edge_group_index"] = np.arange(e, dtype=np.uint64)
    libsonata.EdgePopulation.write_indices(str(path), "p", n, n)
    with h5py.File(path) as f:
        for k, ends in (("source_to_target", source), ("target_to_source", target)):
            node_ranges, ranges = edge_index(ends, n)
            assert np.array_equal(f[f"edges/p/indices/{k}/node_id_to_ranges"][:], node_ranges), k
            assert np.array_equal(f[f"edges/p/indices/{k}/range_to_edge_id"][:].reshape(-1, 2), ranges), k


@needs_h5py
def test_sonata_circuit_config_opens_both_populations(run, tmp_path):
    libsonata = pytest.importorskip("libsonata")
    folder, trainer = run
    out = sonata(folder, tmp_path)
    config = libsonata.CircuitConfig.from_file(str(out / "circuit_config.json"))
    assert (config.node_populations, config.edge_populations) == ({NODE_POPULATION}, {EDGE_POPULATION})
    assert config.node_population(NODE_POPULATION).size == len(everyone(trainer.graph))
    assert json.loads((out / "circuit_config.json").read_text())["manifest"] == {"$BASE_DIR": "."}


@needs_h5py
def test_sonata_of_a_urn_run_places_its_dead(urn_run, tmp_path):
    """The URN keeps no fossils: its dead have their place and values from the checkpoint, no wiring."""
    folder, trainer = urn_run
    graph = trainer.graph
    with h5py.File(sonata(folder, tmp_path) / "nodes.h5") as f:
        group = f[f"nodes/{NODE_POPULATION}/0"]
        ids = list(group["neuron_id"][:])
        assert "multiplier" not in group and f[f"nodes/{NODE_POPULATION}"].attrs["positions"] == "geometry"
        for i, n in graph.dead.items():
            row = ids.index(i)
            assert tuple(group[k][row] for k in "xyz") == n.position and group["bias"][row] == n.bias
            assert group["died"][row] == n.died and math.isnan(group["in_l1"][row])
    with h5py.File(tmp_path / "sonata" / "edges.h5") as f:
        assert not (f[f"edges/{EDGE_POPULATION}/0/died"][:] >= 0).any()
        assert len(f[f"edges/{EDGE_POPULATION}/source_node_id"]) == graph.num_connections()


@needs_h5py
def test_sonata_of_a_snapshot(run, tmp_path):
    folder, _ = run
    out = sonata(folder, tmp_path, cycle=100)
    died = {e.neuron: e.cycle for e in read_events(folder) if e.kind == "delete" and e.cycle <= 100}
    with h5py.File(out / "nodes.h5") as f:
        group = f[f"nodes/{NODE_POPULATION}/0"]
        dead = {int(i): int(d) for i, d in zip(group["neuron_id"][:], group["died"][:]) if d >= 0}
        assert dead == died and f[f"nodes/{NODE_POPULATION}"].attrs["cycle"] == 100
    with h5py.File(out / "edges.h5") as f:
        assert (f[f"edges/{EDGE_POPULATION}/0/died"][:] <= 100).all()


def test_sonata_without_h5py_names_the_extra(run, tmp_path, monkeypatch):
    folder, _ = run
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py raises ImportError
    with pytest.raises(ExportError, match=r"needs h5py: pip install 'neurograph\[sonata\]'"):
        sonata(folder, tmp_path)


# ----------------------------------------------------------------- neuPrint
def read_rows(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_neuprint_csv_holds_the_run_dead_and_alive(run, tmp_path):
    folder, trainer = run
    graph = trainer.graph
    out = export_run(folder, "neuprint", tmp_path / "np")
    assert sorted(p.name for p in out.iterdir()) == ["connections.csv", "graph.csv", "neurons.csv"]
    neurons = read_rows(out / "neurons.csv")
    assert list(neurons[0])[:6] == ["bodyId", "instance", "type", "state", "born", "died"]
    known = everyone(graph)
    assert [int(r["bodyId"]) for r in neurons] == sorted(known)
    for r in neurons:
        n = known[int(r["bodyId"])]
        assert (r["instance"], r["type"], int(r["born"]), float(r["bias"])) == (n.label, n.role, n.born, n.bias)
        assert int(r["died"]) == (-1 if n.died is None else n.died)
        assert (r["state"] == "deleted") == (n.died is not None)
        assert r["lineage"] == graph.lineage_label(n.id) and int(r["age"]) == graph.age(n.id)
    rows = read_rows(out / "connections.csv")
    assert list(rows[0]) == ["bodyId_pre", "bodyId_post", "weight", "signed_weight", "born", "inherited_from", "died"]
    got = {(int(r["bodyId_pre"]), int(r["bodyId_post"])): (float(r["signed_weight"]), int(r["born"]),
           int(r["inherited_from"]), int(r["died"])) for r in rows}  # fmt: skip
    assert len(got) == len(rows) and all(float(r["weight"]) == abs(float(r["signed_weight"])) for r in rows)
    assert got == living_edges(graph) | fossil_edges(graph, read_fossils(folder))
    assert [(int(r["bodyId_post"]), int(r["bodyId_pre"])) for r in rows] == sorted(
        (int(r["bodyId_post"]), int(r["bodyId_pre"])) for r in rows
    )
    (meta,) = read_rows(out / "graph.csv")
    assert (meta["cycle"], meta["model"], meta["seed"]) == ("300", "charrnn", "3")


def test_neuprint_unknown_values_are_nan(urn_run, tmp_path):
    folder, trainer = urn_run
    rows = read_rows(export_run(folder, "neuprint", tmp_path / "np") / "neurons.csv")
    dead = [r for r in rows if r["state"] == "deleted"]
    assert [int(r["bodyId"]) for r in dead] == sorted(trainer.graph.dead)
    assert all(math.isnan(float(r["in_l1"])) and r["tags"] == "" for r in dead)


@needs_h5py
def test_default_connectome_export_paths(run, tmp_path):
    folder, _ = run
    copy = shutil.copytree(folder, tmp_path / "run")
    assert export_run(copy, "neuprint") == copy / "export" / "graph-neuprint"
    assert export_run(copy, "sonata", cycle=200) == copy / "export" / "cycle-200-sonata"
    assert (copy / "export" / "cycle-200-sonata" / "nodes.h5").is_file()
