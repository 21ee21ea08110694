"""Plot of a layered run: loss, accuracy, each area's width, and the depth, against cycles.

Areas come and go (a depth rule adds layers on top and deletes sub-threshold
ones), so each area is drawn over the rows in which it lives, as a band of a
stacked area chart in evaluation order; the total is the hidden size. Drawn on
a bare matplotlib ``Figure`` with the Agg canvas, written atomically.
"""

from __future__ import annotations

import math
import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from neurograph.run.plots import mark_phases, save_figure

__all__ = ["plot_layered_run", "plot_difficulty", "widths_by_area"]


def widths_by_area(rows: list[dict]) -> dict[str, list[int]]:
    """Area -> its width at every row (0 where it does not live), areas in order of first appearance."""
    names: list[str] = []
    for r in rows:
        for a in r["areas"]:
            if a not in names:
                names.append(a)
    return {a: [dict(zip(r["areas"], r["widths"])).get(a, 0) for r in rows] for a in names}


def plot_layered_run(metrics_rows: list[dict], phases: list[dict], path: str | os.PathLike) -> None:
    """Write a figure of a layered run to ``path`` (PNG, PDF or SVG by its suffix), atomically.

    ``metrics_rows``: rows of ``metrics.jsonl`` (:mod:`neurograph.layered.trainer`);
    ``phases``: dicts with ``task``, ``start`` and ``end`` (:func:`neurograph.run.reader.run_phases`).
    """
    if not metrics_rows:
        raise ValueError("no metrics rows to plot")
    rows = metrics_rows
    cycles = [r["cycle"] for r in rows]
    fig = Figure(figsize=(10, 8), layout="constrained")
    FigureCanvasAgg(fig)
    loss_ax, width_ax, depth_ax = fig.subplots(3, 1, sharex=True, height_ratios=[1.2, 1.4, 0.7])
    unit = rows[-1].get("loss_unit", "nats/sample")
    losses = [r["loss"] for r in rows]
    loss_ax.plot(cycles, losses, color="tab:blue", label="training cross-entropy (smoothed)")
    if any(r.get("optimum") is not None for r in rows):
        loss_ax.plot(cycles, [r.get("optimum") or math.nan for r in rows], color="k", ls=":", label="optimum")
    loss_ax.set_ylabel(f"loss ({unit})")
    top = max((v for v in losses if v is not None and math.isfinite(v)), default=1.0)
    loss_ax.set_ylim(0, 1.15 * top or 1.0)
    if any(r.get("test_accuracy") is not None for r in rows):
        acc_ax = loss_ax.twinx()
        acc_ax.plot(cycles, [r.get("test_accuracy") for r in rows], color="tab:orange", label="test accuracy")
        acc_ax.set_ylim(0, 1.02)
        acc_ax.set_ylabel("test accuracy")
        acc_ax.legend(loc="center right", fontsize=7)
    widths = widths_by_area(rows)
    width_ax.stackplot(cycles, *widths.values(), labels=list(widths), step="post", alpha=0.85)
    width_ax.set_ylabel("neurons per area (stacked)")
    depth_ax.step(cycles, [r["depth"] for r in rows], where="post", color="tab:purple", label="depth (hidden areas)")
    depth_ax.set_ylabel("depth")
    depth_ax.set_ylim(0, max(r["depth"] for r in rows) + 1)
    depth_ax.set_xlabel("cycle")
    depth_ax.set_xlim(0, max(cycles[-1], phases[-1]["end"] if phases else 0))
    axes = (loss_ax, width_ax, depth_ax)
    mark_phases(axes, phases)
    for ax in axes:
        ax.grid(alpha=0.3)
        handles, _ = ax.get_legend_handles_labels()
        if handles:
            ax.legend(loc="upper right", fontsize=7, ncol=2 if len(handles) > 6 else 1)
    save_figure(fig, path)


def plot_difficulty(rows: list[dict], param: str, path: str | os.PathLike, *, solved_at: float = 0.999) -> None:
    """Final depth and hidden size against a task's difficulty, from a sweep's ``results.csv`` rows.

    ``param``: the swept column (e.g. ``phases.0.task.bits``). Each finished run is a
    dot (filled: ``test_accuracy >= solved_at``, hollow: not solved), jittered
    sideways; the line is the median over solved runs with its interquartile range.
    """
    import numpy as np

    done = [r for r in rows if r.get("status") == "finished"]
    if not done:
        raise ValueError("no finished runs to plot")
    levels = sorted({float(r[param]) for r in done})
    fig = Figure(figsize=(9, 4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    rng = np.random.default_rng(0)  # jitter only: the figure is the same every time
    for ax, metric in zip(axes, ("depth", "hidden")):
        medians, lows, highs = [], [], []
        for level in levels:
            runs = [r for r in done if float(r[param]) == level]
            solved = [float(r[metric]) for r in runs if float(r["test_accuracy"]) >= solved_at]
            failed = [float(r[metric]) for r in runs if float(r["test_accuracy"]) < solved_at]
            x = level + rng.uniform(-0.12, 0.12, len(runs))
            ax.scatter(x[: len(solved)], solved, color="tab:blue", s=18, zorder=3)
            ax.scatter(x[len(solved):], failed, facecolors="none", edgecolors="tab:red", s=18, zorder=3)
            q = np.percentile(solved, [25, 50, 75]) if solved else [np.nan] * 3
            lows.append(q[0]), medians.append(q[1]), highs.append(q[2])
        ax.plot(levels, medians, color="tab:blue", label="median of solved runs")
        ax.fill_between(levels, lows, highs, color="tab:blue", alpha=0.2, label="interquartile range")
        ax.scatter([], [], facecolors="none", edgecolors="tab:red", label="not solved")
        ax.set_xlabel(param.split(".")[-1])
        ax.set_ylabel("hidden areas (depth)" if metric == "depth" else "hidden neurons")
        ax.set_xticks(levels)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper left")
    save_figure(fig, path)
