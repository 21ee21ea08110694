"""A network built by hand, trained, then read back from its run folder.

Three hidden neurons in a chain: the inputs feed h0, h0 feeds h1, h1 feeds
h2, and only h2 drives the outputs (each also feeds back on itself). The
outgoing-L1 rule then grows the network from there; new neurons are wired to
everything, as in the papers.

Run: ``python examples/hand_built_graph.py [--cycles N] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

import neurograph

ALPHABET = "ab()"  # the easy task's characters, in the order of its input and output neurons


def chain_graph(rng: np.random.Generator) -> neurograph.Graph:
    g = neurograph.Graph()
    inputs = [g.add_neuron("input", tags=[f"char:{c}"]) for c in ALPHABET]
    outputs = [g.add_neuron("output", tags=[f"char:{c}"]) for c in ALPHABET]
    chain = [g.add_neuron("hidden") for _ in range(3)]
    g.wire([chain[0]], inputs, rng.standard_normal((1, len(inputs))) * 0.1)
    for a, b in zip(chain, chain[1:]):
        g.connect(a, b, 0.5)
    for h in chain:
        g.connect(h, h, 0.5)
    g.wire(outputs, [chain[-1]], rng.standard_normal((len(outputs), 1)) * 0.1)
    return g


def main(argv: list[str] | None = None) -> dict:
    args = _arguments(argv)
    scenario = neurograph.Scenario(
        name="chain",
        structure=neurograph.OutgoingL1Rule(max_hidden=20),
        phases=[neurograph.Phase(task=neurograph.EasyTask(), cycles=args.cycles)],
    )  # the optimizer defaults to the outgoing-L1 revision's RMSProp
    out = args.out or Path(tempfile.mkdtemp(prefix="neurograph-chain-")) / "run"
    summary = neurograph.train(scenario, out=out, graph=chain_graph(np.random.default_rng(0)), force=True)

    # read the run folder back
    graph, reserve = neurograph.load_graph(neurograph.graph_file(out))
    adds = [e for e in neurograph.read_events(out) if e.kind == "add"]
    print(f"{summary['cycles']} cycles: loss {summary['loss']:.3f} nats/char (optimum {summary['optimum']:.3f}), "
          f"{len(adds)} neurons added, {len(graph.hidden)} hidden now, reserve {reserve}")  # fmt: skip
    for h in graph.hidden:
        print(f"  {h.label}: born at cycle {h.born}, {len(graph.incoming(h))} in, {len(graph.outgoing(h))} out")
    return summary


def _arguments(argv):
    p = argparse.ArgumentParser(description="Train a hand-built chain of three hidden neurons.")
    p.add_argument("--cycles", type=int, default=400, help="training cycles (default: 400)")
    p.add_argument("--out", type=Path, help="run folder (default: a temporary folder)")
    return p.parse_args(argv)


if __name__ == "__main__":
    main()
