"""Tests for neurograph.run.loop: the one run loop of every model.

- a run killed at any step of its finish (after the final checkpoint) is
  completed by ``neurograph resume`` into the folder an uninterrupted run leaves;
- a batch stopped and resumed from its members' checkpoints continues bit for
  bit, across slot reuse, capacity growth and repacks;
- a single run is a batch of one: each member of a batch computes exactly what
  the same seed computes alone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from neurograph.charrnn.trainer import REPACK_EVERY, Trainer
from neurograph.run.folder import RunFolder, prepare_run_folder
from neurograph.run.reporters import Reporter, ReporterSet
from neurograph.scenario import load_scenario
from neurograph_cli.main import main

torch.set_num_threads(1)

SCENARIOS = Path(__file__).parents[1] / "scenarios"
SWITCH = SCENARIOS / "switch.yaml"
HARD = SCENARIOS / "outgoing-l1" / "hard.yaml"
CYCLES = 1200
OVERRIDES = ["report.checkpoint_every=400", "report.every=100", "report.graph_every=600"]
SUMMARY_KEYS = ("status", "cycles", "total_cycles", "hidden", "reserve", "loss", "optimum", "adds", "deletes", "phases")


class Killed(Exception):
    """Stands for a kill: raised from a reporter hook, it stops the process's work there."""


class KillAt(Reporter):
    """Raises :class:`Killed` when hook ``hook`` is called with ``final`` (or at ``end``)."""

    def __init__(self, hook: str) -> None:
        self.hook = hook

    def snapshot(self, cycle, graph, reserve, final):
        if final and self.hook == "snapshot":
            raise Killed

    def end(self, summary):
        if self.hook == "end":
            raise Killed


def run_args(folder: Path) -> list[str]:
    args = ["run", str(SWITCH), "--cycles", str(CYCLES), "--no-live", "--out", str(folder)]
    for item in OVERRIDES:
        args += ["--set", item]
    return args


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("whole") / "run"
    assert main(run_args(folder)) == 0
    return folder


def metrics(folder: Path) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "cycles_per_s"} for r in rows]


@pytest.mark.parametrize("hook", ["snapshot", "end"])
def test_a_run_killed_while_finishing_is_completed_by_resume(whole: Path, tmp_path: Path, hook: str, capsys):
    """Kill after the final checkpoint (before the final graph, or before the summary):
    ``show`` calls it resumable, ``resume`` writes what is missing, and the folder
    equals an uninterrupted run's."""
    scenario = load_scenario(whole / "scenario.yaml")
    folder = prepare_run_folder(tmp_path / "run", scenario)
    # the killer goes first: what the folder reporter would have written next is lost
    trainer = Trainer(scenario, reporters=ReporterSet([KillAt(hook), RunFolder(folder)]))
    with pytest.raises(Killed):
        trainer.run()
    assert not (folder / "summary.json").exists()
    assert (folder / "graph.graphml").exists() == (hook == "end")
    assert main(["show", str(folder)]) == 0
    assert "resumable" in capsys.readouterr().out
    assert main(["resume", str(folder), "--no-live"]) == 0
    a, b = (json.loads((f / "summary.json").read_text()) for f in (whole, folder))
    assert {k: b[k] for k in SUMMARY_KEYS} == {k: a[k] for k in SUMMARY_KEYS}
    assert metrics(folder) == metrics(whole)
    assert (folder / "events.jsonl").read_bytes() == (whole / "events.jsonl").read_bytes()
    assert (folder / "graph.graphml").read_bytes() == (whole / "graph.graphml").read_bytes()
    assert main(["resume", str(folder)]) == 2  # now it is finished
    assert "already finished" in capsys.readouterr().err


# ------------------------------------------------------- batches resume exactly
class Keep(Reporter):
    """Keeps a member's metrics rows, events and last checkpoint."""

    def __init__(self) -> None:
        self.rows, self.changes, self.saved = [], [], None

    def metrics(self, row):
        self.rows.append({k: v for k, v in row.items() if k != "cycles_per_s"})

    def events(self, events):
        self.changes += [(e.cycle, e.kind, e.neuron) for e in events]

    def checkpoint(self, cycle, state, tensors):
        self.saved = (json.loads(json.dumps(state)), {k: t.clone() for k, t in tensors.items()})


class StopAt(Reporter):
    def __init__(self, trainer: Trainer, cycle: int) -> None:
        self.trainer, self.cycle = trainer, cycle

    def metrics(self, row):
        if row["cycle"] == self.cycle:
            self.trainer.request_stop()


def hard(seed: int, cycles: int):
    return load_scenario(HARD, [f"seed={seed}", "report.every=50", "report.checkpoint_every=0"], cycles=cycles)


def test_a_stopped_batch_resumes_bit_for_bit_across_repacks():
    """Stopped at cycle 1100, resumed: every member's rows (losses to the last bit) and
    events equal the uninterrupted batch's, through the repack check at cycle 2000."""
    cycles, stop = 2100, 1100
    scenarios = [hard(s, cycles) for s in range(3)]
    whole = [Keep() for _ in scenarios]
    Trainer(scenarios, reporters=whole).run()
    first = [Keep() for _ in scenarios]
    trainer = Trainer(scenarios, reporters=first)
    for m, k in zip(trainer.members, first):
        m.reporters = ReporterSet([k, StopAt(trainer, stop)])
    trainer.run()
    assert all(k.saved[0]["cycle"] == stop for k in first)
    rest = [Keep() for _ in scenarios]
    Trainer(scenarios, reporters=rest, checkpoints=[k.saved for k in first]).run()
    assert cycles > 2 * REPACK_EVERY > stop
    for w, a, b in zip(whole, first, rest):
        assert a.rows + b.rows == w.rows
        assert a.changes + b.changes == w.changes
    assert any(w.changes for w in whole)


def test_hidden_neurons_fill_the_first_slots_in_id_order():
    """After any mix of deletions and additions, a member's hidden neurons hold its
    slots 0..H-1 by id and every slot beyond is empty: what a resumed member, laid
    out by id, starts from."""
    scenarios = [hard(s, 1200) for s in range(3)]
    trainer = Trainer(scenarios)
    nets, v = trainer.nets, trainer.n_chars
    for _ in range(1100):
        trainer.step()
        for b, m in enumerate(trainer.running):
            alive = nets.alive[b, 2 * v :]
            assert (alive[: m.n_hidden] == 1).all() and (alive[m.n_hidden :] == 0).all()
    assert sum(m.deletes for m in trainer.running) > 0
    for b, m in enumerate(trainer.running):
        empty = slice(2 * v + m.n_hidden, None)
        assert (nets.alive[b, empty] == 0).all() and (nets.weight[b, empty] == 0).all()
        assert (nets.weight[b, :, empty] == 0).all() and (nets.h[b, empty] == 0).all()
    states = [trainer.state(m) for m in trainer.running]
    restored = Trainer(scenarios, checkpoints=states)
    for name in ("weight", "mask", "bias", "multiplier", "h"):
        cap = min(restored.capacity, trainer.capacity)
        n = 2 * v + cap
        assert torch.equal(getattr(restored.nets, name)[..., :n], getattr(trainer.nets, name)[..., :n]), name


def test_each_member_of_a_batch_computes_what_its_seed_computes_alone():
    scenarios = [hard(s, 600) for s in range(3)]
    batch = [Keep() for _ in scenarios]
    Trainer(scenarios, reporters=batch).run()
    for s, b in zip(scenarios, batch):
        alone = Keep()
        Trainer(s, reporters=alone).run()
        assert alone.changes == b.changes
        assert alone.rows == b.rows  # losses to the last bit, though the batch's capacity differs


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_member_computes_the_same_whatever_the_batch_capacity(dtype):
    """Seeds of different sizes in one batch (its capacity set by the largest) and
    alone: the losses of every cycle agree to the last bit, in float32 and float64."""
    scenarios = [load_scenario(HARD, [f"seed={s}", f"dtype={dtype}"], cycles=1500) for s in range(3)]
    batch = Trainer(scenarios)
    together = np.array([batch.step() for _ in range(1500)])
    sizes = []
    for s, scenario in enumerate(scenarios):
        alone = Trainer(scenario)
        assert np.array_equal(np.array([alone.step()[0] for _ in range(1500)]), together[:, s])
        sizes.append(alone.capacity)
    assert len(set(sizes)) > 1


# ------------------------------------------- killed before anything was written
def test_a_run_killed_before_its_scenario_was_written_says_how_to_start_again(tmp_path: Path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".lock").touch()  # what a kill right after creating the folder leaves
    assert main(["resume", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "nothing was trained" in err and len(err.strip().splitlines()) == 1
    assert main(run_args(folder)) == 0  # no --force needed: the folder holds nothing


def test_a_seeds_folder_killed_while_creating_its_seed_folders_resumes(tmp_path: Path):
    """Seed 1's folder exists but is empty (the kill landed there): resume gives it its
    siblings' scenario with its own seed and trains it from cycle 0 in the batch."""
    out = tmp_path / "seeds"
    args = ["run", str(HARD), "--seeds", "0-1", "--cycles", "300", "--no-live", "--threads", "1"]
    assert main([*args, "--out", str(out)]) == 0
    whole = {s: metrics(out / f"seed-{s}") for s in (0, 1)}
    shutil.rmtree(out / "seed-1")
    (out / "seed-1").mkdir()
    for name in ("metrics.jsonl", "events.jsonl", "checkpoint.safetensors", "summary.json"):
        (out / "seed-0" / name).unlink(missing_ok=True)  # seed 0: scenario written, nothing trained
    assert main(["resume", str(out), "--no-live"]) == 0
    assert {s: metrics(out / f"seed-{s}") for s in (0, 1)} == whole
