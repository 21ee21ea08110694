"""Network-cycles per second of the batched engine against a plain numpy min-char-rnn.

One cycle is one 40-character window: forward, BPTT, update, penalty step.
Everything is timed in one process, interleaved, best of ``--repeats``:

- ``baseline``: benchmarks/bench_charrnn.py's numpy min-char-rnn (30 hidden,
  float64, RMSProp, outgoing L1), the loop a user would otherwise write;
- ``single``: one :class:`~neurograph.charrnn.train.Trainer` of the same network
  (fixed 30 hidden, outgoing-L1 penalty, float32);
- ``batched``: a :class:`~neurograph.charrnn.trainer.BatchedTrainer` of 40 such
  networks (seeds 0..39), counted in network-cycles per second (40 per step),
  at ``torch.set_num_threads`` 1 and 2, with the numba BPTT kernel
  (``--kernel torch``: the torch kernel instead).

Then the Figure 1 protocol of the multiplier revision (20 seeds x {easy,
hard}, 300,000 cycles each, scenarios/multipliers/{easy,hard}.yaml): its
batched rate is measured over ``--protocol-sample`` cycles after
``--protocol-warmup`` cycles of growth from one neuron (the rate falls as the
networks grow; by 5,000 cycles the hard ones are near their final size) and
the full protocol's time projected from it. With ``--measure-protocol`` the
whole protocol is run and timed.

    python benchmarks/bench_batched.py [--cycles 300] [--repeats 3] [--measure-protocol] [--kernel torch]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from bench_charrnn import make_baseline, scenario, timed
from neurograph.charrnn.trainer import BatchedTrainer
from neurograph.charrnn.bptt import KERNELS
from neurograph.scenario import load_scenario
from neurograph.charrnn.train import Trainer

HIDDEN = 30
NETWORKS = 40  # 20 seeds x {easy, hard}, as Figure 1
PROTOCOL_CYCLES = 300_000
SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios" / "multipliers"


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=300, help="batched steps per timed repeat (x40 network-cycles)")
    ap.add_argument("--single-cycles", type=int, default=1000, help="cycles per timed repeat, baseline and single")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats per configuration (best is kept)")
    ap.add_argument("--warmup", type=int, default=50, help="untimed steps before timing")
    ap.add_argument("--protocol-warmup", type=int, default=5000, help="protocol cycles run before timing (growth)")
    ap.add_argument("--protocol-sample", type=int, default=1000, help="protocol cycles timed after the warm-up")
    ap.add_argument("--measure-protocol", action="store_true", help="run and time the whole Figure 1 protocol")
    ap.add_argument("--kernel", choices=KERNELS, default=None, help="batched BPTT kernel (default: numba on the CPU)")
    return ap.parse_args(argv)


def fixed_batch(kernel: str | None = None) -> BatchedTrainer:
    total = 10**9  # never finishes while timed
    scenarios = [scenario("fixed", HIDDEN, "float32", total, seed) for seed in range(NETWORKS)]
    return BatchedTrainer(scenarios, kernel=kernel)


def protocol_scenarios(cycles: int) -> list:
    """The Figure 1 batch: seeds 0..19 of the easy and the hard scenario."""
    return [
        load_scenario(SCENARIOS / f"{task}.yaml").with_cycles(cycles).model_copy(update={"seed": seed})
        for seed in range(NETWORKS // 2)
        for task in ("easy", "hard")
    ]


def time_fixed(args) -> dict[str, tuple[float, float]]:
    """Best (wall, CPU) network-cycles/s of baseline, single trainer and batch at 1 and 2 threads."""
    single = Trainer(scenario("fixed", HIDDEN, "float32", 10**9, 0))
    base = make_baseline(Trainer(scenario("fixed", HIDDEN, "float64", 10, 0)))
    batch = fixed_batch(args.kernel)
    runs = {
        "baseline (numpy min-char-rnn)": (base.step, args.single_cycles, 1, 1),
        "single Trainer": (single.step, args.single_cycles, 1, 1),
        f"batched x{NETWORKS}, 1 thread": (batch.step, args.cycles, NETWORKS, 1),
        f"batched x{NETWORKS}, 2 threads": (batch.step, args.cycles, NETWORKS, 2),
    }
    for step, _, _, threads in runs.values():
        torch.set_num_threads(threads)
        for _ in range(args.warmup):
            step()
    best = {name: (0.0, 0.0) for name in runs}
    for _ in range(args.repeats):  # interleaved: outside load hits one repeat of each
        for name, (step, cycles, nets, threads) in runs.items():
            torch.set_num_threads(threads)
            wall, cpu = timed(step, cycles, None)
            best[name] = (max(best[name][0], wall * nets), max(best[name][1], cpu * nets))
    torch.set_num_threads(1)
    return best


def time_protocol_sample(warmup: int, cycles: int, kernel: str | None) -> tuple[float, BatchedTrainer]:
    """Network-cycles/s of the protocol batch over ``cycles`` cycles after ``warmup`` untimed ones."""
    batch = BatchedTrainer(protocol_scenarios(PROTOCOL_CYCLES), kernel=kernel)
    for _ in range(warmup):
        batch.step()
    t0 = time.perf_counter()
    for _ in range(cycles):
        batch.step()
    return len(batch.running) * cycles / (time.perf_counter() - t0), batch


def measure_protocol(kernel: str | None) -> tuple[float, list[dict]]:
    batch = BatchedTrainer(protocol_scenarios(PROTOCOL_CYCLES), kernel=kernel)
    t0 = time.perf_counter()
    summaries = batch.run()
    return time.perf_counter() - t0, summaries


def duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)
    print(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs; hidden {HIDDEN}, window 40, hard task L=6, float32 unless noted")  # fmt: skip
    best = time_fixed(args)
    base_wall, base_cpu = best["baseline (numpy min-char-rnn)"]
    print(f"\n{'configuration':<32}{'net-cycles/s':>13}{'/ base':>8}{'per CPU-s':>11}{'/ base':>8}")
    for name, (wall, cpu) in best.items():
        print(f"{name:<32}{wall:>13.0f}{wall / base_wall:>7.1f}x{cpu:>11.0f}{cpu / base_cpu:>7.1f}x")
    one, two = best[f"batched x{NETWORKS}, 1 thread"][0], best[f"batched x{NETWORKS}, 2 threads"][0]
    print(f"faster: {'1 thread' if one >= two else '2 threads'} ({max(one, two) / min(one, two):.2f}x)")

    rate, batch = time_protocol_sample(args.protocol_warmup, args.protocol_sample, args.kernel)
    hidden = [m.n_hidden for m in batch.running]
    total = NETWORKS * PROTOCOL_CYCLES
    print(f"\nFigure 1 protocol: {NETWORKS // 2} seeds x {{easy, hard}} x {PROTOCOL_CYCLES:,} cycles, "
          "multiplier revision")  # fmt: skip
    print(f"  cycles {args.protocol_warmup}-{args.protocol_warmup + args.protocol_sample}: {rate:.0f} net-cycles/s "
          f"(capacity {batch.capacity}, median hidden easy {np.median(hidden[0::2]):.0f}, "
          f"hard {np.median(hidden[1::2]):.0f})")  # fmt: skip
    print(f"  projected at that rate: {duration(total / rate)} in one process "
          f"(baseline, one 30-neuron network at a time: {duration(total / base_wall)})")  # fmt: skip
    if args.measure_protocol:
        seconds, summaries = measure_protocol(args.kernel)
        print(f"  measured: {duration(seconds)} ({total / seconds:.0f} net-cycles/s), final hidden "
              f"median {np.median([s['hidden'] for s in summaries]):.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
