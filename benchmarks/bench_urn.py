"""URN cost against S, with and without lifetime structural deletion.

Two measurements:

1. ``sizes`` (default): for each S, in a fresh subprocess (so peak memory is its
   own), build a spheres URN (I = 4, batch 32), time a few training steps of the
   dense network and extrapolate to a 4,000-sample epoch; then delete every hidden
   neuron but ``--survivors`` through the trainer's own deletion path (write back,
   graph.delete_neuron, sync, Adam remap), time the same steps on the shrunk network,
   and report the deletion's own cost and the process's peak RSS.
   ``--survivors`` defaults to the hidden size a CPU run ends with (about 100).
2. ``--full``: train scenarios/urn_spheres_cpu.yaml to the end with and without
   deletion and compare wall time, last-epoch time and the emergent structure.
3. ``--protocol``: the paper-size protocol, scenarios/urn_spheres.yaml (S = 5,000,
   200 epochs) with lifetime deletion, timed from start to end; a line every
   10 epochs (epoch time, neurons left, active, layers) and the final structure.

    python benchmarks/bench_urn.py [--sizes 500,1000,2000,5000] [--steps 5] [--threads 1]
    python benchmarks/bench_urn.py --full
    python benchmarks/bench_urn.py --protocol --threads 2 [--epochs 200] [--patience 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EPOCH_SAMPLES = 4000  # the paper's training set
BATCH = 32


def _scenario(size: int, steps: int, deletion: bool = False):
    from neurograph.urn.scenario import URNScenario

    return URNScenario.model_validate(
        {
            "model": "urn",
            "name": f"bench-{size}",
            "network": {"size": size, "iterations": 4},
            "loss": {"c_w": 5e-7, "c_n": 2e-5},
            "training": {"batch_size": BATCH},
            "deletion": {"enabled": deletion, "patience": 1},
            "phases": [{"task": {"kind": "spheres", "train": steps * BATCH, "test": 100}, "epochs": 100}],
        }
    )


def _epoch_seconds(trainer, steps: int, repeats: int) -> float:
    """Best of ``repeats`` epochs of ``steps`` minibatches, scaled to a 4,000-sample epoch."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        trainer.train_epoch()
        best = min(best, time.perf_counter() - t0)
    return best * EPOCH_SAMPLES / (steps * BATCH)


def measure_one(size: int, steps: int, survivors: int, repeats: int) -> dict:
    """Dense and shrunk epoch times of one S, in this process."""
    import numpy as np

    from neurograph.urn.train import URNTrainer

    t0 = time.perf_counter()
    trainer = URNTrainer(_scenario(size, steps, deletion=True))
    build = time.perf_counter() - t0
    trainer.train_epoch()  # warm-up, and Adam memories exist before the remap
    dense = _epoch_seconds(trainer, steps, repeats)
    rss_dense = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    c = trainer.compiled
    peak = np.ones(c.n)
    doomed = c.hidden_ids[survivors:]
    peak[[c.index[i] for i in doomed]] = 0.0
    t0 = time.perf_counter()
    trainer.delete_silent(peak)
    delete_s = time.perf_counter() - t0
    shrunk = _epoch_seconds(trainer, steps, repeats)
    return {
        "size": size,
        "survivors": trainer.compiled.n,
        "build_s": build,
        "epoch_dense_s": dense,
        "epoch_shrunk_s": shrunk,
        "delete_s": delete_s,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_rss_dense_mib": rss_dense,
    }


def run_sizes(args) -> None:
    rows = []
    for size in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(size), "--steps", str(args.steps), "--threads", str(args.threads),
               "--survivors", str(args.survivors), "--repeats", str(args.repeats)]  # fmt: skip
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(_row_text(rows[-1], rows[0]), flush=True)
    big = rows[-1]
    print(
        f"\nS={big['size']}: dense epoch {big['epoch_dense_s']:.2f} s, after deletion to {big['survivors']} neurons "
        f"{big['epoch_shrunk_s']:.3f} s: {big['epoch_dense_s'] / big['epoch_shrunk_s']:.0f}x faster; "
        f"deleting {big['size'] - big['survivors']} neurons took {big['delete_s']:.1f} s once; "
        f"peak RSS {big['peak_rss_mib']:.0f} MiB"
    )


def _row_text(r: dict, first: dict) -> str:
    growth = r["epoch_dense_s"] / first["epoch_dense_s"]
    speedup = r["epoch_dense_s"] / r["epoch_shrunk_s"]
    return (
        f"S={r['size']:>5}  dense epoch {r['epoch_dense_s']:8.3f} s ({growth:6.1f}x S={first['size']})"
        f"  shrunk to {r['survivors']:>4}: {r['epoch_shrunk_s']:7.3f} s  speedup {speedup:6.1f}x"
        f"  delete {r['delete_s']:6.2f} s  peak RSS {r['peak_rss_mib']:7.0f} MiB"
    )


def run_full(args) -> None:
    from neurograph.run.reporters import Reporter
    from neurograph.scenario import load_scenario
    from neurograph.urn.train import URNTrainer

    class Rows(Reporter):
        def __init__(self):
            self.rows = []

        def metrics(self, row):
            self.rows.append(row)

    results = {}
    for deletion in (False, True):
        path = ROOT / "scenarios" / "urn_spheres_cpu.yaml"
        scenario = load_scenario(path, [f"deletion.enabled={str(deletion).lower()}"])
        rec = Rows()
        summary = URNTrainer(scenario, reporters=rec).run()
        results[deletion] = (summary, rec.rows)
        print(
            f"deletion={deletion!s:<5}  wall {summary['wall_s']:6.1f} s  last epoch {rec.rows[-1]['epoch_s']:.3f} s  "
            f"neurons {summary['neurons']}  active {summary['active']}  layers {summary['layers']}  "
            f"path depth {summary['path_depth']}  test {summary['test_accuracy']:.3f}  "
            f"forward {summary['forward_fraction']:.2f}",
            flush=True,
        )
    (plain, rows_p), (pruned, rows_d) = results[False], results[True]
    print(
        f"\ndeletion: whole run {plain['wall_s'] / pruned['wall_s']:.2f}x faster, last epoch "
        f"{rows_p[-1]['epoch_s'] / rows_d[-1]['epoch_s']:.1f}x faster"
    )


def run_protocol(args) -> None:
    from neurograph.run.reporters import Reporter
    from neurograph.scenario import load_scenario
    from neurograph.urn.train import URNTrainer

    class Lines(Reporter):
        def metrics(self, r):
            if r["cycle"] % 10 == 0 or r["cycle"] == 1:
                print(
                    f"epoch {r['cycle']:>3}  {r['epoch_s']:6.2f} s  neurons {r['neurons']:>4}  active {r['active']:>4}"
                    f"  layers {r['layers']}  loss {r['loss']:.4f}  test {r['test_accuracy']:.3f}",
                    flush=True,
                )

    overrides = ["deletion.enabled=true", f"deletion.patience={args.patience}", f"phases.0.epochs={args.epochs}"]
    scenario = load_scenario(ROOT / "scenarios" / "urn_spheres.yaml", overrides)
    t0 = time.perf_counter()
    summary = URNTrainer(scenario, reporters=Lines()).run()
    wall = time.perf_counter() - t0
    print(
        f"\npaper-size protocol (S = {scenario.network.size}, {args.epochs} epochs, deletion M = {args.patience}, "
        f"{args.threads} threads): {wall / 60:.1f} min; test accuracy {summary['test_accuracy']:.3f}, "
        f"{summary['active']} active, layers {summary['layers']}, {summary['deletes']} deleted, "
        f"ablation max change {summary['ablation']['neurons']['max_output_change']:.2g}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="500,1000,2000,5000", type=lambda s: [int(v) for v in s.split(",")])
    p.add_argument("--steps", type=int, default=5, help="minibatches timed per epoch measurement")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--survivors", type=int, default=100, help="hidden neurons left after deletion")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--full", action="store_true", help="train urn_spheres_cpu.yaml with and without deletion")
    p.add_argument("--protocol", action="store_true", help="time urn_spheres.yaml (S = 5,000) with deletion")
    p.add_argument("--epochs", type=int, default=200, help="--protocol: epochs")
    p.add_argument("--patience", type=int, default=5, help="--protocol: deletion patience M")
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.one is not None:
        print(json.dumps(measure_one(args.one, args.steps, args.survivors, args.repeats)))
    elif args.full:
        run_full(args)
    elif args.protocol:
        run_protocol(args)
    else:
        run_sizes(args)


if __name__ == "__main__":
    main()
