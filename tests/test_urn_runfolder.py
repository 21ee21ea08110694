"""Tests for neurograph.urn.runfolder: what a URN run leaves, in bounded memory and time, and interruptible."""

from __future__ import annotations

import json
import os
import signal
import time
import tracemalloc
from pathlib import Path

import networkx as nx
import pytest
import torch
import yaml

import neurograph.graphml_writer as graphml_writer
from neurograph.run.folder import prepare_run_folder
from neurograph.run.reporters import ReporterSet
from neurograph.urn.runfolder import URNRunFolder
from neurograph.urn.scenario import URNScenario
from neurograph.urn.train import URNTrainer
from neurograph_cli.main import main

torch.set_num_threads(1)


def scenario_data(size: int, epochs: int = 1, **loss) -> dict:
    task = {"kind": "spheres", "dim": 4, "train": 80, "test": 40, "radii": [1, 2]}
    return {
        "model": "urn",
        "name": f"dense-{size}",
        "network": {"size": size, "iterations": 3},
        "loss": {"c_w": 0.0, "c_n": 0.0, **loss},  # no regulators: the network stays dense
        "training": {"batch_size": 40},
        "analysis": {"samples": 80},
        "phases": [{"task": task, "epochs": epochs}],
    }


def trained(folder: Path, size: int, **caps) -> tuple[URNTrainer, URNRunFolder]:
    scenario = URNScenario.model_validate(scenario_data(size))
    reporter = URNRunFolder(prepare_run_folder(folder, scenario), **caps)
    trainer = URNTrainer(scenario, reporters=ReporterSet([reporter]))
    trainer.train_epoch()
    trainer.current_analysis()  # as the epoch's metrics row would have it
    return trainer, reporter


def peak_bytes(write) -> int:
    """Largest traced allocation above the start while ``write`` runs (numpy reports its buffers too)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        write()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_dense_snapshot_is_streamed_in_bounded_memory(tmp_path):
    trainer, folder = trained(tmp_path / "run", 400)
    analysis = trainer.current_analysis()
    assert len(analysis.weights) > 100_000  # dense: most of the 160,000 synapses are in the "active" network
    peak = peak_bytes(lambda: trainer.snapshot(None, final=True))
    outputs = folder.outputs
    assert outputs["graph.graphml"] == {**outputs["graph.graphml"], "written": True, "connections": 160_000}
    written = outputs["connectome.graphml"]["synapses_written"]
    assert written == len(analysis.weights)
    edges = 160_000 + written
    # networkx holds about a kilobyte per edge before writing; the stream holds one chunk of rows
    assert peak < 40 * 2**20 and peak / edges < 150, f"{peak / 2**20:.1f} MiB for {edges:,} edges"
    g = nx.read_graphml(folder.path / "connectome.graphml")
    assert g.number_of_edges() == written and g.graph["synapses"] == written


def test_caps_bound_a_dense_snapshot_and_say_why(tmp_path):
    caps = {"max_graph_connections": 10_000, "max_connectome_edges": 5_000}
    small, small_folder = trained(tmp_path / "small", 200, **caps)
    small_peak = peak_bytes(lambda: small.snapshot(None, final=True))
    trainer, folder = trained(tmp_path / "run", 400, **caps)
    peak = peak_bytes(lambda: trainer.snapshot(None, final=True))
    # 4x the synapses (35,000 -> 140,000), the same files: what grows is W's write-back (S^2 floats)
    # and a few bytes per synapse to pick the strongest; the figures' pixels are fixed
    assert peak - small_peak < 8 * 2**20 and peak < 40 * 2**20, f"{small_peak / 2**20:.1f}, {peak / 2**20:.1f} MiB"
    assert not (folder.path / "graph.graphml").exists()
    graph = folder.outputs["graph.graphml"]
    assert graph["written"] is False and "160,000 connections" in graph["reason"]
    assert "connectome.graphml" in graph["reason"] and "\n" not in graph["reason"]
    connectome = folder.outputs["connectome.graphml"]
    assert connectome["synapses_written"] == 5_000 < connectome["synapses"]
    assert "strongest 5,000" in connectome["reason"]
    assert nx.read_graphml(folder.path / "connectome.graphml").number_of_edges() == 5_000
    summary = trainer.summary(trainer, "finished", 1.0)
    folder.end(summary)
    written = json.loads((folder.path / "summary.json").read_text())
    assert written["outputs"]["graph.graphml"]["written"] is False
    assert {"figures", "connectome.graphml"} <= set(written["outputs"])


def test_finishing_a_100_neuron_network_takes_under_5_seconds(tmp_path):
    """The whole end of a run: graph, connectome, figures, structure and ablations."""
    scenario = URNScenario.model_validate(scenario_data(100, epochs=2))
    folder = URNRunFolder(prepare_run_folder(tmp_path / "run", scenario))
    trainer = URNTrainer(scenario, reporters=ReporterSet([folder]))
    trainer.train_epoch()
    trainer.train_epoch()
    assert trainer.current_analysis().n_active_hidden > 50
    start = time.perf_counter()
    trainer.snapshot(None, final=True)
    folder.end(trainer.summary(trainer, "finished", 1.0))
    seconds = time.perf_counter() - start
    assert seconds < 5.0, f"{seconds:.1f} s"
    summary = json.loads((folder.path / "summary.json").read_text())
    assert all(o["written"] and o["seconds"] >= 0 for o in summary["outputs"].values())


@pytest.fixture
def scenario_file(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**scenario_data(60, epochs=2, c_n=1e-3), "name": "tiny-interrupt"}))
    return path


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_writing_outputs_interrupts_them_and_resume_redoes_them(
    scenario_file, tmp_path, monkeypatch, signum
):
    chunks = graphml_writer._rows
    sent = []

    def signal_on_first_chunk(*args):
        if not sent:  # the first GraphML chunk of the final outputs: the handler runs at the next bytecode
            sent.append(signum)
            os.kill(os.getpid(), signum)
        return chunks(*args)

    monkeypatch.setattr(graphml_writer, "_rows", signal_on_first_chunk)
    out = tmp_path / "run"
    assert main(["run", str(scenario_file), "--out", str(out), "--no-live", "--threads", "1"]) == 130
    assert sent == [signum]
    assert not (out / "graph.graphml").exists() and not (out / "connectome.graphml").exists()
    assert not list(out.glob(".*.tmp")), "a half-written file was left"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["cycles"] == 2  # training had finished

    assert main(["resume", str(out), "--no-live", "--threads", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["cycles"] == 2
    assert all(o["written"] for o in summary["outputs"].values())
    for name in ("graph.graphml", "connectome.graphml", "figures/structure.png", "figures/connectome.png"):
        assert (out / name).is_file()

    reference = tmp_path / "reference"
    assert main(["run", str(scenario_file), "--out", str(reference), "--no-live", "--threads", "1"]) == 0
    assert (out / "connectome.graphml").read_bytes() == (reference / "connectome.graphml").read_bytes()
