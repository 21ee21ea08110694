"""Build the char-level RNN as a graph, and wire new hidden neurons.

One input and one output neuron per character (tagged ``char:<c>``, or
``char:U+002C`` for a comma, a control or other unprintable character: a
tag is one flat string in GraphML, tags joined by commas), hidden
neurons fully connected from the inputs and to each other (self included),
and to every output. Weights are ``N(0, std^2)`` (min-char-rnn: randn*0.01),
biases zero. :func:`check_char_rnn` says whether a graph built by hand can be
trained as a char-RNN (``Trainer(scenario, graph=g)``).
"""

from __future__ import annotations

import numpy as np

from neurograph.graph import Graph

__all__ = ["build_char_rnn", "add_hidden", "check_char_rnn", "char_tag"]

# The connections a char-RNN computes with: the trainer's tensors hold no others.
_KINDS = {("input", "hidden"), ("hidden", "hidden"), ("hidden", "output")}


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
            graph.add_neuron(role, tags=[char_tag(ch)], reason="build")
    hidden = [graph.add_neuron("hidden", multiplier=multiplier, reason="build").id for _ in range(n_hidden)]
    inputs, outputs = graph.ids("input"), graph.ids("output")
    graph.wire(hidden, inputs + hidden, rng.standard_normal((n_hidden, len(inputs) + n_hidden)) * std)
    graph.wire(outputs, hidden, rng.standard_normal((len(outputs), n_hidden)) * std)
    return graph


def char_tag(ch: str) -> str:
    """The tag of a character's input and output neurons: ``char:a``, or ``char:U+000A`` when the
    character cannot stand in a tag as itself (a comma separates tags; control characters are not XML)."""
    return f"char:{ch}" if ch.isprintable() and ch != "," else f"char:U+{ord(ch):04X}"


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


def check_char_rnn(graph: Graph, alphabet: str) -> None:
    """ValueError unless ``graph`` can be trained as a char-RNN over ``alphabet``.

    It needs one input and one output neuron per character, in alphabet order
    by id (a ``char:<c>`` tag, when present, must name that character), at
    least one hidden neuron, connections only input -> hidden, hidden ->
    hidden and hidden -> output (others would be silently ignored), and
    ``graph.cycle == 0``: the trainer counts cycles, ages and events from 0.
    """
    v = len(alphabet)
    inputs, outputs, hidden = graph.inputs, graph.outputs, graph.hidden
    if len(inputs) != v or len(outputs) != v:
        raise ValueError(
            f"graph: the alphabet {alphabet[:24]!r} has {v} characters, so the graph needs {v} input and {v} output "
            f"neurons (one per character, in alphabet order by id); it has {len(inputs)} and {len(outputs)}"
        )
    for role, neurons in (("input", inputs), ("output", outputs)):
        for ch, n in zip(alphabet, neurons):
            named = [t for t in n.tags if t.startswith("char:")]
            if named and named[0] not in (char_tag(ch), f"char:{ch}"):
                raise ValueError(f"graph: {role} {n.label} is tagged {named[0]} but stands for {ch!r} in the alphabet")
    if not hidden:
        raise ValueError("graph: needs at least one hidden neuron")
    if graph.cycle != 0:
        raise ValueError(f"graph: its cycle is {graph.cycle}; a trainer starts from a graph at cycle 0")
    for c in graph.connections():
        roles = (graph.neurons[c.source].role, graph.neurons[c.target].role)
        if roles not in _KINDS:
            raise ValueError(
                f"graph: connection {graph.neurons[c.source].label} -> {graph.neurons[c.target].label} is "
                f"{roles[0]} -> {roles[1]}; a char-RNN has only input -> hidden, hidden -> hidden and hidden -> output"
            )
