"""Deletion selectors: which sub-threshold neurons are put at risk of deletion.

When more than k hidden neurons are below the deletion threshold, the excess
``n`` of them are chosen by a selector, and each chosen one is then deleted
with probability P_del. ``uniform`` is the papers' rule (the original code
shuffles the sub-threshold neurons and spares k of them); the others are the
age-biased deletion that both papers propose as future work. Age is cycles
since birth, read from the graph.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Selector", "Uniform", "Oldest", "Youngest", "AgeWeighted", "build_selector"]


class Selector:
    """Pick ``n`` of ``candidates`` (neuron ids) given their ``ages`` (cycles)."""

    def pick(self, candidates: np.ndarray, ages: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


class Uniform(Selector):
    def pick(self, candidates, ages, n, rng):
        return rng.choice(candidates, size=n, replace=False)


class Oldest(Selector):
    def pick(self, candidates, ages, n, rng):
        # stable sort on (-age, id): ties broken by id, deterministic
        order = np.lexsort((candidates, -ages))
        return candidates[order[:n]]


class Youngest(Selector):
    def pick(self, candidates, ages, n, rng):
        order = np.lexsort((candidates, ages))
        return candidates[order[:n]]


class AgeWeighted(Selector):
    """Sequential draws without replacement, P(i) proportional to age_i**alpha.

    Ages are floored at 1 cycle so a newborn has a finite weight for alpha < 0.
    """

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha

    def weights(self, ages: np.ndarray) -> np.ndarray:
        w = np.maximum(ages, 1).astype(np.float64) ** self.alpha
        return w / w.sum()

    def pick(self, candidates, ages, n, rng):
        return rng.choice(candidates, size=n, replace=False, p=self.weights(ages))


def build_selector(config) -> Selector:
    """Selector from its scenario section (``kind`` plus its parameters)."""
    if config.kind == "uniform":
        return Uniform()
    if config.kind == "oldest":
        return Oldest()
    if config.kind == "youngest":
        return Youngest()
    if config.kind == "age_weighted":
        return AgeWeighted(config.alpha)
    raise ValueError(f"unknown selector kind {config.kind!r}")
