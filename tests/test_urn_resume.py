"""URN resume: a run stopped and resumed ends exactly as an uninterrupted one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from neurograph.run.checkpoint import CHECKPOINT
from neurograph.run.reporters import Reporter, ReporterSet
from neurograph.run.folder import open_for_resume, prepare_run_folder
from neurograph.urn.runfolder import URNRunFolder
from neurograph.urn.scenario import URNScenario
from neurograph.urn.train import URNTrainer
from neurograph_cli.main import main

torch.set_num_threads(1)  # the CLI's resume runs on one thread too: same sums, same bits

EPOCHS = 5
TIMING = {"cycles_per_s", "epoch_s", "wall_s", "outputs"}  # outputs: seconds each file took


def scenario() -> URNScenario:
    """Tiny spheres with deletion, so events and a shrinking network are part of the state."""
    task = {"kind": "spheres", "dim": 4, "train": 200, "test": 60, "radii": [1, 2]}
    return URNScenario.model_validate(
        {
            "model": "urn",
            "name": "tiny-spheres-resume",
            "seed": 1,
            "network": {"size": 60, "iterations": 3},
            "loss": {"c_w": 1e-3, "c_n": 1e-2, "activity_reduction": "mean"},
            "optimizer": {"kind": "adam", "lr": 0.02},
            "training": {"batch_size": 40},
            "analysis": {"samples": 100, "activity_threshold": 1e-2},
            "deletion": {"enabled": True, "patience": 2},
            "phases": [{"task": task, "epochs": 2}, {"task": {**task, "radii": [1, 1.6]}, "epochs": EPOCHS - 2}],
        }
    )


def start_run(folder: Path, *extra: Reporter) -> URNTrainer:
    s = scenario()
    trainer = URNTrainer(s)
    trainer.reporters = ReporterSet([URNRunFolder(prepare_run_folder(folder, s)), *extra])
    return trainer


@pytest.fixture(scope="module")
def run_a(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("a") / "run"
    assert start_run(folder).run()["status"] == "finished"
    return folder


def untimed(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def assert_same_run(a: Path, b: Path) -> None:
    sa, sb = (json.loads((f / "summary.json").read_text()) for f in (a, b))
    assert sb["status"] == "finished" and sb["cycles"] == EPOCHS
    assert untimed([sb]) == untimed([sa])
    rows_a, rows_b = ([json.loads(x) for x in (f / "metrics.jsonl").read_text().splitlines()] for f in (a, b))
    assert [r["cycle"] for r in rows_b] == list(range(1, EPOCHS + 1))  # none repeated, none skipped
    assert untimed(rows_b) == untimed(rows_a)
    assert (b / "events.jsonl").read_bytes() == (a / "events.jsonl").read_bytes()
    assert (b / "connectome.graphml").read_bytes() == (a / "connectome.graphml").read_bytes()


class StopAt(Reporter):
    """Asks the trainer to stop once the metrics row of ``cycle`` is out (between epochs)."""

    def __init__(self, trainer: URNTrainer, cycle: int) -> None:
        self.trainer, self.cycle = trainer, cycle

    def metrics(self, row):
        if row["cycle"] == self.cycle:
            self.trainer.request_stop()


def test_uninterrupted_run_deletes_and_checkpoints(run_a: Path) -> None:
    assert (run_a / CHECKPOINT).is_file()
    assert (run_a / "events.jsonl").read_text(), "no deletions: the test would not cover the tracker"


@pytest.mark.parametrize("stop_at", [2, 4])  # a phase end; inside a phase, with a neuron silent 1 of 2 epochs
def test_stopped_between_epochs_then_cli_resume_equals_uninterrupted(stop_at: int, run_a: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    trainer = start_run(folder)
    trainer.reporters.reporters.append(StopAt(trainer, stop_at))
    summary = trainer.run()
    assert (summary["status"], summary["cycles"]) == ("interrupted", stop_at)

    assert main(["resume", str(folder), "--no-live"]) == 0

    assert_same_run(run_a, folder)


def test_stopped_mid_epoch_then_resumed_equals_uninterrupted(run_a: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    trainer = start_run(folder)
    step, calls = trainer.step, []

    def step_then_stop(x, y):  # 200 samples / 40 = 5 minibatches an epoch: stop in epoch 5
        calls.append(1)
        if len(calls) == 22:
            trainer.request_stop()
        return step(x, y)

    trainer.step = step_then_stop
    summary = trainer.run()
    assert (summary["status"], summary["cycles"]) == ("interrupted", 4)

    s, state, tensors = open_for_resume(folder)
    assert state["epoch"]["start"] == 2 * 40 and any(n for _, n in state["streak"])
    resumed = URNTrainer(s)
    resumed.restore(state, tensors)
    resumed.reporters = URNRunFolder(folder)
    resumed.run()

    assert_same_run(run_a, folder)


def test_cli_refuses_to_resume_a_finished_urn_run(run_a: Path, capsys) -> None:
    assert main(["resume", str(run_a), "--no-live"]) == 2
    assert "already finished" in capsys.readouterr().err
