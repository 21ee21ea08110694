"""A deletion selector of your own, chosen with --set like a built-in one.

Registers the selector kind ``protect_young``: when more neurons are below
the deletion threshold than the k in reserve, the excess put at risk are
drawn uniformly among those at least ``grace`` cycles old; younger ones only
when there are not enough old ones. Then it trains the flagship scenario with
``--set structure.selector.kind=protect_young --set structure.selector.grace=200``.

Run: ``python examples/custom_selector.py [--cycles N] [--grace N] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

import neurograph

SWITCH = Path(__file__).resolve().parents[1] / "scenarios" / "switch.yaml"


class ProtectYoung(neurograph.Strict):
    """Uniformly among neurons at least ``grace`` cycles old; younger ones last."""

    kind: Literal["protect_young"] = "protect_young"
    grace: int = Field(500, ge=0, le=10**9, description="cycles a new neuron is spared")


class ProtectYoungSelector(neurograph.Selector):
    def __init__(self, grace: int) -> None:
        self.grace = grace

    def pick(self, candidates: np.ndarray, ages: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        old, young = candidates[ages >= self.grace], candidates[ages < self.grace]
        first = rng.choice(old, size=min(n, old.size), replace=False)  # draw from the rng given: reproducible
        rest = np.sort(young)[: n - first.size]
        return np.concatenate([first, rest])


neurograph.register_selector(ProtectYoung, lambda section: ProtectYoungSelector(section.grace))


def main(argv: list[str] | None = None) -> dict:
    args = _arguments(argv)
    overrides = ["structure.selector.kind=protect_young", f"structure.selector.grace={args.grace}"]
    out = args.out or Path(tempfile.mkdtemp(prefix="neurograph-selector-")) / "run"
    summary = neurograph.train(SWITCH, out=out, overrides=overrides, cycles=args.cycles, force=True)
    print(f"{summary['cycles']} cycles with protect_young (grace {args.grace}): "
          f"+{summary['adds']} / -{summary['deletes']} neurons, {summary['hidden']} hidden; run folder {out}")  # fmt: skip
    return summary


def _arguments(argv):
    p = argparse.ArgumentParser(description="The flagship scenario with a selector that spares young neurons.")
    p.add_argument("--cycles", type=int, default=600, help="training cycles (default: 600)")
    p.add_argument("--grace", type=int, default=200, help="cycles a new neuron is spared (default: 200)")
    p.add_argument("--out", type=Path, help="run folder (default: a temporary folder)")
    return p.parse_args(argv)


if __name__ == "__main__":
    main()
