"""Plain-text progress of a sweep for the command line (no rich: a log reads like the screen).

:class:`TextProgress` writes a line per ended run and shows the running runs
(one line each, with a bar) and an overall bar: redrawn in place on a
terminal, written as plain lines every ``every_s`` seconds otherwise.
"""

from __future__ import annotations

import time
from typing import Callable, TextIO

from neurograph.studies.sweep_run import SweepReporter

__all__ = ["TextProgress"]

PLAIN_EVERY_S = 10.0  # without a terminal, running runs are listed this often (a log stays short)
BAR = 24  # characters of a progress bar


def _bar(done: int, total: int, width: int = BAR) -> str:
    filled = width * done // total if total else width
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class TextProgress(SweepReporter):
    """A line per ended run (its metrics, or its error); running runs and an overall bar.

    ``live`` (a terminal): the running runs and the bar are redrawn in place
    under the ended-run lines. Otherwise they are written as plain lines at
    most every ``every_s`` seconds.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        live: bool,
        metrics: list[str] = (),
        every_s: float = PLAIN_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream, self.live, self.metrics = stream, live, list(metrics)
        self.every_s, self.clock = every_s, clock
        self.running: dict[str, tuple[int, int]] = {}  # job id -> (cycle, total)
        self.total = self.completed = self.failed = 0
        self._drawn = 0  # lines of the live block now on screen
        self._last_block = -float("inf")

    def start(self, jobs):
        self.total = len(jobs)
        self._write_lines([f"sweep: {self.total} runs"])

    def job_progress(self, job, cycle, total):
        self.running[job] = (cycle, total)
        if self.live:
            self._redraw()
        elif self.clock() - self._last_block >= self.every_s:
            self._last_block = self.clock()
            self._write_lines(self._block())

    def job_end(self, job, row, completed, total, *, skipped=False):
        self.running.pop(job, None)
        self.completed = completed
        self.failed += row["status"] != "finished"
        status = "skipped" if skipped else row["status"]
        detail = row["error"] or "  ".join(f"{m} {_number(row.get(m))}" for m in self.metrics)
        self._write_lines([f"{completed:>{len(str(total))}}/{total} {status:<11} {job}  {detail}".rstrip()])

    def _block(self) -> list[str]:
        lines = [f"  {job}  {_bar(c, t)} {c}/{t}" for job, (c, t) in self.running.items()]
        overall = f"{_bar(self.completed, self.total)} {self.completed}/{self.total} runs, {self.failed} not finished"
        return lines + [overall]

    def _write_lines(self, lines: list[str]) -> None:
        """Permanent lines, above the live block (which is then redrawn)."""
        self._erase()
        self.stream.write("".join(line + "\n" for line in lines))
        if self.live:
            self._redraw()
        self.stream.flush()

    def _erase(self) -> None:
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")  # to the block's first line, clear below
            self._drawn = 0

    def _redraw(self) -> None:
        self._erase()
        block = self._block()
        self.stream.write("".join(line + "\n" for line in block))
        self.stream.flush()
        self._drawn = len(block)
