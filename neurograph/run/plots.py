"""Plot of a run: smoothed loss and hidden size against cycles, phase by phase.

Drawn on a bare matplotlib ``Figure`` with the Agg canvas: no pyplot, no global
backend switch, no window, no system binaries.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from neurograph.atomic import atomic_open

__all__ = ["plot_run"]


def plot_run(metrics_rows: list[dict], phases: list[dict], path: str | os.PathLike) -> None:
    """Write a PNG of a run to ``path`` (atomically).

    ``metrics_rows``: rows of ``metrics.jsonl`` (``cycle``, ``loss`` in nats per
    character, already smoothed, ``hidden``). ``phases``: dicts with ``task``,
    ``start``, ``end`` (cycles) and ``optimum`` (nats per character or None), as
    :func:`neurograph.run.reader.run_phases` returns; the optimum is drawn dashed
    over its phase, and each phase start is a vertical line labelled with its task.
    """
    if not metrics_rows:
        raise ValueError("no metrics rows to plot")
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
    _save_png(fig, Path(path))


def _draw_phases(loss_ax, size_ax, phases: list[dict]) -> None:
    optimum_labelled = False
    for i, phase in enumerate(phases):
        if i:
            for ax in (loss_ax, size_ax):
                ax.axvline(phase["start"], color="grey", linewidth=0.8)
        loss_ax.annotate(
            phase["task"],
            xy=(phase["start"], 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(4, -4),
            textcoords="offset points",
            va="top",
            color="dimgrey",
        )
        if phase.get("optimum") is not None:
            label = None if optimum_labelled else "optimum"
            start, end = phase["start"], phase["end"]
            loss_ax.hlines(phase["optimum"], start, end, colors="black", linestyles="dashed", label=label)
            optimum_labelled = True


def _save_png(fig: Figure, path: Path) -> None:
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
