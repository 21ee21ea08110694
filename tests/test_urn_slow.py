"""Slow URN reproductions (minutes): ``pytest -m slow tests/test_urn_slow.py``.

The shipped CPU-sized scenarios, run to the end: the emergent MLP on the
spheres (Golkar Fig. 3), fewer layers with residual output nodes (Fig. 4), and
the synapse-length regulator giving a more feed-forward, shorter-wired network
on images (Sec. 3).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from neurograph.scenario import load_scenario
from neurograph.urn.train import URNTrainer

pytestmark = pytest.mark.slow
SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def run(name: str, *overrides: str) -> dict:
    torch.set_num_threads(1)
    return URNTrainer(load_scenario(SCENARIOS / name, list(overrides))).run()


@pytest.fixture(scope="module")
def plain() -> dict:
    return run("urn_spheres_cpu.yaml")


def test_cpu_spheres_grow_a_sparse_layered_network(plain):
    assert plain["test_accuracy"] == 1.0
    assert plain["active_total"] < plain["size"] / 2  # most of S is silent
    assert plain["path_depth"] >= 2 and plain["depth"] >= 2  # a layered network, not one wide layer
    assert plain["layers"][0] > plain["layers"][1]  # wide first layer, narrow later ones
    assert plain["forward_fraction"] > 0.5
    ablation = plain["ablation"]["neurons"]  # zeroing every weight of the silent neurons changes nothing
    assert ablation["accuracy_after"] == ablation["accuracy_before"] == 1.0
    assert ablation["max_output_change"] < 0.05


def test_residual_output_nodes_need_fewer_layers(plain):
    residual = run("urn_spheres_residual.yaml")
    assert residual["test_accuracy"] == 1.0
    assert residual["path_depth"] < plain["path_depth"]


def test_synapse_length_regulator_makes_forward_short_wiring():
    with_length = run("urn_images.yaml")
    without = run("urn_images.yaml", "loss.c_syn=0")
    assert with_length["forward_fraction"] > without["forward_fraction"]
    assert with_length["mean_synapse_length"] < without["mean_synapse_length"]
