"""One (scenario, seed) of a char-RNN batch: everything the trainer keeps of a run except tensors.

A :class:`Member` is built exactly as :class:`~neurograph.charrnn.trainer.Trainer`
builds itself: the seed's ``SeedSequence`` split into structure, init and
task streams (tasks spawn one per phase), the graph built from the init
stream, one character read ahead from the first task. It owns its graph,
rule, penalty, counters, reporters and the map from its hidden neuron ids to
slots of the batch's padded tensors; :class:`~neurograph.charrnn.trainer.Trainer`
owns the tensors and sequences the cycle. :meth:`Member.restore` continues it
from a checkpoint in :meth:`Trainer.state`'s format, as :meth:`Trainer.restore`.
"""

from __future__ import annotations

import numpy as np
import torch

from neurograph.charrnn.growth import Plan
from neurograph.graph import Graph
from neurograph.run.network_state import graph_from_state
from neurograph.run.reporters import Reporter
from neurograph.charrnn.run_state import RunState
from neurograph.scenario import Scenario

__all__ = ["Member"]


class Member(RunState):
    """Bookkeeping of one run inside a batch: a :class:`RunState` plus its hidden ids.

    Its hidden neurons hold the batch row's slots 0..H-1 in id order (the trainer
    closes a deleted neuron's gap at once, and new ids are the largest), so the
    slot of a neuron is its rank among the hidden ids."""

    def __init__(self, scenario: Scenario, reporters: Reporter | None = None, graph: Graph | None = None) -> None:
        super().__init__(scenario, reporters, graph)
        self.io_ids = self.graph.ids("input") + self.graph.ids("output")
        self.tick = (0.0, 0)  # (time, cycle) of the last metrics row, for its cycles/s
        self.refresh_hidden()

    def restore(self, state: dict, tensors: dict[str, torch.Tensor]) -> None:
        """Graph, RNG and task states and counters of a :meth:`Trainer.state` checkpoint;
        hidden neurons take slots 0..H-1 by id, as they hold them in a running batch
        (the tensors are the batch's to load)."""
        self.graph = graph_from_state(state, tensors)
        self.io_ids = self.graph.ids("input") + self.graph.ids("output")
        self.restore_bookkeeping(state)
        self.refresh_hidden()
        if self.compiled_ids() != state["compiled_ids"]:
            raise ValueError("checkpoint's compiled order does not match its graph")

    # ------------------------------------------------------------ queries
    @property
    def n_hidden(self) -> int:
        return len(self.hidden_ids)

    def compiled_ids(self) -> list[int]:
        """Ids in the single run's compiled order: inputs, outputs, hidden by id."""
        return self.io_ids + self.hidden_ids.tolist()

    def positions(self, n_chars: int) -> list[int]:
        """Padded-tensor position of each id of :meth:`compiled_ids`: inputs, outputs, hidden slots 0..H-1."""
        return list(range(2 * n_chars + self.n_hidden))

    # ------------------------------------------------------------- cycle
    def window(self, row: np.ndarray) -> None:
        """Fill this member's row (T + 1,) of the batch's characters (see :meth:`next_window`)."""
        self.next_window(row)

    def decide(self, slot_scores: np.ndarray) -> Plan:
        """The rule's plan from this cycle's (Hc,) slot scores; hidden ids ascending."""
        ages = self.cycle - self.hidden_born
        return self.rule.decide(self.hidden_ids, slot_scores[: self.n_hidden], ages, self.rng_structure)

    def refresh_hidden(self) -> None:
        """Hidden ids (ascending: the slots' order) and births, from the graph."""
        self.hidden_ids = np.array(self.graph.ids("hidden"), dtype=np.int64)
        self.hidden_born = np.array([self.graph.neurons[i].born for i in self.hidden_ids.tolist()], dtype=np.int64)

    # ----------------------------------------------------------- reporting
    def reserve_ids(self, slot_scores: np.ndarray) -> list[int]:
        return self.hidden_ids[self.rule.below(slot_scores[: self.n_hidden])].tolist()

    def metrics_row(self, cycles_per_s: float, slot_scores: np.ndarray) -> dict:
        """Same fields and values as :meth:`Trainer.metrics_row`."""
        reserve = int(self.rule.below(slot_scores[: self.n_hidden]).sum())
        return super().metrics_row(cycles_per_s, self.n_hidden, reserve)

    def record_phase_end(self) -> None:
        super().record_phase_end(self.n_hidden)

    def summary(self, status: str, cycles_per_s: float, slot_scores: np.ndarray) -> dict:
        """Same fields as :meth:`Trainer.summary`."""
        return super().summary(status, cycles_per_s, self.n_hidden, len(self.reserve_ids(slot_scores)))
