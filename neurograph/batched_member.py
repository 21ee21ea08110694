"""One (scenario, seed) of a batched run: everything a Trainer keeps except tensors.

A :class:`Member` is built exactly as :class:`~neurograph.train.Trainer`
builds itself: the seed's ``SeedSequence`` split into structure, init and
task streams (tasks spawn one per phase), the graph built from the init
stream, one character read ahead from the first task. It owns its graph,
rule, penalty, counters, reporters and the map from its hidden neuron ids to
slots of the batch's padded tensors; :class:`~neurograph.batched.BatchedTrainer`
owns the tensors and sequences the cycle.
"""

from __future__ import annotations

import math

import numpy as np

from neurograph.charnet import add_hidden, build_char_rnn
from neurograph.growth import Plan, build_rule
from neurograph.inherit import add_inherited, choose_fossil
from neurograph.penalties import build_penalty
from neurograph.reporters import Reporter, ReporterSet
from neurograph.scenario import Scenario
from neurograph.train import make_task

__all__ = ["Member"]


class Member:
    """Bookkeeping of one run inside a batch (the single run's fields and formulas)."""

    def __init__(self, scenario: Scenario, reporters: Reporter | None = None) -> None:
        self.scenario = scenario
        self.reporters = reporters or ReporterSet()
        root = np.random.SeedSequence(scenario.seed)
        s_structure, s_init, s_tasks = root.spawn(3)
        self.rng_structure = np.random.default_rng(s_structure)
        self.rng_init = np.random.default_rng(s_init)
        self.tasks = [
            make_task(p.task, np.random.default_rng(s))
            for p, s in zip(scenario.phases, s_tasks.spawn(len(scenario.phases)))
        ]
        alphabets = {t.alphabet for t in self.tasks}
        if len(alphabets) != 1:
            raise ValueError(f"all phases must share one alphabet, got {sorted(alphabets)}")
        self.alphabet = alphabets.pop()
        self.phase_ends = np.cumsum([p.cycles for p in scenario.phases]).tolist()
        cfg = scenario.structure
        self.penalty = build_penalty(cfg)
        self.rule = build_rule(cfg)
        self.growing = cfg.kind != "fixed"
        self.scope = getattr(cfg, "scope", "readout")
        self.graph = build_char_rnn(
            self.alphabet,
            cfg.hidden if cfg.kind == "fixed" else cfg.initial_hidden,
            rng=self.rng_init,
            std=cfg.init.std,
            multiplier=getattr(cfg, "first_multiplier", 1.0),
            graveyard_size=scenario.graveyard,
        )
        self.graph.meta.update(scenario=scenario.name, seed=str(scenario.seed))
        self.io_ids = self.graph.ids("input") + self.graph.ids("output")
        self.cycle = 0
        self.smooth = math.log(len(self.alphabet)) * scenario.window
        self.last_loss = self.smooth
        self.last_char = int(self.tasks[0].take(1)[0])
        self.adds = self.deletes = 0
        self.phase_results: list[dict] = []
        self.wall = 0.0
        self.phase = 0  # phase that trains the next cycle
        self.slot_of = {i: k for k, i in enumerate(self.graph.ids("hidden"))}  # hidden id -> slot
        self.refresh_hidden()

    # ------------------------------------------------------------ queries
    @property
    def total_cycles(self) -> int:
        return self.phase_ends[-1]

    @property
    def finished(self) -> bool:
        return self.cycle >= self.total_cycles

    @property
    def n_hidden(self) -> int:
        return len(self.hidden_ids)

    def phase_index(self, cycle: int) -> int:
        """Phase that trains cycle ``cycle + 1``."""
        return min(int(np.searchsorted(self.phase_ends, cycle, side="right")), len(self.phase_ends) - 1)

    def compiled_ids(self) -> list[int]:
        """Ids in the single run's compiled order: inputs, outputs, hidden by id."""
        return self.io_ids + self.hidden_ids.tolist()

    def positions(self, n_chars: int) -> list[int]:
        """Padded-tensor position of each id of :meth:`compiled_ids`."""
        return list(range(2 * n_chars)) + [2 * n_chars + self.slot_of[i] for i in self.hidden_ids.tolist()]

    def hidden_positions(self, n_chars: int) -> np.ndarray:
        """(H,) hidden slots' positions, hidden ids ascending (the order rules see)."""
        return self.hidden_slots + 2 * n_chars

    def free_slot(self) -> int:
        """Lowest slot this member does not use (may be beyond the batch's capacity)."""
        used = set(self.slot_of.values())
        return next(k for k in range(len(used) + 1) if k not in used)

    def loss_per_char(self) -> float:
        return self.smooth / self.scenario.window

    # ------------------------------------------------------------- cycle
    def window(self, inputs: np.ndarray, targets: np.ndarray) -> None:
        """Fill this member's rows (T,) of the batch's input and target indices."""
        chunk = self.tasks[self.phase].take(self.scenario.window)
        inputs[0] = self.last_char
        inputs[1:] = chunk[:-1]
        targets[:] = chunk
        self.last_char = int(chunk[-1])

    def record_loss(self, loss: float) -> None:
        """The window's summed loss: smoothing, cycle count, phase."""
        beta = self.scenario.loss_smoothing
        self.smooth = beta * self.smooth + (1 - beta) * loss
        self.last_loss = loss
        self.cycle += 1
        self.graph.cycle = self.cycle
        if self.cycle == self.phase_ends[self.phase] and self.phase < len(self.phase_ends) - 1:
            self.phase += 1

    def decide(self, slot_scores: np.ndarray) -> Plan:
        """The rule's plan from this cycle's (Hc,) slot scores; hidden ids ascending."""
        ages = self.cycle - self.hidden_born
        return self.rule.decide(self.hidden_ids, slot_scores[self.hidden_slots], ages, self.rng_structure)

    def new_neuron(self, reason: str) -> int:
        """Add one hidden neuron to the graph as the single run does; returns its id."""
        init = self.scenario.structure.init
        if init.kind == "inherit":
            fossil = choose_fossil(self.graph, init.choice, self.rng_init)
            if fossil is not None:
                return add_inherited(
                    self.graph, fossil, rng=self.rng_init, noise=init.noise, consume=init.consume, reason=reason
                )
        return add_hidden(self.graph, rng=self.rng_init, std=init.std, reason=reason)

    def refresh_hidden(self) -> None:
        self.hidden_ids = np.array(sorted(self.slot_of), dtype=np.int64)
        self.hidden_slots = np.array([self.slot_of[i] for i in self.hidden_ids.tolist()], dtype=np.int64)
        self.hidden_born = np.array([self.graph.neurons[i].born for i in self.hidden_ids.tolist()], dtype=np.int64)

    # ----------------------------------------------------------- reporting
    def reserve_ids(self, slot_scores: np.ndarray) -> list[int]:
        return self.hidden_ids[self.rule.below(slot_scores[self.hidden_slots])].tolist()

    def info(self) -> dict:
        s = self.scenario
        return {
            "scenario": s.name,
            "seed": s.seed,
            "total_cycles": self.total_cycles,
            "start_cycle": self.cycle,
            "rule": s.structure.kind,
            "device": s.device if s.device != "auto" else "auto",
            "phases": [
                {"task": p.task.kind, "cycles": p.cycles, "end": end, "optimum": t.optimum()}
                for p, end, t in zip(s.phases, self.phase_ends, self.tasks)
            ],
        }

    def metrics_row(self, cycles_per_s: float, slot_scores: np.ndarray) -> dict:
        """Same fields and values as :meth:`Trainer.metrics_row`."""
        phase = self.phase_index(self.cycle - 1 if self.cycle else 0)
        optimum = self.tasks[phase].optimum()
        loss = self.loss_per_char()
        return {
            "cycle": self.cycle,
            "phase": phase,
            "task": self.scenario.phases[phase].task.kind,
            "loss": loss,
            "loss_window": self.last_loss / self.scenario.window,
            "optimum": optimum,
            "gap": None if optimum is None else loss - optimum,
            "hidden": self.n_hidden,
            "reserve": int(self.rule.below(slot_scores[self.hidden_slots]).sum()),
            "adds": self.adds,
            "deletes": self.deletes,
            "cycles_per_s": cycles_per_s,
        }

    def record_phase_end(self) -> None:
        phase = self.phase_index(self.cycle - 1)
        self.phase_results.append(
            {
                "phase": phase,
                "task": self.scenario.phases[phase].task.kind,
                "end_cycle": self.cycle,
                "hidden": self.n_hidden,
                "loss": self.loss_per_char(),
                "optimum": self.tasks[phase].optimum(),
            }
        )

    def summary(self, status: str, cycles_per_s: float, slot_scores: np.ndarray) -> dict:
        """Same fields as :meth:`Trainer.summary`."""
        phase = self.phase_index(self.cycle - 1 if self.cycle else 0)
        return {
            "scenario": self.scenario.name,
            "seed": self.scenario.seed,
            "status": status,
            "cycles": self.cycle,
            "total_cycles": self.total_cycles,
            "hidden": self.n_hidden,
            "reserve": len(self.reserve_ids(slot_scores)),
            "loss": self.loss_per_char(),
            "optimum": self.tasks[phase].optimum(),
            "adds": self.adds,
            "deletes": self.deletes,
            "wall_s": self.wall,
            "cycles_per_s": cycles_per_s,
            "phases": self.phase_results,
        }
