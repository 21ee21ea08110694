"""Where URN neurons sit: an ``x by y by z`` lattice with the input grid on the plane z = 1.

Golkar (eq. 8) lifts the input's 2-D metric into the network with one extra
dimension perpendicular to the input plane: ``ds^2 = dx^2 + dy^2 + beta dz^2``.
Positions are stored on the :class:`~neurograph.graph.Neuron` objects (raw
lattice coordinates, z from 1); distances are always derived from them, so
they stay right as neurons are deleted.

Placement (every choice the paper leaves open is a default, see docs/urn.md):
- inputs: the input grid (rows x cols) centred on the z = 1 plane, row-major;
- outputs: the lattice sites of the top plane z = Z nearest its centre;
- hidden: the remaining sites, or an evenly spaced subset of them when the
  lattice has more sites than neurons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Lattice",
    "vector_grid",
    "lattice_for",
    "place_neurons",
    "distance_matrix",
    "synapse_lengths",
    "mean_pair_distance",
]


@dataclass(frozen=True)
class Lattice:
    """Lattice extent in sites: ``x`` columns, ``y`` rows, ``z`` planes (z = 1 is the input plane)."""

    x: int
    y: int
    z: int

    @property
    def sites(self) -> int:
        return self.x * self.y * self.z


def vector_grid(n: int) -> tuple[int, int]:
    """Near-square (rows, cols) grid for an input without geometry (e.g. a 10-d vector: 3 x 4)."""
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def lattice_for(size: int, grid: tuple[int, int], *, x: int | None, y: int | None, z: int) -> Lattice:
    """The lattice for ``size`` neurons whose inputs form a ``grid`` = (rows, cols).

    Missing ``x``/``y``: the input grid's own extent when ``z`` planes of it hold
    ``size`` sites (images: the input fills the z = 1 plane), else a square plane
    just big enough for ``size`` sites over ``z`` planes.
    """
    rows, cols = grid
    if x is None and y is None:
        if rows * cols * z >= size:
            x, y = cols, rows
        else:
            x = y = max(math.ceil(math.sqrt(size / z)), cols, rows)
    elif x is None or y is None:
        raise ValueError("give both geometry.x and geometry.y, or neither")
    lattice = Lattice(int(x), int(y), int(z))
    if lattice.sites < size:
        raise ValueError(f"lattice {x}x{y}x{z} has {lattice.sites} sites, fewer than the {size} neurons")
    if cols > lattice.x or rows > lattice.y:
        raise ValueError(f"input grid {rows}x{cols} (rows x cols) does not fit the {x}x{y} input plane")
    return lattice


def place_neurons(
    lattice: Lattice, grid: tuple[int, int], n_input: int, n_output: int, n_hidden: int
) -> dict[str, np.ndarray]:
    """Positions (x, y, z) per role: ``{"input": (d_in, 3), "output": (d_out, 3), "hidden": (H, 3)}``, float64.

    Input k sits at grid cell ``divmod(k, cols)`` (row-major, as images are flattened).
    """
    rows, cols = grid
    if n_input > rows * cols:
        raise ValueError(f"{n_input} inputs do not fit a {rows}x{cols} grid")
    x0, y0 = (lattice.x - cols) // 2, (lattice.y - rows) // 2
    r, c = np.divmod(np.arange(n_input), cols)
    inputs = np.stack([x0 + c, y0 + r, np.ones(n_input)], axis=1).astype(np.float64)
    gx, gy, gz = np.meshgrid(np.arange(lattice.x), np.arange(lattice.y), np.arange(1, lattice.z + 1), indexing="xy")
    sites = np.stack([gx.ravel(), gy.ravel(), gz.ravel()], axis=1).astype(np.float64)
    sites = sites[np.lexsort((sites[:, 0], sites[:, 1], sites[:, 2]))]  # plane by plane, row-major
    taken = {tuple(p) for p in inputs.tolist()}
    top = sites[(sites[:, 2] == lattice.z) & ~_member(sites, taken)]
    centre = np.array([(lattice.x - 1) / 2, (lattice.y - 1) / 2])
    order = np.lexsort((top[:, 0], top[:, 1], np.round(((top[:, :2] - centre) ** 2).sum(1), 9)))
    if len(top) < n_output:
        raise ValueError(f"top plane has {len(top)} free sites for {n_output} outputs")
    outputs = top[np.sort(order[:n_output])]
    taken |= {tuple(p) for p in outputs.tolist()}
    free = sites[~_member(sites, taken)]
    if len(free) < n_hidden:
        raise ValueError(f"lattice has {len(free)} free sites for {n_hidden} hidden neurons")
    pick = np.round(np.linspace(0, len(free) - 1, n_hidden)).astype(np.int64) if n_hidden else np.zeros(0, np.int64)
    return {"input": inputs, "output": outputs, "hidden": free[pick]}


def _member(points: np.ndarray, taken: set) -> np.ndarray:
    return np.array([tuple(p) in taken for p in points.tolist()], dtype=bool)


def distance_matrix(positions: np.ndarray, beta: float) -> np.ndarray:
    """(S, S) synapse lengths ``sqrt(dx^2 + dy^2 + beta dz^2)`` between rows of ``positions`` (S, 3)."""
    p = np.asarray(positions, dtype=np.float64)
    out = np.zeros((len(p), len(p)))
    for axis, scale in ((0, 1.0), (1, 1.0), (2, beta)):  # one (S, S) temporary at a time
        d = p[:, None, axis] - p[None, :, axis]
        out += scale * d * d
    return np.sqrt(out, out=out)


def synapse_lengths(positions: np.ndarray, targets: np.ndarray, sources: np.ndarray, beta: float) -> np.ndarray:
    """(E,) lengths of the synapses ``sources[k] -> targets[k]`` (row indices into ``positions``)."""
    p = np.asarray(positions, dtype=np.float64)
    d = p[targets] - p[sources]
    return np.sqrt(d[:, 0] ** 2 + d[:, 1] ** 2 + beta * d[:, 2] ** 2)


def mean_pair_distance(positions: np.ndarray, beta: float, *, block_values: int = 1 << 21) -> float:
    """Mean eq. 8 distance over the ordered pairs (i, j), i != j, of ``positions`` (n, 3); 0 for n < 2.

    Exact, a block of rows at a time (about ``block_values`` distances each), so
    memory stays bounded for thousands of neurons.
    """
    p = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    n = len(p)
    if n < 2:
        return 0.0
    rows = max(1, block_values // n)
    total = 0.0
    for start in range(0, n, rows):
        block = p[start : start + rows]
        squared = np.zeros((len(block), n))
        for axis, scale in ((0, 1.0), (1, 1.0), (2, beta)):
            d = block[:, None, axis] - p[None, :, axis]
            squared += scale * d * d
        total += float(np.sqrt(squared).sum())  # the pairs (i, i) add 0
    return total / (n * (n - 1))
