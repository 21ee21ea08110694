"""A classification dataset held in memory: a training split and a held-out test split.

Every model's task generators return a :class:`Dataset` (``neurograph.urn.data``,
``neurograph.layered.tasks``), so trainers and reports read one record. Numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Dataset"]


@dataclass(frozen=True)
class Dataset:
    """Train and held-out test split. ``x``: (n, d_in) float32, ``y``: (n,) int64 class ids."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    grid: tuple[int, int] | None = None  # (rows, cols) of an image input, row-major; None: a plain vector

    @property
    def d_in(self) -> int:
        return int(self.x_train.shape[1])
