"""Tests for neurograph.charrnn.trainer as a single run (a batch of one): determinism,
structural bookkeeping, loss reporting and phases."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from neurograph.compile import compile_graph
from neurograph.run.reporters import Reporter
from neurograph.scenario import Scenario, load_scenario
from neurograph.charrnn.trainer import Trainer
from reference import plain_logits

torch.set_num_threads(1)

CYCLES = 300
# Fast churn: high add/delete rates, a threshold new neurons start under, and a cap.
CHURN = {
    "outgoing_l1": {
        "structure": {
            "kind": "outgoing_l1", "k": 1, "threshold": 0.5, "l1": 1e-3, "p_add": 0.3, "p_del": 0.3,
            "p_spontaneous": 0.05, "max_hidden": 9,
        },
        "optimizer": {"kind": "rmsprop"},
    },
    "multipliers": {
        "structure": {
            "kind": "multipliers", "k": 1, "l1": 1e-3, "p_add": 0.3, "p_del": 0.3, "p_spontaneous": 0.05,
            "max_hidden": 9,
        },
        "optimizer": {"kind": "adagrad"},
    },
}  # fmt: skip


def scenario_dict(kind: str, *, seed: int = 0, phases: list | None = None) -> dict:
    return {
        "name": f"test-{kind}",
        "seed": seed,
        "loss_smoothing": 0.99,
        **CHURN[kind],
        "phases": phases or [{"task": {"kind": "easy"}, "cycles": CYCLES}],
        "report": {"every": 1, "graph_every": 100, "checkpoint_every": 0},
    }


def scenario(kind: str, **kw) -> Scenario:
    return Scenario.model_validate(scenario_dict(kind, **kw))


class Recorder(Reporter):
    """Keeps everything the trainer reports."""

    def __init__(self) -> None:
        self.infos, self.rows, self.changes, self.snapshots, self.summaries = [], [], [], [], []

    def start(self, info):
        self.infos.append(info)

    def metrics(self, row):
        self.rows.append(row)

    def events(self, events):
        self.changes.extend(e.to_dict() for e in events)

    def snapshot(self, cycle, graph, reserve, final):
        self.snapshots.append((cycle, len(graph.hidden), list(reserve), final))

    def end(self, summary):
        self.summaries.append(summary)


def without_timing(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in ("cycles_per_s", "wall_s")}


def run(s: Scenario) -> tuple[Trainer, Recorder]:
    recorder = Recorder()
    trainer = Trainer(s, reporters=recorder)
    trainer.run()
    return trainer, recorder


@pytest.fixture(params=sorted(CHURN))
def kind(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def yaml_scenario(tmp_path_factory) -> Path:
    """A churning scenario as a YAML file, 10x longer than the tests run it."""
    path = tmp_path_factory.mktemp("scenarios") / "churn.yaml"
    data = scenario_dict("outgoing_l1", phases=[{"task": {"kind": "easy"}, "cycles": 3000}])
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


# ------------------------------------------------------------------ determinism
@pytest.fixture(scope="module")
def runs():
    """Finished runs by (kind, seed, copy), each made once per module."""
    cache: dict = {}

    def get(kind: str, seed: int, copy: int = 0) -> tuple[Trainer, Recorder]:
        if (kind, seed, copy) not in cache:
            cache[kind, seed, copy] = run(scenario(kind, seed=seed))
        return cache[kind, seed, copy]

    return get


def test_same_seed_gives_identical_runs(kind, runs):
    (t1, r1), (t2, r2) = runs(kind, 3), runs(kind, 3, copy=1)
    assert r1.changes and t1.run_state.adds > 0 and t1.run_state.deletes > 0  # the runs really changed structure
    assert [without_timing(r) for r in r1.rows] == [without_timing(r) for r in r2.rows]
    assert r1.changes == r2.changes
    assert r1.snapshots == r2.snapshots
    assert without_timing(r1.summaries[0]) == without_timing(r2.summaries[0])
    assert t1.graph.events == t2.graph.events
    for name in ("weight", "mask", "bias", "multiplier", "h", "alive"):
        assert torch.equal(getattr(t1.nets, name), getattr(t2.nets, name)), name


def test_different_seeds_give_different_runs(kind, runs):
    (_, r1), (_, r2) = runs(kind, 3), runs(kind, 4)
    assert [r["loss"] for r in r1.rows] != [r["loss"] for r in r2.rows]
    assert r1.changes != r2.changes


def test_yaml_with_overrides_runs_deterministically(yaml_scenario):
    overrides = ["seed=5", "phases.0.cycles=200"]
    s = load_scenario(yaml_scenario, overrides)
    assert s.seed == 5 and s.total_cycles == 200
    (t1, r1), (t2, r2) = run(s), run(load_scenario(yaml_scenario, overrides))
    assert t1.run_state.cycle == 200 and r1.summaries[0]["cycles"] == 200
    assert [without_timing(r) for r in r1.rows] == [without_timing(r) for r in r2.rows]


# ------------------------------------------------------------------ structure
def test_every_add_and_delete_changes_n_hidden_and_sync_is_exact(kind):
    recorder = Recorder()
    trainer = Trainer(scenario(kind, seed=1), reporters=recorder)
    m, graph = trainer.run_state, trainer.graph
    n_events = len(graph.events)
    assert all(e.reason == "build" for e in graph.events if e.kind == "add")
    hidden, edits = m.n_hidden, 0
    for _ in range(CYCLES):
        trainer.step()
        new = graph.events[n_events:]
        n_events = len(graph.events)
        adds = sum(e.kind == "add" for e in new)
        deletes = sum(e.kind == "delete" for e in new)
        assert all(e.cycle == m.cycle for e in new)
        assert m.n_hidden - hidden == adds - deletes
        assert m.n_hidden <= 9  # max_hidden
        hidden = m.n_hidden
        assert m.hidden_ids.tolist() == graph.ids("hidden")
        if new:
            edits += 1
            assert_tensors_equal_fresh_compile(trainer)
    assert edits >= 10
    structural = [e.to_dict() for e in graph.events if e.kind in ("add", "delete") and e.reason != "build"]
    assert recorder.changes == structural
    assert m.adds == sum(e["kind"] == "add" for e in structural)
    assert m.deletes == sum(e["kind"] == "delete" for e in structural)
    assert_tensors_equal_fresh_compile(trainer)


def assert_tensors_equal_fresh_compile(trainer: Trainer) -> None:
    """The padded tensors hold the graph's network at the run's positions, and nothing elsewhere."""
    m, nets = trainer.run_state, trainer.nets
    trainer.write_back()
    fresh = compile_graph(trainer.graph, dtype=nets.weight.dtype)
    assert fresh.ids == m.compiled_ids()
    pos = torch.tensor(m.positions(len(m.alphabet)))
    for name in ("weight", "mask"):
        assert torch.equal(getattr(nets, name)[0][pos][:, pos], getattr(fresh, name)), name
    for name in ("bias", "multiplier"):
        assert torch.equal(getattr(nets, name)[0, pos], getattr(fresh, name)), name
    empty = torch.ones(nets.weight.shape[1], dtype=torch.bool)
    empty[pos] = False
    assert not nets.mask[0][empty].any() and not nets.mask[0][:, empty].any()
    assert not nets.weight[0][empty].any() and not nets.weight[0][:, empty].any()
    assert not nets.h[0][empty].any() and not nets.alive[0][empty].any()
    for memories in trainer.optimizer.state.values():
        for key, mem in memories.items():
            assert mem.shape == nets.params[key].shape


def test_fixed_rule_never_changes_n_hidden():
    data = scenario_dict("multipliers")
    data["structure"] = {"kind": "fixed", "hidden": 3, "penalty": "outgoing_l1", "l1": 1e-3, "threshold": 0.5}
    data["optimizer"] = {"kind": "rmsprop"}
    recorder = Recorder()
    trainer = Trainer(Scenario.model_validate(data), reporters=recorder)
    n_events = len(trainer.graph.events)
    trainer.run()
    assert {r["hidden"] for r in recorder.rows} == {3}
    assert len(trainer.graph.events) == n_events and not recorder.changes
    assert (trainer.run_state.adds, trainer.run_state.deletes) == (0, 0)
    assert any(r["reserve"] > 0 for r in recorder.rows)  # sub-threshold neurons are not deleted


# ------------------------------------------------------------------ loss
def test_smoothed_loss_follows_the_per_window_losses(kind):
    s = scenario(kind, seed=2)
    trainer = Trainer(s)
    m = trainer.run_state
    smooth = math.log(len(m.alphabet)) * s.window
    assert m.loss_per_char() == pytest.approx(smooth / s.window)
    for _ in range(120):
        losses = trainer.step()
        assert losses.shape == (1,)
        loss = float(losses[0])
        smooth = s.loss_smoothing * smooth + (1 - s.loss_smoothing) * loss
    row = trainer.metrics_row(m, 1.0)
    assert m.loss_per_char() == pytest.approx(smooth / s.window, rel=1e-12)
    assert row["loss"] == pytest.approx(smooth / s.window, rel=1e-12)
    assert row["loss_window"] == pytest.approx(loss / s.window, rel=1e-12)
    assert row["gap"] == pytest.approx(row["loss"] - row["optimum"])


def test_window_loss_equals_independent_recomputation(kind):
    """Peek at the next window, evaluate the graph on it with a plain forward before the update, compare."""
    data = scenario_dict(kind, seed=6)
    data["dtype"] = "float64"
    trainer = Trainer(Scenario.model_validate(data))
    m, nets, window = trainer.run_state, trainer.nets, trainer.run_state.scenario.window
    v = len(m.alphabet)
    for _ in range(80):
        task = m.tasks[m.phase_index()]
        state = task.get_state()
        chunk = task.take(window)
        task.set_state(state)
        inputs = torch.from_numpy(np.concatenate(([m.last_char], chunk[:-1])))
        trainer.write_back()
        c = compile_graph(trainer.graph, dtype=torch.float64)  # the graph's network in compiled order
        h0 = nets.h[0, m.positions(v)[2 * v :]].clone()
        logits, h_last = plain_logits(c.weight, c.bias, c.multiplier, inputs, h0, n_chars=v, scope="readout")
        expected = torch.nn.functional.cross_entropy(logits, torch.from_numpy(chunk), reduction="sum").item()
        ids_before = m.hidden_ids.tolist()
        loss = float(trainer.step()[0])
        assert loss == pytest.approx(expected, rel=1e-10)
        assert m.last_char == int(chunk[-1])
        # the carried state is the window's last state, following survivors; newcomers start at 0
        state_of = dict(zip(m.hidden_ids.tolist(), nets.h[0, m.positions(v)[2 * v :]].tolist()))
        for k, nid in enumerate(ids_before):
            if nid in state_of:
                assert state_of[nid] == pytest.approx(h_last[k].item(), rel=1e-12, abs=1e-15)
        for nid in set(state_of) - set(ids_before):
            assert state_of[nid] == 0.0


# ------------------------------------------------------------------ phases
def test_phase_switch_changes_task_at_the_right_cycle():
    phases = [{"task": {"kind": "easy"}, "cycles": 100}, {"task": {"kind": "hard", "length": 3}, "cycles": 80}]
    recorder = Recorder()
    trainer = Trainer(scenario("multipliers", phases=phases), reporters=recorder)
    m = trainer.run_state
    calls: list[tuple[int, int]] = []  # (task index, cycle at the call)
    for i, task in enumerate(m.tasks):
        original = task.take

        def spy(n, _i=i, _take=original):
            calls.append((_i, m.cycle))
            return _take(n)

        task.take = spy
    summary = trainer.run()
    assert {c for i, c in calls if i == 0} == set(range(100))
    assert {c for i, c in calls if i == 1} == set(range(100, 180))
    rows = recorder.rows
    assert [r["cycle"] for r in rows] == list(range(1, 181))
    assert all(r["task"] == "easy" and r["phase"] == 0 for r in rows[:100])
    assert all(r["task"] == "hard" and r["phase"] == 1 for r in rows[100:])
    assert rows[99]["optimum"] == m.tasks[0].optimum() != rows[100]["optimum"] == m.tasks[1].optimum()
    assert [p["end"] for p in recorder.infos[0]["phases"]] == [100, 180]
    assert [(p["phase"], p["task"], p["end_cycle"]) for p in summary["phases"]] == [(0, "easy", 100), (1, "hard", 180)]
    for result in summary["phases"]:
        row = rows[result["end_cycle"] - 1]
        assert (result["hidden"], result["loss"]) == (row["hidden"], row["loss"])
    assert summary["status"] == "finished" and summary["cycles"] == summary["total_cycles"] == 180


def test_scaled_phases_end_where_the_summary_says(yaml_scenario, tmp_path):
    data = yaml.safe_load(yaml_scenario.read_text(encoding="utf-8"))
    data["phases"] = [
        {"task": {"kind": "easy"}, "cycles": 3000},
        {"task": {"kind": "hard", "length": 4}, "cycles": 6000},
        {"task": {"kind": "easy", "p": 0.75}, "cycles": 3000},
    ]
    path = tmp_path / "three.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    s = load_scenario(path, ["report.every=7", "report.graph_every=100"], cycles=240)
    assert [p.cycles for p in s.phases] == [60, 120, 60]
    trainer, recorder = run(s)
    phases = recorder.summaries[0]["phases"]
    assert len(phases) == 3
    assert [p["end_cycle"] for p in phases] == [60, 180, 240]
    assert [p["task"] for p in phases] == ["easy", "hard", "easy"]
    # metrics every 7 cycles, plus the last
    assert [r["cycle"] for r in recorder.rows] == list(range(7, 240, 7)) + [240]
    # snapshots every 100 cycles before the end, then the final one
    assert [(c, f) for c, _, _, f in recorder.snapshots] == [(100, False), (200, False), (240, True)]
    assert recorder.snapshots[-1][2] == trainer.run_state.reserve_ids(trainer.scores()[0])
