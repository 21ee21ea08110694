"""Live terminal view of a ``run --seeds`` batch: one row per seed under the batch's progress.

With :mod:`neurograph_cli.live` the only modules that import rich. The view is
the shared :class:`~neurograph_cli.seeds_progress.SeedsView` every member's
reporter feeds; rich's ``Live`` redraws it about four times a second from its
own thread (never per cycle), from copies taken under the view's lock. It
starts with the first member and stops when the last one ends, leaving the
last frame and a line for the batch. On pipes and with ``--no-live`` the plain
lines of :class:`~neurograph_cli.seeds_progress.SeedsLines` are used instead.
"""

from __future__ import annotations

import atexit
import time

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from neurograph_cli.progress import format_duration, rate_text, units
from neurograph_cli.seeds_progress import (
    SeedState,
    SeedsView,
    batch_cycle,
    batch_status,
    batch_task,
    counts_text,
    end_line,
    medians_text,
    seed_list_text,
)

__all__ = ["SeedsLiveView"]

REFRESH_PER_SECOND = 4
FRAME_ROWS = 7  # borders, progress, medians, blank, table header, the "more seeds" line
STATUS_STYLES = {"running": "", "finished": "green", "interrupted": "yellow"}


class SeedsLiveView(SeedsView):
    """Rich live panel: the batch's progress and ETA, its medians, and a table of the seeds."""

    def __init__(self, console: Console | None = None, *, refresh_per_second: float = REFRESH_PER_SECOND) -> None:
        super().__init__()
        self.console = console or Console()
        self.refresh_per_second = refresh_per_second
        self._live: Live | None = None

    @classmethod
    def for_stream(cls, stream) -> SeedsLiveView:
        """A view writing to ``stream``; colours follow the terminal and ``NO_COLOR``, never forced."""
        return cls(Console(file=stream))

    def seed_start(self, seed, info):
        super().seed_start(seed, info)
        if self._live is None:
            self._live = Live(
                console=self.console, get_renderable=self.render, refresh_per_second=self.refresh_per_second
            )
            self._live.start()
            atexit.register(self._stop_live)  # a crash that skips end() must not leave the cursor hidden

    def seed_end(self, seed, summary):
        last = super().seed_end(seed, summary)
        if last:
            try:
                self._stop_live()  # draws the last frame, shows the cursor again
            finally:
                atexit.unregister(self._stop_live)
                line = end_line(self.states(), time.monotonic() - self.started)
                self.console.print(Text(line, style="bold"), highlight=False, soft_wrap=True)
        return last

    def _stop_live(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.stop()

    def render(self) -> RenderableType:
        """The panel for the data received so far (called by rich's refresh thread and by tests)."""
        states = self.states()
        if not states:
            return Text("neurograph: starting…", style="dim")
        info = states[0].info
        shown = max(1, self.console.height - FRAME_ROWS)
        parts: list[RenderableType] = [
            self._progress_line(states),
            Text.assemble(("seeds ", "dim"), counts_text(states), "   ", medians_text(states, units(info)[1])),
            Text(""),
            _seeds_table(states[:shown], units(info)[0]),
        ]
        if len(states) > shown:
            more = len(states) - shown
            parts.append(Text(f"… and {more} more seed{'s' if more > 1 else ''}", style="dim"))
        seeds = seed_list_text([s.seed for s in states])
        title = Text.assemble(
            ("neurograph ", "bold"), f"{info['scenario']} · {len(states)} seeds ({seeds}) · ",
            (batch_status(states), "bold"),
        )  # fmt: skip
        elapsed = format_duration(time.monotonic() - self.started)
        subtitle = f"{info['rule']} · {info['device']} · elapsed {elapsed}"
        return Panel(
            Group(*parts), title=title, title_align="left", subtitle=subtitle, subtitle_align="right", border_style="blue"
        )

    def _progress_line(self, states: list[SeedState]) -> Table:
        """``easy  cycle 1,000 / 3,000  [bar]  33%  ETA 0:02  1000 cycles/s`` for the batch as a whole."""
        cycle, total = batch_cycle(states)
        unit = units(states[0].info)[0]
        grid = Table.grid(padding=(0, 2), expand=True)
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True)
        grid.add_column(ratio=1)
        grid.add_column(no_wrap=True, justify="right")
        speed = "" if self.rate is None else f"  {rate_text(self.rate)} {unit}s/s"
        eta = ("ETA ", "dim"), format_duration(self.eta(states))
        if batch_status(states) != "running":
            eta = (batch_status(states),)
        grid.add_row(
            Text(batch_task(states), style="bold magenta"),
            Text.assemble((f"{unit} ", "dim"), (f"{cycle:,}", "bold"), f" / {total:,}"),
            ProgressBar(total=max(total, 1), completed=cycle),
            Text.assemble(f"{100 * cycle / max(total, 1):3.0f}%  ", *eta, speed),
        )  # fmt: skip
        return grid


def _seeds_table(states: list[SeedState], unit: str) -> Table:
    """One row per seed: cycle, task, loss and gap, hidden and reserve, adds and deletes, status."""
    table = Table(box=None, pad_edge=False, header_style="dim")
    for name in ("seed", unit, "task", "loss", "gap", "hidden", "reserve", "added", "deleted"):
        table.add_column(name, justify="left" if name == "task" else "right", no_wrap=True)
    table.add_column("status", no_wrap=True, overflow="ellipsis")
    for s in states:
        r = s.row
        status = Text(s.status, style=STATUS_STYLES.get(s.status, "dim"))
        progress = f"{s.cycle:,} / {s.total:,}"
        if r is None or "loss" not in r:
            table.add_row(str(s.seed), progress, s.info["phases"][0]["task"], *["…"] * 6, status)
            continue
        gap = "n/a" if r["gap"] is None else f"{r['gap']:+.4f}"
        table.add_row(
            str(s.seed), progress, r["task"], Text(f"{r['loss']:.4f}", style="cyan"), Text(gap, style="yellow"),
            Text(str(r["hidden"]), style="green"), str(r["reserve"]),
            Text(f"+{r['adds']}", style="green"), Text(f"-{r['deletes']}", style="red"), status,
        )  # fmt: skip
    return table
