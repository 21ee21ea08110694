"""Offline classification tasks for the layered model, all in memory, none downloaded.

- :func:`digits`: the UCI handwritten digits shipped in ``data/digits.npz`` (see
  ``data/README.md``): 1,797 images of 8 x 8 pixels, 10 classes with counts
  178, 182, 177, 183, 181, 182, 181, 179, 174, 180 (digits 0..9), split per class.
- :func:`parity`: ``bits`` inputs of -1 or +1, label 1 when an odd number are +1.
  Balanced: 2**(bits-1) patterns per class. The narrowest threshold network with one
  hidden layer that computes it has ``bits`` hidden units (a known result), so the
  task gets harder as ``bits`` grows.

Every generator takes its ``numpy.random.Generator`` explicitly; :func:`make_dataset`
picks one by its kind.
"""

from __future__ import annotations

from importlib.resources import files

import numpy as np

from neurograph.dataset import Dataset

__all__ = ["TASK_KINDS", "digits", "parity", "make_dataset", "MAX_PARITY_BITS"]

TASK_KINDS = ("digits", "parity")
DIGITS_GRID = (8, 8)
DIGITS_LEVELS = 16  # pixels count on-pixels of a 4 x 4 block: 0..16
MAX_PARITY_BITS = 16  # 65,536 patterns, the whole truth table in memory


def digits(*, test_fraction: float = 0.25, rng: np.random.Generator) -> Dataset:
    """The shipped digits scaled to [0, 1]: ``x`` (n, 64) float32 row-major, ``y`` (n,) int64.

    Stratified split: of each class, ``round(test_fraction * count)`` samples chosen
    by ``rng`` go to the test set; each split is then shuffled by ``rng``.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"digits: test_fraction must be in [0, 1), got {test_fraction}")
    images, labels = _shipped_digits()
    test = _stratified_test_mask(labels, test_fraction, rng)
    train_idx, test_idx = (rng.permutation(np.flatnonzero(m)) for m in (~test, test))
    x = images.astype(np.float32) / DIGITS_LEVELS
    y = labels.astype(np.int64)
    return Dataset(
        "digits", x[train_idx], y[train_idx], x[test_idx], y[test_idx], n_classes=10, grid=DIGITS_GRID
    )


def _shipped_digits() -> tuple[np.ndarray, np.ndarray]:
    """Images (1797, 64) uint8 in 0..16 and labels (1797,) uint8 from the package data."""
    with (files("neurograph.layered") / "data" / "digits.npz").open("rb") as f, np.load(f) as npz:
        return npz["x"], npz["y"]


def _stratified_test_mask(labels: np.ndarray, test_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """(n,) bool, True for the samples held out: ``round(test_fraction * count)`` per class."""
    test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n_test = round(test_fraction * len(members))
        test[rng.choice(members, size=n_test, replace=False)] = True
    return test


def parity(*, bits: int, rng: np.random.Generator) -> Dataset:
    """All 2**bits patterns of {-1, +1} as ``x`` (2**bits, bits) float32 in an order drawn by ``rng``.

    ``y`` (2**bits,) int64: 1 where an odd number of the inputs are +1, else 0. The training and the test set are both the whole truth table: the task asks
    whether the network computes the function, and accuracy on the truth table
    measures exactly that (there are no unseen inputs to generalise to).
    """
    if not 1 <= bits <= MAX_PARITY_BITS:
        raise ValueError(f"parity: bits must be 1..{MAX_PARITY_BITS}, got {bits}")
    codes = rng.permutation(2**bits)
    ones = (codes[:, None] >> np.arange(bits)) & 1  # (2**bits, bits): bit k of each code
    x = (2 * ones - 1).astype(np.float32)
    y = (ones.sum(axis=1) % 2).astype(np.int64)
    return Dataset(f"parity{bits}", x, y, x.copy(), y.copy(), n_classes=2)


def make_dataset(kind: str, rng: np.random.Generator, **params) -> Dataset:
    """The task of ``kind`` (one of :data:`TASK_KINDS`) with its keyword ``params``."""
    if kind == "digits":
        return digits(rng=rng, **params)
    if kind == "parity":
        return parity(rng=rng, **params)
    raise ValueError(f"unknown task kind {kind!r}; accepted: {', '.join(TASK_KINDS)}")
