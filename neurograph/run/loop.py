"""The run loop: the one place that sequences a run, for every model.

A model's trainer is an *engine*: it trains its running members (one run each;
a char-RNN batch has many, a URN one) one cycle at a time, and answers for each
member what the reporters need. The loop does everything else, the same way
for every model:

1. every member's reporters hear ``start``; a member at cycle 0 is checkpointed
   at once, so its run folder is resumable from its first moment;
2. per cycle: ``engine.advance()``, then for each member whatever is due: a phase
   end, a metrics row (every ``report.every`` cycles and at the end), a graph
   snapshot (``report.graph_every``) and a checkpoint (``report.checkpoint_every``);
3. a member that reaches its last cycle is *finished*: checkpoint, final
   snapshot (with the model's analysis), summary, ``end``; then it leaves the
   engine. A member that starts at its last cycle (a run killed while it was
   finishing) goes straight to this step, so ``resume`` completes it;
4. a stop request (Ctrl-C, SIGTERM: :meth:`Engine.request_stop`) ends every
   running member the same way with status ``interrupted`` after the current
   cycle; a ``KeyboardInterrupt`` raised mid-cycle, or while step 3 writes the
   outputs (``engine.finishing``), leaves each member's last checkpoint as the
   valid one, and its summary says ``interrupted``, so ``resume`` redoes the rest.

A member exposes ``cycle``, ``total_cycles``, ``phase_ends``, ``scenario``
(with its ``report`` section), ``reporters`` and ``wall`` (seconds of earlier
sessions, restored from its checkpoint).
"""

from __future__ import annotations

import bisect
import time
from typing import Any, Protocol

from neurograph.run.integrity import stamp_scenario

__all__ = ["Engine", "Batch", "run_loop", "phase_of"]


class Engine(Protocol):
    """What the loop asks of a model's trainer."""

    running: list[Any]  # members still training, in batch order
    stop_requested: bool
    finishing: bool  # set by the loop while it writes a member's outputs

    def info(self, member) -> dict:
        """The ``start`` hook's payload: scenario, seed, cycles, phases, the model's vocabulary."""

    def advance(self) -> bool:
        """Train every running member one cycle; False when a stop request cut the cycle short."""

    def record_phase_end(self, member) -> None:
        """Note the results of the phase ``member`` just ended."""

    def metrics_row(self, member, cycles_per_s: float) -> dict:
        """``member``'s metrics row now."""

    def state(self, member) -> tuple[dict, dict]:
        """``member``'s checkpoint: (JSON-able dict, tensors)."""

    def snapshot(self, member, final: bool) -> None:
        """Write back ``member``'s trained values and hand its graph (and analysis) to its reporters."""

    def summary(self, member, status: str, cycles_per_s: float) -> dict:
        """``member``'s summary."""

    def leave(self, members: list) -> None:
        """Remove finished ``members`` from :attr:`running`."""


class Batch:
    """A trainer of one member or many (``members``): what a trainer of a single run is asked
    (its reporters, its member, its graph) answered for that one, or refused for a batch."""

    members: list

    @property
    def reporters(self):
        """A single run's reporters (set them before ``run``)."""
        return self._single().reporters

    @reporters.setter
    def reporters(self, reporters) -> None:
        self._single().reporters = reporters

    @property
    def run_state(self):
        """A single run's member: its graph, tasks, counters and rules."""
        return self._single()

    @property
    def graph(self):
        """A single run's graph (trained values are written back at snapshots)."""
        return self._single().graph

    def _single(self):
        if len(self.members) != 1:
            raise ValueError(f"a batch of {len(self.members)} runs has no single run; use trainer.members")
        return self.members[0]


def phase_of(phase_ends: list[int], cycle: int) -> int:
    """The phase (0-based) that trains step ``cycle + 1``: phase ``k`` ends at ``phase_ends[k]``
    (cumulative); past the last end, the last phase."""
    return min(bisect.bisect_right(phase_ends, cycle), len(phase_ends) - 1)


def run_loop(engine: Engine) -> list[dict]:
    """Train every member of ``engine`` to its end (or a stop request); returns the
    summaries in the order of ``engine.running`` at the start."""
    return _Loop(engine).run()


class _Loop:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.members = list(engine.running)
        self.t0 = time.perf_counter()
        self.start = {id(m): (m.cycle, m.wall) for m in self.members}
        self.tick = {id(m): (self.t0, m.cycle) for m in self.members}
        self.summaries: dict[int, dict] = {}

    def run(self) -> list[dict]:
        engine = self.engine
        for m in self.members:
            m.reporters.start(engine.info(m))
            if m.cycle == 0:
                self.checkpoint(m)
        try:
            while True:
                done = [m for m in engine.running if m.cycle >= m.total_cycles]
                if done:
                    self.finish(done, "finished")
                if not engine.running or engine.stop_requested or not engine.advance():
                    break
                for m in engine.running:
                    self.report(m)
            if engine.running:
                self.finish(list(engine.running), "interrupted")
        except KeyboardInterrupt:  # raised mid-cycle: each member's last checkpoint stays the valid one
            for m in engine.running:
                m.wall = self.elapsed(m)
                m.reporters.end(engine.summary(m, "interrupted", 0.0))
            raise
        return [self.summaries[id(m)] for m in self.members if id(m) in self.summaries]

    def report(self, m) -> None:
        """Phase end, metrics row, snapshot and checkpoint due at ``m``'s cycle."""
        report, cycle, last = m.scenario.report, m.cycle, m.total_cycles
        if cycle in m.phase_ends:
            self.engine.record_phase_end(m)
        if cycle % report.every == 0 or cycle == last:
            now = time.perf_counter()
            then, then_cycle = self.tick[id(m)]
            self.tick[id(m)] = (now, cycle)
            m.reporters.metrics(self.engine.metrics_row(m, (cycle - then_cycle) / max(now - then, 1e-9)))
        if report.graph_every and cycle % report.graph_every == 0 and cycle < last:
            self.engine.snapshot(m, False)
        if report.checkpoint_every and cycle % report.checkpoint_every == 0 and cycle < last:
            self.checkpoint(m)

    def finish(self, members: list, status: str) -> None:
        """Checkpoint, final snapshot, summary, ``end``; then the members leave the engine.

        The checkpoint comes first: whatever a kill interrupts after it, resuming
        that checkpoint redoes only the outputs (the summary is written last).
        While the outputs are written ``engine.finishing`` is True: a stop request
        then has no cycle left to wait for, so the command line interrupts at once."""
        for m in members:
            self.checkpoint(m)
            self.engine.finishing = True
            try:
                self.engine.snapshot(m, True)
                m.wall = self.elapsed(m)
                seconds = max(time.perf_counter() - self.t0, 1e-9)
                summary = self.engine.summary(m, status, (m.cycle - self.start[id(m)][0]) / seconds)
                m.reporters.end(summary)
            finally:
                self.engine.finishing = False
            self.summaries[id(m)] = summary
        self.engine.leave(members)

    def checkpoint(self, m) -> None:
        m.wall = self.elapsed(m)
        state, tensors = self.engine.state(m)
        # with the scenario it was trained under: a resume checks scenario.yaml against it
        m.reporters.checkpoint(m.cycle, stamp_scenario(state, m.scenario), tensors)

    def elapsed(self, m) -> float:
        """``m``'s wall time across sessions, seconds."""
        return self.start[id(m)][1] + time.perf_counter() - self.t0
