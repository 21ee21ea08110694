"""Tests for lifetime structural deletion: the inactivity rule and the shrink of the
compiled tensors and optimizer memories that the training loop performs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurograph.compile import compile_graph, write_back
from neurograph.run.reporters import Reporter
from neurograph.urn.deletion import InactivityTracker
from neurograph.urn.scenario import URNScenario
from neurograph.urn.train import URNTrainer

torch.set_num_threads(1)


def tiny(**deletion) -> URNScenario:
    return URNScenario.model_validate(
        {
            "model": "urn",
            "name": "tiny-deletion",
            "network": {"size": 40, "iterations": 3},
            # the length coefficients must shrink with the network too
            "loss": {"c_syn": 0.01, "activity_reduction": "mean"},
            "training": {"batch_size": 50},
            "deletion": {"enabled": True, "patience": 2, **deletion},
            "phases": [{"task": {"kind": "spheres", "dim": 4, "train": 100, "test": 20}, "epochs": 3}],
        }
    )


class Events(Reporter):
    def __init__(self):
        self.seen = []

    def events(self, events):
        self.seen.extend(events)


def test_tracker_counts_consecutive_inactive_epochs():
    t = InactivityTracker(patience=3)
    ids = [10, 11, 12]
    t.update(ids, np.array([0.0, 1.0, 0.0]), 1e-3)
    t.update(ids, np.array([0.0, 0.0, 1e-4]), 1e-3)
    assert t.due() == []
    t.update(ids, np.array([0.0, 0.0, 0.5]), 1e-3)  # 12 woke up: its streak restarts
    assert t.due() == [10]
    assert t.streak == {10: 3, 11: 2, 12: 0}
    t.forget([10])
    t.update([11, 12], np.array([0.0, 0.0]), 1e-3)
    assert t.due() == [11]
    with pytest.raises(ValueError):
        InactivityTracker(patience=0)


def test_deletes_exactly_the_neurons_silent_for_m_epochs_and_shrinks_like_a_fresh_compile():
    reporter = Events()
    trainer = URNTrainer(tiny(), reporters=reporter)
    trainer.train_epoch()  # Adam memories exist
    c = trainer.compiled
    hidden = list(c.hidden_ids)
    silent, flicker = hidden[:5], hidden[5:8]
    survivor = hidden[10]
    k_s, k_in = c.index[survivor], 0
    m_before = trainer.optimizer.state["m"]["weight"][k_s, k_in].item()
    w_before = c.weight[k_s, k_in].item()

    def peak(quiet):
        p = np.ones(c.n)
        for i in quiet:
            p[c.index[i]] = 0.0
        return p

    assert trainer.delete_silent(peak(silent + flicker)) == []  # one silent epoch: not yet
    deleted = trainer.delete_silent(peak(silent))  # flicker woke up
    assert deleted == sorted(silent)
    g = trainer.graph
    assert all(i in g.dead and i not in g.neurons for i in silent)
    assert [e.neuron for e in reporter.seen] == sorted(silent)
    assert all(e.kind == "delete" and e.reason == "inactive 2 epochs" for e in reporter.seen)
    assert trainer.deletes == 5

    c = trainer.compiled
    assert c.n == 40 - 5 and c.n_hidden == len(hidden) - 5
    assert c.weight[c.index[survivor], k_in].item() == w_before  # values follow the neuron
    assert trainer.optimizer.state["m"]["weight"][c.index[survivor], k_in].item() == m_before
    for memories in trainer.optimizer.state.values():
        assert memories["weight"].shape == (c.n, c.n) and memories["bias"].shape == (c.n,)
    assert trainer.coefficients.shape == (c.n, c.n)
    assert torch.equal(trainer.coefficients, trainer._coefficients())

    write_back(c, g)
    fresh = compile_graph(g)
    assert fresh.ids == c.ids
    for name in ("weight", "mask", "bias", "multiplier"):
        assert torch.equal(getattr(fresh, name), getattr(c, name)), name
    trainer.train_epoch()  # trains on after the shrink


def test_inputs_and_outputs_are_never_deleted():
    trainer = URNTrainer(tiny(patience=1))
    c = trainer.compiled
    deleted = trainer.delete_silent(np.zeros(c.n))
    assert sorted(deleted) == sorted(c.hidden_ids) or c.n_hidden == 0
    assert trainer.compiled.n == trainer.compiled.n_input + trainer.compiled.n_output
    assert len(trainer.graph.ids("input")) == 4 and len(trainer.graph.ids("output")) == 2


def test_run_with_deletion_reports_shrinking_hidden():
    rows, connectomes = [], []

    class Rows(Reporter):
        def metrics(self, row):
            rows.append(row)

        def connectome(self, cycle, graph, analysis, final):
            assert all(i in graph.neurons for i in analysis.ids)  # never a stale analysis
            connectomes.append(cycle)

    base = tiny(patience=1)  # strong activity penalty, large steps: neurons fall silent within epochs
    scenario = base.model_copy(
        update={
            "loss": base.loss.model_copy(update={"c_n": 1.0, "c_w": 1e-3}),
            "optimizer": base.optimizer.model_copy(update={"lr": 0.05}),
            "phases": [base.phases[0].model_copy(update={"epochs": 5})],
            "report": base.report.model_copy(update={"every": 2, "graph_every": 3}),
        }
    )
    summary = URNTrainer(scenario, reporters=Rows()).run()
    assert [r["hidden"] + r["deletes"] for r in rows] == [34] * len(rows)
    assert rows[-1]["deletes"] > 0 and summary["neurons"] == 40 - summary["deletes"]
    assert all(a["deletes"] <= b["deletes"] for a, b in zip(rows, rows[1:]))
    assert [r["cycle"] for r in rows] == [2, 4, 5] and connectomes == [3, 5]
