"""Figures of a run: loss and size, the neurons' lifetimes, and a seeds folder.

- :func:`plot_run`: smoothed loss and hidden size against cycles, phase by phase;
- :func:`plot_lineage`: each hidden neuron a bar from birth to death, inheritance
  as links from a parent's death to its heir's birth, coloured by the phase
  the neuron was born in;
- :func:`plot_seeds`: the median and inter-quartile band over the seeds of a
  ``run --seeds`` folder.

Drawn on a bare matplotlib ``Figure`` with the Agg canvas: no pyplot, no global
backend switch, no window, no system binaries. :func:`save_figure` writes the
format the file name asks for (``.png``, ``.pdf``, ``.svg``), atomically.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from neurograph.atomic import atomic_open
from neurograph.graph import Neuron

__all__ = ["FIGURE_FORMATS", "figure_format", "save_figure", "mark_phases", "plot_run", "plot_lineage", "plot_seeds"]

FIGURE_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}  # file suffix -> matplotlib format


def figure_format(path: str | os.PathLike) -> str:
    """The format ``path``'s suffix names; ValueError naming the accepted ones otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in FIGURE_FORMATS:
        accepted = ", ".join(FIGURE_FORMATS)
        raise ValueError(f"{os.fspath(path)}: figure format {suffix or '(no suffix)'!r} is not one of {accepted}")
    return FIGURE_FORMATS[suffix]


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 100) -> None:
    """Write ``fig`` to ``path`` in the format of its suffix (:func:`figure_format`), atomically."""
    fmt = figure_format(path)
    with atomic_open(Path(path), "wb") as f:
        fig.savefig(f, format=fmt, dpi=dpi)


def plot_run(metrics_rows: list[dict], phases: list[dict], path: str | os.PathLike) -> None:
    """Write the figure of a run to ``path`` (PNG, PDF or SVG by its suffix; atomically).

    ``metrics_rows``: rows of ``metrics.jsonl`` (``cycle``, ``loss`` in nats per
    character, already smoothed, ``hidden``). ``phases``: dicts with ``task``,
    ``start``, ``end`` (cycles) and ``optimum`` (nats per character or None), as
    :func:`neurograph.run.reader.run_phases` returns; the optimum is drawn dashed
    over its phase, and each phase start is a vertical line labelled with its task.
    """
    if not metrics_rows:
        raise ValueError("no metrics rows to plot")
    figure_format(path)  # before the drawing: a wrong suffix fails at once
    cycles = [r["cycle"] for r in metrics_rows]
    fig = Figure(figsize=(10, 6), layout="constrained")
    FigureCanvasAgg(fig)
    loss_ax, size_ax = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    losses = [r["loss"] for r in metrics_rows]
    loss_ax.plot(cycles, losses, color="tab:blue", label="loss (smoothed)")
    size_ax.step(cycles, [r["hidden"] for r in metrics_rows], where="post", color="tab:green", label="hidden")
    _draw_phases(loss_ax, size_ax, phases)
    loss_ax.set_ylabel("loss (nats / char)")
    top = max((v for v in losses if math.isfinite(v)), default=0.0)
    loss_ax.set_ylim(0, 1.15 * top or 1.0)  # headroom for the phase labels; a diverged run has inf
    loss_ax.legend(loc="upper right")
    size_ax.set_ylabel("hidden neurons")
    size_ax.set_xlabel("cycle")
    size_ax.set_ylim(bottom=0)
    size_ax.set_xlim(0, max(cycles[-1], phases[-1]["end"] if phases else 0))
    for ax in (loss_ax, size_ax):
        ax.grid(alpha=0.3)
    save_figure(fig, path)


def mark_phases(axes: list, phases: list[dict]) -> None:
    """A grey line at each phase's start on every axis, the phase's task named at the top of the first."""
    for i, phase in enumerate(phases):
        if i:
            for ax in axes:
                ax.axvline(phase["start"], color="grey", linewidth=0.8)
        axes[0].annotate(
            phase["task"],
            xy=(phase["start"], 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(4, -4),
            textcoords="offset points",
            va="top",
            color="dimgrey",
        )


def _draw_phases(loss_ax, size_ax, phases: list[dict]) -> None:
    mark_phases([loss_ax, size_ax], phases)
    optimum_labelled = False
    for phase in phases:
        if phase.get("optimum") is not None:
            label = None if optimum_labelled else "optimum"
            start, end = phase["start"], phase["end"]
            loss_ax.hlines(phase["optimum"], start, end, colors="black", linestyles="dashed", label=label)
            optimum_labelled = True


def plot_lineage(
    neurons: list[tuple[Neuron, str]], phases: list[dict], end: int, path: str | os.PathLike, *, unit: str = "cycle"
) -> None:
    """Lifetimes of the hidden neurons of ``neurons`` (:func:`neurograph.run.lifetime.timeline`), to ``path``.

    One horizontal bar per hidden neuron from its birth to its death (to
    ``end``, the run's last cycle, while alive), heirs right below their
    ancestors; a grey link joins a parent's death to its heir's birth. A bar's
    colour is the phase (``phases``: :func:`neurograph.run.reader.run_phases`)
    it was born in. ``unit``: what time counts (cycle, epoch).
    """
    figure_format(path)
    hidden = {n.id: (n, lineage) for n, lineage in neurons if n.role == "hidden"}
    order = sorted(hidden, key=lambda i: _lineage_key(hidden[i][1], hidden))
    row = {i: k for k, i in enumerate(order)}
    fig = Figure(figsize=(10, min(4 + 0.02 * len(order), 14)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    starts = [phase["start"] for phase in phases]
    phase_of = [max(0, int(np.searchsorted(starts, hidden[i][0].born, side="right")) - 1) for i in order]
    colours = [_PHASE_COLOURS[k % len(_PHASE_COLOURS)] for k in phase_of]
    bars = [[(n.born, row[i]), (end if n.died is None else n.died, row[i])] for i in order for n in [hidden[i][0]]]
    width = max(0.5, min(6.0, 300 / max(len(order), 1)))
    ax.add_collection(LineCollection(bars, colors=colours, linewidths=width))
    links = [
        [(hidden[n.inherited_from][0].died, row[n.inherited_from]), (n.born, row[i])]
        for i in order for n in [hidden[i][0]] if n.inherited_from in hidden
    ]  # fmt: skip
    ax.add_collection(LineCollection(links, colors="grey", linewidths=0.6, alpha=0.8))
    for k, phase in enumerate(phases):
        if k:
            ax.axvline(phase["start"], color="grey", linewidth=0.8)
        ax.plot([], [], color=_PHASE_COLOURS[k % len(_PHASE_COLOURS)], lw=4, label=f"born in phase {k + 1}: {phase['task']}")
    if links:
        ax.plot([], [], color="grey", lw=0.8, label="inherited (parent's death to heir's birth)")
    alive = sum(1 for i in order if hidden[i][0].died is None)
    ax.set_title(f"{len(order):,} hidden neurons, {alive:,} alive at {unit} {end:,}; heirs below their ancestors")
    ax.set_xlim(0, max(end, 1))
    ax.set_ylim(len(order), -1)
    ax.set_xlabel(unit)
    ax.set_ylabel("hidden neuron (by lineage, then birth)")
    ax.set_yticks([])
    if phases or links:
        ax.legend(loc="lower left", fontsize=7)
    ax.grid(axis="x", alpha=0.3)
    save_figure(fig, path)


_PHASE_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive")


def _lineage_key(lineage: str, hidden: dict) -> tuple:
    """Sort key: each ancestor's birth and id, oldest first, so an heir sorts right after its parent's line."""
    key = []
    for label in lineage.split(">"):
        i = int(label[1:])
        key.append((hidden[i][0].born if i in hidden else -1, i))
    return tuple(key)


def plot_seeds(aggregate: dict, phases: list[dict], path: str | os.PathLike, *, loss_unit: str = "nats/char") -> None:
    """Median and inter-quartile band over seeds of the loss and hidden size, to ``path``.

    ``aggregate``: :func:`neurograph.studies.aggregate.aggregate_rows` of the
    seeds' metrics rows (``seeds``, ``cycles``, and ``median``, ``q25``, ``q75``
    per field); ``phases`` as for :func:`plot_run`; ``loss_unit`` as the rows give it.
    """
    figure_format(path)
    cycles = aggregate["cycles"]
    if not cycles:
        raise ValueError("no cycle that every seed reported yet")
    fig = Figure(figsize=(10, 6), layout="constrained")
    FigureCanvasAgg(fig)
    loss_ax, size_ax = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    n = len(aggregate["seeds"])
    for ax, field, colour, label in (
        (loss_ax, "loss", "tab:blue", "loss (smoothed)"),
        (size_ax, "hidden", "tab:green", "hidden"),
    ):
        stats = aggregate[field]
        ax.fill_between(cycles, stats["q25"], stats["q75"], color=colour, alpha=0.25, lw=0, label="25th-75th percentile")
        ax.plot(cycles, stats["median"], color=colour, label=f"median of {n} seeds: {label}")
        ax.grid(alpha=0.3)
    _draw_phases(loss_ax, size_ax, phases)
    for ax in (loss_ax, size_ax):
        ax.legend(loc="upper right", fontsize=8)
    top = max((v for v in aggregate["loss"]["q75"] if math.isfinite(v)), default=0.0)
    loss_ax.set_ylim(0, 1.15 * top or 1.0)
    loss_ax.set_ylabel(f"loss ({loss_unit.replace('/', ' / ')})")
    size_ax.set_ylabel("hidden neurons")
    size_ax.set_ylim(bottom=0)
    size_ax.set_xlabel("cycle")
    size_ax.set_xlim(0, max(cycles[-1], phases[-1]["end"] if phases else 0))
    save_figure(fig, path)
