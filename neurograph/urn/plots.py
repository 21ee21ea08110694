"""Plot of a URN run against epochs: loss, accuracy, active neurons and layers, synapse directions.

The char-RNN's plot (:mod:`neurograph.run.plots`) shows a loss against its
optimum and a hidden size; a URN has no optimum and shrinks from S neurons
to an emergent network, so its plot shows what ``show`` reports, row by row.
Drawn on a bare matplotlib ``Figure`` with the Agg canvas, written atomically.
"""

from __future__ import annotations

import math
import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from neurograph.run.plots import mark_phases, save_figure

__all__ = ["plot_urn_run"]


def plot_urn_run(metrics_rows: list[dict], phases: list[dict], path: str | os.PathLike) -> None:
    """Write a PNG of a URN run to ``path`` (atomically).

    ``metrics_rows``: rows of ``metrics.jsonl`` (``cycle`` = epoch, ``loss`` in
    nats per sample, ``accuracy``, ``test_accuracy``, ``hidden``, ``active``,
    ``layers``, ``forward_fraction`` and, from newer runs, ``forward_fraction_z``
    and ``adjacent_fraction``). ``phases``: dicts with ``task``, ``start`` and
    ``end`` in epochs (:func:`neurograph.run.reader.run_phases`).
    """
    if not metrics_rows:
        raise ValueError("no metrics rows to plot")
    epochs = [r["cycle"] for r in metrics_rows]
    fig = Figure(figsize=(10, 9), layout="constrained")
    FigureCanvasAgg(fig)
    loss_ax, acc_ax, size_ax, dir_ax = fig.subplots(4, 1, sharex=True, height_ratios=[1.2, 1, 1.2, 1])
    losses = [r["loss"] for r in metrics_rows]
    loss_ax.plot(epochs, losses, color="tab:blue", label="training cross-entropy")
    loss_ax.set_ylabel("loss (nats / sample)")
    top = max((v for v in losses if math.isfinite(v)), default=0.0)
    loss_ax.set_ylim(0, 1.15 * top or 1.0)  # headroom for the phase labels; a diverged run has inf
    _series(acc_ax, epochs, metrics_rows, (("accuracy", "train", "tab:blue"), ("test_accuracy", "test", "tab:orange")))
    acc_ax.set_ylabel("accuracy")
    acc_ax.set_ylim(0, 1.02)
    size_ax.plot(epochs, [r["hidden"] for r in metrics_rows], color="tab:gray", label="living hidden")
    size_ax.plot(epochs, [r["active"] for r in metrics_rows], color="tab:green", label="active hidden")
    for level in range(len(metrics_rows[-1].get("layers", []))):
        values = [r["layers"][level] if level < len(r.get("layers", [])) else 0 for r in metrics_rows]
        size_ax.plot(epochs, values, lw=0.8, ls="--", label=f"layer {level + 1}")
    size_ax.set_ylabel("neurons")
    size_ax.set_yscale("symlog", linthresh=10)
    size_ax.set_ylim(bottom=0)
    directions = (
        ("forward_fraction", "forward by layer", "tab:red"),
        ("forward_fraction_z", "forward by z", "tab:purple"),
        ("adjacent_fraction", "adjacent layers", "tab:brown"),
    )
    _series(dir_ax, epochs, metrics_rows, directions)
    dir_ax.set_ylabel("fraction of active synapses")
    dir_ax.set_ylim(0, 1.02)
    dir_ax.set_xlabel("epoch")
    dir_ax.set_xlim(0, max(epochs[-1], phases[-1]["end"] if phases else 0))
    axes = (loss_ax, acc_ax, size_ax, dir_ax)
    mark_phases(axes, phases)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=7)
    save_figure(fig, path)  # PNG, PDF or SVG by the suffix


def _series(ax, epochs: list[int], rows: list[dict], series) -> None:
    """One line per (key, label, colour) that the rows have; rows without the key are gaps."""
    for key, label, colour in series:
        if any(r.get(key) is not None for r in rows):
            values = [r.get(key) if r.get(key) is not None else float("nan") for r in rows]
            ax.plot(epochs, values, color=colour, label=label)
