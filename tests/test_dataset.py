"""Tests for neurograph.dataset: the record every task generator returns."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neurograph.dataset import Dataset


def make(d_in: int, n_train: int = 5, n_test: int = 3) -> Dataset:
    return Dataset(
        "toy",
        np.zeros((n_train, d_in), np.float32),
        np.zeros(n_train, np.int64),
        np.zeros((n_test, d_in), np.float32),
        np.zeros(n_test, np.int64),
        n_classes=2,
    )


@pytest.mark.parametrize("d_in", [1, 7, 64])
def test_d_in_is_the_width_of_the_training_inputs(d_in):
    d = make(d_in, n_train=d_in + 2)
    assert d.d_in == d_in and isinstance(d.d_in, int)
    assert d.grid is None


def test_the_record_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        make(3).name = "other"


def test_the_urn_module_reexports_the_same_class():
    from neurograph.urn import data

    assert data.Dataset is Dataset and "Dataset" in data.__all__
