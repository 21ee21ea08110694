"""Tests for neurograph.urn.geometry: lattice placement and eq. 8 distances from positions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurograph.compile import compile_graph
from neurograph.urn.geometry import (
    Lattice,
    distance_matrix,
    lattice_for,
    place_neurons,
    synapse_lengths,
    vector_grid,
)
from neurograph.urn.model import build_urn_graph


def test_distance_matrix_follows_eq_8():
    p = np.array([[0.0, 0.0, 1.0], [3.0, 4.0, 1.0], [0.0, 0.0, 3.0], [1.0, 1.0, 2.0]])
    d = distance_matrix(p, beta=4.0)
    assert d[0, 1] == pytest.approx(5.0)  # in-plane: plain Euclidean
    assert d[0, 2] == pytest.approx(np.sqrt(4.0 * 4.0))  # dz = 2 scaled by beta
    assert d[1, 3] == pytest.approx(np.sqrt(4 + 9 + 4.0))
    assert np.allclose(d, d.T) and np.all(np.diag(d) == 0)
    t, s = np.array([1, 2, 3]), np.array([0, 0, 1])
    assert np.allclose(synapse_lengths(p, t, s, 4.0), d[t, s])


def test_image_lattice_inputs_fill_plane_one():
    grid = (4, 5)  # rows, cols
    lattice = lattice_for(4 * 5 * 3, grid, x=None, y=None, z=3)
    assert lattice == Lattice(5, 4, 3)
    pos = place_neurons(lattice, grid, 20, 3, 60 - 23)
    assert pos["input"].shape == (20, 3) and np.all(pos["input"][:, 2] == 1)
    assert pos["input"][7].tolist() == [2.0, 1.0, 1.0]  # row-major: input 7 is row 1, col 2
    assert np.all(pos["output"][:, 2] == 3)
    centre = np.array([2.0, 1.5])
    assert np.all(np.abs(pos["output"][:, :2] - centre).max(axis=1) <= 1.0)  # the centre sites of the top plane
    everything = np.concatenate([pos["input"], pos["output"], pos["hidden"]])
    assert len({tuple(p) for p in everything.tolist()}) == 60  # every lattice site once


def test_vector_inputs_centred_and_hidden_spread():
    grid = vector_grid(10)
    assert grid == (3, 4)
    lattice = lattice_for(500, grid, x=None, y=None, z=6)
    assert lattice.sites >= 500 and lattice.x == lattice.y
    pos = place_neurons(lattice, grid, 10, 2, 488)
    assert np.all(pos["input"][:, 2] == 1)
    assert set(pos["hidden"][:, 2].tolist()) == set(range(1, 7))  # hidden spread over every plane
    assert len({tuple(p) for p in np.concatenate(list(pos.values())).tolist()}) == 500


def test_lattice_too_small_is_an_error():
    with pytest.raises(ValueError, match="fewer than"):
        lattice_for(100, (2, 2), x=3, y=3, z=2)
    with pytest.raises(ValueError, match="does not fit"):
        lattice_for(10, (5, 5), x=3, y=3, z=2)


def test_positions_live_on_the_neurons():
    grid = (3, 3)
    pos = place_neurons(lattice_for(27, grid, x=None, y=None, z=3), grid, 9, 2, 16)
    graph = build_urn_graph(pos, generator=torch.Generator().manual_seed(0))
    c = compile_graph(graph)
    stored = np.array([graph.neurons[i].position for i in c.ids])
    expected = np.concatenate([pos["input"], pos["output"], pos["hidden"]])  # compiled order
    assert np.array_equal(stored, expected)
