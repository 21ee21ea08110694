"""Resume: a run stopped or killed and resumed ends exactly as an uninterrupted one.

Compared between the two run folders: the summary (loss, size, adds, deletes,
phases), every metrics row except ``cycles_per_s``, the event log byte for
byte, and the final graph. A resumed run neither repeats nor skips a cycle.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from neurograph.run.reporters import Reporter, ReporterSet
from neurograph.run.folder import RunFolder, prepare_run_folder
from neurograph.scenario import load_scenario
from neurograph.charrnn.trainer import Trainer
from neurograph_cli.main import main

torch.set_num_threads(1)

SWITCH = Path(__file__).parents[1] / "scenarios" / "switch.yaml"
EVERY = 100
OVERRIDES = ["report.checkpoint_every=200", f"report.every={EVERY}"]
STOP_CYCLES = 1200  # in-process stop: the whole run takes about a second
KILL_CYCLES = 30_000  # SIGKILL: long enough that three kills land before the end (about 3 s of training)
SUMMARY_KEYS = ("status", "cycles", "total_cycles", "hidden", "reserve", "loss", "optimum", "adds", "deletes", "phases")


def run_args(cycles: int) -> list[str]:
    args = [str(SWITCH), "--cycles", str(cycles), "--no-live"]
    for item in OVERRIDES:
        args += ["--set", item]
    return args


def uninterrupted(folder: Path, cycles: int) -> Path:
    assert main(["run", *run_args(cycles), "--out", str(folder)]) == 0
    return folder


@pytest.fixture(scope="module")
def run_a(tmp_path_factory) -> Path:
    return uninterrupted(tmp_path_factory.mktemp("a") / "run", STOP_CYCLES)


# ----------------------------------------------------------- comparison
def metrics(folder: Path) -> list[dict]:
    """Metrics rows without the wall-clock rate (every line must be whole JSON)."""
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "cycles_per_s"} for line in lines]


def assert_same_run(a: Path, b: Path, cycles: int) -> None:
    sa, sb = (json.loads((f / "summary.json").read_text()) for f in (a, b))
    assert {k: sb[k] for k in SUMMARY_KEYS} == {k: sa[k] for k in SUMMARY_KEYS}
    assert sb["status"] == "finished" and sb["cycles"] == cycles
    rows_a, rows_b = metrics(a), metrics(b)
    assert [r["cycle"] for r in rows_b] == list(range(EVERY, cycles + 1, EVERY))  # none repeated, none skipped
    assert rows_b == rows_a
    assert (b / "events.jsonl").read_bytes() == (a / "events.jsonl").read_bytes()
    assert (b / "graph.graphml").read_bytes() == (a / "graph.graphml").read_bytes()
    assert (b / "scenario.yaml").read_bytes() == (a / "scenario.yaml").read_bytes()


# ------------------------------------------------ clean stop, then resume
class StopAt(Reporter):
    """Asks the trainer to stop once the metrics row of ``cycle`` is out."""

    def __init__(self, trainer: Trainer, cycle: int) -> None:
        self.trainer, self.cycle = trainer, cycle

    def metrics(self, row):
        if row["cycle"] == self.cycle:
            self.trainer.request_stop()


@pytest.mark.parametrize("stop_at", [400, 700])  # a phase end, and between two checkpoints
def test_stopped_then_resumed_equals_uninterrupted(stop_at: int, run_a: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    scenario = load_scenario(SWITCH, OVERRIDES, cycles=STOP_CYCLES)  # as `neurograph run` loads it
    trainer = Trainer(scenario)
    trainer.reporters = ReporterSet([RunFolder(prepare_run_folder(folder, scenario)), StopAt(trainer, stop_at)])
    summary = trainer.run()
    assert (summary["status"], summary["cycles"]) == ("interrupted", stop_at)

    assert main(["resume", str(folder), "--no-live"]) == 0

    assert_same_run(run_a, folder, STOP_CYCLES)


# ------------------------------------------------ SIGKILL, then resume
def last_cycle(folder: Path) -> int:
    """Cycle of the last whole metrics line (0 if none yet)."""
    try:
        text = (folder / "metrics.jsonl").read_text()
    except FileNotFoundError:
        return 0
    lines = text.split("\n")[:-1]  # the part after the last newline may be half written
    return json.loads(lines[-1])["cycle"] if lines else 0


def cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "neurograph_cli.main", *argv]


def kill_after_progress(proc: subprocess.Popen, folder: Path, delay: float) -> None:
    """SIGKILL ``proc`` ``delay`` seconds after it writes a metrics row past what the folder had."""
    seen = last_cycle(folder)
    deadline = time.monotonic() + 120
    while last_cycle(folder) <= seen:
        assert proc.poll() is None, f"exited {proc.returncode} before training: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "no progress in 120 s"
        time.sleep(0.02)
    time.sleep(delay)
    assert proc.poll() is None, "the run finished before it could be killed; raise KILL_CYCLES"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_killed_three_times_then_resumed_equals_uninterrupted(tmp_path: Path) -> None:
    a = uninterrupted(tmp_path / "a", KILL_CYCLES)
    b = tmp_path / "b"
    rng = random.Random(1234)
    commands = [cli("run", *run_args(KILL_CYCLES), "--out", str(b))] + [cli("resume", str(b), "--no-live")] * 2
    for command in commands:
        proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        kill_after_progress(proc, b, delay=rng.uniform(0.0, 0.5))
        assert proc.returncode == -signal.SIGKILL

    done = subprocess.run(cli("resume", str(b), "--no-live"), cwd=tmp_path, capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert_same_run(a, b, KILL_CYCLES)


# ------------------------------------------------ existing run folders
def tree(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes() for p in sorted(root.rglob("*"))}


def test_run_refuses_an_existing_run_folder_without_force(run_a: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "run"
    shutil.copytree(run_a, folder)
    before = tree(folder)
    capsys.readouterr()

    code = main(["run", *run_args(STOP_CYCLES), "--out", str(folder)])

    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and str(folder) in err and "--force" in err
    assert tree(folder) == before


def test_run_with_force_replaces_the_previous_run(run_a: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    shutil.copytree(run_a, folder)
    (folder / "graphs").mkdir(exist_ok=True)  # --cycles scales graph_every: the run has snapshots
    (folder / "graphs" / "cycle-999999.graphml").write_text("left by an older run")
    (folder / "metrics.jsonl").write_text('{"cycle": 999999}\n')

    assert main(["run", *run_args(STOP_CYCLES), "--out", str(folder), "--force"]) == 0

    assert_same_run(run_a, folder, STOP_CYCLES)
    assert not (folder / "graphs" / "cycle-999999.graphml").exists()
