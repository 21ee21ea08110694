"""Optimizers whose per-parameter memories follow neurons across structural edits.

Each optimizer updates a dict of parameter tensors in place from a dict of
gradients, masking updates with the connection mask so that absent
connections stay absent. After a structural edit, :meth:`Optimizer.remap`
moves every memory with the :class:`~neurograph.compile.Remap` of the edit:
surviving neurons keep their memories, new neurons start at ``memory_init``.

- :class:`Adagrad`: min-char-rnn's update, ``mem += g^2; p -= lr g / sqrt(mem + 1e-8)``,
  gradients clipped to +-``grad_clip`` first (the multiplier revision: lr 0.1, clip 5).
- :class:`RMSProp`: ``mem += decay (g^2 - mem); delta = -lr g / sqrt(mem + 1e-8)``,
  each update clipped to +-``update_clip`` (the outgoing-L1 revision: decay 0.01,
  lr 0.01, update clip 0.01, no gradient clip).
- :class:`Adam`: standard Adam with bias correction (the URN paper).

``step(..., l1=...)`` adds an L1 subgradient ``coef * sign(p)`` to a
parameter's gradient before the update (the URN's c_W and c_syn terms). Adam
does that, and its whole update, in one pass on the CPU
(:func:`neurograph.kernels.adam_l1.adam_l1`) when the tensors allow it.
"""

from __future__ import annotations

import torch

from neurograph.compile import AXES, Remap
from neurograph.kernels.adam_l1 import adam_l1, fused_available

__all__ = ["Optimizer", "Adagrad", "RMSProp", "Adam", "build_optimizer"]

_EPS = 1e-8


class Optimizer:
    """Base: memories keyed by (memory name, parameter name)."""

    kind = ""
    memory_names: tuple[str, ...] = ()

    def __init__(self, *, lr: float, grad_clip: float | None = None, memory_init: float = 0.0) -> None:
        self.lr = lr
        self.grad_clip = grad_clip
        self.memory_init = memory_init
        self.state: dict[str, dict[str, torch.Tensor]] = {name: {} for name in self.memory_names}
        self.steps = 0

    def _memory(self, name: str, key: str, like: torch.Tensor) -> torch.Tensor:
        mem = self.state[name].get(key)
        if mem is None:
            mem = self.state[name][key] = torch.full_like(like, self.memory_init if name != "m" else 0.0)
        return mem

    def step(
        self,
        params: dict[str, torch.Tensor],
        grads: dict[str, torch.Tensor],
        masks: dict,
        l1: dict[str, torch.Tensor | float] | None = None,
    ) -> dict[str, float]:
        """Update ``params`` in place. ``masks[name]`` (same shape or None) gates updates;
        ``l1[name]`` (a number or a tensor shaped like the parameter) adds ``l1 * sign(p)``
        to that parameter's gradient. Returns each ``l1`` penalty, ``sum l1 |p|``, of
        the parameters before the update."""
        self.steps += 1
        penalties = {}
        for key, p in params.items():
            g, coef, mask = grads[key], (l1 or {}).get(key), masks.get(key)
            if coef is not None:
                fused = self._fused(key, p, g, coef, mask)
                if fused is not None:
                    penalties[key] = fused
                    continue
                penalties[key] = float((p.abs() * coef).sum())
                g = g + coef * torch.sign(p)
            if self.grad_clip is not None:
                g = g.clamp(-self.grad_clip, self.grad_clip)
            delta = self._delta(key, g)
            p.add_(delta if mask is None else delta * mask)
        return penalties

    def _fused(self, key, p, g, coef, mask) -> float | None:
        """The whole update with L1 in one pass, returning the penalty; None where not available."""
        return None

    def _delta(self, key: str, g: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def settings(self) -> dict:
        """Hyper-parameters and step count, for compiled kernels (:mod:`neurograph.kernels.charrnn_update`)."""
        return {"kind": self.kind, "lr": self.lr, "grad_clip": self.grad_clip, "step": self.steps}

    def memories(self, params: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
        """Each parameter's (first, second) memories, created at their initial value if new."""
        names = self.memory_names
        return {
            key: (self._memory(names[0], key, p), self._memory(names[1], key, p) if len(names) > 1 else None)
            for key, p in params.items()
        }

    def remap(self, remap: Remap) -> None:
        """Move every memory along a structural edit (new entries: ``memory_init``)."""
        for name, memories in self.state.items():
            fill = self.memory_init if name != "m" else 0.0
            for key, mem in memories.items():
                memories[key] = remap.apply(mem, AXES[key], fill=fill)


class Adagrad(Optimizer):
    kind = "adagrad"
    memory_names = ("sq",)

    def _delta(self, key, g):
        mem = self._memory("sq", key, g)
        mem.addcmul_(g, g)
        return -self.lr * g / torch.sqrt(mem + _EPS)


class RMSProp(Optimizer):
    kind = "rmsprop"
    memory_names = ("sq",)

    def __init__(self, *, lr: float, decay: float, update_clip: float | None = None, **kw) -> None:
        super().__init__(lr=lr, **kw)
        self.decay = decay
        self.update_clip = update_clip

    def settings(self) -> dict:
        return {**super().settings(), "decay": self.decay, "update_clip": self.update_clip}

    def _delta(self, key, g):
        mem = self._memory("sq", key, g)
        mem.add_(self.decay * (g * g - mem))
        delta = -self.lr * g / torch.sqrt(mem + _EPS)
        if self.update_clip is not None:
            delta.clamp_(-self.update_clip, self.update_clip)
        return delta


class Adam(Optimizer):
    kind = "adam"
    memory_names = ("m", "v")

    def __init__(self, *, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, **kw) -> None:
        super().__init__(lr=lr, **kw)
        self.betas, self.eps = betas, eps

    def settings(self) -> dict:
        return {**super().settings(), "beta1": self.betas[0], "beta2": self.betas[1], "eps": self.eps}

    def _delta(self, key, g):
        b1, b2 = self.betas
        m, v = self._memory("m", key, g), self._memory("v", key, g)
        m.mul_(b1).add_(g, alpha=1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        mhat = m / (1 - b1**self.steps)
        vhat = v / (1 - b2**self.steps)
        return -self.lr * mhat / (vhat.sqrt() + self.eps)

    def _fused(self, key, p, g, coef, mask):
        coef_t = coef if isinstance(coef, torch.Tensor) else None
        if self.grad_clip is not None or not fused_available(p, g, coef_t):
            return None
        m, v = self._memory("m", key, g), self._memory("v", key, g)
        if not fused_available(p, m, v, mask):
            return None
        return adam_l1(p, g, m, v, coef=coef, mask=mask, lr=self.lr, betas=self.betas, eps=self.eps, step=self.steps)


def build_optimizer(config) -> Optimizer:
    """Optimizer from its scenario section (see :mod:`neurograph.scenario`)."""
    kind = config.kind
    if kind == "adagrad":
        return Adagrad(lr=config.lr, grad_clip=config.grad_clip, memory_init=config.memory_init)
    if kind == "rmsprop":
        return RMSProp(
            lr=config.lr,
            decay=config.decay,
            update_clip=config.update_clip,
            grad_clip=config.grad_clip,
            memory_init=config.memory_init,
        )
    if kind == "adam":
        return Adam(lr=config.lr, betas=(config.beta1, config.beta2), grad_clip=config.grad_clip)
    raise ValueError(f"unknown optimizer kind {kind!r}")

