"""Tests for neurograph.urn.data: spheres statistics, the CIFAR-10 binary loader on
generated files in that format, and the generated bar images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurograph.urn.data import CIFAR_RECORD, LUMA, bars, load_cifar10, read_cifar10_records, spheres


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ------------------------------------------------------------------ spheres
def test_spheres_radii_within_their_shells():
    d = spheres(dim=10, n_train=2000, n_test=500, radii=(1.0, 2.0), thickness=0.4, rng=rng())
    for x, y in ((d.x_train, d.y_train), (d.x_test, d.y_test)):
        r = np.linalg.norm(x, axis=1)
        centre = np.where(y == 0, 1.0, 2.0)
        assert np.all(np.abs(r - centre) <= 0.2 + 1e-5)
    # uniform in volume: in 10-d most mass lies near the outer edge of each shell
    r0 = np.linalg.norm(d.x_train[d.y_train == 0], axis=1)
    assert np.median(r0) > 1.1


def test_spheres_classes_balanced_and_directions_isotropic():
    d = spheres(dim=10, n_train=4000, n_test=1001, rng=rng(1))
    assert np.bincount(d.y_train).tolist() == [2000, 2000]
    assert np.bincount(d.y_test).tolist() == [501, 500]
    assert np.abs(d.x_train.mean(axis=0)).max() < 0.05
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert d.d_in == 10 and d.n_classes == 2 and d.grid is None


def test_spheres_held_out_split_is_disjoint():
    d = spheres(dim=10, n_train=1000, n_test=300, rng=rng(2))
    train = {row.tobytes() for row in d.x_train}
    assert not any(row.tobytes() in train for row in d.x_test)
    assert len(train) == 1000


def test_spheres_seeded_by_the_generator_passed():
    a, b, c = (spheres(n_train=50, n_test=10, rng=rng(s)) for s in (5, 5, 6))
    assert np.array_equal(a.x_train, b.x_train) and not np.array_equal(a.x_train, c.x_train)


def test_spheres_rejects_a_shell_through_the_origin():
    with pytest.raises(ValueError, match="thickness"):
        spheres(radii=(0.1, 1.0), thickness=0.5, rng=rng())


# ------------------------------------------------------------------ CIFAR-10
def write_records(path: Path, labels: list[int], rgb: list[tuple[int, int, int]]) -> None:
    """CIFAR-10 binary records: label byte, then the R, G and B planes, each 32x32 row-major."""
    out = bytearray()
    for label, (r, g, b) in zip(labels, rgb):
        planes = np.zeros((3, 32, 32), dtype=np.uint8)
        planes[0], planes[1], planes[2] = r, g, b
        planes[0, 0, :16] = 255  # a mark on the top-left of the red plane
        out += bytes([label]) + planes.tobytes()
    path.write_bytes(bytes(out))


@pytest.fixture
def cifar_folder(tmp_path) -> Path:
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    write_records(folder / "data_batch_1.bin", [0, 3, 9], [(255, 0, 0), (0, 255, 0), (0, 0, 255)])
    write_records(folder / "data_batch_2.bin", [1, 2], [(10, 20, 30), (200, 100, 50)])
    write_records(folder / "test_batch.bin", [7, 8], [(0, 0, 0), (255, 255, 255)])
    return folder


def test_read_records_splits_label_and_planes(cifar_folder):
    labels, images = read_cifar10_records(cifar_folder / "data_batch_1.bin")
    assert labels.tolist() == [0, 3, 9]
    assert images.shape == (3, 3, 32, 32)
    assert images[0, 0, 5, 5] == 255 and images[0, 1, 5, 5] == 0  # red plane first
    assert images[2, 2, 5, 5] == 255  # blue plane last
    assert images[1, 0, 0, :16].tolist() == [255] * 16 and images[1, 0, 1, 0] == 0  # row-major


def test_load_cifar10_monochrome_resized_and_standardised(cifar_folder):
    for resize in ("bilinear", "area"):
        d = load_cifar10(cifar_folder, grid=(8, 8), resize=resize)
        assert d.x_train.shape == (5, 64) and d.x_test.shape == (2, 64)
        assert d.y_train.tolist() == [0, 3, 9, 1, 2] and d.y_test.tolist() == [7, 8]
        assert d.grid == (8, 8) and d.n_classes == 10
        assert abs(float(d.x_train.mean())) < 1e-5 and float(d.x_train.std()) == pytest.approx(1.0, rel=1e-4)
    raw = load_cifar10(cifar_folder, grid=(32, 32), resize="area")
    # undo the standardisation with two known pixels: pure red and pure green, away from the mark
    a, b = raw.x_train[0, 5 * 32 + 5], raw.x_train[1, 5 * 32 + 5]
    c = raw.x_train[2, 5 * 32 + 5]
    assert (b - a) / (c - a) == pytest.approx((LUMA[1] - LUMA[0]) / (LUMA[2] - LUMA[0]), rel=1e-4)


def test_load_cifar10_keeps_first_records(cifar_folder):
    d = load_cifar10(cifar_folder, grid=(4, 4), n_train=2, n_test=1)
    assert d.y_train.tolist() == [0, 3] and d.y_test.tolist() == [7]


def test_cifar_bad_files_are_value_errors(tmp_path, cifar_folder):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\x00" * (CIFAR_RECORD + 5))
    with pytest.raises(ValueError, match="whole number"):
        read_cifar10_records(bad)
    with pytest.raises(ValueError, match="not found"):
        load_cifar10(tmp_path / "missing", grid=(8, 8))
    with pytest.raises(ValueError, match="resize"):
        load_cifar10(cifar_folder, grid=(8, 8), resize="nearest")
    (cifar_folder / "test_batch.bin").unlink()
    with pytest.raises(ValueError, match="test_batch.bin"):
        load_cifar10(cifar_folder, grid=(8, 8))


# --------------------------------------------------------------------- bars
def test_bars_shapes_labels_and_orientations():
    d = bars(grid=(8, 10), n_train=400, n_test=100, classes=4, noise=0.0, rng=rng())
    assert d.x_train.shape == (400, 80) and d.x_test.shape == (100, 80) and d.grid == (8, 10)
    assert np.bincount(d.y_train).tolist() == [100] * 4
    images = d.x_train.reshape(-1, 8, 10)
    for img, label in zip(images[:40], d.y_train[:40]):
        r, c = np.nonzero(img)
        if label == 0:
            assert len(set(r)) == 1 and len(c) == 10
        elif label == 1:
            assert len(set(c)) == 1 and len(r) == 8
        elif label == 2:
            assert len(set(r - c)) == 1 and len(r) >= 4
        else:
            assert len(set(r + c)) == 1 and len(r) >= 4


def test_bars_classes_noise_and_seed():
    d = bars(grid=(6, 6), n_train=90, n_test=30, classes=3, noise=0.5, rng=rng(3))
    assert set(d.y_train.tolist()) == {0, 1, 2} and d.n_classes == 3
    assert d.x_train.std() > 0.4  # noisy
    again = bars(grid=(6, 6), n_train=90, n_test=30, classes=3, noise=0.5, rng=rng(3))
    assert np.array_equal(d.x_train, again.x_train)


def test_bar_pairs_label_is_parallel():
    d = bars(grid=(8, 8), n_train=200, n_test=50, classes=2, noise=0.0, pairs=True, rng=rng(4))
    assert d.n_classes == 2 and np.bincount(d.y_train).tolist() == [100, 100]
    images = d.x_train.reshape(-1, 8, 8)
    for img, label in zip(images[:60], d.y_train[:60]):
        rows_full = (img.sum(axis=1) == 8).sum()
        cols_full = (img.sum(axis=0) == 8).sum()
        if label == 0:  # one horizontal and one vertical bar: a cross
            assert rows_full == 1 and cols_full == 1
        else:
            assert (rows_full == 0) != (cols_full == 0)


def test_bars_rejects_bad_settings():
    with pytest.raises(ValueError, match="classes"):
        bars(grid=(8, 8), classes=5, rng=rng())
    with pytest.raises(ValueError, match="grid"):
        bars(grid=(3, 8), rng=rng())
