"""Tests for neurograph.run.plots: the file the name asks for is written, nothing is shown or printed."""

from __future__ import annotations

import math

import matplotlib
import matplotlib.figure
import pytest

import neurograph.run.plots as plots
from neurograph.graph import Neuron
from neurograph.run.plots import plot_lineage, plot_run, plot_seeds
from neurograph.studies.aggregate import aggregate_rows

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


@pytest.mark.parametrize("suffix, magic", [(".png", PNG_MAGIC), (".pdf", b"%PDF-"), (".SVG", b"<?xml")])
def test_the_suffix_picks_the_format(tmp_path, no_show, suffix, magic):
    path = tmp_path / f"plot{suffix}"
    plot_run(rows(), PHASES, path)
    assert path.read_bytes().startswith(magic)


@pytest.mark.parametrize("name", ["plot.jpg", "plot", "plot.png.txt"])
def test_an_unknown_suffix_is_refused_before_drawing(tmp_path, name):
    with pytest.raises(ValueError, match=r"is not one of \.png, \.pdf, \.svg"):
        plot_run(rows(), PHASES, tmp_path / name)
    assert not list(tmp_path.iterdir())


def lineage() -> list[tuple[Neuron, str]]:
    """h3 (easy) dies at 400, h5 inherits at 450 (hard) and lives on; h4 lives throughout."""
    return [
        (Neuron(0, "input", born=0), "i0"),
        (Neuron(3, "hidden", born=0, died=400), "h3"),
        (Neuron(4, "hidden", born=0), "h4"),
        (Neuron(5, "hidden", born=450, inherited_from=3, generation=1), "h3>h5"),
    ]


def test_lineage_draws_a_bar_per_hidden_neuron_and_a_link_per_heir(tmp_path, no_show, monkeypatch):
    drawn = []
    real = plots.LineCollection
    monkeypatch.setattr(plots, "LineCollection", lambda segments, **kw: drawn.append(segments) or real(segments, **kw))
    plot_lineage(lineage(), PHASES, 1500, tmp_path / "lineage.svg")
    bars, links = drawn
    assert bars == [[(0, 0), (400, 0)], [(450, 1), (1500, 1)], [(0, 2), (1500, 2)]]  # the heir right below h3
    assert links == [[(400, 0), (450, 1)]]
    assert (tmp_path / "lineage.svg").read_bytes().startswith(b"<?xml")


def test_seeds_band(tmp_path, no_show):
    aggregate = aggregate_rows({s: [dict(r, loss=r["loss"] + 0.01 * s) for r in rows()] for s in range(3)})
    plot_seeds(aggregate, PHASES, tmp_path / "seeds.pdf")
    assert (tmp_path / "seeds.pdf").read_bytes().startswith(b"%PDF-")
