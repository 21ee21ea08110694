"""Tests for neurograph.run.plots: a PNG is written, nothing is shown or printed."""

from __future__ import annotations

import math

import matplotlib
import matplotlib.figure
import pytest

from neurograph.run.plots import plot_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PHASES = [
    {"task": "easy", "start": 0, "end": 500, "optimum": 0.24},
    {"task": "hard", "start": 500, "end": 1000, "optimum": 0.22},
    {"task": "text", "start": 1000, "end": 1500, "optimum": None},
]


def rows(n: int = 30) -> list[dict]:
    return [
        {"cycle": 50 * (k + 1), "phase": min(k // 10, 2), "loss": 0.25 + 1.0 / (k + 1), "hidden": 1 + k // 3}
        for k in range(n)
    ]


@pytest.fixture
def no_show(monkeypatch):
    """Fail if anything asks matplotlib to show a window."""
    import matplotlib.pyplot as plt

    def refuse(*args, **kwargs):
        raise AssertionError("matplotlib was told to show")

    monkeypatch.setattr(plt, "show", refuse)
    monkeypatch.setattr(matplotlib.figure.Figure, "show", refuse)


def test_writes_png(tmp_path, no_show, capsys):
    path = tmp_path / "plot.png"
    plot_run(rows(), PHASES, path)
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    assert capsys.readouterr() == ("", "")  # the library never prints
    assert [p.name for p in tmp_path.iterdir()] == ["plot.png"]  # no temporary file left


def test_survives_a_diverged_loss_and_no_phases(tmp_path, no_show):
    bad = rows(5) + [{"cycle": 300, "phase": 0, "loss": math.inf, "hidden": 3}]
    plot_run(bad, [], tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes().startswith(PNG_MAGIC)


def test_needs_rows(tmp_path):
    with pytest.raises(ValueError, match="no metrics rows"):
        plot_run([], PHASES, tmp_path / "p.png")
