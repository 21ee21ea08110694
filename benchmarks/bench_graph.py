"""Cost of the graph layer: compile time, incremental edits, per-step overhead.

Run ``python benchmarks/bench_graph.py`` (about 30 s). Prints, from one run:

1. compile time vs graph size (dense wiring), in ms and ns per neuron^2;
2. one incremental edit (delete a hidden neuron, add a wired one, write_back,
   sync) as a ratio of a fresh compile of the same graph;
3. the per-cycle overhead of training on ``compiled.*`` tensors with the
   graph's per-cycle bookkeeping, against the same loop on bare tensors
   (target: <= 10 %).

Times are medians over repeats; the two loops of (3) are interleaved so that
machine load hits both alike.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np
import torch

from neurograph.compile import Compiled, compile_graph, sync, write_back
from neurograph.graph import Graph

N_INPUT = 8  # io neurons around every hidden block
N_OUTPUT = 8


def dense_graph(n_hidden: int, *, seed: int = 0) -> Graph:
    """Inputs, outputs and hidden neurons, every pair connected (one ``wire`` call)."""
    rng = np.random.default_rng(seed)
    n = N_INPUT + N_OUTPUT + n_hidden
    g = Graph(capacity=n)
    for role, count in (("input", N_INPUT), ("output", N_OUTPUT), ("hidden", n_hidden)):
        for _ in range(count):
            g.add_neuron(role, bias=rng.normal() * 0.1)
    ids = g.ids()
    g.wire(ids, ids, rng.normal(size=(n, n)) / np.sqrt(n))
    return g


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def repeats_for(n: int) -> int:
    """Fewer repeats for big graphs keep the whole run under a minute."""
    return 3 if n > 2000 else 7 if n > 500 else 25


def incremental_edit(g: Graph, c: Compiled, rng: np.random.Generator) -> None:
    """What the training loop does for one replacement: write_back, edit, sync."""
    write_back(c, g)
    g.delete_neuron(g.ids("hidden")[0])
    h = g.add_neuron("hidden").id
    others = g.ids()
    g.wire([h], others, rng.normal(size=(1, len(others))))
    g.wire(others, [h], rng.normal(size=(len(others), 1)))
    sync(c, g)


def bench_structure(sizes: list[int]) -> None:
    print("compile time vs size (dense wiring, float32; N = hidden + 16 io)")
    print("edit = write_back + delete one hidden + add one wired hidden + sync")
    print(f"{'hidden':>7} {'N':>6} {'conns':>10} {'compile ms':>11} {'ns/N^2':>7} {'edit ms':>8} {'edit/compile':>12}")
    rng = np.random.default_rng(1)
    for n_hidden in sizes:
        g = dense_graph(n_hidden)
        n, repeats = len(g), repeats_for(len(g))
        t_compile = median_seconds(lambda: compile_graph(g), repeats)
        c = compile_graph(g)
        t_edit = median_seconds(lambda: incremental_edit(g, c, rng), repeats)
        assert c.ids == compile_graph(g).ids  # the edits really were synced
        print(
            f"{n_hidden:>7} {n:>6} {g.num_connections():>10} {t_compile * 1e3:>11.2f} "
            f"{t_compile / n**2 * 1e9:>7.1f} {t_edit * 1e3:>8.2f} {t_edit / t_compile:>12.2f}"
        )


def recurrent_cycle(weight, bias, mult, mask, inputs: torch.Tensor, lr: float) -> None:
    """One training cycle: len(inputs) recurrent steps, backward, masked SGD."""
    h = torch.zeros(weight.shape[0])
    loss = 0.0
    for u in inputs:
        h = torch.tanh(weight @ (mult * h) + bias + u)
        loss = loss + (h - 0.5).pow(2).mean()
    loss.backward()
    with torch.no_grad():
        weight -= lr * weight.grad * mask
        bias -= lr * bias.grad
        mult -= lr * mult.grad
        for p in (weight, bias, mult):
            p.grad = None


def bench_overhead(n_hidden: int, steps: int, cycles: int, rounds: int) -> None:
    g = dense_graph(n_hidden - N_INPUT - N_OUTPUT)
    c = compile_graph(g)
    bare = [t.detach().clone() for t in (c.weight, c.bias, c.multiplier, c.mask)]
    for t in (*bare[:3], c.weight, c.bias, c.multiplier):
        t.requires_grad_(True)
    inputs = torch.randn(steps, c.n) * 0.1
    threshold = 1e-3  # a structural rule would fire below this multiplier

    def bare_loop() -> None:
        for _ in range(cycles):
            recurrent_cycle(*bare, inputs, 1e-3)

    def bookkeeping() -> None:
        """What the training loop adds per cycle when nothing structural happens."""
        g.cycle += 1
        if (c.multiplier.detach().abs() < threshold).any():
            raise RuntimeError("benchmark net should not trigger structural edits")
        if sync(c, g) is not None:
            raise RuntimeError("nothing changed, sync must return None")

    def graph_loop() -> None:
        for _ in range(cycles):
            recurrent_cycle(c.weight, c.bias, c.multiplier, c.mask, inputs, 1e-3)
            bookkeeping()

    bare_loop(), graph_loop()  # warm up
    t_bare, t_graph = [], []
    loops = [(bare_loop, t_bare), (graph_loop, t_graph)]
    for r in range(rounds):
        for fn, times in loops[:: 1 if r % 2 else -1]:  # alternate who goes first
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) / cycles)
    bare_s, graph_s = statistics.median(t_bare), statistics.median(t_graph)
    book_s = median_seconds(lambda: [bookkeeping() for _ in range(100)], rounds) / 100
    overhead = (graph_s - bare_s) / bare_s * 100
    print(f"\nper-cycle overhead, {c.n}-neuron recurrent net, {steps} steps + SGD per cycle")
    print(f"  bare tensors     {bare_s * 1e3:8.3f} ms/cycle")
    print(f"  graph layer      {graph_s * 1e3:8.3f} ms/cycle  (compiled.* + threshold check + sync)")
    print(f"  overhead         {overhead:+8.1f} %   (target <= 10 %: {'ok' if overhead <= 10 else 'MISSED'})")
    print(f"  bookkeeping only {book_s * 1e6:8.1f} us/cycle = {book_s / bare_s * 100:.2f} % of a bare cycle")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 100, 300, 1000, 5000], help="hidden counts")
    parser.add_argument("--neurons", type=int, default=30, help="size of the overhead net (incl. 16 io)")
    parser.add_argument("--steps", type=int, default=40, help="recurrent steps per cycle")
    parser.add_argument("--cycles", type=int, default=20, help="cycles per timed round")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved timed rounds")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: stable timings)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    bench_structure(args.sizes)
    bench_overhead(args.neurons, args.steps, args.cycles, args.rounds)
    print(f"\ntotal {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
