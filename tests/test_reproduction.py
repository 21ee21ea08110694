"""Paper-scale reproductions of Miconi's outgoing-L1 revision (slow: minutes each).

Run with ``python -m pytest -m slow``. Runs go to worker processes, one per core.
"""

from __future__ import annotations

import os
import statistics
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
SEEDS = range(5)

pytestmark = pytest.mark.slow


def _train(args: tuple[str, int]) -> dict:
    """Summary plus (cycle, hidden) trace of one run, in a worker process."""
    import torch

    from neurograph.run.reporters import Reporter
    from neurograph.scenario import load_scenario
    from neurograph.charrnn.trainer import Trainer

    torch.set_num_threads(1)
    path, seed = args

    class Sizes(Reporter):
        def __init__(self):
            self.rows = []

        def metrics(self, row):
            self.rows.append((row["cycle"], row["hidden"]))

    sizes = Sizes()
    scenario = load_scenario(path, [f"seed={seed}", "report.checkpoint_every=0", "report.graph_every=0"])
    summary = Trainer(scenario, reporters=sizes).run()
    summary["sizes"] = sizes.rows
    return summary


def _run_all(jobs):
    with ProcessPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
        return list(pool.map(_train, jobs))


def test_hard_task_grows_at_least_twice_the_easy_network():
    easy = _run_all([(str(SCENARIOS / "outgoing-l1" / "easy.yaml"), s) for s in SEEDS])
    hard = _run_all([(str(SCENARIOS / "outgoing-l1" / "hard.yaml"), s) for s in SEEDS])
    easy_size = statistics.median(r["hidden"] for r in easy)
    hard_size = statistics.median(r["hidden"] for r in hard)
    for name, runs in (("easy", easy), ("hard", hard)):  # shown with -s: the figures behind the asserts
        print(name, "sizes", [r["hidden"] for r in runs], "losses", [round(r["loss"], 4) for r in runs])
    assert hard_size >= 2 * easy_size, (easy_size, hard_size)
    easy_loss = statistics.median(r["loss"] for r in easy)
    assert easy_loss <= 1.05 * easy[0]["optimum"], (easy_loss, easy[0]["optimum"])


def test_switch_grows_after_easy_to_hard_and_shrinks_after_hard_to_easy():
    (run,) = _run_all([(str(SCENARIOS / "switch.yaml"), 0)])
    sizes = dict(run["sizes"])
    print("switch sizes at phase ends", [p["hidden"] for p in run["phases"]], "losses", [round(p["loss"], 4) for p in run["phases"]])
    to_hard, to_easy = (p["end_cycle"] for p in run["phases"][:2])
    at_switch = sizes[to_hard - to_hard % 100]
    assert max(sizes[c] for c in sizes if to_hard < c <= to_hard + 10_000) > at_switch
    assert run["hidden"] < sizes[to_easy - to_easy % 100]
