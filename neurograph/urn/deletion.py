"""Lifetime structural deletion: which hidden neurons have been silent long enough to remove.

A URN under activity and weight L1 ends with most of its S neurons silent (a
ReLU neuron whose pre-activation is negative for every sample gets no gradient
but the L1 pull towards zero). Deleting a hidden neuron that has been inactive
for ``patience`` consecutive epochs removes its row and column from W, so the
per-step cost, O(B S^2), falls as the network sparsifies. This module only
decides; the training loop writes back, deletes from the graph, syncs the
compiled tensors and remaps the optimizer.

"Inactive during an epoch": its largest |N^(l)|, over every training batch of
the epoch and every iteration l = 1..I, is at most the activity threshold.
"""

from __future__ import annotations

import numpy as np

__all__ = ["InactivityTracker"]


class InactivityTracker:
    """Consecutive inactive epochs per hidden neuron id."""

    def __init__(self, patience: int) -> None:
        if patience < 1:
            raise ValueError(f"patience must be >= 1 epoch, got {patience}")
        self.patience = patience
        self.streak: dict[int, int] = {}

    def update(self, hidden_ids: list[int], peak: np.ndarray, threshold: float) -> None:
        """Record one epoch: ``peak`` (H,) is each hidden neuron's largest |activity| in it."""
        silent = (np.asarray(peak) <= threshold).tolist()
        self.streak = {i: self.streak.get(i, 0) + 1 if s else 0 for i, s in zip(hidden_ids, silent)}

    def due(self) -> list[int]:
        """Ids inactive for at least ``patience`` consecutive epochs, ascending."""
        return sorted(i for i, n in self.streak.items() if n >= self.patience)

    def forget(self, ids: list[int]) -> None:
        for i in ids:
            self.streak.pop(i, None)

    def state(self) -> dict:
        return {"patience": self.patience, "streak": [[i, n] for i, n in self.streak.items()]}
