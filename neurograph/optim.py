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
"""

from __future__ import annotations

import torch

from neurograph.compile import AXES, Remap

__all__ = ["Optimizer", "Adagrad", "RMSProp", "Adam", "build_optimizer"]

_EPS = 1e-8


class Optimizer:
    """Base: memories keyed by (memory name, parameter name)."""

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

    def step(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor], masks: dict) -> None:
        """Update ``params`` in place. ``masks[name]`` (same shape or None) gates updates."""
        self.steps += 1
        for key, p in params.items():
            g = grads[key]
            if self.grad_clip is not None:
                g = g.clamp(-self.grad_clip, self.grad_clip)
            delta = self._delta(key, g)
            mask = masks.get(key)
            p.add_(delta if mask is None else delta * mask)

    def _delta(self, key: str, g: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def remap(self, remap: Remap) -> None:
        """Move every memory along a structural edit (new entries: ``memory_init``)."""
        for name, memories in self.state.items():
            fill = self.memory_init if name != "m" else 0.0
            for key, mem in memories.items():
                memories[key] = remap.apply(mem, AXES[key], fill=fill)


class Adagrad(Optimizer):
    memory_names = ("sq",)

    def _delta(self, key, g):
        mem = self._memory("sq", key, g)
        mem.addcmul_(g, g)
        return -self.lr * g / torch.sqrt(mem + _EPS)


class RMSProp(Optimizer):
    memory_names = ("sq",)

    def __init__(self, *, lr: float, decay: float, update_clip: float | None = None, **kw) -> None:
        super().__init__(lr=lr, **kw)
        self.decay = decay
        self.update_clip = update_clip

    def _delta(self, key, g):
        mem = self._memory("sq", key, g)
        mem.add_(self.decay * (g * g - mem))
        delta = -self.lr * g / torch.sqrt(mem + _EPS)
        if self.update_clip is not None:
            delta.clamp_(-self.update_clip, self.update_clip)
        return delta


class Adam(Optimizer):
    memory_names = ("m", "v")

    def __init__(self, *, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, **kw) -> None:
        super().__init__(lr=lr, **kw)
        self.betas, self.eps = betas, eps

    def _delta(self, key, g):
        b1, b2 = self.betas
        m, v = self._memory("m", key, g), self._memory("v", key, g)
        m.mul_(b1).add_(g, alpha=1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        mhat = m / (1 - b1**self.steps)
        vhat = v / (1 - b2**self.steps)
        return -self.lr * mhat / (vhat.sqrt() + self.eps)


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

