"""URN datasets, all in memory and none downloaded at run time.

- :func:`spheres`: two concentric uniform spherical shells in d dimensions
  (Golkar Sec. 2: d = 10, 4,000 training samples).
- :func:`load_cifar10`: CIFAR-10's binary format (each record: 1 label byte,
  then 3,072 pixel bytes, the R, G and B planes of 32 x 32, row-major), read
  with numpy from a path the user gives, made monochrome and resized to the
  input grid (Golkar Sec. 3: 32 x 32 expanded to 60 x 60).
- :func:`bars`: a generated image set with spatial structure (oriented bars in
  noise) for offline use and CI, and its harder ``pairs`` variant (are two
  bars parallel?) for the structure-accumulation curriculum.

Every generator takes its ``numpy.random.Generator`` explicitly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from neurograph.dataset import Dataset

__all__ = [
    "Dataset",
    "spheres",
    "bars",
    "load_cifar10",
    "read_cifar10_records",
    "CIFAR_RECORD",
    "LUMA",
]

CIFAR_SIDE = 32
CIFAR_RECORD = 1 + 3 * CIFAR_SIDE * CIFAR_SIDE  # label byte + R, G, B planes
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights of R, G, B for monochrome
ORIENTATIONS = ("horizontal", "vertical", "diagonal", "antidiagonal")


# ------------------------------------------------------------------ spheres
def spheres(
    *,
    dim: int = 10,
    n_train: int = 4000,
    n_test: int = 1000,
    radii: tuple[float, float] = (1.0, 1.5),
    thickness: float = 0.2,
    rng: np.random.Generator,
) -> Dataset:
    """Class k uniform in the shell ``radii[k] +- thickness/2`` (uniform in volume, not in radius).

    Classes are balanced exactly in each split (odd counts: class 0 gets the extra sample).
    """
    if thickness < 0 or radii[0] - thickness / 2 < 0:
        raise ValueError(f"shells need 0 <= thickness/2 <= inner radius, got radii {radii}, thickness {thickness}")
    x, y = [], []
    for n in (n_train, n_test):
        labels = rng.permutation(np.arange(n) % 2)
        x.append(_shell_points(labels, dim, radii, thickness, rng))
        y.append(labels.astype(np.int64))
    return Dataset("spheres", x[0], y[0], x[1], y[1], n_classes=2)


def _shell_points(labels: np.ndarray, dim: int, radii, thickness: float, rng: np.random.Generator) -> np.ndarray:
    direction = rng.standard_normal((len(labels), dim))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    centre = np.asarray(radii, dtype=np.float64)[labels]
    lo, hi = centre - thickness / 2, centre + thickness / 2
    # uniform in volume: r^dim uniform between lo^dim and hi^dim
    r = (lo**dim + rng.random(len(labels)) * (hi**dim - lo**dim)) ** (1.0 / dim)
    return (direction * r[:, None]).astype(np.float32)


# --------------------------------------------------------------------- bars
def bars(
    *,
    grid: tuple[int, int],
    n_train: int = 3000,
    n_test: int = 1000,
    classes: int = 4,
    noise: float = 0.3,
    pairs: bool = False,
    rng: np.random.Generator,
) -> Dataset:
    """Images of full-length one-pixel bars plus Gaussian noise, flattened row-major.

    Single bars: the label is the orientation, the first ``classes`` of
    horizontal, vertical, diagonal, antidiagonal. ``pairs``: two bars of those
    orientations; label 1 when they are parallel, 0 otherwise (balanced).
    """
    if not 2 <= classes <= len(ORIENTATIONS):
        raise ValueError(f"bars: classes must be 2..{len(ORIENTATIONS)}, got {classes}")
    rows, cols = grid
    if min(rows, cols) < 4:
        raise ValueError(f"bars: grid must be at least 4 x 4, got {rows} x {cols}")
    x, y = [], []
    for n in (n_train, n_test):
        if pairs:
            labels = rng.permutation(np.arange(n) % 2)
            first = rng.integers(0, classes, n)
            other = (first + rng.integers(1, classes, n)) % classes  # always differs from first
            second = np.where(labels == 1, first, other)
            images = _draw(first, grid, rng) + _draw(second, grid, rng)
        else:
            labels = rng.permutation(np.arange(n) % classes)
            images = _draw(labels, grid, rng)
        images = np.minimum(images, 1.0) + noise * rng.standard_normal(images.shape)
        x.append(images.reshape(n, rows * cols).astype(np.float32))
        y.append(labels.astype(np.int64))
    name = "bar-pairs" if pairs else "bars"
    return Dataset(name, x[0], y[0], x[1], y[1], n_classes=2 if pairs else classes, grid=(rows, cols))


def _draw(orientation: np.ndarray, grid: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """(n, rows, cols) one bar each, at a random offset; diagonals at least half the grid long."""
    rows, cols = grid
    r, c = np.mgrid[0:rows, 0:cols]
    n = len(orientation)
    images = np.zeros((n, rows, cols))
    short = min(rows, cols) // 2
    for k, o in enumerate(orientation.tolist()):
        if o == 0:
            images[k] = r == rng.integers(0, rows)
        elif o == 1:
            images[k] = c == rng.integers(0, cols)
        elif o == 2:  # r - c = const, |const| small enough for a long bar
            images[k] = (r - c) == rng.integers(short - cols, rows - short + 1)
        else:  # r + c = const
            images[k] = (r + c) == rng.integers(short - 1, rows + cols - short)
    return images


# ------------------------------------------------------------------ CIFAR-10
def read_cifar10_records(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Labels (n,) uint8 and images (n, 3, 32, 32) uint8 of one CIFAR-10 binary file (no pickle)."""
    path = Path(path)
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise ValueError(f"{path}: cannot read CIFAR-10 file ({e.strerror or e})") from None
    if raw.size == 0 or raw.size % CIFAR_RECORD:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of {CIFAR_RECORD}-byte CIFAR-10 records")
    records = raw.reshape(-1, CIFAR_RECORD)
    labels = records[:, 0]
    if labels.max() > 9:
        raise ValueError(f"{path}: label {int(labels.max())} out of range 0..9: not a CIFAR-10 binary file")
    return labels, records[:, 1:].reshape(-1, 3, CIFAR_SIDE, CIFAR_SIDE)


def load_cifar10(
    path: str | Path,
    *,
    grid: tuple[int, int],
    resize: str = "bilinear",
    n_train: int | None = None,
    n_test: int | None = None,
) -> Dataset:
    """Monochrome CIFAR-10 resized to ``grid`` = (rows, cols), standardised by the training set.

    ``path``: the ``cifar-10-batches-bin`` folder (``data_batch_1..5.bin``,
    ``test_batch.bin``). ``resize``: ``bilinear`` (the paper interpolates) or
    ``area`` (area averaging). ``n_train`` / ``n_test``: keep the first records only.
    """
    if resize not in ("bilinear", "area"):
        raise ValueError(f"resize must be bilinear or area, got {resize!r}")
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"{folder}: CIFAR-10 folder not found (expected cifar-10-batches-bin)")
    train_files = sorted(folder.glob("data_batch_*.bin"))
    test_file = folder / "test_batch.bin"
    if not train_files or not test_file.is_file():
        raise ValueError(f"{folder}: needs data_batch_*.bin and test_batch.bin")
    y_train, x_train = _concat([read_cifar10_records(f) for f in train_files], n_train)
    y_test, x_test = _concat([read_cifar10_records(test_file)], n_test)
    x_train, x_test = (_monochrome(x, grid, resize) for x in (x_train, x_test))
    mean, std = float(x_train.mean()), float(x_train.std()) or 1.0
    return Dataset(
        "cifar10",
        ((x_train - mean) / std).astype(np.float32),
        y_train.astype(np.int64),
        ((x_test - mean) / std).astype(np.float32),
        y_test.astype(np.int64),
        n_classes=10,
        grid=tuple(grid),
    )


def _concat(parts: list[tuple[np.ndarray, np.ndarray]], limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    labels = np.concatenate([p[0] for p in parts])
    images = np.concatenate([p[1] for p in parts])
    return (labels, images) if limit is None else (labels[:limit], images[:limit])


def _monochrome(images: np.ndarray, grid: tuple[int, int], resize: str) -> np.ndarray:
    """(n, 3, 32, 32) uint8 -> (n, rows * cols) float32 in [0, 1], luma then resized."""
    luma = np.tensordot(images.astype(np.float32) / 255.0, np.array(LUMA, dtype=np.float32), axes=([1], [0]))
    t = torch.from_numpy(np.ascontiguousarray(luma))[:, None]
    extra = {"align_corners": False} if resize == "bilinear" else {}
    out = F.interpolate(t, size=tuple(grid), mode=resize, **extra)
    return out.reshape(len(images), -1).numpy()
