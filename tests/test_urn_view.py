"""Tests for neurograph_cli.urn_view and the URN paths of the displays, ``show`` and ``plot``."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from neurograph.graph import Event
from neurograph_cli.live import LiveView
from neurograph_cli.main import main
from neurograph_cli.progress import Progress

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
CHARRNN_WORDS = ("reserve", "optimum", "nats/char", "+0", "cycle ")


@pytest.fixture
def info():
    return {
        "scenario": "urn-tiny", "seed": 2, "total_cycles": 20, "start_cycle": 0, "rule": "urn plain + deletion",
        "device": "cpu", "model": "urn", "unit": "epoch", "loss_unit": "nats/sample", "size_label": "active",
        "size": 500, "phases": [{"task": "spheres", "cycles": 20, "end": 20, "optimum": None}],
    }  # fmt: skip


def urn_rows(upto: int = 20):
    for epoch in range(1, upto + 1):
        yield {
            "cycle": epoch, "phase": 0, "task": "spheres", "loss": 0.7 / epoch, "loss_total": 0.8 / epoch,
            "optimum": None, "gap": None, "hidden": 488 - 10 * epoch, "reserve": 0, "adds": 0, "deletes": 10 * epoch,
            "cycles_per_s": 0.25, "epoch_s": 4.0, "neurons": 500 - 10 * epoch, "accuracy": 0.987,
            "test_accuracy": 0.991,
            "active": 91, "active_total": 103, "layers": [84, 4, 3, 0], "active_per_iteration": [84, 5, 3, 0],
            "multi_iteration": 1, "depth": 3, "path_depth": 3, "forward_fraction": 0.954, "forward_fraction_z": 0.812,
        }  # fmt: skip


SUMMARY = {
    "scenario": "urn-tiny", "seed": 2, "model": "urn", "status": "finished", "cycles": 20, "total_cycles": 20,
    "hidden": 288, "reserve": 0, "loss": 0.035, "optimum": None, "adds": 0, "deletes": 200, "wall_s": 80.0,
    "cycles_per_s": 0.25, "accuracy": 0.987, "test_accuracy": 0.991, "active": 91, "layers": [84, 4, 3, 0],
    "path_depth": 3,
}  # fmt: skip


def test_progress_lines_speak_of_epochs_accuracy_and_structure(info):
    stream = io.StringIO()
    progress = Progress(stream, every_rows=5)
    progress.start(info)
    for row in urn_rows():
        progress.metrics(row)
    progress.status("writing the graph, connectome and figures")
    progress.end(SUMMARY)
    lines = stream.getvalue().splitlines()
    assert lines[1] == "phase 1/1: spheres until epoch 20"
    row = lines[-3]
    for expected in ("epoch    20/20", "nats/sample", "train 98.7%", "test 99.1%", "active 91/288",
                     "per iteration 84/5/3/0", "layers 84/4/3/0", "deleted 200", "forward 0.95 (z 0.81)",
                     "0.25 epochs/s"):  # fmt: skip
        assert expected in row, expected
    assert lines[-2] == "writing the graph, connectome and figures..."
    assert lines[-1].startswith("finished: 20/20 epochs, test 99.1% (train 98.7%), active 91/288 hidden")
    text = "\n".join(lines)
    assert not any(word in text for word in CHARRNN_WORDS), text


def render(view: LiveView) -> str:
    console = Console(file=io.StringIO(), force_terminal=True, width=110, height=40)
    console.print(view.render())
    return ANSI.sub("", console.file.getvalue())


def test_live_view_shows_the_urn_in_its_own_terms(info):
    view = LiveView(Console(file=io.StringIO(), force_terminal=True, width=110, height=40))
    view.start(info)
    for row in urn_rows():
        view.metrics(row)
    view.events([Event(cycle=20, kind="delete", neuron=17, reason="inactive 5 epochs", age=20, lineage="h17")])
    view.status("writing the graph, connectome and figures")
    text = render(view)
    for expected in ("epoch 20 / 20", "0.25 epochs/s", "nats/sample", "train 98.7%", "test 99.1%",
                     "active 91 of 288 hidden", "per iteration 84 · 5 · 3 · 0", "deleted -200",
                     "layers 84 · 4 · 3 · 0", "path depth 3", "forward 0.95 by layer, 0.81 by z",
                     "writing the graph, connectome and figures…", "inactive 5 epochs"):  # fmt: skip
        assert expected in text, expected
    assert "│   active " in text  # the size chart follows the active count
    assert "epoch" in next(line for line in text.splitlines() if "event" in line and "neuron" in line)
    assert not any(word in text for word in CHARRNN_WORDS), text
    view.end(SUMMARY)


URN_SCENARIO = {
    "model": "urn",
    "name": "tiny-view",
    "network": {"size": 40, "iterations": 3},
    "loss": {"c_w": 1e-4, "c_n": 1e-3, "activity_reduction": "mean"},
    "optimizer": {"kind": "adam", "lr": 0.01},
    "training": {"batch_size": 40},
    "deletion": {"enabled": True, "patience": 1},
    "phases": [{"task": {"kind": "spheres", "dim": 4, "train": 120, "test": 40, "radii": [1, 2]}, "epochs": 3}],
}


@pytest.fixture(scope="module")
def urn_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("urn")
    scenario = folder / "tiny.yaml"
    scenario.write_text(yaml.safe_dump(URN_SCENARIO))
    assert main(["run", str(scenario), "--out", str(folder / "run"), "--no-live", "--threads", "1"]) == 0
    return folder / "run"


def test_show_prints_the_strict_analysis(urn_run, capsys):
    assert main(["show", str(urn_run)]) == 0
    out = capsys.readouterr().out
    summary = json.loads((urn_run / "summary.json").read_text())
    for expected in ("epochs:         3 / 3", "accuracy:       test", "nats/sample", "per iteration:",
                     "layers:", "path depth", "by layer:", "by z:", "locality:", "random pairs",
                     "active neurons", "active network", "forward only", "adjacent layers",
                     "connectome.graphml", f"{summary['deletes']} deleted"):  # fmt: skip
        assert expected in out, expected
    assert "reserve" not in out and "nats/char" not in out and "optimum" not in out


def test_show_an_unfinished_run_from_its_metrics(urn_run, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(urn_run, copy)
    (copy / "summary.json").unlink()
    assert main(["show", str(copy)]) == 0
    out = capsys.readouterr().out
    assert "incomplete" in out and "resumable from epoch 3" in out
    last = json.loads((copy / "metrics.jsonl").read_text().splitlines()[-1])
    assert f"per iteration:  {'/'.join(map(str, last['active_per_iteration']))}" in out


def test_plot_draws_the_urn_run(urn_run, tmp_path, capsys):
    out = tmp_path / "plot.png"
    assert main(["plot", str(urn_run), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
