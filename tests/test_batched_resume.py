"""Tests for neurograph.studies.seeds: a seeds directory stopped part-way and continued
as one batch equals the uninterrupted batch; finished seeds stay as they are; seeds
that did not stop together are refused before anything changes; ``neurograph resume``.

The scenarios are the multiplier-revision members of tests/test_batched.py, whose
runs are stable (not chaotic) over this horizon, so a resumed member (its slots
repacked by id, a different float summation order) keeps the same events and stays
within 1e-8 of the uninterrupted losses (docs/batched.md, "Equivalence").
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from neurograph.charrnn.trainer import Trainer
from neurograph.studies.seeds import is_seeds_dir, resume_seeds, seed_folders
from neurograph.run.reporters import Reporter, ReporterSet
from neurograph.run.folder import RunFolder, RunFolderError, prepare_run_folder
from neurograph.scenario import Scenario
from neurograph_cli.main import main
from test_train import Recorder

torch.set_num_threads(1)

MULT = {"kind": "multipliers", "k": 1, "l1": 1e-3, "p_add": 0.3, "p_del": 0.3, "p_spontaneous": 0.05, "max_hidden": 9}
REPORT = {"every": 10, "graph_every": 200, "checkpoint_every": 100}
STOP = 250  # not a checkpoint cycle: the stop's own checkpoint is the one resumed from


def member(seed: int, cycles: int, **structure) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "batched-resume",
            "seed": seed,
            "dtype": "float64",
            "loss_smoothing": 0.99,
            "structure": MULT | structure,
            "optimizer": {"kind": "adagrad"},
            "phases": [{"task": {"kind": "easy"}, "cycles": cycles}],
            "report": REPORT,
        }
    )


def members(first_cycles: int = 600) -> list[Scenario]:
    return [
        member(0, first_cycles),
        member(2, 600, init={"kind": "inherit", "noise": 0.1}),
        member(6, 600, scope="all", selector={"kind": "oldest"}),
    ]


class StopAt(Reporter):
    """Asks the batch to stop after cycle ``cycle``'s metrics row."""

    def __init__(self, cycle: int) -> None:
        self.cycle, self.trainer = cycle, None

    def metrics(self, row):
        if row["cycle"] == self.cycle:
            self.trainer.request_stop()


def run_batch(scenarios: list[Scenario], root: Path, stop: int | None = None) -> list[dict]:
    """A seeds directory as ``run --seeds`` writes it, the batch stopped after cycle ``stop``."""
    stopper = StopAt(stop or -1)
    sets = []
    for s in scenarios:
        folder = prepare_run_folder(root / f"seed-{s.seed}", s)
        sets.append(ReporterSet([RunFolder(folder), stopper]))
    trainer = Trainer(scenarios, reporters=sets)
    stopper.trainer = trainer
    return trainer.run()


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_same_folders(resumed: Path, straight: Path) -> None:
    """Identical events and metrics (losses within 1e-8 relative), no cycle repeated or skipped."""
    for a_dir, b_dir in zip(seed_folders(resumed), seed_folders(straight), strict=True):
        events = lines(a_dir / "events.jsonl")  # kind, cycle, neuron, reason, age, lineage
        assert events == lines(b_dir / "events.jsonl") and events
        rows_a, rows_b = lines(a_dir / "metrics.jsonl"), lines(b_dir / "metrics.jsonl")
        assert [r["cycle"] for r in rows_a] == [r["cycle"] for r in rows_b]
        assert [r["cycle"] for r in rows_a] == list(range(10, rows_a[-1]["cycle"] + 1, 10))
        for a, b in zip(rows_a, rows_b):
            for key in ("phase", "hidden", "reserve", "adds", "deletes"):
                assert a[key] == b[key], (a_dir.name, a["cycle"], key)
            assert a["loss"] == pytest.approx(b["loss"], rel=1e-8), (a_dir.name, a["cycle"])
            assert a["loss_window"] == pytest.approx(b["loss_window"], rel=1e-8), (a_dir.name, a["cycle"])
        sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a_dir, b_dir))
        assert (sa["status"], sa["cycles"], sa["hidden"]) == (sb["status"], sb["cycles"], sb["hidden"]) == (
            "finished", sb["total_cycles"], sb["hidden"],
        )  # fmt: skip


class LastCheckpoint(Reporter):
    def checkpoint(self, cycle, state, tensors):
        self.saved = (state, {k: v.clone() for k, v in tensors.items()})


def test_restored_batch_holds_each_checkpoint_in_its_slots():
    scenarios = members()
    keep = [LastCheckpoint() for _ in scenarios]
    stopper = StopAt(STOP)
    trainer = Trainer(scenarios, reporters=[ReporterSet([k, stopper]) for k in keep])
    stopper.trainer = trainer
    trainer.run()
    restored = Trainer(scenarios, checkpoints=[k.saved for k in keep])
    assert restored.optimizer.steps == STOP
    assert restored.capacity == max(m.n_hidden for m in restored.members)
    for m, k in zip(restored.members, keep):
        state, tensors = restored.state(m)
        assert set(tensors) == set(k.saved[1])
        for key, saved in k.saved[1].items():
            assert torch.equal(tensors[key], saved), key
        for key in ("compiled_ids", "rng_structure", "rng_init", "tasks", "cycle", "smooth", "adds", "deletes"):
            assert state[key] == k.saved[0][key], key
    # a member restored at its last cycle (a run killed while finishing) only finishes
    finishing = Recorder()
    done = Trainer([member(0, STOP)], reporters=[finishing], checkpoints=[keep[0].saved])
    (summary,) = done.run()
    assert (summary["status"], summary["cycles"], done.optimizer.steps) == ("finished", STOP, STOP)
    assert not finishing.rows and finishing.snapshots[-1][3]  # no cycle trained; the final snapshot


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted batches, one of them with a member that finishes early."""
    root = tmp_path_factory.mktemp("straight")
    run_batch(members(), root / "all")
    run_batch(members(200), root / "early")
    return root


@pytest.mark.parametrize("first_cycles, batch", [(600, "all"), (200, "early")])
def test_stopped_batch_resumes_to_the_uninterrupted_result(tmp_path, straight, first_cycles, batch):
    root = tmp_path / "seeds"
    stopped = run_batch(members(first_cycles), root, stop=STOP)
    finished_early = first_cycles < STOP
    assert [s["status"] for s in stopped] == ["finished"] * finished_early + ["interrupted"] * (3 - finished_early)
    assert not (root / "aggregate.json").exists()
    early = root / "seed-0" / "metrics.jsonl"
    before = early.read_bytes()
    assert is_seeds_dir(root) and not is_seeds_dir(root / "seed-0")

    summaries = resume_seeds(root)
    assert [s["seed"] for s in summaries] == [0, 2, 6][finished_early:]  # a finished seed is not retrained
    assert all(s["status"] == "finished" for s in summaries)
    if finished_early:
        assert early.read_bytes() == before
    assert_same_folders(root, straight / batch)
    agg = json.loads((root / "aggregate.json").read_text())
    assert agg["seeds"] == [0, 2, 6] and agg["cycles"][-1] == first_cycles
    with pytest.raises(RunFolderError, match="every seed already finished"):
        resume_seeds(root)


def test_seeds_stopped_at_different_steps_are_refused_unchanged(tmp_path):
    root = tmp_path / "seeds"
    a, b, _ = members()
    run_batch([a], root, stop=100)
    run_batch([b], root, stop=STOP)
    logs = {p: p.read_bytes() for p in root.glob("seed-*/*.jsonl")}
    with pytest.raises(ValueError, match=r"different optimizer steps \(batched-resume seed 0: 100, .* seed 2: 250\)"):
        resume_seeds(root)
    assert {p: p.read_bytes() for p in logs} == logs


def test_resume_cli_continues_a_seeds_directory(tmp_path, straight, capsys):
    root = tmp_path / "seeds"
    run_batch(members(), root, stop=STOP)
    assert main(["resume", str(root), "--no-live"]) == 0
    out = capsys.readouterr().out
    assert f"run folders: {root}/seed-*, aggregate: {root}/aggregate.json" in out
    lines = out.splitlines()
    assert lines[0] == f"batched-resume: 3 seeds (0,2,6), multipliers on cpu, easy(600), resuming at cycle {STOP}"
    for seed in (0, 2, 6):  # every seed's end, not only the first seed's lines
        assert sum(line.startswith(f"seed {seed} finished: 600/600 cycles") for line in lines) == 1
    assert_same_folders(root, straight / "all")


def test_resume_cli_refuses_a_finished_or_mismatched_seeds_directory_in_one_line(tmp_path, straight, capsys):
    done = tmp_path / "done"
    shutil.copytree(straight / "all", done)
    assert main(["resume", str(done), "--no-live"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert str(done) in err and "every seed already finished" in err
    mixed = tmp_path / "mixed"
    a, b, _ = members()
    run_batch([a], mixed, stop=100)
    run_batch([b], mixed, stop=STOP)
    assert main(["resume", str(mixed), "--no-live"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(mixed) in err and "different optimizer steps" in err


def test_ctrl_c_stops_a_seeds_run_cleanly_and_resume_finishes_it(tmp_path):
    """SIGINT to `neurograph run --seeds`: every seed checkpoints at the same cycle, exit 130, resume finishes."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "seeds"
    scenario = Path(__file__).resolve().parent.parent / "scenarios" / "multipliers" / "easy.yaml"
    cmd = [sys.executable, "-m", "neurograph_cli.main", "run", str(scenario), "--seeds", "0-1", "--cycles", "20000",
           "--out", str(out), "--no-live", "--threads", "1", "--set", "report.every=100"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    metrics = out / "seed-0" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not metrics.exists() or len(metrics.read_text().splitlines()) < 5):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    assert proc.stderr.read().endswith(f"resume with: neurograph resume {out}\n")
    from neurograph.run.checkpoint import load_checkpoint

    cycles = {json.loads((f / "summary.json").read_text())["cycles"] for f in seed_folders(out)}
    saved = {load_checkpoint(f)[0]["cycle"] for f in seed_folders(out)}
    assert len(cycles) == 1 and 0 < min(cycles) < 20_000  # stopped together, part-way
    assert saved == cycles  # checkpointed where it stopped: no cycle to redo
    resume = [sys.executable, "-m", "neurograph_cli.main", "resume", str(out), "--threads", "1"]
    done = subprocess.run(resume, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for folder in seed_folders(out):
        rows = lines(folder / "metrics.jsonl")
        assert [r["cycle"] for r in rows] == list(range(100, 20_001, 100))
