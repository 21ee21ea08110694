"""Tests for neurograph.layered.tasks: the shipped digits (known class counts, the
stratified split) and the parity truth table (against a plain-Python popcount)."""

from __future__ import annotations

from collections import Counter
from importlib.resources import files

import numpy as np
import pytest

from neurograph.layered.tasks import TASK_KINDS, digits, make_dataset, parity

DIGIT_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def samples(x: np.ndarray, y: np.ndarray) -> list[tuple[bytes, int]]:
    """(input row, label) of each sample, hashable."""
    return [(row.tobytes(), int(label)) for row, label in zip(x.astype(np.float32), y)]


@pytest.fixture(scope="module")
def source() -> dict[tuple[bytes, int], int]:
    """Each sample of the shipped file, scaled as the task scales it -> its index in the file."""
    with np.load(files("neurograph.layered") / "data" / "digits.npz") as npz:
        x, y = npz["x"], npz["y"]
    assert x.shape == (1797, 64) and x.dtype == np.uint8 and y.dtype == np.uint8
    index = {s: i for i, s in enumerate(samples(x / 16, y))}
    assert len(index) == 1797  # no sample occurs twice, so a sample names its index
    return index


def file_indices(x: np.ndarray, y: np.ndarray, source: dict) -> list[int]:
    return [source[s] for s in samples(x, y)]


@pytest.fixture(scope="module")
def split():
    return digits(test_fraction=0.25, rng=rng(0))


@pytest.fixture(scope="module")
def whole():
    """Every sample in the training set, none held out."""
    return digits(test_fraction=0.0, rng=rng(0))


# ------------------------------------------------------------------ digits
def test_digits_has_the_known_size_class_counts_and_value_range(whole):
    assert whole.x_train.shape == (1797, 64) and whole.x_test.shape == (0, 64)
    assert whole.x_train.dtype == np.float32 and whole.y_train.dtype == np.int64
    assert np.bincount(whole.y_train).tolist() == DIGIT_COUNTS
    assert whole.x_train.min() == 0.0 and whole.x_train.max() == 1.0
    levels = np.unique(whole.x_train * 16)
    assert np.array_equal(levels, np.arange(17))  # 0..16 on-pixel counts, each value used
    assert whole.name == "digits" and whole.grid == (8, 8) and whole.d_in == 64 and whole.n_classes == 10


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_digits_holds_out_the_rounded_fraction_of_each_class(fraction):
    d = digits(test_fraction=fraction, rng=rng(3))
    expected = [round(fraction * n) for n in DIGIT_COUNTS]
    assert np.bincount(d.y_test, minlength=10).tolist() == expected
    assert np.bincount(d.y_train, minlength=10).tolist() == [n - t for n, t in zip(DIGIT_COUNTS, expected)]


def test_digits_splits_are_disjoint_and_together_the_whole_set(split, source):
    train = file_indices(split.x_train, split.y_train, source)
    test = file_indices(split.x_test, split.y_test, source)
    assert len(set(train)) == len(train) and len(set(test)) == len(test)
    assert not set(train) & set(test)
    assert sorted(train + test) == list(range(1797))


def test_digits_seeded_by_the_generator_passed():
    a, b, c = (digits(rng=rng(s)) for s in (5, 5, 6))
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.y_train, c.y_train)
    assert not np.array_equal(a.y_test, c.y_test)


def test_digits_shuffles_each_split(split, source):
    for x, y in ((split.x_train, split.y_train), (split.x_test, split.y_test)):
        order = file_indices(x, y, source)
        assert order != sorted(order)  # not in the file's order
        assert np.any(np.diff(y) < 0)  # nor grouped by class


def test_digits_rejects_a_fraction_outside_zero_to_one():
    with pytest.raises(ValueError, match="test_fraction"):
        digits(test_fraction=1.0, rng=rng())


# ------------------------------------------------------------------ parity
@pytest.mark.parametrize("bits", [1, 2, 5, 9])
def test_parity_labels_are_the_popcount_modulo_two(bits):
    d = parity(bits=bits, rng=rng(bits))
    for row, label in zip(d.x_train.tolist(), d.y_train.tolist()):
        plus_ones = 0
        for v in row:
            if v == 1.0:
                plus_ones += 1
            else:
                assert v == -1.0
        assert label == plus_ones % 2


@pytest.mark.parametrize("bits", [1, 4, 10])
def test_parity_truth_table_has_every_pattern_once_and_balanced_classes(bits):
    d = parity(bits=bits, rng=rng())
    assert d.x_train.shape == (2**bits, bits) and d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    patterns = {tuple(int(v) for v in row) for row in d.x_train.tolist()}
    assert len(patterns) == 2**bits and all(set(p) <= {-1, 1} for p in patterns)
    assert np.bincount(d.y_train).tolist() == [2 ** (bits - 1)] * 2
    assert np.array_equal(d.x_test, d.x_train) and np.array_equal(d.y_test, d.y_train)
    assert d.name == f"parity{bits}" and d.n_classes == 2 and d.d_in == bits and d.grid is None


def test_parity_order_is_drawn_by_the_generator():
    a, b, c = (parity(bits=6, rng=rng(s)) for s in (2, 2, 3))
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.x_train, c.x_train)
    assert Counter(map(bytes, a.x_train)) == Counter(map(bytes, c.x_train))  # same table, reordered


@pytest.mark.parametrize("bits", [0, -1, 17])
def test_parity_rejects_bits_out_of_range(bits):
    with pytest.raises(ValueError, match="1..16"):
        parity(bits=bits, rng=rng())


# ------------------------------------------------------------ make_dataset
def test_make_dataset_dispatches_on_the_kind():
    assert TASK_KINDS == ("digits", "parity")
    p = make_dataset("parity", rng(4), bits=3)
    assert p.name == "parity3" and np.array_equal(p.x_train, parity(bits=3, rng=rng(4)).x_train)
    d = make_dataset("digits", rng(4), test_fraction=0.5)
    assert d.name == "digits" and np.array_equal(d.y_test, digits(test_fraction=0.5, rng=rng(4)).y_test)


def test_make_dataset_names_the_accepted_kinds():
    with pytest.raises(ValueError, match="accepted: digits, parity"):
        make_dataset("xor", rng())


def test_make_dataset_passes_bad_parameters_on_as_errors():
    with pytest.raises(TypeError):
        make_dataset("parity", rng(), width=3)
