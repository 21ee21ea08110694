"""``show`` and ``plot`` of a ``run --seeds`` folder (``OUT/seed-<n>/``, ``OUT/aggregate.json``).

Both read every seed's run folder, so they work while the batch runs or
after it was killed: ``show`` prints the median and inter-quartile range over
the seeds of the final loss and hidden size, then one line per seed;
``plot`` draws the median and the band against cycles
(:func:`neurograph.run.plots.plot_seeds`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurograph.studies.seeds import seed_folders
from neurograph.run.plots import plot_seeds
from neurograph.run.reader import read_jsonl, run_phases, run_summary
from neurograph.studies.aggregate import aggregate_rows
from neurograph_cli.seeds_progress import seed_list_text

__all__ = ["show_text", "plot_folder"]


def show_text(root: Path) -> str:
    """Summary over seeds, then a table of the seeds."""
    folders = seed_folders(root)
    summaries = {int(f.name.split("-", 1)[1]): run_summary(f) for f in folders}
    first = next(iter(summaries.values()))
    statuses: dict[str, int] = {}
    for s in summaries.values():
        statuses[s["status"]] = statuses.get(s["status"], 0) + 1
    fields = [
        ("seeds folder", str(root)),
        ("scenario", f"{first['scenario']} ({len(summaries)} seeds: {seed_list_text(list(summaries))})"),
        ("status", ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))),
        ("hidden", _spread([s["hidden"] for s in summaries.values()], "{:.0f}")),
        ("loss", _spread([s["loss"] for s in summaries.values()], "{:.4f}") + " " + first.get("loss_unit", "nats/char")),
        *([("depth", _spread([s["depth"] for s in summaries.values()], "{:.0f}"))] if "depth" in first else []),
        *([("test accuracy", _spread([s["test_accuracy"] for s in summaries.values()], "{:.4f}"))]
          if first.get("test_accuracy") is not None else []),
        ("adds / deletes", _spread([s["adds"] for s in summaries.values()], "{:.0f}") + " / "
         + _spread([s["deletes"] for s in summaries.values()], "{:.0f}")),
    ]  # fmt: skip
    lines = [f"{name + ':':<16}{value}" for name, value in fields]
    table = [("seed", "status", "cycles", "hidden", "loss")]
    for seed, s in summaries.items():
        loss = "n/a" if s["loss"] is None else f"{s['loss']:.4f}"
        table.append((str(seed), s["status"], f"{s['cycles']:,} / {s['total_cycles']:,}", str(s["hidden"]), loss))
    widths = [max(len(row[k]) for row in table) for k in range(len(table[0]))]
    lines += ["", "median [25th-75th percentile] over the seeds, at each seed's last cycle", ""]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
    return "\n".join(lines) + "\n"


def plot_folder(root: Path, out: Path) -> Path:
    """The median and inter-quartile band of every seed's metrics to ``out``; returns ``out``."""
    folders = seed_folders(root)
    rows = {int(f.name.split("-", 1)[1]): read_jsonl(f / "metrics.jsonl") for f in folders}
    rows = {seed: r for seed, r in rows.items() if r}
    if not rows:
        raise ValueError("no metrics rows to plot yet")
    first = folders[0]
    unit = next(iter(rows.values()))[-1].get("loss_unit", "nats/char")  # a layered run on samples says nats/sample
    plot_seeds(aggregate_rows(rows), run_phases(first, read_jsonl(first / "metrics.jsonl")), out, loss_unit=unit)
    return out


def _spread(values: list, fmt: str) -> str:
    """``median [q25-q75]`` of the known values."""
    known = np.array([v for v in values if v is not None], dtype=np.float64)
    if not len(known):
        return "n/a"
    q25, median, q75 = np.percentile(known, [25, 50, 75])
    return f"{fmt.format(median)} [{fmt.format(q25)}-{fmt.format(q75)}]"
