"""A sweep's results: one CSV table and a figure per (metric, numeric swept parameter).

``results.csv`` columns: ``case`` (case id), each swept parameter's value
(its override path as the header; the base scenario's value where a case does
not set it), ``seed``, ``status`` (finished, failed, interrupted, pending),
``error`` (one line, empty unless failed) and the chosen metrics.

``figures/<metric>-vs-<param>.png``: the metric's median over seeds against
the parameter, with the interquartile range as error bars, only over finished
runs. One line per setting of the other swept parameters (up to
:data:`MAX_LINES`; beyond that, all runs at a value are pooled into one line).
Drawn on a bare matplotlib ``Figure`` with the Agg canvas, as
:mod:`neurograph.run.plots` does.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from neurograph.atomic import atomic_open
from neurograph.studies.sweep_file import override_text

__all__ = ["MAX_LINES", "write_table", "read_table", "write_figures", "numeric_params", "quartiles"]

MAX_LINES = 8  # more lines than this in one axes are unreadable: pool instead


# --------------------------------------------------------------------- table
def write_table(rows: list[dict], params: list[str], metrics: list[str], path: Path) -> Path:
    """Write ``rows`` (dicts with case, params, seed, status, error, metrics) as CSV, atomically."""
    columns = ["case", *params, "seed", "status", "error", *metrics]
    with atomic_open(path, "w") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
    return Path(path)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list, bool)):
        return override_text(value)  # as it would be written in the sweep file
    return str(value)  # floats: shortest text that reads back exactly


def read_table(path: Path) -> list[dict[str, str]]:
    """Rows of a ``results.csv`` as text (empty cells are '')."""
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


# -------------------------------------------------------------------- figures
def numeric_params(rows: list[dict], params: list[str]) -> list[str]:
    """Swept parameters whose values are all numbers (not booleans), with at least two distinct."""
    numeric = []
    for p in params:
        values = [row.get(p) for row in rows if row.get(p) is not None]  # may be lists or mappings: not hashable
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) and len(set(values)) > 1:
            numeric.append(p)
    return numeric


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """(q25, median, q75) as numpy's percentiles; NaN for no values."""
    if not values:
        return (float("nan"),) * 3
    q25, median, q75 = np.percentile(np.asarray(values, dtype=np.float64), [25, 50, 75])
    return float(q25), float(median), float(q75)


def write_figures(rows: list[dict], params: list[str], metrics: list[str], folder: Path) -> list[Path]:
    """One PNG per (metric, numeric swept parameter) over finished runs; the paths written."""
    done = [r for r in rows if r["status"] == "finished"]
    paths = []
    for metric in metrics:
        for param in numeric_params(done, params):
            points = [r for r in done if _finite(r.get(metric)) and r.get(param) is not None]
            if not points:
                continue
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{_file_name(metric)}-vs-{_file_name(param)}.png"
            _plot(points, metric, param, [p for p in params if p != param], path)
            paths.append(path)
    return paths


def _plot(rows: list[dict], metric: str, param: str, others: list[str], path: Path) -> None:
    lines = _lines(rows, metric, param, others)
    fig = Figure(figsize=(6, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for label, by_x in lines.items():
        xs = sorted(by_x)
        q = np.array([quartiles(by_x[x]) for x in xs])  # (n, 3): q25, median, q75
        yerr = np.vstack([q[:, 1] - q[:, 0], q[:, 2] - q[:, 1]])
        ax.errorbar(xs, q[:, 1], yerr=yerr, marker="o", capsize=3, label=label or None)
    xs = [r[param] for r in rows]
    if min(xs) > 0 and max(xs) / min(xs) >= 100:
        ax.set_xscale("log")  # e.g. an L1 strength swept over decades
    ax.set_xlabel(param)
    ax.set_ylabel(f"{metric} (median, IQR over seeds)")
    ax.set_title(f"{metric} vs {param}")
    ax.grid(alpha=0.3)
    if len(lines) > 1 or next(iter(lines)):
        ax.legend(fontsize="small")
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)


def _lines(rows: list[dict], metric: str, param: str, others: list[str]) -> dict[str, dict[Any, list[float]]]:
    """Label of each setting of the other parameters -> x -> the metric's values (all seeds)."""
    groups: dict[str, dict[Any, list[float]]] = {}
    for r in rows:
        label = ", ".join(f"{o.split('.')[-1]}={_cell(r.get(o))}" for o in others)
        groups.setdefault(label, {}).setdefault(r[param], []).append(float(r[metric]))
    if len(groups) <= MAX_LINES:
        return groups
    pooled: dict[Any, list[float]] = {}
    for by_x in groups.values():
        for x, values in by_x.items():
            pooled.setdefault(x, []).extend(values)
    return {"all other settings pooled": pooled}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _file_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)
