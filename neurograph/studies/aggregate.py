"""Across-seed summary of runs' metrics rows: median and inter-quartile range vs cycle.

The figures of the papers show one curve per seed; with 20 seeds a median
and a band read better. :func:`aggregate_rows` takes each seed's metrics rows
(:meth:`Trainer.metrics_row` fields) and, at every cycle that all seeds
reported, gives the median, the 25th and 75th percentiles (numpy's linear
interpolation) and their difference, for the smoothed loss and the hidden size.
"""

from __future__ import annotations

import numpy as np

__all__ = ["AGGREGATED", "aggregate_rows"]

AGGREGATED = ("loss", "hidden")  # metrics fields summarised over seeds


def aggregate_rows(rows_by_seed: dict[int, list[dict]]) -> dict:
    """``{"seeds", "cycles", "loss": {"median", "q25", "q75", "iqr"}, "hidden": {...}}``.

    Lists are aligned with ``cycles``: the cycles present in every seed's rows.
    """
    if not rows_by_seed:
        raise ValueError("no seeds to aggregate")
    by_cycle = {seed: {row["cycle"]: row for row in rows} for seed, rows in rows_by_seed.items()}
    cycles = sorted(set.intersection(*(set(rows) for rows in by_cycle.values())))
    out: dict = {"seeds": sorted(rows_by_seed), "cycles": cycles}
    for field in AGGREGATED:
        values = np.array([[by_cycle[s][c][field] for s in out["seeds"]] for c in cycles], dtype=np.float64)
        values = values.reshape(len(cycles), len(out["seeds"]))
        q25, median, q75 = np.percentile(values, [25, 50, 75], axis=1) if cycles else ([], [], [])
        out[field] = {
            "median": np.asarray(median).tolist(),
            "q25": np.asarray(q25).tolist(),
            "q75": np.asarray(q75).tolist(),
            "iqr": (np.asarray(q75) - np.asarray(q25)).tolist(),
        }
    return out
