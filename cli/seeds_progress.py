"""Progress of a ``run --seeds`` batch: one shared view fed by a reporter per member, and its plain lines.

A batch trains its seeds together, each member with its own reporter set.
:meth:`SeedsView.reporter_for` gives each member a small reporter that hands
its hooks, tagged with the seed, to one shared view; the view keeps every
seed's latest row and status (:class:`SeedState`) and the batch's rate.
:class:`SeedsLines` writes plain lines for pipes, logs and ``--no-live``: a
batch line every ``every_rounds`` report rounds and at each phase change, one
line per seed when it ends, and one for the batch at the end. The rich table of
:mod:`neurograph_cli.seeds_live` replaces them on terminals;
:func:`neurograph_cli.display.make_seeds_progress` picks one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from statistics import median

from neurograph.run.reporters import Reporter
from neurograph_cli.progress import eta_seconds, format_duration, rate_text, smoothed_rate, summary_line, units

__all__ = [
    "SeedState", "SeedsView", "SeedsLines", "batch_cycle", "batch_status", "batch_task", "counts_text", "end_line",
    "medians_text", "seed_list_text",
]  # fmt: skip


@dataclass
class SeedState:
    """One member as the view knows it: its ``start`` info, latest metrics row, status and summary."""

    seed: int
    info: dict
    row: dict | None = None  # at the end, updated from the summary (an interrupt can follow the last row)
    status: str = "running"  # running, a status text while busy otherwise, then the summary's status
    summary: dict | None = None

    @property
    def running(self) -> bool:
        return self.summary is None

    @property
    def cycle(self) -> int:
        return self.row["cycle"] if self.row else self.info["start_cycle"]

    @property
    def total(self) -> int:
        return self.info["total_cycles"]


def batch_cycle(states: list[SeedState]) -> tuple[int, int]:
    """(cycle, total) of the batch: it steps until its furthest-behind running member is done (once
    none runs, an interrupted member's cycle is where the batch stopped)."""
    total = max((s.total for s in states), default=0)
    running = [s for s in states if s.running] or states
    remaining = max((s.total - s.cycle for s in running), default=0)
    return total - remaining, total


def batch_status(states: list[SeedState]) -> str:
    """running while any member runs, then finished, or interrupted if any member was."""
    if any(s.running for s in states):
        return "running"
    return "finished" if all(s.status == "finished" for s in states) else "interrupted"


def counts_text(states: list[SeedState]) -> str:
    """``18 running, 2 finished``: members by status, running, finished, interrupted in this order."""
    counts = {"running": sum(s.running for s in states), "finished": 0, "interrupted": 0}
    for s in states:
        if not s.running:
            counts[s.status] = counts.get(s.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in counts.items() if n)


def median_of(states: list[SeedState], key: str) -> float | None:
    """Median over the members of their latest row's ``key`` (None if no member has one)."""
    values = [s.row[key] for s in states if s.row and s.row.get(key) is not None]
    return median(values) if values else None


def batch_task(states: list[SeedState]) -> str:
    """The task the batch trains on now: the first running member's (members move through phases together)."""
    rows = [s.row for s in states if s.running and s.row] or [s.row for s in states if s.row]
    return rows[0]["task"] if rows else states[0].info["phases"][0]["task"]


def seed_list_text(seeds: list[int]) -> str:
    """``0-19`` for a run of consecutive seeds, else ``0,3,7``."""
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def medians_text(states: list[SeedState], loss_unit: str = "", sep: str = "  ") -> str:
    """``median loss 0.7012 (gap +0.0282)  median hidden 34`` (n/a before the first row)."""
    loss, gap, hidden = (median_of(states, key) for key in ("loss", "gap", "hidden"))
    if loss is None:
        return "median loss n/a"
    gap_text = "" if gap is None else f" (gap {gap:+.4f})"
    unit = f" {loss_unit}" if loss_unit else ""
    return f"median loss {loss:.4f}{unit}{gap_text}{sep}median hidden {hidden:.0f}"


def end_line(states: list[SeedState], elapsed: float) -> str:
    """The batch's last line: its status, its members by status, the medians and the wall time."""
    loss_unit = units(states[0].info)[1]
    return (
        f"batch {batch_status(states)}: {len(states)} seeds ({counts_text(states)}), "
        f"{medians_text(states, loss_unit, sep=', ')}, wall {format_duration(elapsed)}"
    )


class SeedsView:
    """Every member's state, fed by :meth:`reporter_for`'s reporters; displays subclass it.

    The hooks may run on the training thread while a display reads
    :meth:`states` from another (rich's refresh thread): both take the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seeds: dict[int, SeedState] = {}  # in batch order: the order members start
        self.rate: float | None = None  # batch steps per second, smoothed over report rounds
        self.rounds = 0  # report rounds completed (each running member's row at one step)
        self.started = time.monotonic()

    def reporter_for(self, scenario) -> Reporter:
        """The reporter of the member training ``scenario`` (``run_seeds``' ``reporter_for``)."""
        return _SeedReporter(self, scenario.seed)

    def states(self) -> list[SeedState]:
        """Copies of every member's state, in batch order."""
        with self._lock:
            return [replace(s, row=None if s.row is None else dict(s.row)) for s in self._seeds.values()]

    def eta(self, states: list[SeedState]) -> float | None:
        """Seconds until the batch's last step at its smoothed rate (None while unknown)."""
        cycle, total = batch_cycle(states)
        return eta_seconds(cycle, total, self.rate)

    # ----------------------------------------------- hooks, by way of the members' reporters
    def seed_start(self, seed: int, info: dict) -> None:
        with self._lock:
            if not self._seeds:
                self.started = time.monotonic()
            self._seeds[seed] = SeedState(seed, {**info, "phases": [dict(p) for p in info["phases"]]})

    def seed_metrics(self, seed: int, row: dict) -> bool:
        """Keep ``row``; True when it completes a report round (the last running member's row)."""
        with self._lock:
            self._seeds[seed].row = dict(row)
            running = [s for s in self._seeds.values() if s.running]
            closes = running[-1].seed == seed
            if closes:
                self.rounds += 1
                self.rate = smoothed_rate(self.rate, row["cycles_per_s"])
            return closes

    def seed_status(self, seed: int, text: str) -> None:
        with self._lock:
            self._seeds[seed].status = f"{text}…"

    def seed_end(self, seed: int, summary: dict) -> bool:
        """Keep ``summary``; True when no member runs any more."""
        with self._lock:
            state = self._seeds[seed]
            state.summary, state.status = dict(summary), summary["status"]
            optimum, loss = summary["optimum"], summary["loss"]
            state.row = {
                **(state.row or {"task": _task_at(state.info["phases"], summary["cycles"])}),
                "cycle": summary["cycles"], "loss": loss, "optimum": optimum,
                "gap": None if optimum is None else loss - optimum,
                **{k: summary[k] for k in ("hidden", "reserve", "adds", "deletes")},
            }  # fmt: skip
            return not any(s.running for s in self._seeds.values())


def _task_at(phases: list[dict], cycle: int) -> str:
    """The task of the phase that ``cycle`` ends in (a member that ends before its first row)."""
    return next((p["task"] for p in phases if cycle <= p["end"]), phases[-1]["task"])


class _SeedReporter(Reporter):
    """One member's reporter: its hooks, tagged with its seed, go to the shared view."""

    def __init__(self, view: SeedsView, seed: int) -> None:
        self.view, self.seed = view, seed

    def start(self, info):
        self.view.seed_start(self.seed, info)

    def metrics(self, row):
        self.view.seed_metrics(self.seed, row)

    def status(self, text):
        self.view.seed_status(self.seed, text)

    def end(self, summary):
        self.view.seed_end(self.seed, summary)


class SeedsLines(SeedsView):
    """Plain lines: a header, batch progress every ``every_rounds`` rounds and at phase changes, each seed's end."""

    def __init__(self, stream, *, every_rounds: int = 10) -> None:
        super().__init__()
        self.stream = stream
        self.every_rounds = every_rounds
        self._phase: int | None = None
        self._header = False

    def seed_metrics(self, seed, row):
        closes = super().seed_metrics(seed, row)
        if closes:
            states = self.states()
            self._write_header(states)
            changed, self._phase = row["phase"] != self._phase, row["phase"]
            cycle, total = batch_cycle(states)
            if changed or self.rounds % self.every_rounds == 0 or cycle == total:
                self._write(self.batch_line(states))
        return closes

    def seed_status(self, seed, text):
        super().seed_status(seed, text)
        self._write(f"seed {seed}: {text}...")

    def seed_end(self, seed, summary):
        last = super().seed_end(seed, summary)
        states = self.states()
        self._write_header(states)
        state = next(s for s in states if s.seed == seed)
        self._write(f"seed {seed} {summary_line(summary, state.info)}")
        if last:
            self._write(end_line(states, time.monotonic() - self.started))
        return last

    def batch_line(self, states: list[SeedState]) -> str:
        """``cycle 45000/100000 easy  seeds 20 running  median loss ...  median hidden ...  ... cycles/s ETA ...``"""
        unit = units(states[0].info)[0]
        cycle, total = batch_cycle(states)
        speed = "" if self.rate is None else f"  {rate_text(self.rate)} {unit}s/s"
        return (
            f"{unit} {cycle:>7}/{total} {batch_task(states):<5} seeds {counts_text(states)}  "
            f"{medians_text(states)}{speed} ETA {format_duration(self.eta(states))}"
        )

    def _write_header(self, states: list[SeedState]) -> None:
        """``name: 20 seeds (0-19), rule on device, task(cycles) -> ...``, before the first other line."""
        if self._header:
            return
        self._header = True
        info = states[0].info
        phases = " -> ".join(f"{p['task']}({p['cycles']})" for p in info["phases"])
        unit, starts = units(info)[0], sorted({s.info["start_cycle"] for s in states})
        resumed = "" if starts == [0] else f", resuming at {unit} {starts[0]}"
        if len(starts) > 1:
            resumed = f", resuming at {unit}s {starts[0]}-{starts[-1]}"
        seeds = seed_list_text([s.seed for s in states])
        self._write(
            f"{info['scenario']}: {len(states)} seeds ({seeds}), {info['rule']} on {info['device']}, {phases}{resumed}"
        )

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()
