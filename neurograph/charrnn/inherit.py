"""New neurons that inherit the wiring of a deleted one (the papers' future work).

A :class:`~neurograph.graph.Fossil` in the graph's graveyard holds a deleted
neuron's incoming and outgoing weights, bias and multiplier at death. An
inheriting neuron takes them back: connections to neurons that still live are
restored (its own self-connection too), connections to neurons that are gone
are dropped, neurons born since get no connection. Optional multiplicative
noise ``w * (1 + noise * N(0, 1))`` perturbs every restored weight. The
penalty then rescales it to start at the threshold like any new neuron.
Lineage is recorded through ``inherited_from`` and ``generation``.
"""

from __future__ import annotations

import numpy as np

from neurograph.graph import Fossil, Graph

__all__ = ["choose_fossil", "add_inherited"]

CHOICES = ("recent", "random", "strongest")


def choose_fossil(graph: Graph, choice: str, rng: np.random.Generator, *, area: str | None = None) -> Fossil | None:
    """A hidden fossil from the graveyard (None if there is none); of ``area`` only, if given.

    ``recent``: the last deleted; ``random``: uniform; ``strongest``: largest
    L1 norm of outgoing weights at death.
    """
    fossils = [f for f in graph.graveyard if f.neuron.role == "hidden" and area in (None, f.neuron.area)]
    if not fossils:
        return None
    if choice == "recent":
        return fossils[-1]
    if choice == "random":
        return fossils[int(rng.integers(len(fossils)))]
    if choice == "strongest":
        return max(fossils, key=lambda f: sum(abs(w) for w in f.outgoing.values()))
    raise ValueError(f"inheritance choice must be one of {CHOICES}, got {choice!r}")


def add_inherited(
    graph: Graph, fossil: Fossil, *, rng: np.random.Generator, noise: float = 0.0, consume: bool = True, reason: str = ""
) -> int:
    """Add a hidden neuron wired like ``fossil``; returns its id."""
    dead = fossil.neuron
    new = graph.add_neuron(
        "hidden", bias=dead.bias, multiplier=dead.multiplier, inherited_from=dead.id, reason=reason
    ).id
    incoming = {s: w for s, w in fossil.incoming.items() if s in graph.neurons}
    if dead.id in fossil.incoming:  # its self-connection becomes the heir's
        incoming[new] = fossil.incoming[dead.id]
    outgoing = {t: w for t, w in fossil.outgoing.items() if t in graph.neurons and t != dead.id}
    _wire(graph, [new], list(incoming), np.array([list(incoming.values())]), rng, noise, dead.id)
    _wire(graph, list(outgoing), [new], np.array([[w] for w in outgoing.values()]), rng, noise, dead.id)
    if consume:
        graph.graveyard.remove(fossil)
    return new


def _wire(graph: Graph, targets, sources, weights, rng, noise, dead_id: int) -> None:
    if not targets or not sources:
        return
    if noise:
        weights = weights * (1.0 + noise * rng.standard_normal(weights.shape))
    graph.wire(targets, sources, weights, inherited_from=dead_id, reason="inherit")
