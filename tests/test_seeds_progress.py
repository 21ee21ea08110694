"""Tests for neurograph_cli.seeds_progress and neurograph_cli.seeds_live: what a ``--seeds`` batch shows."""

from __future__ import annotations

import io
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from rich.console import Console

from neurograph_cli.display import make_seeds_progress
from neurograph_cli.main import main
from neurograph_cli.seeds_live import SeedsLiveView
from neurograph_cli.seeds_progress import SeedsLines, seed_list_text

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
EASY = Path(__file__).resolve().parents[1] / "scenarios" / "outgoing-l1" / "easy.yaml"
TOTAL, RATE = 3000, 1000.0
# seed 3 was resumed at cycle 2000: it finishes when the others reach 1000; seed 2 is interrupted then
STARTS = {0: 0, 1: 0, 2: 0, 3: 2000}


def info(seed: int) -> dict:
    phases = [("easy", 1000, 0.6730), ("hard", 2000, 1.3863)]
    return {
        "scenario": "switchy", "seed": seed, "total_cycles": TOTAL, "start_cycle": STARTS[seed],
        "rule": "outgoing_l1", "device": "cpu", "unit": "cycle", "loss_unit": "nats/char", "size_label": "hidden",
        "phases": [{"task": t, "cycles": c, "end": sum(p[1] for p in phases[: i + 1]), "optimum": o}
                   for i, (t, c, o) in enumerate(phases)],
    }  # fmt: skip


def row(seed: int, cycle: int) -> dict:
    phase = 0 if cycle <= 1000 else 1
    optimum = info(seed)["phases"][phase]["optimum"]
    loss = optimum + 0.1 * (seed + 1)
    return {
        "cycle": cycle, "phase": phase, "task": ("easy", "hard")[phase], "loss": loss, "loss_window": loss,
        "optimum": optimum, "gap": loss - optimum, "hidden": 10 + seed, "reserve": seed, "adds": 20 + seed,
        "deletes": seed, "cycles_per_s": RATE,
    }  # fmt: skip


def summary(seed: int, status: str) -> dict:
    r = row(seed, STARTS[seed] + 1000)
    return {
        "scenario": "switchy", "seed": seed, "status": status, "cycles": r["cycle"], "total_cycles": TOTAL,
        "hidden": r["hidden"], "reserve": r["reserve"], "loss": r["loss"], "optimum": r["optimum"],
        "adds": r["adds"], "deletes": r["deletes"], "wall_s": 1.0, "cycles_per_s": RATE,
    }  # fmt: skip


def feed(view) -> dict:
    """Four members through ten report rounds as a batch reports them; seeds 3 and 2 end after the tenth."""
    reporters = {seed: view.reporter_for(SimpleNamespace(seed=seed)) for seed in STARTS}
    for seed, r in reporters.items():
        r.start(info(seed))
    for step in range(100, 1001, 100):
        for seed, r in reporters.items():
            r.metrics(row(seed, STARTS[seed] + step))
    reporters[3].end(summary(3, "finished"))
    reporters[2].end(summary(2, "interrupted"))
    return reporters


def term_console(height: int = 40) -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=120, height=height)


def rendered(view: SeedsLiveView) -> str:
    console = term_console(view.console.height)
    console.print(view.render())
    return ANSI.sub("", console.file.getvalue())


@pytest.fixture
def live():
    view = SeedsLiveView(term_console())
    reporters = feed(view)
    yield view
    for seed in (0, 1):  # the last end stops rich's refresh thread
        reporters[seed].end(summary(seed, "interrupted"))


def seed_row(text: str, seed: int) -> str:
    return next(line for line in text.splitlines() if re.match(rf"^\W*{seed} +[\d,]+ / 3,000", line.strip("│ ")))


def test_live_view_has_a_row_per_seed_with_its_status(live):
    text = rendered(live)
    for seed, cycle, status in ((0, "1,000", "running"), (1, "1,000", "running"),
                                (2, "1,000", "interrupted"), (3, "3,000", "finished")):  # fmt: skip
        line = seed_row(text, seed)
        r = row(seed, STARTS[seed] + 1000)
        for expected in (f"{cycle} / 3,000", r["task"], f"{r['loss']:.4f}", f"{r['gap']:+.4f}",
                         f"{r['hidden']}", f"+{r['adds']}", f"-{r['deletes']}", status):  # fmt: skip
            assert expected in line, (seed, expected, line)
    assert "switchy · 4 seeds (0-3) · running" in text


def test_live_view_shows_the_batch_progress_eta_and_medians(live):
    text = rendered(live)
    assert "cycle 1,000 / 3,000" in text and "33%" in text  # the batch waits for its furthest-behind member
    assert "ETA 0:02" in text and "1000 cycles/s" in text  # 2,000 cycles left at 1,000 cycles/s
    assert "seeds 2 running, 1 finished, 1 interrupted" in text
    assert "median loss 0.9230 nats/char (gap +0.2500)  median hidden 12" in text
    assert live.refresh_per_second == 4 and live._live.refresh_per_second == 4  # redrawn 4 times a second


def test_live_view_lists_what_fits_and_counts_the_rest():
    view = SeedsLiveView(term_console(height=10))
    reporters = feed(view)
    text = rendered(view)
    assert "… and 1 more seed " in text
    assert [seed_row(text, seed) for seed in (0, 1, 2)]
    with pytest.raises(StopIteration):
        seed_row(text, 3)
    for seed in (0, 1):
        reporters[seed].end(summary(seed, "finished"))


def test_live_view_stops_with_the_last_member_and_prints_the_batch_line():
    console = term_console()
    view = SeedsLiveView(console, refresh_per_second=20)
    reporters = feed(view)
    assert view._live is not None
    reporters[0].end(summary(0, "finished"))
    reporters[1].end(summary(1, "finished"))
    assert view._live is None
    out = console.file.getvalue()
    last = ANSI.sub("", out).splitlines()[-1]
    assert last.startswith("batch interrupted: 4 seeds (3 finished, 1 interrupted), median loss")
    assert "\x1b[?25h" in out  # cursor shown again
    frame = rendered(view)  # the last frame: where the batch stopped, not 100%
    assert "4 seeds (0-3) · interrupted" in frame and "cycle 1,000 / 3,000" in frame and "ETA 0:02" not in frame


def test_plain_lines_batch_progress_and_a_line_per_seed_end():
    stream = io.StringIO()
    view = SeedsLines(stream, every_rounds=5)
    reporters = feed(view)
    reporters[0].end(summary(0, "interrupted"))
    reporters[1].end(summary(1, "interrupted"))
    out = stream.getvalue()
    assert "\x1b" not in out
    lines = out.splitlines()
    assert lines[0] == "switchy: 4 seeds (0-3), outgoing_l1 on cpu, easy(1000) -> hard(2000), resuming at cycles 0-2000"
    batch = [line for line in lines if line.startswith("cycle")]
    assert len(batch) == 3  # the first round (a phase starts), the fifth, the tenth: not one per row
    assert batch[-1] == (
        "cycle    1000/3000 easy  seeds 4 running  median loss 0.9230 (gap +0.2500)  median hidden 12  "
        "1000 cycles/s ETA 0:02"
    )
    ends = lines[len(batch) + 1 :]
    assert [line.split(":")[0] for line in ends[:4]] == [
        "seed 3 finished", "seed 2 interrupted", "seed 0 interrupted", "seed 1 interrupted"
    ]  # fmt: skip
    assert ends[0].startswith("seed 3 finished: 3,000/3,000 cycles, 13 hidden (reserve 3), +23 -3, loss 1.7863")
    assert ends[-1].startswith("batch interrupted: 4 seeds (1 finished, 3 interrupted), median loss 0.9230 nats/char")


def test_plain_lines_of_a_batch_interrupted_before_its_first_row():
    stream = io.StringIO()
    view = SeedsLines(stream)
    reporters = [view.reporter_for(SimpleNamespace(seed=seed)) for seed in (0, 1)]
    for seed, r in enumerate(reporters):
        r.start(info(seed))
    for seed, r in enumerate(reporters):
        r.end({**summary(seed, "interrupted"), "cycles": 0})
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("switchy: 2 seeds (0,1), outgoing_l1") and "resuming" not in lines[0]
    assert [line.split(":")[0] for line in lines[1:]] == ["seed 0 interrupted", "seed 1 interrupted", "batch interrupted"]
    assert "interrupted: 0/3,000 cycles" in lines[1]


def test_make_seeds_progress_picks_plain_unless_live_on_a_terminal(monkeypatch):
    class FakeTTY(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setenv("TERM", "xterm-256color")
    assert type(make_seeds_progress(io.StringIO(), live=True)) is SeedsLines
    assert type(make_seeds_progress(FakeTTY(), live=False)) is SeedsLines
    assert type(make_seeds_progress(FakeTTY(), live=True)) is SeedsLiveView


def test_seed_list_text():
    assert seed_list_text([0, 1, 2, 3]) == "0-3" and seed_list_text([0, 3, 7]) == "0,3,7"
    assert seed_list_text([4, 5]) == "4,5"


@pytest.fixture
def keep_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_run_seeds_no_live_prints_every_seeds_final_line(tmp_path, capsys, keep_torch_threads):
    out = tmp_path / "seeds"
    argv = ["run", str(EASY), "--seeds", "0-2", "--cycles", "600", "--no-live", "--threads", "1", "--out", str(out)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "outgoing-l1-easy: 3 seeds (0-2), outgoing_l1 on cpu, easy(600)"
    assert any(line.startswith("cycle     600/600 easy  seeds 3 running  median loss") for line in lines)
    for seed in range(3):
        assert sum(line.startswith(f"seed {seed} finished: 600/600 cycles, ") for line in lines) == 1
    assert lines[-2].startswith("batch finished: 3 seeds (3 finished), median loss")
    assert lines[-1] == f"run folders: {out}/seed-*, aggregate: {out}/aggregate.json"
