"""Where and in what precision a run computes: scenario names to torch devices and dtypes.

A scenario says ``device: cpu | cuda | auto`` and ``dtype: float32 | float64``
(:data:`neurograph.schema.DtypeName`); the engines turn those names into torch
objects here and nowhere else.
"""

from __future__ import annotations

import re

import torch

__all__ = ["DTYPES", "resolve_device", "torch_dtype"]

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype of a scenario's ``dtype`` name; ValueError naming the accepted ones."""
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {name!r}") from None


def resolve_device(device: str | torch.device) -> torch.device:
    """``cpu``, ``cuda`` (error without a GPU) or ``auto`` (cuda when available)."""
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device != "cpu" and not re.fullmatch(r"cuda(:\d+)?", device):
        raise ValueError(f"device must be cpu, cuda or auto, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but no CUDA GPU is available (use cpu or auto)")
    return torch.device(device)
