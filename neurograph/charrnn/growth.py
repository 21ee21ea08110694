"""Structural rules: keep k sub-threshold "reserve" neurons, add and delete.

Each cycle, after the parameter update, the rule looks at every hidden
neuron's score (see :mod:`neurograph.charrnn.penalties`). With more than k at or below
the threshold T_D, the selector puts the excess at risk and each is deleted
with probability P_del; with fewer than k, one neuron is added with
probability P_add. Independently, a spontaneous addition happens with
probability ``p_spontaneous`` (the original code: 1e-4). At most one addition
per cycle, never above ``max_hidden``, and the last hidden neuron is never
deleted. :class:`Fixed` never changes structure.

Rules only decide (:class:`Plan`); the training loop applies plans through
graph operations, so every change lands in the event log.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurograph.charrnn.selectors import Selector, build_selector

__all__ = ["Plan", "Reserve", "Fixed", "build_rule", "RTOL"]

# Scores within this relative distance of T_D count as at the threshold: a new
# neuron scaled to exactly T_D must not miss the reserve by a rounding error.
RTOL = 1e-6


@dataclass
class Plan:
    delete: list[int] = field(default_factory=list)  # hidden neuron ids
    add: int = 0
    reasons: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.delete) or self.add > 0


class Fixed:
    """No structural change (fixed-size baselines)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def below(self, scores: np.ndarray) -> np.ndarray:
        return scores <= self.threshold * (1 + RTOL)

    def decide(self, ids, scores, ages, rng) -> Plan:
        return Plan()


class Reserve(Fixed):
    def __init__(
        self,
        *,
        k: int,
        threshold: float,
        p_add: float,
        p_del: float,
        p_spontaneous: float,
        max_hidden: int | None,
        selector: Selector,
    ) -> None:
        super().__init__(threshold)
        self.k, self.p_add, self.p_del = k, p_add, p_del
        self.p_spontaneous, self.max_hidden = p_spontaneous, max_hidden
        self.selector = selector

    def decide(self, ids: np.ndarray, scores: np.ndarray, ages: np.ndarray, rng: np.random.Generator) -> Plan:
        """Plan for one cycle. ids, scores, ages: (H,) per hidden neuron."""
        plan = Plan()
        mask = self.below(scores)
        n_below = int(np.count_nonzero(mask))
        excess = min(n_below - self.k, ids.size - 1)
        if excess > 0:
            below = np.flatnonzero(mask)
            at_risk = self.selector.pick(ids[below], ages[below], excess, rng)
            plan.delete = [int(i) for i in at_risk[rng.random(excess) < self.p_del]]
            plan.reasons["delete"] = f"{n_below} below threshold > k={self.k}"
        elif n_below < self.k and rng.random() < self.p_add:
            plan.add = 1
            plan.reasons["add"] = f"{n_below} below threshold < k={self.k}"
        if not plan.add and self.p_spontaneous > 0 and rng.random() < self.p_spontaneous:
            plan.add = 1
            plan.reasons["add"] = "spontaneous"
        room = self.max_hidden is None or ids.size - len(plan.delete) < self.max_hidden
        if plan.add and not room:
            plan.add = 0
        return plan


def build_rule(config) -> Fixed:
    """Rule of a structure section."""
    if config.kind == "fixed":
        return Fixed(config.threshold)
    return Reserve(
        k=config.k,
        threshold=config.threshold,
        p_add=config.p_add,
        p_del=config.p_del,
        p_spontaneous=config.p_spontaneous,
        max_hidden=config.max_hidden,
        selector=build_selector(config.selector),
    )
