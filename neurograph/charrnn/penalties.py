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

Each run keeps its own :class:`Penalty` (its parameters, and :meth:`Penalty.start_new`,
which scales a new neuron in the run's graph). :class:`BatchedPenalty` does the
per-cycle tensor work of a whole batch at once, over the padded tensors of
:mod:`neurograph.charrnn.bptt` (``[inputs | outputs | hidden slots]``); members
share the penalty *kind*, and its parameters (``l1``, placement, ``m_min``,
``norm``) live as (B,) tensors. On the CPU the same formulas run compiled,
fused with the optimizer (:mod:`neurograph.kernels.charrnn_update`, fed by
:meth:`BatchedPenalty.kernel_args`).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["Penalty", "MultiplierPenalty", "OutgoingL1Penalty", "NoPenalty", "BatchedPenalty", "build_penalty"]


class Penalty:
    """A run's penalty parameters; ``kind`` names it in :mod:`neurograph.kernels.charrnn_update`."""

    kind = "none"
    trainable: tuple[str, ...] = ("weight", "bias")

    def __init__(self, l1: float = 0.0, placement: str = "gradient") -> None:
        self.l1 = l1
        self.placement = placement

    def grad_scale(self, window: int) -> float:
        """What multiplies ``sign(p)`` in the gradient (0 for the after-update placement)."""
        if not self.l1 or self.placement == "after_update":
            return 0.0
        return self.l1 * (window if self.placement == "gradient_per_step" else 1)

    def after_l1(self) -> float:
        """What multiplies ``sign(p)`` in the post-update step (0 for gradient placements)."""
        return self.l1 if self.l1 and self.placement == "after_update" else 0.0

    def start_new(self, graph, neuron_id: int, threshold: float, fraction: float) -> None:
        """Scale a freshly wired neuron so it starts at ``fraction * threshold``."""


class NoPenalty(Penalty):
    pass


class MultiplierPenalty(Penalty):
    """L1 on hidden multipliers with floor ``m_min`` (first revision)."""

    kind = "multipliers"
    trainable = ("weight", "bias", "multiplier")

    def __init__(self, l1: float, placement: str, m_min: float) -> None:
        super().__init__(l1, placement)
        self.m_min = m_min

    def start_new(self, graph, neuron_id, threshold, fraction):
        graph.neurons[neuron_id].multiplier = fraction * threshold


class OutgoingL1Penalty(Penalty):
    """L1 on each hidden neuron's outgoing readout and recurrent weights.

    ``norm="text"``: ``sum|W_out[:, j]| + sum|W_hh[:, j]|``.
    ``norm="original"``: ``0.5 * (sum|W_out[:, j]| + 4 * sum|W_hh[:, j]| / H)``,
    the original code's balance of readout against recurrent weights.
    """

    kind = "outgoing_l1"

    def __init__(self, l1: float, placement: str, norm: str) -> None:
        super().__init__(l1, placement)
        self.norm = norm

    def parts(self, readout_abs, recurrent_abs, h: int):
        """The two terms of the norm from the readout and recurrent absolute sums."""
        if self.norm == "text":
            return readout_abs, recurrent_abs
        return 0.5 * readout_abs, 2.0 * recurrent_abs / h

    def start_new(self, graph, neuron_id, threshold, fraction):
        hidden, outputs = graph.ids("hidden"), graph.ids("output")
        w_rec, _ = graph.block(hidden, [neuron_id])
        w_out, _ = graph.block(outputs, [neuron_id])
        goal = fraction * threshold
        if self.norm == "text":  # one factor for the whole outgoing vector
            total = np.abs(w_rec).sum() + np.abs(w_out).sum()
            w_rec, w_out = w_rec * goal / total, w_out * goal / total
        else:  # each half of the norm at goal, as the original code scales them
            out_part, rec_part = self.parts(np.abs(w_out).sum(), np.abs(w_rec).sum(), len(hidden))
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


class BatchedPenalty:
    """Scores, gradient terms and post-update steps of B members' penalties."""

    def __init__(self, penalties: list[Penalty], *, window: int, n_chars: int, dtype, device) -> None:
        kinds = {type(p) for p in penalties}
        if len(kinds) != 1:
            names = sorted(k.__name__ for k in kinds)
            raise ValueError(f"members of a batch must share one penalty kind, got {names}")
        self.kind = kinds.pop()
        self.trainable = self.kind.trainable
        self.v = n_chars
        as_t = lambda values: torch.tensor(values, dtype=dtype, device=device)  # noqa: E731
        # (B,) added as scale * sign(p) to the gradient; 0 for members that step after the update
        self.grad_scale = as_t([p.grad_scale(window) for p in penalties])
        self.after_l1 = as_t([p.after_l1() for p in penalties])
        self.m_min = as_t([getattr(p, "m_min", 0.0) for p in penalties])
        self.text_norm = torch.tensor([getattr(p, "norm", "") == "text" for p in penalties], device=device)
        self.n_hidden = as_t([0.0] * len(penalties))  # (B,) the 'original' norm divides by H
        self.any_gradient = any(p.grad_scale(window) for p in penalties)
        self.any_after = any(p.after_l1() for p in penalties)

    def select(self, rows: torch.Tensor) -> None:
        """Keep only batch rows ``rows`` (members leaving the batch)."""
        for name in ("grad_scale", "after_l1", "m_min", "text_norm", "n_hidden"):
            setattr(self, name, getattr(self, name)[rows])

    def kernel_args(self) -> dict:
        """The penalty argument of :func:`neurograph.kernels.charrnn_update.update_batch` (CPU tensors)."""
        return {
            "kind": self.kind.kind,
            "grad_scale": self.grad_scale.numpy(),
            "after_l1": self.after_l1.numpy(),
            "m_min": self.m_min.numpy(),
            "text_norm": self.text_norm.numpy(),
            "n_hidden": self.n_hidden.numpy(),
        }

    # -------------------------------------------------------------- tensors
    def _targets(self, params: dict, hid: slice) -> list[torch.Tensor]:
        if self.kind is MultiplierPenalty:
            return [params["multiplier"][:, hid]]
        if self.kind is OutgoingL1Penalty:
            w = params["weight"]
            return [w[:, self.v : 2 * self.v, hid], w[:, hid, hid]]
        return []

    def scores(self, weight: torch.Tensor, multiplier: torch.Tensor) -> torch.Tensor:
        """(B, Hc) each hidden slot's measure compared with T_D (padding slots: meaningless)."""
        hid = slice(2 * self.v, weight.shape[1])
        if self.kind is MultiplierPenalty:
            return multiplier[:, hid]
        if self.kind is OutgoingL1Penalty:
            out_abs = weight[:, self.v : 2 * self.v, hid].abs().sum(1)
            rec_abs = weight[:, hid, hid].abs().sum(1)
            original = 0.5 * out_abs + 2.0 * rec_abs / self.n_hidden.unsqueeze(1)
            return torch.where(self.text_norm.unsqueeze(1), out_abs + rec_abs, original)
        return torch.full_like(multiplier[:, hid], float("inf"))

    def add_gradient(self, params: dict, grads: dict) -> None:
        """``grad += scale_b * sign(p)`` on the penalised parameters (gradient placements)."""
        if not self.any_gradient:
            return
        hid = slice(2 * self.v, params["weight"].shape[1])
        for p, g in zip(self._targets(params, hid), self._targets(grads, hid)):
            g.add_(torch.sign(p) * _rows(self.grad_scale, p))

    def after_update(self, params: dict, alive: torch.Tensor) -> None:
        """``p -= l1_b * sign(p)`` (after-update placement), then the multipliers' floor."""
        hid = slice(2 * self.v, params["weight"].shape[1])
        if self.any_after:
            for p in self._targets(params, hid):
                p.sub_(torch.sign(p) * _rows(self.after_l1, p))
        if self.kind is MultiplierPenalty:
            m = params["multiplier"][:, hid]
            floor = torch.maximum(m, self.m_min.unsqueeze(1))
            m.copy_(torch.where(alive[:, hid] > 0, floor, m))  # padding stays 0


def _rows(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) broadcast against a (B, ...) tensor."""
    return values.view(-1, *([1] * (like.dim() - 1)))
