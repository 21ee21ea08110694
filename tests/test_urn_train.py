"""Tests for neurograph.urn.train: what reporters hear, determinism, phases, run folders."""

from __future__ import annotations

import json

import networkx as nx
import pytest
import torch

from neurograph.run.reporters import Reporter, ReporterSet
from neurograph.run.folder import prepare_run_folder
from neurograph.urn.runfolder import URNRunFolder
from neurograph.urn.scenario import URNScenario
from neurograph.urn.train import URNTrainer

torch.set_num_threads(1)

ROW_KEYS = {
    "cycle", "phase", "task", "loss", "optimum", "gap", "hidden", "reserve", "adds", "deletes",
    "cycles_per_s", "active", "layers", "accuracy", "test_accuracy",
}  # fmt: skip


def spheres(seed: int = 0, epochs: int = 3, **network) -> URNScenario:
    task = {"kind": "spheres", "dim": 4, "train": 200, "test": 60, "radii": [1, 2]}
    return URNScenario.model_validate(
        {
            "model": "urn",
            "name": "tiny-spheres",
            "seed": seed,
            "network": {"size": 60, "iterations": 3, **network},
            "loss": {"c_w": 1e-4, "c_n": 1e-3, "activity_reduction": "mean"},
            "optimizer": {"kind": "adam", "lr": 0.01},
            "training": {"batch_size": 40},
            "analysis": {"samples": 100},
            "phases": [{"task": task, "epochs": epochs}],
        }
    )


def nesa() -> URNScenario:
    bars = lambda **kw: {"task": {"kind": "bars", "train": 120, "test": 40, **kw}, "epochs": 2}  # noqa: E731
    return URNScenario.model_validate(
        {
            "model": "urn",
            "name": "tiny-nesa",
            "network": {"iterations": 3, "update": "residual_output", "geometry": {"x": 6, "y": 6, "z": 3}},
            "loss": {"c_syn": 1e-4, "activity_reduction": "mean"},
            "training": {"batch_size": 40},
            "report": {"every": 1, "graph_every": 2},
            "phases": [bars(classes=2), bars(classes=4), bars(classes=3, pairs=True)],
        }
    )


class Recorder(Reporter):
    def __init__(self):
        self.calls, self.rows, self.events_seen, self.snapshots, self.connectomes = [], [], [], [], []

    def start(self, info):
        self.calls.append("start")
        self.info = info

    def metrics(self, row):
        self.calls.append("metrics")
        self.rows.append(row)

    def events(self, events):
        self.events_seen.extend(events)

    def snapshot(self, cycle, graph, reserve, final):
        self.calls.append("snapshot")
        self.snapshots.append((cycle, final, len(graph), graph.num_connections()))

    def connectome(self, cycle, graph, analysis, final):
        self.connectomes.append((cycle, final, analysis.n_active_hidden))

    def end(self, summary):
        self.calls.append("end")
        self.summary = summary


def test_rows_have_the_cli_keys_and_reporters_are_called_in_order():
    rec = Recorder()
    summary = URNTrainer(spheres(), reporters=ReporterSet([ReporterSet([rec])])).run()
    assert rec.calls == ["start", "metrics", "metrics", "metrics", "snapshot", "end"]
    row = rec.rows[-1]
    assert ROW_KEYS <= set(row)
    assert row["cycle"] == 3 and row["phase"] == 0 and row["task"] == "spheres"
    assert row["optimum"] is None and row["gap"] is None and row["reserve"] == 0 and row["adds"] == 0
    assert row["hidden"] == 60 - 4 - 2 and len(row["layers"]) == 3
    assert 0.0 <= row["test_accuracy"] <= 1.0
    json.dumps(rec.rows)
    assert rec.snapshots == [(3, True, 60, 3600)]
    assert rec.connectomes and rec.connectomes[-1][:2] == (3, True)  # nested sets reach the connectome hook
    assert summary == rec.summary and summary["status"] == "finished" and summary["cycles"] == 3
    assert set(summary["ablation"]) == {"neurons", "synapses", "forward", "adjacent"}
    assert rec.info["total_cycles"] == 3 and rec.info["phases"][0]["end"] == 3


def test_training_learns_the_spheres():
    summary = URNTrainer(spheres(epochs=8)).run()
    assert summary["test_accuracy"] >= 0.9
    assert summary["ablation"]["neurons"]["accuracy_after"] == summary["ablation"]["neurons"]["accuracy_before"]


def comparable(rows):
    return [{k: v for k, v in r.items() if k not in ("cycles_per_s", "epoch_s")} for r in rows]


def test_deterministic_given_the_seed():
    runs = []
    for seed in (3, 3, 4):
        rec = Recorder()
        URNTrainer(spheres(seed=seed, epochs=2), reporters=rec).run()
        runs.append(comparable(rec.rows))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_phases_train_one_after_the_other():
    rec = Recorder()
    trainer = URNTrainer(nesa(), reporters=rec)
    assert trainer.compiled.n == 6 * 6 * 3 and trainer.compiled.n_output == 4  # most classes of any phase
    summary = trainer.run()
    assert [r["phase"] for r in rec.rows] == [0, 0, 1, 1, 2, 2]
    assert [r["task"] for r in rec.rows[::2]] == ["bars", "bars", "bar-pairs"]
    phases = summary["phases"]
    assert [p["end_cycle"] for p in phases] == [2, 4, 6]
    assert [len(p["earlier_test_accuracy"]) for p in phases] == [0, 1, 2]
    assert all("layers" in p and "path_depth" in p for p in phases)
    assert [c for c, final, _ in rec.connectomes] == [2, 4, 6]  # graph_every 2, then the final one
    assert [s[1] for s in rec.snapshots] == [False, False, True]


def test_stop_request_ends_the_run_interrupted():
    class StopAfterFirst(Recorder):
        def metrics(self, row):
            super().metrics(row)
            trainer.request_stop()

    rec = StopAfterFirst()
    trainer = URNTrainer(spheres(epochs=5), reporters=rec)
    summary = trainer.run()
    assert summary["status"] == "interrupted" and summary["cycles"] == 1


def test_run_folder_writes_connectome_and_figures(tmp_path):
    scenario = spheres(epochs=2)
    folder = prepare_run_folder(tmp_path / "run", scenario)
    URNTrainer(scenario, reporters=ReporterSet([URNRunFolder(folder)])).run()
    assert {p.name for p in folder.iterdir()} >= {
        "scenario.yaml", "metrics.jsonl", "events.jsonl", "summary.json",
        "graph.graphml", "connectome.graphml", "figures",
    }  # fmt: skip
    assert len((folder / "metrics.jsonl").read_text().splitlines()) == 2
    assert json.loads((folder / "summary.json").read_text())["model"] == "urn"
    g = nx.read_graphml(folder / "connectome.graphml")
    assert g.number_of_nodes() > 0
    for name in ("structure.png", "connectome.png"):
        assert (folder / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_folder_skips_the_dense_graph_when_too_large(tmp_path):
    scenario = spheres(epochs=1)
    folder = prepare_run_folder(tmp_path / "run", scenario)
    URNTrainer(scenario, reporters=URNRunFolder(folder, max_graph_connections=100)).run()
    assert not (folder / "graph.graphml").exists() and (folder / "connectome.graphml").exists()


@pytest.mark.parametrize("update", ["residual_output", "residual_input"])
def test_residual_variants_train(update):
    summary = URNTrainer(spheres(epochs=2, update=update)).run()
    assert summary["cycles"] == 2


def test_activity_sum_is_batch_times_mean():
    """``activity_reduction: sum`` (eq. 5 as printed) trains exactly as ``mean`` with c_N times B."""
    def trained(reduction: str, c_n: float) -> URNTrainer:
        s = spheres(epochs=1)
        s = s.model_copy(update={"loss": s.loss.model_copy(update={"c_n": c_n, "activity_reduction": reduction})})
        t = URNTrainer(s)
        t.train_epoch()
        return t

    summed, meaned = trained("sum", 1e-3), trained("mean", 1e-3 * 40)
    assert torch.equal(summed.compiled.weight, meaned.compiled.weight)
    differs = trained("mean", 1e-3)
    assert not torch.equal(summed.compiled.weight, differs.compiled.weight)


def test_synapse_pairs_setting_reaches_the_length_penalty():
    """``loss.synapse_pairs``: ``all`` (the default, every ordered pair) or eq. 9's printed ``i<j``."""
    def trained(**loss) -> URNTrainer:
        s = nesa()
        s = s.model_copy(update={"loss": s.loss.model_copy(update=loss), "phases": s.phases[:1]})
        t = URNTrainer(s)
        t.train_epoch()
        return t

    default, every, upper = trained(), trained(synapse_pairs="all"), trained(synapse_pairs="i<j")
    assert default.scenario.loss.synapse_pairs == "all"
    assert torch.equal(default.coefficients, every.coefficients)
    assert torch.equal(default.compiled.weight, every.compiled.weight)
    ids = torch.tensor(upper.compiled.ids)
    below = ids[:, None] < ids[None, :]  # [target, source]: the target comes first in the paper's order
    assert torch.equal(upper.coefficients[below], every.coefficients[below])
    assert bool((upper.coefficients[~below] == upper.scenario.loss.c_w).all())
    assert not torch.equal(upper.compiled.weight, every.compiled.weight)


def test_final_outputs_are_written_while_the_engine_says_finishing():
    """The command line interrupts at once while ``finishing``: there is no epoch left to wait for."""
    class Watch(Recorder):
        def status(self, text):
            self.calls.append(("status", text, trainer.finishing))

        def connectome(self, cycle, graph, analysis, final):
            self.calls.append(("connectome", final, trainer.finishing))

    rec = Watch()
    trainer = URNTrainer(spheres(epochs=2), reporters=rec)
    trainer.run()
    assert ("connectome", True, True) in rec.calls and not trainer.finishing
    notes = [c for c in rec.calls if c[0] == "status"]
    assert [note for _, note, _ in notes] == [
        "writing the graph, connectome and figures",
        "measuring the structure and the ablations",
    ]
    assert all(finishing for *_, finishing in notes)
