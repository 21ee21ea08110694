"""Deletion selectors: which sub-threshold neurons are put at risk of deletion.

When more than k hidden neurons are below the deletion threshold, the excess
``n`` of them are chosen by a selector, and each chosen one is then deleted
with probability P_del. ``uniform`` is the papers' rule (the original code
shuffles the sub-threshold neurons and spares k of them); the others are the
age-biased deletion that both papers propose as future work. Age is cycles
since birth, read from the graph.

Selectors are chosen by ``structure.selector.kind``: :data:`SELECTORS` maps
each kind to its config section and builder. The built-in kinds are
registered with their sections (:mod:`neurograph.charrnn.scenario`); user
code adds its own with :func:`register_selector`, and a scenario names it
like any other (see ``examples/custom_selector.py``).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from pydantic import BaseModel

from neurograph.registry import Registry

__all__ = ["SELECTORS", "Selector", "Uniform", "Oldest", "Youngest", "AgeWeighted", "build_selector", "register_selector"]

SELECTORS = Registry("selector")  # structure.selector.kind -> (section, build(section) -> Selector)


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
    return SELECTORS.build(config)


def register_selector(config: type[BaseModel], build: Callable[[BaseModel], Selector], *, replace: bool = False):
    """Make ``structure.selector.kind: <config's kind>`` build ``build(section)``; returns ``config``.

    ``config``: a :class:`~neurograph.schema.Strict` section whose ``kind``
    field is ``Literal["name"] = "name"``, plus the selector's parameters
    (with bounds and descriptions, as every section). ``build`` returns a
    :class:`Selector`, whose ``pick`` must draw only from the ``rng`` it is
    given (a run stays a function of its seed).

    >>> from typing import Literal
    >>> from neurograph.schema import Strict
    >>> class LowestId(Strict):
    ...     kind: Literal["lowest_id"] = "lowest_id"
    >>> class PickLowest(Selector):
    ...     def pick(self, candidates, ages, n, rng):
    ...         return np.sort(candidates)[:n]
    >>> _ = register_selector(LowestId, lambda section: PickLowest())
    >>> build_selector(LowestId()).pick(np.array([7, 3, 5]), np.zeros(3), 2, None)
    array([3, 5])
    >>> SELECTORS.unregister("lowest_id")
    """
    return SELECTORS.register(config, build, replace=replace)
