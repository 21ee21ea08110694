"""Structural penalties of a batch: :mod:`neurograph.charrnn.penalties` over padded tensors.

Every member keeps its own :class:`~neurograph.charrnn.penalties.Penalty` (its rule
reads the threshold from it, and :meth:`~neurograph.charrnn.penalties.Penalty.start_new`
scales its new neurons in its graph). This module does the per-cycle tensor
work of all of them at once. Members share the penalty *kind*; its parameters
(``l1``, placement, ``m_min``, ``norm``) may differ and live as (B,) tensors.
Each operation is the member's own formula, so a member's numbers are the
single run's.

Tensors follow :mod:`neurograph.charrnn.bptt`'s layout
``[inputs | outputs | hidden slots]``; ``alive`` (B, N) is 1 where a slot
holds a neuron.
"""

from __future__ import annotations

import torch

from neurograph.charrnn.penalties import MultiplierPenalty, NoPenalty, OutgoingL1Penalty, Penalty

__all__ = ["BatchedPenalty"]

_KINDS = (MultiplierPenalty, OutgoingL1Penalty, NoPenalty)


class BatchedPenalty:
    """Scores, gradient terms and post-update steps of B members' penalties."""

    def __init__(self, penalties: list[Penalty], *, window: int, n_chars: int, dtype, device) -> None:
        kinds = {type(p) for p in penalties}
        if len(kinds) != 1 or next(iter(kinds)) not in _KINDS:
            names = sorted(k.__name__ for k in kinds)
            raise ValueError(f"members of a batch must share one penalty kind, got {names}")
        self.kind = kinds.pop()
        self.trainable = self.kind.trainable
        self.v = n_chars
        as_t = lambda values: torch.tensor(values, dtype=dtype, device=device)  # noqa: E731
        # (B,) added as scale * sign(p) to the gradient; 0 for members that step after the update
        self.grad_scale = as_t([_grad_scale(p, window) for p in penalties])
        self.after_l1 = as_t([p.l1 if p.l1 and p.placement == "after_update" else 0.0 for p in penalties])
        self.m_min = as_t([getattr(p, "m_min", 0.0) for p in penalties])
        self.text_norm = torch.tensor([getattr(p, "norm", "") == "text" for p in penalties], device=device)
        self.n_hidden = as_t([0.0] * len(penalties))  # (B,) the 'original' norm divides by H
        self.any_gradient = any(_grad_scale(p, window) for p in penalties)
        self.any_after = any(p.l1 and p.placement == "after_update" for p in penalties)

    def select(self, rows: torch.Tensor) -> None:
        """Keep only batch rows ``rows`` (members leaving the batch)."""
        for name in ("grad_scale", "after_l1", "m_min", "text_norm", "n_hidden"):
            setattr(self, name, getattr(self, name)[rows])

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


def _grad_scale(p: Penalty, window: int) -> float:
    if not p.l1 or p.placement == "after_update":
        return 0.0
    return p.l1 * (window if p.placement == "gradient_per_step" else 1)


def _rows(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) broadcast against a (B, ...) tensor."""
    return values.view(-1, *([1] * (like.dim() - 1)))
