"""Report of a study (see :mod:`neurograph.studies.extensions`): a markdown table and a figure.

``report.md``: one row per scenario, the number of seeds, and each measure as
``median [q25, q75]`` over seeds. ``report.png``: one panel per measure, one
box per scenario (box: inter-quartile range, line: median, whiskers: range,
dots: single runs).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neurograph.studies.extensions import MEASURES, RECOVERY_TOL, RUN_KEYS, aggregate  # noqa: E402

__all__ = ["write_report", "report_table"]


def write_report(records: Sequence[dict], out_dir: str | Path) -> Path:
    """Write ``out_dir/report.md`` and ``out_dir/report.png``; returns the markdown's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = _measure_names(records)
    md = out_dir / "report.md"
    md.write_text(_markdown(records, names), encoding="utf-8")
    _figure(records, names, out_dir / "report.png")
    return md


def report_table(records: Sequence[dict], names: Sequence[str]) -> str:
    """Markdown table: scenario, seeds, then ``median [q25, q75]`` per measure."""
    stats = aggregate(records)
    lines = [
        "| scenario | seeds | " + " | ".join(names) + " |",
        "|---|---:|" + "---:|" * len(names),
    ]
    for scenario, s in stats.items():
        cells = [_cell(s.get(n)) for n in names]
        lines.append(f"| {scenario} | {s['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _measure_names(records: Sequence[dict]) -> list[str]:
    """The study's measures present in the records, in :data:`MEASURES` order, then any others."""
    present = dict.fromkeys(k for r in records for k in r if k not in RUN_KEYS)
    return [n for n in MEASURES if n in present] + [n for n in present if n not in MEASURES]


def _cell(stat: dict | None) -> str:
    if stat is None or math.isnan(stat["median"]):
        return "n/a"
    return f"{_num(stat['median'])} [{_num(stat['q25'])}, {_num(stat['q75'])}]"


def _num(x: float) -> str:
    if abs(x) >= 100 or float(x).is_integer():
        return f"{x:.0f}"
    return f"{x:.4f}" if abs(x) < 1 else f"{x:.2f}"


def _markdown(records: Sequence[dict], names: Sequence[str]) -> str:
    cycles = sorted({r["cycles"] for r in records if r.get("cycles") is not None})
    lines = [
        "# Extension study: deletion selectors and inheritance on the switch task",
        "",
        f"{len(records)} runs" + (f" of {', '.join(map(str, cycles))} cycles" if cycles else "")
        + ". Each cell: median [25th, 75th percentile] over seeds.",
        "",
        report_table(records, names),
        "## Measures",
        "",
        *[f"- `{n}`: {MEASURES[n]}" for n in names if n in MEASURES],
        "- `wall_s`, `cycles_per_s`: wall time and speed of a run (one CPU thread each)",
        "",
        f"Recovery tolerance {RECOVERY_TOL:.0%}; definitions in docs/extensions.md.",
    ]
    return "\n".join(lines) + "\n"


def _figure(records: Sequence[dict], names: Sequence[str], path: Path) -> None:
    scenarios = list(dict.fromkeys(r["scenario"] for r in records))
    cols = min(3, len(names)) or 1
    rows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 4.2 * rows), squeeze=False)
    x = np.arange(1, len(scenarios) + 1)
    for ax, name in zip(axes.flat, names):
        data = [_values(records, s, name) for s in scenarios]
        shown = [d if d.size else np.array([np.nan]) for d in data]
        ax.boxplot(shown, whis=(0, 100), widths=0.6, medianprops={"color": "C3"})
        for xi, d in zip(x, data):
            ax.plot(np.full(d.size, xi), d, "o", ms=3, color="C0", alpha=0.6)
        ax.set_xticks(x, scenarios, rotation=45, ha="right", fontsize=8)
        ax.set_title(name, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle("median (red), inter-quartile range (box), range (whiskers), runs (dots)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _values(records: Sequence[dict], scenario: str, name: str) -> np.ndarray:
    return np.array(
        [r[name] for r in records if r["scenario"] == scenario and r.get(name) is not None], dtype=np.float64
    )
