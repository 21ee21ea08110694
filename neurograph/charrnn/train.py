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

import time

import numpy as np
import torch

from neurograph.compile import compile_graph, resolve_device, sync, write_back
from neurograph.run.network_state import network_state, restore_network
from neurograph.optim import build_optimizer
from neurograph.run.reporters import Reporter
from neurograph.charrnn.rnn import bptt
from neurograph.charrnn.run_state import RunState, make_task
from neurograph.scenario import Scenario
from neurograph.run.session import Session

__all__ = ["Trainer", "make_task", "DTYPES"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}




class Trainer(RunState, Session):
    """One run of a scenario; :meth:`run` trains to the end of the last phase."""

    def __init__(self, scenario: Scenario, *, reporters: Reporter | None = None) -> None:
        super().__init__(scenario, reporters)
        self.device = resolve_device(scenario.device)
        self.compiled = compile_graph(self.graph, device=self.device, dtype=DTYPES[scenario.dtype])
        self.optimizer = build_optimizer(scenario.optimizer)
        self.h = torch.zeros(self.compiled.n, dtype=self.compiled.weight.dtype, device=self.device)
        self._refresh_hidden()

    # ------------------------------------------------------------ queries
    def scores(self) -> np.ndarray:
        """(H,) each hidden neuron's threshold measure, float64."""
        return self.penalty.scores(self.compiled).detach().cpu().double().numpy()

    def reserve_ids(self) -> list[int]:
        """Hidden neurons at or below the deletion threshold."""
        return self._hidden_ids[self.rule.below(self.scores())].tolist()

    # ------------------------------------------------------------- training
    def step(self) -> float:
        """Train one cycle; returns the window's summed loss (nats)."""
        chars = torch.from_numpy(self.next_window()).to(self.device)
        c = self.compiled
        result = bptt(c, chars[:-1], chars[1:], self.h[c.hidden], scope=self.scope)
        grads = result.grads.as_dict()
        self.penalty.add_gradient(c, grads, self.scenario.window)
        params = c.params
        self.optimizer.step({k: params[k] for k in self.penalty.trainable}, grads, {"weight": c.mask})
        self.penalty.after_update(c)
        self.h[c.hidden] = result.h_last
        loss = result.loss.item()
        self.record_loss(loss)
        self._structural_step()
        return loss

    def _structural_step(self) -> None:
        if not self.growing:
            return
        ages = self.cycle - self._hidden_born
        plan = self.rule.decide(self._hidden_ids, self.scores(), ages, self.rng_structure)
        if not plan:
            return
        graph = self.graph
        n_events = len(graph.events)
        write_back(self.compiled, graph, plan.delete)  # the graveyard keeps their last wiring
        for nid in plan.delete:
            graph.delete_neuron(nid, reason=plan.reasons["delete"])
        for _ in range(plan.add):
            new = self.new_neuron(plan.reasons["add"])
            self.penalty.start_new(graph, new, self.scenario.structure.threshold, self.start_fraction())
        remap = sync(self.compiled, graph)
        if remap is not None:
            self.optimizer.remap(remap)
            self.h = remap.apply(self.h, (0,))
        self.adds += plan.add
        self.deletes += len(plan.delete)
        self._refresh_hidden()
        self.reporters.events([e for e in graph.events[n_events:] if e.kind in ("add", "delete")])

    def _refresh_hidden(self) -> None:
        self._hidden_ids = np.array(self.compiled.hidden_ids, dtype=np.int64)
        self._hidden_born = np.array([self.graph.neurons[i].born for i in self._hidden_ids.tolist()], dtype=np.int64)

    # ------------------------------------------------------------- running
    def info(self) -> dict:
        return super().info(str(self.device))

    def metrics_row(self, cycles_per_s: float) -> dict:
        return super().metrics_row(cycles_per_s, self.compiled.n_hidden, int(self.rule.below(self.scores()).sum()))

    # ----------------------------------------------------------- persistence
    def state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        """Everything needed to continue exactly: (JSON-able dict, tensors)."""
        network, tensors = network_state(self.graph, self.compiled, self.optimizer)
        tensors["h"] = self.h
        state = self.bookkeeping_state(self.elapsed())
        state.update(network)
        return state, tensors

    def restore(self, state: dict, tensors: dict[str, torch.Tensor]) -> None:
        """Continue from :meth:`state` (the scenario must be the same)."""
        dtype = DTYPES[self.scenario.dtype]
        self.graph, self.compiled = restore_network(state, tensors, self.optimizer, device=self.device, dtype=dtype)
        self.h = tensors["h"].to(device=self.device, dtype=dtype)
        self.restore_bookkeeping(state)
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
        t0, c0 = self.start_session(), self.cycle
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
                    self.record_phase_end(self.compiled.n_hidden)
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



    def summary(self, status: str, cycles_per_s: float) -> dict:
        return super().summary(status, cycles_per_s, self.compiled.n_hidden, len(self.reserve_ids()))
