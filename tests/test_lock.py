"""One writer per run folder: ``run``, ``resume``, ``run --seeds`` and sweep workers
refuse a folder another process is writing, and a writer killed with SIGKILL
leaves no lock behind.

The other writer is either a real ``neurograph run`` or a bare process that
holds ``flock`` on the folder's ``.lock`` (the lock is the kernel's: any
process can hold it).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from neurograph.studies.seeds import run_seeds
from neurograph.charrnn.trainer import Trainer
from neurograph.run import lock
from neurograph.run.folder import RunFolder, RunFolderBusy, prepare_run_folder
from neurograph.run.reporters import Reporter, ReporterSet
from neurograph.scenario import load_scenario
from neurograph.studies.executors import InProcessExecutor
from neurograph.studies.sweep_file import load_sweep
from neurograph.studies.sweep_run import plan_jobs, run_sweep
from neurograph_cli.main import main

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
SWITCH = ROOT / "scenarios" / "switch.yaml"
CYCLES = 600
SET = ["report.every=50", "report.checkpoint_every=100", "report.graph_every=0"]
HOLD = (
    "import fcntl, os, sys, time\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
    "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "print('held', flush=True)\n"
    "time.sleep(600)\n"
)


def scenario(seed: int = 0):
    return load_scenario(SWITCH, [*SET, f"seed={seed}"], cycles=CYCLES)


def settings() -> list[str]:
    return ["--cycles", str(CYCLES), "--no-live"] + [a for item in SET for a in ("--set", item)]


class StopAt(Reporter):
    def __init__(self, cycle: int) -> None:
        self.cycle, self.trainer = cycle, None

    def metrics(self, row):
        if row["cycle"] == self.cycle:
            self.trainer.request_stop()


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> Path:
    """A run stopped at cycle 300 of 600, and a ``run --seeds 0,1`` folder stopped there too."""
    base = tmp_path_factory.mktemp("stopped")
    stopper = StopAt(300)
    folder = prepare_run_folder(base / "run", scenario())
    trainer = Trainer(scenario(), reporters=ReporterSet([RunFolder(folder), stopper]))
    stopper.trainer = trainer
    assert trainer.run()["status"] == "interrupted"

    seeds_stopper = StopAt(300)

    def train(batch):
        seeds_stopper.trainer = batch
        return batch.run()

    summaries = run_seeds(scenario(), [0, 1], base / "seeds", reporter_for=lambda s: seeds_stopper, train=train)
    assert [s["status"] for s in summaries] == ["interrupted"] * 2
    return base


def tree(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes() for p in sorted(root.rglob("*"))}


def hold(lock_file: Path) -> subprocess.Popen:
    """A process holding ``flock`` on ``lock_file`` until it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock_file)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "held\n"
    return proc


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout and proc.stdout.close()


def status(folder: Path) -> str:
    return json.loads((folder / "summary.json").read_text())["status"]


# which command, on which folder (under the copy of ``stopped``), with which seed folder locked
COMMANDS = {
    "resume": (lambda tmp: ["resume", f"{tmp}/run", "--no-live"], "run"),
    "run-force": (lambda tmp: ["run", str(SWITCH), *settings(), "--out", f"{tmp}/run", "--force"], "run"),
    "resume-seeds": (lambda tmp: ["resume", f"{tmp}/seeds", "--no-live"], "seeds/seed-1"),
    "run-seeds-force": (
        lambda tmp: ["run", str(SWITCH), "--seeds", "0,1", *settings(), "--out", f"{tmp}/seeds", "--force"],
        "seeds/seed-1",
    ),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_locked_folder_is_refused_and_usable_once_its_holder_is_killed(command, stopped, tmp_path, capsys):
    shutil.copytree(stopped, tmp_path, dirs_exist_ok=True)
    argv, locked = COMMANDS[command][0](tmp_path), tmp_path / COMMANDS[command][1]
    holder = hold(locked / lock.LOCK)
    try:
        before = tree(tmp_path)
        capsys.readouterr()

        code = main(argv)

        err = capsys.readouterr().err
        assert code == 2, err
        assert err.count("\n") == 1 and f"{locked}: run folder is in use by another process" in err
        assert tree(tmp_path) == before  # nothing written, nothing deleted (seed-0 of a --force batch neither)
    finally:
        kill(holder)

    assert main(argv) == 0
    assert status(tmp_path / COMMANDS[command][1]) == "finished"


def cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "neurograph_cli.main", *argv]


def test_a_second_command_on_a_run_being_written_exits_2_and_the_killed_run_resumes(tmp_path, capsys):
    folder = tmp_path / "run"
    argv = ["run", str(SWITCH), "--cycles", "6000", "--no-live", "--set", "report.every=100", "--out", str(folder)]
    first = subprocess.Popen(cli(*argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (folder / "metrics.jsonl").is_file() or not (folder / "metrics.jsonl").stat().st_size:
            assert first.poll() is None, first.stderr.read()
            assert time.monotonic() < deadline, "no metrics row in 120 s"
            time.sleep(0.02)
        capsys.readouterr()

        assert main(["resume", str(folder), "--no-live"]) == 2
        assert main([*argv, "--force"]) == 2

        err = capsys.readouterr().err.splitlines()
        assert len(err) == 2 and all(f"{folder}: run folder is in use by another process" in line for line in err)
        assert first.poll() is None, "the run finished before the test was done; give it more cycles"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
        first.stderr.close()

    assert main(["resume", str(folder), "--no-live"]) == 0
    assert status(folder) == "finished"
    rows = [json.loads(line)["cycle"] for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert rows == list(range(100, 6001, 100))  # one writer: none repeated, none out of order


def test_a_sweep_run_whose_folder_is_locked_fails_alone(tmp_path):
    path = tmp_path / "small.yaml"
    sets = {"phases.0.cycles": 150, "report.every": 50, "report.graph_every": 0, "report.checkpoint_every": 50}
    base = ROOT / "scenarios" / "outgoing-l1" / "easy.yaml"
    path.write_text(yaml.safe_dump({"base": str(base), "set": sets, "grid": {"structure.k": [1, 2]}, "seeds": 1}))
    sweep = load_sweep(path, {"out": str(tmp_path / "out")})
    folder = Path(plan_jobs(sweep)[0].folder)
    folder.mkdir(parents=True)
    holder = hold(folder / lock.LOCK)
    try:
        first, second = run_sweep(sweep, executor=InProcessExecutor()).rows
    finally:
        kill(holder)
    assert first["status"] == "failed" and first["error"].startswith("RunFolderBusy: ")
    assert "in use by another process" in first["error"]
    assert second["status"] == "finished"
    assert not lock.holds(folder) and not lock.holds(Path(plan_jobs(sweep)[1].folder))  # the worker let go


def test_a_process_holds_a_folder_once_until_its_writer_ends(tmp_path):
    folder = prepare_run_folder(tmp_path / "run", scenario())
    assert lock.holds(folder)
    writer = RunFolder(folder)  # the same process: already held
    writer.end({"status": "finished"})
    assert not lock.holds(folder)
    holder = hold(folder / lock.LOCK)
    try:
        with pytest.raises(RunFolderBusy, match="in use by another process"):
            RunFolder(folder)
    finally:
        kill(holder)
