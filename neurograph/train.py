"""The training loop: the one place that sequences everything else.

Per cycle: read a window of characters from the current phase's task, run
BPTT on the compiled tensors, add the penalty's gradient, update, apply the
penalty's post-update step, then let the structural rule decide. Only when it
decides something does the loop write trained values back to the graph, edit
the graph, sync the compiled tensors and remap the optimizer's memories and the
hidden state. Reporters hear about metrics, events, snapshots and the end.

A run is a pure function of (scenario, seed): the seed's
``np.random.SeedSequence`` is split into independent streams for structural
decisions, new-neuron initialisation and each phase's task.

Metrics rows: ``cycle``, ``phase``, ``task``, ``loss`` (smoothed cross-entropy
per character, nats), ``loss_window`` (last window's, per character),
``optimum`` (task's best per character, or None), ``gap`` (loss - optimum),
``hidden``, ``reserve`` (hidden neurons at or below T_D), ``adds``, ``deletes``
(cumulative), ``cycles_per_s``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from neurograph.charnet import add_hidden, build_char_rnn
from neurograph.compile import compile_graph, resolve_device, sync, write_back
from neurograph.graph import Graph
from neurograph.growth import build_rule
from neurograph.inherit import add_inherited, choose_fossil
from neurograph.optim import build_optimizer
from neurograph.penalties import build_penalty
from neurograph.reporters import Reporter, ReporterSet
from neurograph.rnn import bptt
from neurograph.scenario import Scenario
from neurograph.tasks import EasyTask, HardTask, TextTask

__all__ = ["Trainer", "make_task"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def make_task(config, rng: np.random.Generator):
    """Task generator of a phase's ``task`` section."""
    if config.kind == "easy":
        return EasyTask(config.p, rng=rng)
    if config.kind == "hard":
        return HardTask(config.length, rng=rng)
    return TextTask(Path(config.path), rng=rng)


class Trainer:
    """One run of a scenario; :meth:`run` trains to the end of the last phase."""

    def __init__(self, scenario: Scenario, *, reporters: Reporter | None = None) -> None:
        self.scenario = scenario
        self.reporters = reporters or ReporterSet()
        root = np.random.SeedSequence(scenario.seed)
        s_structure, s_init, s_tasks = root.spawn(3)
        self.rng_structure = np.random.default_rng(s_structure)
        self.rng_init = np.random.default_rng(s_init)
        self.tasks = [make_task(p.task, np.random.default_rng(s)) for p, s in zip(scenario.phases, s_tasks.spawn(len(scenario.phases)))]
        self.alphabet = _shared_alphabet(self.tasks)
        self.phase_ends = np.cumsum([p.cycles for p in scenario.phases]).tolist()

        cfg = scenario.structure
        self.penalty = build_penalty(cfg)
        self.rule = build_rule(cfg)
        first_m = getattr(cfg, "first_multiplier", 1.0)
        self.graph = build_char_rnn(
            self.alphabet,
            cfg.hidden if cfg.kind == "fixed" else cfg.initial_hidden,
            rng=self.rng_init,
            std=cfg.init.std,
            multiplier=first_m,
            graveyard_size=scenario.graveyard,
        )
        self.graph.meta.update(scenario=scenario.name, seed=str(scenario.seed))
        self.device = resolve_device(scenario.device)
        self.compiled = compile_graph(self.graph, device=self.device, dtype=_DTYPES[scenario.dtype])
        self.optimizer = build_optimizer(scenario.optimizer)
        self.h = torch.zeros(self.compiled.n, dtype=self.compiled.weight.dtype, device=self.device)
        self.cycle = 0
        self.smooth = math.log(len(self.alphabet)) * scenario.window
        self.last_loss = self.smooth
        self.last_char = int(self.tasks[0].take(1)[0])
        self.adds = self.deletes = 0
        self.phase_results: list[dict] = []
        self.wall = 0.0
        self._session: tuple[float, float] | None = None  # (start, wall before) while running
        self._stop_requested = False
        self._refresh_hidden()

    # ------------------------------------------------------------ queries
    @property
    def total_cycles(self) -> int:
        return self.phase_ends[-1]

    def phase_index(self, cycle: int | None = None) -> int:
        """Phase that trains cycle ``cycle + 1`` (default: the next cycle)."""
        cycle = self.cycle if cycle is None else cycle
        return min(int(np.searchsorted(self.phase_ends, cycle, side="right")), len(self.phase_ends) - 1)

    def scores(self) -> np.ndarray:
        """(H,) each hidden neuron's threshold measure, float64."""
        return self.penalty.scores(self.compiled).detach().cpu().double().numpy()

    def reserve_ids(self) -> list[int]:
        """Hidden neurons at or below the deletion threshold."""
        return self._hidden_ids[self.rule.below(self.scores())].tolist()

    def loss_per_char(self) -> float:
        return self.smooth / self.scenario.window

    # ------------------------------------------------------------- training
    def step(self) -> float:
        """Train one cycle; returns the window's summed loss (nats)."""
        task = self.tasks[self.phase_index()]
        chunk = task.take(self.scenario.window)
        inputs = np.concatenate(([self.last_char], chunk[:-1]))
        self.last_char = int(chunk[-1])
        c = self.compiled
        result = bptt(
            c,
            torch.from_numpy(inputs).to(self.device),
            torch.from_numpy(chunk).to(self.device),
            self.h[c.hidden],
            scope=getattr(self.scenario.structure, "scope", "readout"),
        )
        grads = result.grads.as_dict()
        self.penalty.add_gradient(c, grads, self.scenario.window)
        params = c.params
        self.optimizer.step({k: params[k] for k in self.penalty.trainable}, grads, {"weight": c.mask})
        self.penalty.after_update(c)
        self.h[c.hidden] = result.h_last
        loss = result.loss.item()
        beta = self.scenario.loss_smoothing
        self.smooth = beta * self.smooth + (1 - beta) * loss
        self.last_loss = loss
        self.cycle += 1
        self.graph.cycle = self.cycle
        self._structural_step()
        return loss

    def _structural_step(self) -> None:
        if self.scenario.structure.kind == "fixed":
            return
        ages = self.cycle - self._hidden_born
        plan = self.rule.decide(self._hidden_ids, self.scores(), ages, self.rng_structure)
        if not plan:
            return
        graph, cfg = self.graph, self.scenario.structure
        n_events = len(graph.events)
        write_back(self.compiled, graph, plan.delete)  # the graveyard keeps their last wiring
        for nid in plan.delete:
            graph.delete_neuron(nid, reason=plan.reasons["delete"])
        fraction = 1.0 if cfg.kind == "multipliers" else cfg.new_norm
        for _ in range(plan.add):
            new = self._new_neuron(plan.reasons["add"])
            self.penalty.start_new(graph, new, cfg.threshold, fraction)
        remap = sync(self.compiled, graph)
        if remap is not None:
            self.optimizer.remap(remap)
            self.h = remap.apply(self.h, (0,))
        self.adds += plan.add
        self.deletes += len(plan.delete)
        self._refresh_hidden()
        self.reporters.events([e for e in graph.events[n_events:] if e.kind in ("add", "delete")])

    def _new_neuron(self, reason: str) -> int:
        """Add one hidden neuron: inherited when the init rule says so and a fossil exists."""
        init = self.scenario.structure.init
        if init.kind == "inherit":
            fossil = choose_fossil(self.graph, init.choice, self.rng_init)
            if fossil is not None:
                return add_inherited(
                    self.graph, fossil, rng=self.rng_init, noise=init.noise, consume=init.consume, reason=reason
                )
        return add_hidden(self.graph, rng=self.rng_init, std=init.std, reason=reason)

    def _refresh_hidden(self) -> None:
        self._hidden_ids = np.array(self.compiled.hidden_ids, dtype=np.int64)
        self._hidden_born = np.array([self.graph.neurons[i].born for i in self._hidden_ids.tolist()], dtype=np.int64)

    # ------------------------------------------------------------- running
    def info(self) -> dict:
        s = self.scenario
        return {
            "scenario": s.name,
            "seed": s.seed,
            "total_cycles": self.total_cycles,
            "start_cycle": self.cycle,
            "rule": s.structure.kind,
            "device": str(self.device),
            "phases": [
                {"task": p.task.kind, "cycles": p.cycles, "end": end, "optimum": t.optimum()}
                for p, end, t in zip(s.phases, self.phase_ends, self.tasks)
            ],
        }

    def metrics_row(self, cycles_per_s: float) -> dict:
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
            "hidden": self.compiled.n_hidden,
            "reserve": int(self.rule.below(self.scores()).sum()),
            "adds": self.adds,
            "deletes": self.deletes,
            "cycles_per_s": cycles_per_s,
        }

    # ----------------------------------------------------------- persistence
    def state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        """Everything needed to continue exactly: (JSON-able dict, tensors)."""
        graph_state, graph_arrays = self.graph.to_state()
        c = self.compiled
        tensors = {
            "graph.weights": torch.from_numpy(graph_arrays["weights"]),
            "graph.present": torch.from_numpy(graph_arrays["present"]),
            "compiled.weight": c.weight,
            "compiled.mask": c.mask,
            "compiled.bias": c.bias,
            "compiled.multiplier": c.multiplier,
            "h": self.h,
        }
        for name, memories in self.optimizer.state.items():
            for key, mem in memories.items():
                tensors[f"optimizer.{name}.{key}"] = mem
        state = {
            "scenario": self.scenario.name,
            "seed": self.scenario.seed,
            "graph": graph_state,
            "compiled_ids": c.ids,
            "optimizer_steps": self.optimizer.steps,
            "rng_structure": self.rng_structure.bit_generator.state,
            "rng_init": self.rng_init.bit_generator.state,
            "tasks": [t.get_state() for t in self.tasks],
            "cycle": self.cycle,
            "smooth": self.smooth,
            "last_loss": self.last_loss,
            "last_char": self.last_char,
            "adds": self.adds,
            "deletes": self.deletes,
            "phase_results": self.phase_results,
            "wall": self.elapsed(),
        }
        return state, tensors

    def restore(self, state: dict, tensors: dict[str, torch.Tensor]) -> None:
        """Continue from :meth:`state` (the scenario must be the same)."""
        graph_arrays = {"weights": tensors["graph.weights"].numpy(), "present": tensors["graph.present"].numpy()}
        self.graph = Graph.from_state(state["graph"], graph_arrays)
        c = self.compiled = compile_graph(self.graph, device=self.device, dtype=_DTYPES[self.scenario.dtype])
        if c.ids != state["compiled_ids"]:
            raise ValueError("checkpoint's compiled order does not match its graph")
        on = lambda t: t.to(device=self.device, dtype=c.weight.dtype)  # noqa: E731
        c.weight, c.mask = on(tensors["compiled.weight"]), on(tensors["compiled.mask"])
        c.bias, c.multiplier = on(tensors["compiled.bias"]), on(tensors["compiled.multiplier"])
        self.h = on(tensors["h"])
        self.optimizer.steps = state["optimizer_steps"]
        for name in self.optimizer.state:
            prefix = f"optimizer.{name}."
            self.optimizer.state[name] = {k[len(prefix) :]: on(v) for k, v in tensors.items() if k.startswith(prefix)}
        self.rng_structure.bit_generator.state = state["rng_structure"]
        self.rng_init.bit_generator.state = state["rng_init"]
        for task, task_state in zip(self.tasks, state["tasks"]):
            task.set_state(task_state)
        for key in ("cycle", "smooth", "last_loss", "last_char", "adds", "deletes", "phase_results", "wall"):
            setattr(self, key, state[key])
        self._refresh_hidden()

    def checkpoint(self) -> None:
        state, tensors = self.state()
        self.reporters.checkpoint(self.cycle, state, tensors)

    def snapshot(self, final: bool = False) -> None:
        write_back(self.compiled, self.graph)
        self.reporters.snapshot(self.cycle, self.graph, self.reserve_ids(), final)

    def run(self) -> dict:
        """Train to the end (or until Ctrl-C); returns the summary."""
        report = self.scenario.report
        self.reporters.start(self.info())
        status = "finished"
        t0, c0 = time.perf_counter(), self.cycle
        self._session = (t0, self.wall)  # (start of this session, wall time before it)
        if self.cycle == 0:
            self.checkpoint()  # a run folder is resumable from its first moment
        tick_t, tick_c = t0, self.cycle
        try:
            while self.cycle < self.total_cycles:
                if self._stop_requested:
                    status = "interrupted"
                    break
                self.step()
                if self.cycle in self.phase_ends:
                    self._record_phase_end()
                if self.cycle % report.every == 0 or self.cycle == self.total_cycles:
                    now = time.perf_counter()
                    rate = (self.cycle - tick_c) / max(now - tick_t, 1e-9)
                    tick_t, tick_c = now, self.cycle
                    self.reporters.metrics(self.metrics_row(rate))
                if report.graph_every and self.cycle % report.graph_every == 0 and self.cycle < self.total_cycles:
                    self.snapshot()
                if report.checkpoint_every and self.cycle % report.checkpoint_every == 0:
                    self.checkpoint()
        except KeyboardInterrupt:  # raised mid-cycle: the last checkpoint stays the valid one
            status = "interrupted"
            self.wall = self.elapsed()
            self.reporters.end(self.summary(status, 0.0))
            raise
        self.checkpoint()
        self.wall = self.elapsed()
        self.snapshot(final=True)
        summary = self.summary(status, (self.cycle - c0) / max(time.perf_counter() - t0, 1e-9))
        self.reporters.end(summary)
        return summary

    def request_stop(self) -> None:
        """Ask :meth:`run` to stop after the current cycle (safe from a signal handler)."""
        self._stop_requested = True

    def elapsed(self) -> float:
        """Wall time of the run so far, seconds, across resumed sessions."""
        if self._session is None:
            return self.wall
        start, before = self._session
        return before + time.perf_counter() - start

    def _record_phase_end(self) -> None:
        phase = self.phase_index(self.cycle - 1)
        self.phase_results.append(
            {
                "phase": phase,
                "task": self.scenario.phases[phase].task.kind,
                "end_cycle": self.cycle,
                "hidden": self.compiled.n_hidden,
                "loss": self.loss_per_char(),
                "optimum": self.tasks[phase].optimum(),
            }
        )

    def summary(self, status: str, cycles_per_s: float) -> dict:
        phase = self.phase_index(self.cycle - 1 if self.cycle else 0)
        return {
            "scenario": self.scenario.name,
            "seed": self.scenario.seed,
            "status": status,
            "cycles": self.cycle,
            "total_cycles": self.total_cycles,
            "hidden": self.compiled.n_hidden,
            "reserve": len(self.reserve_ids()),
            "loss": self.loss_per_char(),
            "optimum": self.tasks[phase].optimum(),
            "adds": self.adds,
            "deletes": self.deletes,
            "wall_s": self.wall,
            "cycles_per_s": cycles_per_s,
            "phases": self.phase_results,
        }


def _shared_alphabet(tasks) -> str:
    alphabets = {t.alphabet for t in tasks}
    if len(alphabets) != 1:
        raise ValueError(f"all phases must share one alphabet, got {sorted(alphabets)}")
    return alphabets.pop()
