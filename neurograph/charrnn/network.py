"""Build the char-level RNN as a graph, and wire new hidden neurons.

One input and one output neuron per character (tagged ``char:<c>``), hidden
neurons fully connected from the inputs and to each other (self included),
and to every output. Weights are ``N(0, std^2)`` (min-char-rnn: randn*0.01),
biases zero.
"""

from __future__ import annotations

import numpy as np

from neurograph.graph import Graph

__all__ = ["build_char_rnn", "add_hidden"]


def build_char_rnn(
    alphabet: str,
    n_hidden: int,
    *,
    rng: np.random.Generator,
    std: float = 0.01,
    multiplier: float = 1.0,
    graveyard_size: int = 64,
) -> Graph:
    """A fresh char-RNN graph: V inputs, V outputs, ``n_hidden`` hidden."""
    graph = Graph(graveyard_size=graveyard_size)
    for role in ("input", "output"):
        for ch in alphabet:
            graph.add_neuron(role, tags=[f"char:{ch}"], reason="build")
    hidden = [graph.add_neuron("hidden", multiplier=multiplier, reason="build").id for _ in range(n_hidden)]
    inputs, outputs = graph.ids("input"), graph.ids("output")
    graph.wire(hidden, inputs + hidden, rng.standard_normal((n_hidden, len(inputs) + n_hidden)) * std)
    graph.wire(outputs, hidden, rng.standard_normal((len(outputs), n_hidden)) * std)
    return graph


def add_hidden(graph: Graph, *, rng: np.random.Generator, std: float, reason: str = "") -> int:
    """Add one hidden neuron wired like the others; returns its id.

    Incoming from every input and hidden neuron (itself included), outgoing
    to every other hidden neuron and every output.
    """
    new = graph.add_neuron("hidden", reason=reason).id
    others = [i for i in graph.ids("hidden") if i != new]
    sources = graph.ids("input") + others + [new]
    graph.wire([new], sources, rng.standard_normal((1, len(sources))) * std)
    targets = others + graph.ids("output")
    graph.wire(targets, [new], rng.standard_normal((len(targets), 1)) * std)
    return new
