"""Network-cycles per second of the batched engine against a plain numpy min-char-rnn.

One cycle is one 40-character window: forward, BPTT, update, penalty step.
Everything is timed in one process, interleaved, best of ``--repeats``:

- ``baseline``: benchmarks/bench_charrnn.py's numpy min-char-rnn (30 hidden,
  float64, RMSProp, outgoing L1), the loop a user would otherwise write;
- ``single``: a :class:`~neurograph.charrnn.trainer.Trainer` of the same network
  alone (a batch of one: fixed 30 hidden, outgoing-L1 penalty, float32);
- ``batched``: a :class:`~neurograph.charrnn.trainer.Trainer` of 40 such
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

``--threads-check`` instead times only the batch, at 1 thread, 2 threads, the
``--seeds`` default (:func:`neurograph.kernels.threads.available_cores`) and 2
spinning threads (``NEUROGRAPH_SPIN_US=5000``), on the machine as it is and
then with one busy process that the benchmark starts and stops (``python -c
'while True: pass'``): short rounds, the configurations interleaved in a
rotating order, medians over the rounds (other processes come and go) and
ratios of the medians; and how many cores this process kept busy (its CPU
time over the wall time).

    python benchmarks/bench_batched.py [--cycles 300] [--repeats 3] [--measure-protocol] [--kernel torch]
    python benchmarks/bench_batched.py --threads-check [--rounds 15] [--round-cycles 150]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench_charrnn import make_baseline, scenario, timed
from neurograph.charrnn.bptt import KERNELS
from neurograph.charrnn.trainer import Trainer
from neurograph.kernels import threads as kernel_threads
from neurograph.scenario import load_scenario

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
    ap.add_argument("--threads-check", action="store_true", help="only the batch's rate by thread count, idle and busy")
    ap.add_argument("--rounds", type=int, default=15, help="--threads-check: interleaved rounds per load")
    ap.add_argument("--round-cycles", type=int, default=150, help="--threads-check: timed batched steps per round")
    return ap.parse_args(argv)


def fixed_batch(kernel: str | None = None) -> Trainer:
    total = 10**9  # never finishes while timed
    scenarios = [scenario("fixed", HIDDEN, "float32", total, seed) for seed in range(NETWORKS)]
    return Trainer(scenarios, kernel=kernel)


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


def time_protocol_sample(warmup: int, cycles: int, kernel: str | None) -> tuple[float, Trainer]:
    """Network-cycles/s of the protocol batch over ``cycles`` cycles after ``warmup`` untimed ones."""
    batch = Trainer(protocol_scenarios(PROTOCOL_CYCLES), kernel=kernel)
    for _ in range(warmup):
        batch.step()
    t0 = time.perf_counter()
    for _ in range(cycles):
        batch.step()
    return len(batch.running) * cycles / (time.perf_counter() - t0), batch


def measure_protocol(kernel: str | None) -> tuple[float, list[dict]]:
    batch = Trainer(protocol_scenarios(PROTOCOL_CYCLES), kernel=kernel)
    t0 = time.perf_counter()
    summaries = batch.run()
    return time.perf_counter() - t0, summaries


def thread_configurations() -> dict[str, tuple[int, float]]:
    """Name -> (torch threads, kernel spin in seconds) for --threads-check."""
    spin, default = kernel_threads.spin_s, kernel_threads.available_cores()
    return {"1 thread": (1, spin), "2 threads": (2, spin), f"default ({default})": (default, spin),
            "2 spinning": (2, 5e-3)}  # fmt: skip


def time_threads(args, busy: bool) -> dict[str, list[tuple[float, float]]]:
    """Per configuration, (net-cycles/s, cores this process kept busy) in each round;
    with ``busy``, next to one busy process."""
    batch, configs = fixed_batch(args.kernel), thread_configurations()
    names, spin = list(configs), kernel_threads.spin_s
    runs = {name: [] for name in names}
    background = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                torch.set_num_threads(configs[name][0])
                kernel_threads.spin_s = configs[name][1]
                for _ in range(args.warmup // 5):
                    batch.step()
                wall, cpu = timed(batch.step, args.round_cycles, None)
                runs[name].append((wall * NETWORKS, wall / cpu))
    finally:
        if background is not None:
            background.kill()
            background.wait()
        kernel_threads.spin_s = spin
        torch.set_num_threads(1)
    return runs


def print_threads(args) -> None:
    """--threads-check: median rates, cores used and ratios, as is and next to one busy process."""
    names = list(thread_configurations())
    one, two, default = names[:3]
    print(f"batched x{NETWORKS}: net-cycles/s and cores this process kept busy, medians over {args.rounds} "
          f"rounds of {args.round_cycles} steps; ratios of the median rates")  # fmt: skip
    print(f"{'':<24}" + "".join(f"{n:>12}" for n in names) + f"{'default/best':>14}{'2/1':>6}")
    for busy in (False, True):
        before = os.getloadavg()[0]
        runs = time_threads(args, busy)
        rate = {n: statistics.median(r for r, _ in runs[n]) for n in names}
        cores = {n: statistics.median(c for _, c in runs[n]) for n in names}
        label = f"{'+1 busy process' if busy else 'as is'} (load {before:.1f})"
        print(f"{label:<24}" + "".join(f"{rate[n]:>12.0f}" for n in names)
              + f"{rate[default] / max(rate[one], rate[two]):>14.2f}{rate[two] / rate[one]:>6.2f}")  # fmt: skip
        print(f"{'  cores busy':<24}" + "".join(f"{cores[n]:>12.2f}" for n in names))


def duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)
    if args.threads_check:
        return print_threads(args)
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
