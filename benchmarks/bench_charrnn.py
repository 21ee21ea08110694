"""Cycles per second of neurograph's trainer against a plain numpy min-char-rnn.

One cycle is one 40-character window of the hard task (L=6): forward, BPTT,
RMSProp update, outgoing-L1 step. Three things are timed in one process:

- ``baseline``: the loop a user would otherwise write, in min-char-rnn's style
  (one-hot column vectors, a Python loop of ``np.dot`` per step, float64, a
  fixed 30-neuron hidden layer);
- ``neurograph``: a :class:`~neurograph.charrnn.trainer.Trainer` of the same network
  (structure ``fixed``, penalty ``outgoing_l1``), in float32 and float64;
- ``growing``: a trainer under the outgoing-L1 rule from one neuron with the
  papers' parameters, for context (its speed depends on the size reached).

Before timing, the baseline's matrices are copied from a float64 trainer's
tensors (a batch of one) and both run the same window, the trainer through its
batched BPTT kernel: losses, gradients and the weights after one full cycle
must agree, so the comparison is like for like.

Each configuration is warmed up, then timed ``--repeats`` times for
``--cycles`` cycles (or ``--seconds``), interleaved so that load from other
processes hits all alike; the best repeat is reported (as ``timeit`` does),
per wall second and per CPU second of this process (the fairer column on a
shared machine: it leaves out the time spent waiting for a core).

    python benchmarks/bench_charrnn.py [--hidden 30] [--cycles N] [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from neurograph.charrnn.bptt import batched_bptt
from neurograph.scenario import Scenario
from neurograph.charrnn.tasks import HardTask
from neurograph.charrnn.trainer import Trainer

WINDOW = 40  # characters per cycle, as the papers
TASK_LENGTH = 6  # hard task, original data
LR, DECAY, UPDATE_CLIP, MEMORY_INIT = 0.01, 0.01, 0.01, 0.01  # outgoing-L1 revision's RMSProp
L1 = 1e-4


# ------------------------------------------------------------------ baseline
class MinCharRNN:
    """min-char-rnn as a user would write it, with RMSProp and outgoing L1.

    Parameters: Wxh (H, V), Whh (H, H), Why (V, H), bh (H, 1), by (V, 1), float64.
    """

    def __init__(self, params: dict[str, np.ndarray], task: HardTask, last_char: int, h: np.ndarray) -> None:
        self.p = {k: v.astype(np.float64).copy() for k, v in params.items()}
        self.mem = {k: np.full_like(v, MEMORY_INIT) for k, v in self.p.items()}
        self.vocab = self.p["Why"].shape[0]
        self.task = task
        self.last_char = last_char
        self.h = h.reshape(-1, 1).astype(np.float64).copy()  # (H, 1) carried between windows

    def loss_fun(self, inputs, targets, hprev):
        """Summed loss, gradients and last hidden state of one window."""
        Wxh, Whh, Why, bh, by = (self.p[k] for k in ("Wxh", "Whh", "Why", "bh", "by"))
        xs, hs, ps = {}, {}, {}
        hs[-1] = np.copy(hprev)
        loss = 0.0
        for t in range(len(inputs)):
            xs[t] = np.zeros((self.vocab, 1))
            xs[t][inputs[t]] = 1
            hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)
            ys = np.dot(Why, hs[t]) + by
            ps[t] = np.exp(ys) / np.sum(np.exp(ys))
            loss += -np.log(ps[t][targets[t], 0])
        dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
        dbh, dby = np.zeros_like(bh), np.zeros_like(by)
        dhnext = np.zeros_like(hs[0])
        for t in reversed(range(len(inputs))):
            dy = np.copy(ps[t])
            dy[targets[t]] -= 1
            dWhy += np.dot(dy, hs[t].T)
            dby += dy
            dh = np.dot(Why.T, dy) + dhnext
            dhraw = (1 - hs[t] * hs[t]) * dh
            dbh += dhraw
            dWxh += np.dot(dhraw, xs[t].T)
            dWhh += np.dot(dhraw, hs[t - 1].T)
            dhnext = np.dot(Whh.T, dhraw)
        grads = {"Wxh": dWxh, "Whh": dWhh, "Why": dWhy, "bh": dbh, "by": dby}
        return loss, grads, hs[len(inputs) - 1]

    def update(self, grads) -> None:
        """RMSProp with clipped updates, then the outgoing-L1 step."""
        for k, g in grads.items():
            mem = self.mem[k]
            mem += DECAY * (g * g - mem)
            self.p[k] += np.clip(-LR * g / np.sqrt(mem + 1e-8), -UPDATE_CLIP, UPDATE_CLIP)
        for k in ("Why", "Whh"):
            self.p[k] -= L1 * np.sign(self.p[k])

    def step(self) -> float:
        """One cycle: read a window (one character of look-ahead carried), train."""
        chunk = self.task.take(WINDOW)
        inputs = [self.last_char] + chunk[:-1].tolist()
        self.last_char = int(chunk[-1])
        loss, grads, self.h = self.loss_fun(inputs, chunk.tolist(), self.h)
        self.update(grads)
        return loss


def blocks(trainer: Trainer, weight: torch.Tensor, bias: torch.Tensor) -> dict[str, np.ndarray]:
    """The baseline's five arrays cut from a single run's padded (N, N) and (N,) tensors."""
    v, w, b = trainer.n_chars, weight.detach().double().numpy(), bias.detach().double().numpy()
    hid = np.array(trainer.run_state.positions(v)[2 * v :])
    inp, out = slice(0, v), slice(v, 2 * v)
    return {"Wxh": w[hid, inp], "Whh": w[np.ix_(hid, hid)], "Why": w[out][:, hid], "bh": b[hid, None],
            "by": b[out, None]}  # fmt: skip


def baseline_params(trainer: Trainer) -> dict[str, np.ndarray]:
    """The baseline's matrices, copied from a single run's tensors."""
    return blocks(trainer, trainer.nets.weight[0], trainer.nets.bias[0])


def hidden_state(trainer: Trainer) -> torch.Tensor:
    """(H,) a single run's carried hidden state, its neurons by id."""
    v = trainer.n_chars
    return trainer.nets.h[0, trainer.run_state.positions(v)[2 * v :]]


def task_copy(task: HardTask) -> HardTask:
    """An independent task that continues exactly where ``task`` stands."""
    twin = HardTask(task.length, rng=np.random.default_rng())
    twin.set_state(task.get_state())
    return twin


def make_baseline(trainer: Trainer) -> MinCharRNN:
    """Baseline at a single run's weights, task position and hidden state."""
    m = trainer.run_state
    h = hidden_state(trainer).detach().double().numpy()
    base = MinCharRNN(baseline_params(trainer), task_copy(m.tasks[0]), m.last_char, h)
    sq = trainer.optimizer.state["sq"]
    if sq:  # the trainer has stepped: continue from its RMSProp memories
        base.mem = {k: v.copy() for k, v in blocks(trainer, sq["weight"][0], sq["bias"][0]).items()}
    return base


# ------------------------------------------------------------------ neurograph
def scenario(kind: str, hidden: int, dtype: str, cycles: int, seed: int) -> Scenario:
    """Fixed-size or growing outgoing-L1 scenario on the hard task."""
    if kind == "fixed":
        structure = {"kind": "fixed", "hidden": hidden, "penalty": "outgoing_l1", "l1": L1}
    else:  # papers' parameters, as scenarios/outgoing-l1/easy.yaml
        structure = {
            "kind": "outgoing_l1", "k": 1, "threshold": 0.05, "p_add": 0.01, "p_del": 0.05, "l1": L1,
            "l1_placement": "after_update", "norm": "original", "new_norm": 0.5,
            "p_spontaneous": 1e-4, "max_hidden": 100, "initial_hidden": 1,
        }  # fmt: skip
    return Scenario.model_validate(
        {
            "name": f"bench-{kind}-{dtype}",
            "seed": seed,
            "dtype": dtype,
            "window": WINDOW,
            "structure": structure,
            "optimizer": {"kind": "rmsprop", "lr": LR, "decay": DECAY, "update_clip": UPDATE_CLIP,
                          "memory_init": MEMORY_INIT},
            "phases": [{"task": {"kind": "hard", "length": TASK_LENGTH}, "cycles": max(cycles, 1)}],
        }
    )  # fmt: skip


# ------------------------------------------------------------------ checks
def check_same_computation(hidden: int, dtype: str, seed: int) -> dict[str, float]:
    """Max absolute differences between baseline and trainer on one window."""
    trainer = Trainer(scenario("fixed", hidden, dtype, 10, seed))
    for _ in range(5):  # move away from the initial weights and zero state
        trainer.step()
    base = make_baseline(trainer)
    m, nets = trainer.run_state, trainer.nets

    # one window, no update: loss and gradients, through the trainer's kernel
    peek = task_copy(m.tasks[0]).take(WINDOW)
    inputs = np.concatenate(([m.last_char], peek[:-1]))
    res = batched_bptt(nets.weight, nets.bias, nets.multiplier, torch.from_numpy(inputs)[None],
                       torch.from_numpy(peek)[None], nets.h[:, nets.hidden], n_chars=trainer.n_chars,
                       kernel=trainer.kernel)  # fmt: skip
    loss, grads, h_last = base.loss_fun(inputs.tolist(), peek.tolist(), base.h)
    ours = blocks(trainer, res.weight[0], res.bias[0])
    hid = np.arange(m.n_hidden)  # hidden neurons hold slots 0..H-1
    diffs = {
        "loss": abs(res.loss[0].item() - loss),
        "grads": max(np.abs(ours[k] - grads[k]).max() for k in grads),
        "h_last": float(np.abs(res.h_last[0, hid].double().numpy() - h_last[:, 0]).max()),
    }

    # one full cycle each (update, L1), then compare the weights
    loss_t = float(trainer.step()[0])
    loss_b = base.step()
    after = baseline_params(trainer)
    diffs["cycle_loss"] = abs(loss_t - loss_b)
    diffs["weights_after"] = max(np.abs(after[k] - base.p[k]).max() for k in after)
    return diffs


# ------------------------------------------------------------------ timing
def timed(step, cycles: int, seconds: float | None) -> tuple[float, float]:
    """Cycles per wall second and per CPU second, over ``cycles`` calls (or ``seconds``).

    CPU time is the fairer measure when other processes share the cores: it
    does not count the time this one waited for a core.
    """
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while (n < cycles) if seconds is None else (time.perf_counter() - t0 < seconds):
        step()
        n += 1
    return n / (time.perf_counter() - t0), n / max(time.process_time() - c0, 1e-9)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=30, help="hidden neurons of the fixed network")
    ap.add_argument("--cycles", type=int, default=3000, help="cycles per timed repeat")
    ap.add_argument("--seconds", type=float, default=None, help="time each repeat for this long instead")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats per configuration (best is kept)")
    ap.add_argument("--warmup", type=int, default=200, help="untimed cycles before timing")
    ap.add_argument("--grow-cycles", type=int, default=10_000, help="cycles of the growing run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--flagship-cycles", type=int, default=100_000,
                    help="cycles of `neurograph run scenarios/switch.yaml --no-live` timed beside the baseline "
                         "(100,000: the whole scenario; 0: skip)")  # fmt: skip
    return ap.parse_args(argv)


def print_header(args: argparse.Namespace) -> None:
    per = f"{args.seconds} s" if args.seconds else f"{args.cycles} cycles"
    print(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, torch.get_num_threads() = {torch.get_num_threads()}")  # fmt: skip
    print(f"hidden {args.hidden}, window {WINDOW}, hard task L={TASK_LENGTH}, "
          f"{args.warmup} warm-up cycles, then best of {args.repeats} x {per} per configuration")  # fmt: skip


def time_fixed(args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    """Best (wall, CPU) cycles/s of the baseline and the fixed-size trainers."""
    total = args.warmup + args.repeats * max(args.cycles, 1)
    trainers = {dt: Trainer(scenario("fixed", args.hidden, dt, total, args.seed)) for dt in ("float32", "float64")}
    steps = {
        "baseline (numpy, float64)": make_baseline(trainers["float64"]).step,
        "neurograph fixed float32": trainers["float32"].step,
        "neurograph fixed float64": trainers["float64"].step,
    }
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    best = {name: (0.0, 0.0) for name in steps}
    for _ in range(args.repeats):  # interleaved: a burst of outside load hits one repeat of each
        for name, step in steps.items():
            best[name] = tuple(map(max, best[name], timed(step, args.cycles, args.seconds)))
    return best


def print_table(best: dict[str, tuple[float, float]], baseline: str) -> None:
    base_wall, base_cpu = best[baseline]
    print(f"\n{'configuration':<30}{'cycles/s':>9}{'/ base':>8}{'cycles/CPU-s':>14}{'/ base':>8}")
    for name, (wall, cpu) in best.items():
        print(f"{name:<30}{wall:>9.0f}{wall / base_wall:>7.2f}x{cpu:>14.0f}{cpu / base_cpu:>7.2f}x")


def time_flagship(cycles: int) -> dict:
    """``neurograph run scenarios/switch.yaml --no-live`` in a fresh process: its own
    training rate (summary.json), the command's wall time, and the final size."""
    switch = Path(__file__).parents[1] / "scenarios" / "switch.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-c", "import sys; from neurograph_cli.main import main; sys.exit(main(sys.argv[1:]))",
               "run", str(switch), "--no-live", "--out", str(Path(tmp) / "run")]  # fmt: skip
        if cycles != 100_000:
            cmd += ["--cycles", str(cycles)]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        summary = json.loads((Path(tmp) / "run" / "summary.json").read_text())
    return {"cycles": summary["cycles"], "rate": summary["cycles_per_s"], "wall": wall, "hidden": summary["hidden"]}


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)  # 30x30 matrices: intra-op threads only add overhead
    print_header(args)

    print("\nsame computation (max |difference|, baseline vs trainer from the same state):")
    for dtype in ("float64", "float32"):
        d = check_same_computation(args.hidden, dtype, args.seed)
        print(f"  {dtype}: " + ", ".join(f"{k} {v:.2e}" for k, v in d.items()))

    best = time_fixed(args)
    grow = Trainer(scenario("grow", args.hidden, "float32", args.grow_cycles, args.seed))
    best["neurograph growing float32 *"] = timed(grow.step, args.grow_cycles, None)
    print_table(best, "baseline (numpy, float64)")
    m = grow.run_state
    print(f"* one run of {args.grow_cycles} cycles from 1 neuron, no warm-up: {m.n_hidden} hidden "
          f"at the end, {m.adds} adds, {m.deletes} deletes, loss {m.loss_per_char():.3f} nats/char")  # fmt: skip
    if args.flagship_cycles:
        base = best["baseline (numpy, float64)"][0]
        run = time_flagship(args.flagship_cycles)
        whole = run["cycles"] / run["wall"]
        print(f"\nflagship `neurograph run scenarios/switch.yaml --no-live` ({run['cycles']:,} cycles, "
              f"{run['hidden']} hidden at the end):")
        print(f"  training rate {run['rate']:,.0f} cycles/s = {run['rate'] / base:.2f}x the baseline; "
              f"whole command {run['wall']:.1f} s = {whole:,.0f} cycles/s = {whole / base:.2f}x "
              f"(start-up, compilation and run folder included)")


if __name__ == "__main__":
    main()
