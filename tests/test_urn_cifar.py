"""The CIFAR-10 experiment (Golkar Sec. 3) on generated files in CIFAR-10's binary layout:
the reader, the interpolated image on the z = 1 plane, the output sites, a tiny run, missing files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurograph.scenario import ScenarioError, load_scenario
from neurograph.urn.data import CIFAR_RECORD, LUMA, load_cifar10, read_cifar10_records
from neurograph.urn.geometry import lattice_for, place_neurons
from neurograph.urn.train import URNTrainer
from neurograph_cli.main import main

torch.set_num_threads(1)

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
PAPER, CPU = SCENARIOS / "urn_cifar.yaml", SCENARIOS / "urn_cifar_cpu.yaml"


def random_records(path: Path, n: int, rng: np.random.Generator) -> np.ndarray:
    """Write ``n`` random records (label byte 0..9, then 3,072 pixel bytes); returns them (n, 3073)."""
    records = rng.integers(0, 256, (n, CIFAR_RECORD), dtype=np.uint8)
    records[:, 0] = rng.integers(0, 10, n)
    path.write_bytes(records.tobytes())
    return records


@pytest.fixture
def cifar(tmp_path) -> Path:
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in (("data_batch_1.bin", 40), ("data_batch_2.bin", 24), ("test_batch.bin", 16)):
        random_records(folder / name, n, rng)
    return folder


def test_reader_splits_random_records_into_label_and_rgb_planes(tmp_path):
    records = random_records(tmp_path / "data_batch_1.bin", 5, np.random.default_rng(1))
    labels, images = read_cifar10_records(tmp_path / "data_batch_1.bin")
    assert labels.tolist() == records[:, 0].tolist()
    assert images.shape == (5, 3, 32, 32)
    assert np.array_equal(images[3, 1, 2, 5], records[3, 1 + 1024 + 2 * 32 + 5])  # G plane, row 2, column 5


def test_paper_scenario_has_the_60x60x6_geometry(cifar):
    s = load_scenario(PAPER, [f"phases.0.task.path={cifar}"])
    g = s.network.geometry
    assert (g.x, g.y, g.z, s.network.size, s.network.iterations) == (60, 60, 6, None, 4)  # S = x*y*z = 21,600
    assert s.network.update == "residual_output" and s.loss.c_syn > 0
    assert s.phases[0].task.kind == "cifar10" and s.phases[0].task.resize == "bilinear"
    assert s.phases[0].task.train is None and s.phases[0].task.test is None  # all 50,000 / 10,000
    cpu = load_scenario(CPU, [f"phases.0.task.path={cifar}"])
    assert cpu.network.update == "residual_output" and cpu.loss.c_syn > 0


def test_paper_geometry_inputs_fill_the_first_plane_and_outputs_sit_at_the_centre_of_the_last():
    lattice = lattice_for(21_600, (60, 60), x=60, y=60, z=6)
    pos = place_neurons(lattice, (60, 60), 3600, 10, 21_600 - 3610)
    rows, cols = np.divmod(np.arange(3600), 60)
    assert np.array_equal(pos["input"], np.stack([cols, rows, np.ones(3600)], axis=1))  # row-major, z = 1
    out = pos["output"]
    assert (out[:, 2] == 6).all() and len({tuple(p) for p in out.tolist()}) == 10
    d2 = ((out[:, :2] - 29.5) ** 2).sum(1)
    assert (d2 <= 2.5).all() and (d2 == 0.5).sum() == 4  # the 4 centre sites and 6 of the next 8
    assert len(pos["hidden"]) == 21_600 - 3610
    every = np.concatenate([pos["input"], out, pos["hidden"]])
    assert len({tuple(p) for p in every.tolist()}) == 21_600  # every site holds one neuron


def bilinear(images: np.ndarray, side: int) -> np.ndarray:
    """(n, a, a) -> (n, side, side), bilinear with half-pixel centres, written out by hand."""
    a = images.shape[-1]
    src = np.maximum((np.arange(side) + 0.5) * a / side - 0.5, 0.0)
    i0 = np.floor(src).astype(int)
    i1, w = np.minimum(i0 + 1, a - 1), src - i0
    rows = images[:, i0, :] * (1 - w)[:, None] + images[:, i1, :] * w[:, None]
    return rows[:, :, i0] * (1 - w) + rows[:, :, i1] * w


def test_the_32x32_images_become_the_60x60_first_plane_by_bilinear_interpolation(cifar):
    d = load_cifar10(cifar, grid=(60, 60))  # the paper's input plane
    images = np.concatenate([read_cifar10_records(cifar / f"data_batch_{k}.bin")[1] for k in (1, 2)])
    expected = bilinear(np.tensordot(images / 255.0, np.array(LUMA), axes=([1], [0])), 60).reshape(-1, 3600)
    expected = (expected - expected.mean()) / expected.std()  # standardised by the training set
    assert d.x_train.shape == (64, 3600)
    assert np.allclose(d.x_train, expected, atol=1e-4)


def test_images_are_interpolated_onto_the_first_plane(cifar):
    s = load_scenario(CPU, [f"phases.0.task.path={cifar}", "phases.0.task.train=8", "phases.0.task.test=4"])
    trainer = URNTrainer(s)
    d = trainer.datasets[0]
    assert d.grid == (20, 20) and d.x_train.shape == (8, 400) and d.x_test.shape == (4, 400)
    _, images = read_cifar10_records(cifar / "data_batch_1.bin")
    luma = np.tensordot(images[:8] / 255.0, np.array(LUMA), axes=([1], [0]))  # (8, 32, 32)
    resized = F.interpolate(torch.from_numpy(luma)[:, None], size=(20, 20), mode="bilinear", align_corners=False)
    resized = resized[:, 0].numpy()
    assert np.corrcoef(resized.ravel(), d.x_train.ravel())[0, 1] > 0.9999  # the same up to standardisation
    assert load_cifar10(cifar, grid=(20, 20)).x_train.shape == (64, 400)  # both training files
    # input neuron k sits at pixel divmod(k, 20) of the z = 1 plane
    inputs = sorted((n for n in trainer.graph.neurons.values() if n.role == "input"), key=lambda n: n.id)
    xyz = np.array([n.position for n in inputs])
    rows, cols = np.divmod(np.arange(400), 20)
    assert np.array_equal(xyz, np.stack([cols, rows, np.ones(400)], axis=1))
    outputs = [n.position for n in trainer.graph.neurons.values() if n.role == "output"]
    assert len(outputs) == 10 and all(p[2] == 4 for p in outputs)


def test_a_tiny_cifar_run_trains(cifar):
    overrides = [
        f"phases.0.task.path={cifar}",
        "network.geometry={x: 6, y: 6, z: 3, beta: 1.0}",
        "phases.0.epochs=6",
        "optimizer.lr=0.01",
        "analysis.samples=64",
    ]
    summary = URNTrainer(load_scenario(CPU, overrides)).run()
    assert summary["status"] == "finished" and summary["cycles"] == 6
    assert summary["accuracy"] > 0.5  # 64 random images of 10 classes: memorised (seed 0: 0.11 -> 0.95)
    assert summary["loss"] < np.log(10)  # below the cross-entropy of a guess
    assert 0.0 <= summary["test_accuracy"] <= 1.0


@pytest.mark.parametrize("make", ["missing", "empty", "no test batch"])
def test_missing_cifar_files_are_a_one_line_error(tmp_path, cifar, capsys, make):
    folder = tmp_path / "given"
    if make != "missing":
        folder.mkdir()
    if make == "no test batch":
        (folder / "data_batch_1.bin").write_bytes((cifar / "data_batch_1.bin").read_bytes())
    assert main(["validate", str(CPU), "--set", f"phases.0.task.path={folder}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "phases.0.task.path" in err
    assert "data_batch_1.bin" in err and "test_batch.bin" in err
    with pytest.raises(ScenarioError, match="phases.0.task.path"):
        load_scenario(CPU, [f"phases.0.task.path={folder}"])
