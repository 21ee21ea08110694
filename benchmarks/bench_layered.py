"""Time per training step of a layered network against a plain torch ``nn.Sequential`` of the same shape.

Run ``python benchmarks/bench_layered.py`` (about a minute). First grows the
digits scenario (``scenarios/layered/digits.yaml``) from one neuron in one
layer for ``--grow`` cycles and reads the final widths off its graph; then,
at that fixed shape, times per step (minibatch of 32, Adam lr 1e-3, L1 on
hidden neurons' outgoing weights):

- ``sequential``: ``nn.Sequential`` of Linear/Tanh layers of those widths,
  ``torch.optim.Adam``, the L1 term added to the loss: the plain torch baseline
  (``sequential-no-l1``: the same without the penalty, for scale);
- ``chain``: neurograph's engine on the same plain chain (no skips), with the
  structural rules' per-cycle work (norms, decisions) included: same shape,
  same arithmetic (target: within 1.5x of ``sequential``);
- ``grown``: neurograph's engine on the grown network itself, skips and
  rules included (more weights than the chain: every layer also reads the
  input and every earlier layer, and feeds the output).

Prints milliseconds per step (the best of interleaved rounds) and the ratios
to ``sequential``. Time it alone: the machine has two cores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from neurograph.layered.member import LayeredRun
from neurograph.layered.network import layer_names
from neurograph.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "layered" / "digits.yaml"


def grown_widths(cycles: int) -> tuple[LayeredRun, list[int]]:
    run = LayeredRun(load_scenario(SCENARIO, cycles=cycles))
    for _ in range(cycles):
        run.step()
    return run, [len(run.graph.area_ids(a)) for a in layer_names(run.graph)]


def fixed_run(widths: list[int], skips: str) -> LayeredRun:
    """The digits scenario at a fixed shape: explicit areas, no structural change."""
    names = [f"l{k + 1}" for k in range(len(widths))]
    chain = ["input", *names, "output"]
    if skips == "none":
        pairs = list(zip(chain, chain[1:]))
    else:
        pairs = [(a, b) for i, b in enumerate(chain) for a in chain[:i] if (a, b) != ("input", "output")]
    sets = [
        f"network.areas={[{'name': n, 'size': w} for n, w in zip(names, widths)]}",
        f"network.projections={[f'{a} -> {b}' for a, b in pairs]}",
        "network.stack=null", "width.kind=fixed", "depth.enabled=false",
    ]  # fmt: skip
    return LayeredRun(load_scenario(SCENARIO, sets))


def time_steps(step, n: int) -> float:
    """Seconds per call of ``step`` over ``n`` calls."""
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - t0) / n


def best_of_rounds(steps: dict, n: int, rounds: int) -> dict:
    """Each engine's best seconds per step over ``rounds`` interleaved rounds of ``n`` steps
    (a shared machine slows whole stretches: interleaving spreads that over every engine)."""
    for step in steps.values():  # warm up: first calls compile and allocate
        time_steps(step, 50)
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(rounds):
        for name, step in steps.items():
            best[name] = min(best[name], time_steps(step, n))
    return best


def sequential_step(widths: list[int], x: torch.Tensor, y: torch.Tensor, l1: float, seed: int = 0):
    torch.manual_seed(seed)
    sizes = [x.shape[1], *widths]
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.Tanh()]
    model = nn.Sequential(*layers, nn.Linear(sizes[-1], 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    penalised = [m.weight for m in model if isinstance(m, nn.Linear)][1:]  # weights out of hidden neurons
    rng = np.random.default_rng(seed)

    def step():
        idx = torch.from_numpy(rng.choice(len(x), 32, replace=False))
        loss = F.cross_entropy(model(x[idx]), y[idx])
        if l1:
            loss = loss + l1 * sum(w.abs().sum() for w in penalised)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grow", type=int, default=6000, help="cycles of growth before timing (default 6000)")
    p.add_argument("--steps", type=int, default=400, help="timed steps per engine and round (default 400)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the best is kept (default 5)")
    args = p.parse_args()
    torch.set_num_threads(1)
    grown, widths = grown_widths(args.grow)
    print(f"grown for {args.grow} cycles: widths {widths} (depth {len(widths)})")
    chain = fixed_run(widths, "none")
    steps = {
        "sequential": sequential_step(widths, chain.x, chain.y, chain.scenario.penalty.l1),
        "sequential-no-l1": sequential_step(widths, chain.x, chain.y, 0.0),
        "chain": chain.step,
        "grown": grown.step,
    }
    best = best_of_rounds(steps, args.steps, args.rounds)
    print(f"{'engine':<18}{'ms/step':>10}{'x sequential':>14}   (best of {args.rounds} interleaved rounds)")
    for name, t in best.items():
        print(f"{name:<18}{t * 1e3:>10.3f}{t / best['sequential']:>14.2f}")


if __name__ == "__main__":
    main()
