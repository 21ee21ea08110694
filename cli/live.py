"""Live terminal view of a run: with :mod:`neurograph_cli.seeds_live` (a batch's) the only modules that import rich.

The view is a reporter built from the frozen data its hooks receive (the info
dict, metrics rows, event lists); it keeps copies and never sees the graph.
Rich's ``Live`` redraws it about four times a second from its own thread, so
the hooks and :meth:`LiveView.render` share a lock. On pipes and with
``--no-live`` the plain lines of :mod:`neurograph_cli.progress` are used instead.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections import deque
from statistics import fmean
from typing import Callable, Sequence

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from neurograph.graph import neuron_label
from neurograph.run.reporters import Reporter
from neurograph_cli import urn_view
from neurograph_cli.progress import (
    eta_seconds,
    format_duration,
    optimum_text,
    rate_text,
    smoothed_rate,
    summary_line,
    units,
)

__all__ = ["LiveView", "block_chart", "resample"]

REFRESH_PER_SECOND = 4
HISTORY_CAP = 2048  # chart points kept (even); a chart is ~200 columns at most, so thinning 2:1 loses nothing visible
EVENTS_SHOWN = 8
GUTTER = 9  # chart label column: "  1.2345 "
LOSS_ROWS, SIZE_ROWS = 4, 3  # chart heights, text rows (8 levels each)
LINEAGE_CHARS = 28  # longer lineages keep their newest end

_BLOCKS = " ▁▂▃▄▅▆▇█"  # 0..8 eighths of a cell
_BOUNDARY, _AXIS_TICK = "┊", "┴"


def resample(values: Sequence, width: int, reduce: Callable = fmean) -> list:
    """``values`` as exactly ``width`` columns: means of equal buckets, or stretched when fewer ([] if empty)."""
    n = len(values)
    if n <= width:
        return [values[j * n // width] for j in range(width)] if n else []
    return [reduce(values[j * n // width : (j + 1) * n // width]) for j in range(width)]


def block_chart(values: Sequence[float], height: int, lo: float, hi: float) -> list[str]:
    """Rows (top first) of a bar chart, one column per value, in eighth-cell steps; ``lo`` still shows."""
    span = (hi - lo) or 1.0
    top = height * 8
    levels = [min(top, max(1, 1 + round((v - lo) / span * (top - 1)))) for v in values]
    return ["".join(_BLOCKS[min(8, max(0, lv - r * 8))] for lv in levels) for r in range(height - 1, -1, -1)]


class _History:
    """Chart points ``(phase, loss, hidden)``; past ``cap`` every other one is dropped and the stride doubles."""

    def __init__(self, cap: int = HISTORY_CAP) -> None:
        self.cap = cap
        self.points: list[tuple[int, float, float]] = []
        self.stride = 1
        self._since = 0

    def add(self, point: tuple[int, float, float]) -> None:
        self._since += 1
        if self._since < self.stride:
            return
        self._since = 0
        self.points.append(point)
        if len(self.points) > self.cap:  # cap + 1 points, odd: [::2] keeps the newest
            self.points = self.points[::2]
            self.stride *= 2


class _Charts:
    """Loss and hidden-size charts over the run so far, phase boundaries marked, as wide as the panel."""

    ROWS = LOSS_ROWS + SIZE_ROWS + 1  # and the phase axis

    def __init__(self, points: list[tuple[int, float, float]], phases: list[dict], size_label: str = "hidden") -> None:
        self.points = points
        self.tasks = [p["task"] for p in phases]
        self.optima = [p["optimum"] for p in phases]
        self.size_label = size_label

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.points:
            return
        width = max(8, options.max_width - GUTTER)
        phases = resample([p[0] for p in self.points], width, reduce=lambda b: b[-1])
        losses = resample([p[1] for p in self.points], width)
        sizes = resample([p[2] for p in self.points], width)
        marks = [j for j in range(1, len(phases)) if phases[j] != phases[j - 1]]
        optima = [self.optima[i] for i in set(phases) if self.optima[i] is not None]
        floor = min([*losses, *optima])  # bars stand on the best optimum shown: their height is the gap
        yield from _chart("loss", losses, LOSS_ROWS, marks, "cyan", "{:.4f}", floor)
        yield from _chart(self.size_label, sizes, SIZE_ROWS, marks, "green", "{:.0f}")
        yield _axis(phases, marks, self.tasks)


def _chart(name: str, values: list[float], height: int, marks: list[int], style: str, fmt: str, lo=None):
    lo, hi = min(values) if lo is None else lo, max(values)
    labels = [fmt.format(hi), name] + [""] * (height - 3) + [fmt.format(lo)]
    for label, row in zip(labels, block_chart(values, height, lo, hi)):
        line = Text.assemble((f"{label:>{GUTTER - 1}} ", "dim"))
        cells = list(row)
        empty = [j for j in marks if cells[j] == " "]  # boundaries show where no bar covers them
        for j in empty:
            cells[j] = _BOUNDARY
        body = Text("".join(cells), style=style)
        for j in empty:
            body.stylize("dim", j, j + 1)
        yield line + body


def _axis(phases: list[int], marks: list[int], tasks: list[str]) -> Text:
    """``─ easy ───┴ hard ───┴ easy ─``: ticks at phase boundaries, each phase named if it fits."""
    cells = ["─"] * len(phases)
    for j in marks:
        cells[j] = _AXIS_TICK
    starts, ends = [0, *marks], [*marks, len(phases)]
    for s, e in zip(starts, ends):
        name = f" {tasks[phases[s]]} " if phases[s] < len(tasks) else ""
        if len(name) < e - s:
            cells[s + 1 : s + 1 + len(name)] = name
    return Text(" " * GUTTER + "".join(cells), style="dim")


class LiveView(Reporter):
    """Rich live panel: progress, loss and its optimum, size, charts and the latest structural events."""

    def __init__(self, console: Console | None = None, *, refresh_per_second: float = REFRESH_PER_SECOND) -> None:
        self.console = console or Console()
        self.refresh_per_second = refresh_per_second
        self._lock = threading.Lock()
        self._live: Live | None = None
        self._info: dict | None = None
        self._row: dict | None = None
        self._history = _History()
        self._events: deque[tuple] = deque(maxlen=EVENTS_SHOWN)
        self._rate: float | None = None
        self._started = time.monotonic()
        self._status = "running"

    @classmethod
    def for_stream(cls, stream) -> LiveView:
        """A view writing to ``stream``; colours follow the terminal and ``NO_COLOR``, never forced."""
        return cls(Console(file=stream))

    # ---------------------------------------------------------------- hooks
    def start(self, info):
        with self._lock:
            self._info = {**info, "phases": [dict(p) for p in info["phases"]]}
            self._started = time.monotonic()
            unit = units(info)[0]
            self._status = f"resumed at {unit} {info['start_cycle']:,}" if info.get("start_cycle") else "running"
        self._stop_live()
        self._live = Live(
            console=self.console,
            get_renderable=self.render,
            refresh_per_second=self.refresh_per_second,
            auto_refresh=True,
            transient=False,
        )
        self._live.start()
        atexit.register(self._stop_live)  # a crash that skips end() must not leave the cursor hidden

    def metrics(self, row):
        with self._lock:
            self._row = {**row, "layers": list(row["layers"])} if "layers" in row else dict(row)
            self._rate = smoothed_rate(self._rate, row["cycles_per_s"])
            size = row["active"] if urn_view.is_urn(self._info) else row["hidden"]  # what the size chart follows
            self._history.add((row["phase"], float(row["loss"]), float(size)))

    def events(self, events):
        with self._lock:
            for e in events:
                if e.kind in ("add", "delete"):
                    self._events.append((e.cycle, e.kind, neuron_label(e.neuron, "hidden"), e.age, e.lineage, e.reason))
                elif e.kind in ("add_area", "delete_area"):  # a layered network's layer came or went
                    self._events.append((e.cycle, e.kind, e.area, e.age, "", e.reason))

    def status(self, text):
        with self._lock:
            self._status = f"{text}…"

    def end(self, summary):
        with self._lock:
            self._status = summary["status"]
        try:
            self._stop_live()  # draws the last frame, shows the cursor again
        finally:
            atexit.unregister(self._stop_live)
            self.console.print(Text(summary_line(summary, self._info), style="bold"), highlight=False, soft_wrap=True)

    def _stop_live(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.stop()

    # ------------------------------------------------------------- rendering
    def render(self) -> RenderableType:
        """The panel for the data received so far (called by rich's refresh thread and by tests)."""
        with self._lock:
            info, row, rate, status = self._info, self._row, self._rate, self._status
            points, events = list(self._history.points), list(self._events)
            elapsed = time.monotonic() - self._started
        if info is None:
            return Text("neurograph: starting…", style="dim")
        parts: list[RenderableType] = [_progress_line(info, row, rate)]
        urn = urn_view.is_urn(info)
        if row is None:
            parts.append(Text("waiting for the first metrics row…", style="dim"))
        elif urn:
            parts += [_urn_accuracy_line(row), _urn_neurons_line(row), _urn_structure_line(row)]
            parts += [Text(""), _Charts(points, info["phases"], "active")]
        else:
            parts += [_loss_line(row, units(info)[1]), _size_line(row)]
            if "active" in row and "layers" in row:
                parts.append(_layers_line(row))
            if "widths" in row:
                parts.append(_areas_line(row))
            parts += [Text(""), _Charts(points, info["phases"])]
        used = 2 + sum(_Charts.ROWS if isinstance(p, _Charts) else 1 for p in parts)  # borders + one row each
        shown = min(EVENTS_SHOWN, self.console.height - used - 3)  # blank, title, header: short terminals list fewer
        if shown > 0:
            parts += [Text(""), _events_table(events[-shown:], units(info)[0])]
        title = Text.assemble(("neurograph ", "bold"), f"{info['scenario']} · seed {info['seed']} · ", (status, "bold"))
        subtitle = f"{info['rule']} · {info['device']} · elapsed {format_duration(elapsed)}"
        return Panel(
            Group(*parts), title=title, title_align="left", subtitle=subtitle, subtitle_align="right", border_style="blue"
        )


def _progress_line(info: dict, row: dict | None, rate: float | None) -> Table:
    total, phases = info["total_cycles"], info["phases"]
    cycle = row["cycle"] if row else info["start_cycle"]
    phase = row["phase"] if row else next((i for i, p in enumerate(phases) if cycle < p["end"]), len(phases) - 1)
    grid = Table.grid(padding=(0, 2), expand=True)
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column(ratio=1)
    grid.add_column(no_wrap=True, justify="right")
    eta = format_duration(eta_seconds(cycle, total, rate))
    unit = units(info)[0]
    speed = "" if rate is None else f"{row['cycles_per_s']:,.0f} {unit}s/s"
    if rate is not None and urn_view.is_urn(info):  # a URN epoch takes seconds: 0.25 epochs/s, not 0
        speed = f"{rate_text(row['cycles_per_s'])} {unit}s/s"
    grid.add_row(
        Text.assemble(("phase ", "dim"), f"{phase + 1}/{len(phases)} ", (phases[phase]["task"], "bold magenta")),
        Text.assemble((f"{unit} ", "dim"), (f"{cycle:,}", "bold"), f" / {total:,}"),
        ProgressBar(total=max(total, 1), completed=cycle),
        Text.assemble(f"{100 * cycle / max(total, 1):3.0f}%  ", ("ETA ", "dim"), eta, "  ", speed),
    )
    return grid


def _loss_line(row: dict, loss_unit: str) -> Text:
    gap = "" if row["gap"] is None else f"{row['gap']:+.4f}"
    return Text.assemble(
        ("loss ", "dim"), (f"{row['loss']:.4f}", "bold cyan"), (f" {loss_unit}", "dim"),
        ("   optimum ", "dim"), optimum_text(row["optimum"]),
        ("   gap ", "dim"), (gap or "n/a", "yellow"),
    )  # fmt: skip


def _size_line(row: dict) -> Text:
    return Text.assemble(
        ("hidden ", "dim"), (str(row["hidden"]), "bold green"),
        ("   reserve ", "dim"), str(row["reserve"]),
        ("   added ", "dim"), (f"+{row['adds']}", "green"),
        ("   deleted ", "dim"), (f"-{row['deletes']}", "red"),
    )  # fmt: skip


def _areas_line(row: dict) -> Text:
    """A layered network's areas with their widths, layer changes and accuracies."""
    areas = "  ".join(f"{a} {w}" for a, w in zip(row["areas"], row["widths"]))
    accuracy = [] if row.get("test_accuracy") is None else [
        ("   train ", "dim"), urn_view.percent(row.get("accuracy")),
        ("   test ", "dim"), (urn_view.percent(row.get("test_accuracy")), "bold"),
    ]  # fmt: skip
    return Text.assemble(
        ("depth ", "dim"), (str(row["depth"]), "bold green"), ("  (", "dim"), areas, (")", "dim"),
        ("   layers ", "dim"), (f"+{row['layer_adds']}", "green"), " ", (f"-{row['layer_deletes']}", "red"),
        *accuracy,
    )


def _urn_accuracy_line(row: dict) -> Text:
    return Text.assemble(
        ("loss ", "dim"), (f"{row['loss']:.4f}", "bold cyan"), (" nats/sample", "dim"),
        ("   train ", "dim"), urn_view.percent(row.get("accuracy")),
        ("   test ", "dim"), (urn_view.percent(row.get("test_accuracy")), "bold"),
    )  # fmt: skip


def _urn_neurons_line(row: dict) -> Text:
    per_iteration = " · ".join(str(n) for n in row.get("active_per_iteration") or [])
    return Text.assemble(
        ("active ", "dim"), (str(row["active"]), "bold green"), (f" of {row['hidden']} hidden", "dim"),
        ("   per iteration ", "dim"), per_iteration or "n/a",
        ("   deleted ", "dim"), (f"-{row['deletes']}", "red"),
    )  # fmt: skip


def _urn_structure_line(row: dict) -> Text:
    layers = " · ".join(str(n) for n in row["layers"])
    fraction = lambda key: "n/a" if row.get(key) is None else f"{row[key]:.2f}"  # noqa: E731
    return Text.assemble(
        ("layers ", "dim"), layers, ("   path depth ", "dim"), str(row.get("path_depth", "n/a")),
        ("   forward ", "dim"), fraction("forward_fraction"), (" by layer, ", "dim"),
        fraction("forward_fraction_z"), (" by z", "dim"),
    )  # fmt: skip


def _layers_line(row: dict) -> Text:
    layers = " · ".join(str(n) for n in row["layers"])
    return Text.assemble(("active ", "dim"), (str(row["active"]), "bold"), ("   layers ", "dim"), layers)


def _events_table(events: list[tuple], unit: str = "cycle") -> RenderableType:
    if not events:
        return Text("no structural events yet", style="dim")
    table = Table(box=None, pad_edge=False, header_style="dim", title="latest structural events", title_justify="left")
    for name, justify in ((unit, "right"), ("event", "left"), ("neuron / layer", "left"), ("age", "right")):
        table.add_column(name, justify=justify, no_wrap=True)
    table.add_column("lineage", no_wrap=True)
    table.add_column("reason", no_wrap=True, overflow="ellipsis")
    marks = {"add": ("+ add", "green"), "delete": ("- delete", "red"),
             "add_area": ("+ layer", "bold green"), "delete_area": ("- layer", "bold red")}  # fmt: skip
    for cycle, kind, name, age, lineage, reason in reversed(events):
        if len(lineage) > LINEAGE_CHARS:
            lineage = "…" + lineage[-(LINEAGE_CHARS - 1) :]
        table.add_row(f"{cycle:,}", Text(*marks[kind]), name, f"{age:,}", lineage, reason)
    return table
