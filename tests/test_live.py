"""Tests for neurograph_cli.live and neurograph_cli.progress: what each display shows, and which one is picked."""

from __future__ import annotations

import io
import math
import re

import pytest
from rich.console import Console

from neurograph.graph import Event
from neurograph_cli.live import LiveView, _History, block_chart, resample
from neurograph_cli.display import make_progress
from neurograph_cli.progress import Progress, format_duration

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
COLOR_SGR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])(?:;[0-9;]*)?m")
TOTAL = 3000


@pytest.fixture
def info():
    phases = [("easy", 1000, 0.6730), ("hard", 1000, 1.3863), ("easy", 1000, 0.6730)]
    return {
        "scenario": "switchy", "seed": 7, "total_cycles": TOTAL, "start_cycle": 0, "rule": "outgoing_l1",
        "device": "cpu",
        "phases": [{"task": t, "cycles": c, "end": 1000 * (i + 1), "optimum": o} for i, (t, c, o) in enumerate(phases)],
    }  # fmt: skip


def rows(info, upto=2500, extra=None):
    """Synthetic metrics rows every 100 cycles; loss decays within each phase, size grows."""
    for cycle in range(100, upto + 1, 100):
        phase = (cycle - 1) // 1000
        opt = info["phases"][phase]["optimum"]
        loss = opt + math.exp(-(cycle % 1000) / 300)
        yield {
            "cycle": cycle, "phase": phase, "task": info["phases"][phase]["task"], "loss": loss,
            "loss_window": loss, "optimum": opt, "gap": loss - opt, "hidden": 10 + cycle // 100, "reserve": 4,
            "adds": cycle // 100, "deletes": 3, "cycles_per_s": 1234.0, **(extra or {}),
        }  # fmt: skip


EVENTS = [
    Event(cycle=1700, kind="add", neuron=17, reason="p_add", age=0, lineage="h3>h9>h17"),
    Event(cycle=1800, kind="delete", neuron=5, reason="below T_D", age=1799, lineage="h5"),
    Event(cycle=1800, kind="connect", neuron=6, other=7),  # not structural-size: not shown
]

SUMMARY = {
    "scenario": "switchy", "seed": 7, "status": "finished", "cycles": 2500, "total_cycles": TOTAL, "hidden": 35,
    "reserve": 4, "loss": 0.8123, "optimum": 0.6730, "adds": 25, "deletes": 3, "wall_s": 2.0, "cycles_per_s": 1250.0,
}  # fmt: skip


def feed(reporter, info, **kw):
    reporter.start(info)
    for row in rows(info, **kw):
        reporter.metrics(row)
    reporter.events(EVENTS)


def plain(console: Console) -> str:
    return ANSI.sub("", console.file.getvalue())


def term_console(**kw) -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=100, height=40, **kw)


def test_live_view_shows_progress_loss_size_events_and_phases(info):
    view = LiveView(term_console())
    feed(view, info)
    last = list(rows(info))[-1]
    console = term_console()
    console.print(view.render())
    text = plain(console)
    for expected in ("switchy", "seed 7", "phase 3/3", "2,500 / 3,000", "1,234 cycles/s", f"{last['loss']:.4f}",
                     "optimum 0.6730", f"gap {last['gap']:+.4f}", "hidden 35", "reserve 4", "+25", "-3", "h17",
                     "h3>h9>h17", "h5", "1,799", "+ add", "- delete"):  # fmt: skip
        assert expected in text, expected
    assert "h6" not in text  # connect events are not listed
    axis = next(line for line in text.splitlines() if "─ easy" in line)
    assert axis.count("┴") == 2 and "hard" in axis  # both phase boundaries marked, phases named
    assert "┊" in text
    assert "active" not in text  # URN section only when rows carry it
    view.end(SUMMARY)


def test_live_view_start_end_stops_live_and_prints_summary(info):
    console = term_console()
    view = LiveView(console, refresh_per_second=20)
    feed(view, info)
    view.end(SUMMARY)
    assert view._live is None
    out = console.file.getvalue()
    text = plain(console)
    assert "finished: 2,500/3,000 cycles, 35 hidden" in text.splitlines()[-1]
    assert "\x1b[?25h" in out  # cursor shown again
    assert "h17" in text and "┴" in text  # the last frame stays on screen


def test_live_view_end_after_interrupt_before_any_row(info):
    console = term_console()
    view = LiveView(console)
    view.start(info)
    view.end({**SUMMARY, "status": "interrupted", "cycles": 0})
    text = plain(console)
    assert "waiting for the first metrics row" in text
    assert "interrupted: 0/3,000" in text


def test_live_view_urn_section(info):
    view = LiveView(term_console())
    feed(view, info, extra={"active": 21, "layers": [3, 5, 12]})
    console = term_console()
    console.print(view.render())
    text = plain(console)
    assert "active 21" in text and "3 · 5 · 12" in text
    view.end(SUMMARY)


def test_live_view_keeps_copies_not_caller_objects(info):
    view = LiveView(term_console())
    view.start(info)
    row = next(rows(info, extra={"active": 1, "layers": [2, 2]}))
    view.metrics(row)
    row["hidden"], row["layers"][0] = 999, 888
    info["phases"][0]["task"] = "mutated"
    console = term_console()
    console.print(view.render())
    text = plain(console)
    assert "999" not in text and "888" not in text and "mutated" not in text
    view.end(SUMMARY)


def test_live_view_respects_no_color(info, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    view = LiveView(term_console())
    feed(view, info)
    console = term_console()
    console.print(view.render())
    view.end(SUMMARY)
    out = console.file.getvalue()
    assert "\x1b[" in out  # still a terminal (bold, dim) ...
    assert not COLOR_SGR.search(out)  # ... but no colours
    colored = term_console(color_system="standard", no_color=False)
    colored.print(view.render())
    assert COLOR_SGR.search(colored.file.getvalue())  # the check can fail


def test_progress_plain_lines(info):
    stream = io.StringIO()
    progress = Progress(stream, every_rows=10)
    feed(progress, info)
    progress.end(SUMMARY)
    out = stream.getvalue()
    assert not ANSI.search(out) and "\x1b" not in out
    lines = out.splitlines()
    assert lines[0].startswith("switchy seed 7: outgoing_l1 on cpu, easy(1000) -> hard(1000) -> easy(1000)")
    assert [line.split(":")[0] for line in lines if line.startswith("phase")] == ["phase 1/3", "phase 2/3", "phase 3/3"]
    assert any(line.startswith("cycle    1000/3000 easy  loss") and "optimum 0.6730" in line for line in lines)
    assert any("hidden  30 reserve 4 +20 -3" in line and "1234 cycles/s" in line for line in lines)
    assert lines[-1].startswith("finished: 2,500/3,000 cycles, 35 hidden")
    assert len(lines) < 25  # periodic, not one line per row


def test_progress_shows_urn_layers_and_missing_optimum(info):
    stream = io.StringIO()
    progress = Progress(stream, every_rows=1)
    progress.start(info)
    row = next(rows(info, extra={"active": 9, "layers": [4, 5]}))
    progress.metrics({**row, "optimum": None, "gap": None})
    out = stream.getvalue()
    assert "active 9 layers 4/5" in out and "optimum n/a" in out


def test_make_progress_picks_plain_for_non_tty():
    assert type(make_progress(io.StringIO(), live=True)) is Progress
    assert type(make_progress(io.StringIO(), live=False)) is Progress


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_make_progress_picks_live_for_tty(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    assert isinstance(make_progress(FakeTTY(), live=True), LiveView)
    assert type(make_progress(FakeTTY(), live=False)) is Progress
    monkeypatch.setenv("TERM", "dumb")
    assert type(make_progress(FakeTTY(), live=True)) is Progress


def test_resample_and_block_chart():
    assert resample([1.0, 3.0, 5.0, 7.0], 2) == [2.0, 6.0]
    assert resample([1, 2], 4) == [1, 1, 2, 2]
    assert resample([], 5) == []
    assert block_chart([0.0, 0.5, 1.0], 2, 0.0, 1.0) == [" ▁█", "▁██"]


def test_history_thins_but_keeps_newest_and_order():
    history = _History(cap=8)
    for i in range(100):
        history.add((0, float(i), 0.0))
    values = [p[1] for p in history.points]
    assert len(values) <= 9 and values == sorted(values) and history.stride > 1
    steps = {b - a for a, b in zip(values, values[1:])}
    assert steps == {float(history.stride)}  # evenly spaced after thinning


def test_format_duration():
    assert format_duration(None) == "--:--"
    assert format_duration(83) == "1:23"
    assert format_duration(3723) == "1:02:03"
