"""Structural penalties: what drives neurons below the deletion threshold.

A penalty owns three things of one paper revision:

- ``scores``: each hidden neuron's measure compared with T_D (its multiplier,
  or the L1 norm of its outgoing weights);
- where its L1 term enters training (``placement``):
  ``gradient_per_step`` adds ``steps * l1 * sign(p)`` to the gradient (the
  multiplier code added the term at each of the window's 40 steps),
  ``gradient`` adds it once per window (the loss-term reading of the texts),
  ``after_update`` subtracts ``l1 * sign(p)`` after the optimizer step
  (the outgoing-L1 code);
- how a new neuron is scaled to start at the threshold.

All work on compiled tensors (``[inputs | outputs | hidden]`` order).
"""

from __future__ import annotations

import numpy as np
import torch

from neurograph.compile import Compiled

__all__ = ["Penalty", "MultiplierPenalty", "OutgoingL1Penalty", "NoPenalty", "build_penalty"]


class Penalty:
    trainable: tuple[str, ...] = ("weight", "bias")

    def __init__(self, l1: float = 0.0, placement: str = "gradient") -> None:
        self.l1 = l1
        self.placement = placement

    def scores(self, c: Compiled) -> torch.Tensor:
        """(H,) per hidden neuron, compared with the deletion threshold."""
        return torch.full((c.n_hidden,), float("inf"), dtype=c.weight.dtype, device=c.weight.device)

    def _targets(self, c: Compiled, params: dict) -> list[torch.Tensor]:
        return []

    def add_gradient(self, c: Compiled, grads: dict[str, torch.Tensor], steps: int) -> None:
        """Add the L1 term to the gradients (gradient placements only)."""
        if self.l1 == 0 or self.placement == "after_update":
            return
        scale = self.l1 * (steps if self.placement == "gradient_per_step" else 1)
        for p, g in zip(self._targets(c, c.params), self._targets(c, grads)):
            g.add_(torch.sign(p), alpha=scale)

    def after_update(self, c: Compiled) -> None:
        """Proximal-style L1 step after the update, and any clamping."""
        if self.l1 == 0 or self.placement != "after_update":
            return
        for p in self._targets(c, c.params):
            p.sub_(torch.sign(p), alpha=self.l1)

    def start_new(self, graph, neuron_id: int, threshold: float, fraction: float) -> None:
        """Scale a freshly wired neuron so it starts at ``fraction * threshold``."""


class NoPenalty(Penalty):
    pass


class MultiplierPenalty(Penalty):
    """L1 on hidden multipliers with floor ``m_min`` (first revision)."""

    trainable = ("weight", "bias", "multiplier")

    def __init__(self, l1: float, placement: str, m_min: float) -> None:
        super().__init__(l1, placement)
        self.m_min = m_min

    def scores(self, c):
        return c.multiplier[c.hidden]

    def _targets(self, c, params):
        return [params["multiplier"][c.hidden]]

    def after_update(self, c):
        super().after_update(c)
        c.multiplier[c.hidden].clamp_(min=self.m_min)

    def start_new(self, graph, neuron_id, threshold, fraction):
        graph.neurons[neuron_id].multiplier = fraction * threshold


class OutgoingL1Penalty(Penalty):
    """L1 on each hidden neuron's outgoing readout and recurrent weights.

    ``norm="text"``: ``sum|W_out[:, j]| + sum|W_hh[:, j]|``.
    ``norm="original"``: ``0.5 * (sum|W_out[:, j]| + 4 * sum|W_hh[:, j]| / H)``,
    the original code's balance of readout against recurrent weights.
    """

    def __init__(self, l1: float, placement: str, norm: str) -> None:
        super().__init__(l1, placement)
        self.norm = norm

    def _parts(self, readout_abs: torch.Tensor, recurrent_abs: torch.Tensor, h: int):
        if self.norm == "text":
            return readout_abs, recurrent_abs
        return 0.5 * readout_abs, 2.0 * recurrent_abs / h

    def scores(self, c):
        w = c.weight
        out_part, rec_part = self._parts(
            w[c.outputs, c.hidden].abs().sum(0), w[c.hidden, c.hidden].abs().sum(0), c.n_hidden
        )
        return out_part + rec_part

    def _targets(self, c, params):
        w = params["weight"]
        return [w[c.outputs, c.hidden], w[c.hidden, c.hidden]]

    def start_new(self, graph, neuron_id, threshold, fraction):
        hidden, outputs = graph.ids("hidden"), graph.ids("output")
        w_rec, _ = graph.block(hidden, [neuron_id])
        w_out, _ = graph.block(outputs, [neuron_id])
        goal = fraction * threshold
        if self.norm == "text":  # one factor for the whole outgoing vector
            total = np.abs(w_rec).sum() + np.abs(w_out).sum()
            w_rec, w_out = w_rec * goal / total, w_out * goal / total
        else:  # each half of the norm at goal, as the original code scales them
            out_part, rec_part = self._parts(np.abs(w_out).sum(), np.abs(w_rec).sum(), len(hidden))
            w_out, w_rec = w_out * goal / (2 * out_part), w_rec * goal / (2 * rec_part)
        graph.set_weights(hidden, [neuron_id], w_rec)
        graph.set_weights(outputs, [neuron_id], w_out)


def build_penalty(config) -> Penalty:
    """Penalty of a structure section (``multipliers``, ``outgoing_l1`` or ``fixed``)."""
    kind = config.kind if config.kind != "fixed" else config.penalty
    if kind == "multipliers":
        return MultiplierPenalty(config.l1, config.l1_placement, config.m_min)
    if kind == "outgoing_l1":
        return OutgoingL1Penalty(config.l1, config.l1_placement, config.norm)
    return NoPenalty()
