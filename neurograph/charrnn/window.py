"""What one BPTT window returns: the loss, the gradients and the last hidden state.

Shared by the torch (:mod:`neurograph.charrnn.rnn`) and numpy
(:mod:`neurograph.charrnn.rnn_cpu`) implementations of the same window.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Gradients", "WindowResult"]


@dataclass
class Gradients:
    """Gradients of the summed window loss, same shapes as the parameters."""

    weight: torch.Tensor  # (N, N)
    bias: torch.Tensor  # (N,)
    multiplier: torch.Tensor  # (N,)

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {"weight": self.weight, "bias": self.bias, "multiplier": self.multiplier}


@dataclass
class WindowResult:
    loss: torch.Tensor  # () summed cross-entropy over the window, nats
    grads: Gradients
    h_last: torch.Tensor  # (H,) hidden state after the last character
