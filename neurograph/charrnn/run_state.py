"""Everything about one char-RNN run except its tensors.

:class:`RunState` is shared by the single-run :class:`~neurograph.charrnn.trainer.Trainer`
and by each member of a :class:`~neurograph.charrnn.trainer.Trainer`, so both
build, count and report a run the same way: the seed's ``SeedSequence`` split
into structure, init and task streams (one task stream per phase), the graph
built from the init stream, one character read ahead, the loss smoothing, new
neurons (random or inherited), metrics rows and summaries.
"""

from __future__ import annotations

import math

import numpy as np

from neurograph.charrnn.network import add_hidden, build_char_rnn, check_char_rnn
from neurograph.charrnn.growth import build_rule
from neurograph.charrnn.inherit import add_inherited, choose_fossil
from neurograph.charrnn.penalties import build_penalty
from neurograph.graph import Graph
from neurograph.run.loop import phase_of
from neurograph.run.reporters import Reporter, ReporterSet
from neurograph.scenario import Scenario
from neurograph.charrnn.tasks import TASKS, shared_alphabet

__all__ = ["RunState", "make_task"]

# Counters saved in checkpoints besides RNG and task states.
COUNTERS = ("cycle", "smooth", "last_loss", "last_char", "adds", "deletes", "phase_results", "wall")


def make_task(config, rng: np.random.Generator):
    """Task generator of a phase's ``task`` section (its kind's builder in :data:`TASKS`)."""
    return TASKS.build(config, rng)


class RunState:
    """Graph, RNG streams, tasks, rule, penalty and counters of one run."""

    def __init__(self, scenario: Scenario, reporters: Reporter | None = None, graph: Graph | None = None) -> None:
        self.scenario = scenario
        self.reporters = reporters or ReporterSet()
        s_structure, s_init, s_tasks = np.random.SeedSequence(scenario.seed).spawn(3)
        self.rng_structure = np.random.default_rng(s_structure)
        self.rng_init = np.random.default_rng(s_init)
        streams = s_tasks.spawn(len(scenario.phases))
        self.tasks = [make_task(p.task, np.random.default_rng(s)) for p, s in zip(scenario.phases, streams)]
        self.alphabet = shared_alphabet([t.alphabet for t in self.tasks])
        self.phase_ends = np.cumsum([p.cycles for p in scenario.phases]).tolist()
        cfg = scenario.structure
        self.penalty = build_penalty(cfg)
        self.rule = build_rule(cfg)
        self.scope = getattr(cfg, "scope", "readout")
        if graph is not None:  # built by hand: it replaces the scenario's initial network
            check_char_rnn(graph, self.alphabet)
            self.graph = graph
        else:
            self.graph = build_char_rnn(
                self.alphabet,
                cfg.hidden if cfg.kind == "fixed" else cfg.initial_hidden,
                rng=self.rng_init,
                std=cfg.init.std,
                multiplier=getattr(cfg, "first_multiplier", 1.0),
                graveyard_size=scenario.graveyard,
            )
        penalty = cfg.kind if cfg.kind != "fixed" else cfg.penalty  # exports write multipliers only where trained
        self.graph.meta.update(scenario=scenario.name, seed=str(scenario.seed), model="charrnn", penalty=penalty)
        self.cycle = 0
        self.smooth = math.log(len(self.alphabet)) * scenario.window
        self.last_loss = self.smooth
        self.last_char = int(self.tasks[0].take(1)[0])
        self.adds = self.deletes = 0
        self.phase_results: list[dict] = []
        self.wall = 0.0

    # ------------------------------------------------------------ queries
    @property
    def total_cycles(self) -> int:
        return self.phase_ends[-1]

    @property
    def growing(self) -> bool:
        return self.scenario.structure.kind != "fixed"

    def phase_index(self, cycle: int | None = None) -> int:
        """Phase that trains cycle ``cycle + 1`` (default: the next cycle)."""
        cycle = self.cycle if cycle is None else cycle
        return phase_of(self.phase_ends, cycle)

    def loss_per_char(self) -> float:
        return self.smooth / self.scenario.window

    # ------------------------------------------------------------- a cycle
    def next_window(self, row: np.ndarray | None = None) -> np.ndarray:
        """(T + 1,) characters: the last one read, then the next window; written
        into ``row`` when given (a batch's row), else into a new array.

        Inputs are ``[:-1]``, targets ``[1:]`` (non-overlapping windows, one
        character of look-ahead, as min-char-rnn).
        """
        if row is None:
            row = np.empty(self.scenario.window + 1, dtype=np.int64)
        row[0] = self.last_char
        row[1:] = self.tasks[self.phase_index()].take(self.scenario.window)
        self.last_char = int(row[-1])
        return row

    def record_loss(self, loss: float) -> None:
        """Account one trained window (summed loss, nats): smoothing and the cycle count."""
        beta = self.scenario.loss_smoothing
        self.smooth = beta * self.smooth + (1 - beta) * loss
        self.last_loss = loss
        self.cycle += 1
        self.graph.cycle = self.cycle

    def new_neuron(self, reason: str) -> int:
        """Add one hidden neuron to the graph: inherited when the init rule says so
        and the graveyard has a hidden fossil, else randomly wired."""
        init = self.scenario.structure.init
        if init.kind == "inherit":
            fossil = choose_fossil(self.graph, init.choice, self.rng_init)
            if fossil is not None:
                return add_inherited(
                    self.graph, fossil, rng=self.rng_init, noise=init.noise, consume=init.consume, reason=reason
                )
        return add_hidden(self.graph, rng=self.rng_init, std=init.std, reason=reason)

    def start_fraction(self) -> float:
        """Where a new neuron starts, as a fraction of T_D."""
        cfg = self.scenario.structure
        return 1.0 if cfg.kind == "multipliers" else cfg.new_norm

    # ----------------------------------------------------------- reporting
    def info(self, device: str) -> dict:
        s = self.scenario
        return {
            "scenario": s.name,
            "seed": s.seed,
            "total_cycles": self.total_cycles,
            "start_cycle": self.cycle,
            "rule": s.structure.kind,
            "device": device,
            "phases": [
                {"task": p.task.kind, "cycles": p.cycles, "end": end, "optimum": t.optimum()}
                for p, end, t in zip(s.phases, self.phase_ends, self.tasks)
            ],
        }

    def metrics_row(self, cycles_per_s: float, hidden: int, reserve: int) -> dict:
        """One metrics row (fields listed in :mod:`neurograph.charrnn.trainer`)."""
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
            "hidden": hidden,
            "reserve": reserve,
            "adds": self.adds,
            "deletes": self.deletes,
            "cycles_per_s": cycles_per_s,
        }

    def record_phase_end(self, hidden: int) -> None:
        phase = self.phase_index(self.cycle - 1)
        self.phase_results.append(
            {
                "phase": phase,
                "task": self.scenario.phases[phase].task.kind,
                "end_cycle": self.cycle,
                "hidden": hidden,
                "loss": self.loss_per_char(),
                "optimum": self.tasks[phase].optimum(),
            }
        )

    def summary(self, status: str, cycles_per_s: float, hidden: int, reserve: int) -> dict:
        phase = self.phase_index(self.cycle - 1 if self.cycle else 0)
        return {
            "scenario": self.scenario.name,
            "seed": self.scenario.seed,
            "status": status,
            "cycles": self.cycle,
            "total_cycles": self.total_cycles,
            "hidden": hidden,
            "reserve": reserve,
            "loss": self.loss_per_char(),
            "optimum": self.tasks[phase].optimum(),
            "adds": self.adds,
            "deletes": self.deletes,
            "wall_s": self.wall,
            "cycles_per_s": cycles_per_s,
            "phases": self.phase_results,
        }

    # --------------------------------------------------------- persistence
    def bookkeeping_state(self, wall: float) -> dict:
        """RNG and task states and counters, JSON-able (the checkpoint's non-tensor part)."""
        state = {k: getattr(self, k) for k in COUNTERS}
        state.update(
            scenario=self.scenario.name,
            seed=self.scenario.seed,
            rng_structure=self.rng_structure.bit_generator.state,
            rng_init=self.rng_init.bit_generator.state,
            tasks=[t.get_state() for t in self.tasks],
            wall=wall,
        )
        return state

    def restore_bookkeeping(self, state: dict) -> None:
        self.rng_structure.bit_generator.state = state["rng_structure"]
        self.rng_init.bit_generator.state = state["rng_init"]
        for task, task_state in zip(self.tasks, state["tasks"]):
            task.set_state(task_state)
        for key in COUNTERS:
            setattr(self, key, state[key])
