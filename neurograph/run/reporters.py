"""Reporters: everything the training loop tells the outside world.

The loop only ever talks to a :class:`ReporterSet`, which fans each call out
to its members. A reporter overrides the hooks it cares about; the base class
does nothing. Hooks receive plain data (dicts, event lists, file paths); the
graph is passed only to :meth:`Reporter.snapshot`, synchronously, and must not
be kept.
"""

from __future__ import annotations

from typing import Iterable

from neurograph.graph import Event, Fossil, Graph

__all__ = ["Reporter", "ReporterSet"]


class Reporter:
    """Do-nothing hooks; subclasses override what they need."""

    def start(self, info: dict) -> None:
        """Run begins (or resumes): scenario name, seed, total cycles, phases."""

    def metrics(self, row: dict) -> None:
        """One metrics row (see :mod:`neurograph.charrnn.trainer` for the fields)."""

    def events(self, events: list[Event]) -> None:
        """Structural events since the previous call."""

    def fossils(self, fossils: list[Fossil]) -> None:
        """Neurons just deleted, with their values and wiring at death (plain data: keep what you need)."""

    def snapshot(self, cycle: int, graph: Graph, reserve: list[int], final: bool) -> None:
        """The graph after a write-back (read it now, do not keep it)."""

    def connectome(self, cycle: int, graph: Graph, analysis, final: bool) -> None:
        """A URN snapshot's analysis (active network, layers), with the graph it describes (do not keep it)."""

    def checkpoint(self, cycle: int, state: dict, tensors: dict) -> None:
        """The run's full state at ``cycle`` (see :meth:`Trainer.state`), to persist now."""

    def status(self, text: str) -> None:
        """What the run is busy with now that is not training (e.g. writing its outputs), to show."""

    def end(self, summary: dict) -> None:
        """Run finished (or was interrupted: ``summary['status']``)."""


class ReporterSet(Reporter):
    """Fans every hook out to its members, in order."""

    def __init__(self, reporters: Iterable[Reporter] = ()) -> None:
        self.reporters = list(reporters)

    def add(self, reporter: Reporter) -> None:
        self.reporters.append(reporter)

    def start(self, info):
        for r in self.reporters:
            r.start(info)

    def metrics(self, row):
        for r in self.reporters:
            r.metrics(row)

    def events(self, events):
        for r in self.reporters:
            r.events(events)

    def fossils(self, fossils):
        for r in self.reporters:
            r.fossils(fossils)

    def snapshot(self, cycle, graph, reserve, final):
        for r in self.reporters:
            r.snapshot(cycle, graph, reserve, final)

    def connectome(self, cycle, graph, analysis, final):
        for r in self.reporters:
            r.connectome(cycle, graph, analysis, final)

    def checkpoint(self, cycle, state, tensors):
        for r in self.reporters:
            r.checkpoint(cycle, state, tensors)

    def status(self, text):
        for r in self.reporters:
            r.status(text)

    def end(self, summary):
        for r in self.reporters:
            r.end(summary)
