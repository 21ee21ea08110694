"""Tests for neurograph.urn.scenario, read through neurograph.scenario.load_scenario: shipped files, overrides, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from neurograph.charrnn.scenario import Scenario
from neurograph.scenario import ScenarioError, load_scenario, scenario_to_yaml
from neurograph.urn.scenario import URNScenario

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
SHIPPED = sorted(SCENARIOS.glob("urn_*.yaml"))


def test_the_urn_scenarios_are_shipped():
    assert {p.name for p in SHIPPED} >= {
        "urn_spheres.yaml",
        "urn_spheres_cpu.yaml",
        "urn_spheres_residual.yaml",
        "urn_images.yaml",
        "urn_nesa.yaml",
        "urn_cifar.yaml",
        "urn_cifar_cpu.yaml",
        "urn_spheres_1000.yaml",
    }


def shipped_overrides(path: Path, tmp_path: Path) -> list[str]:
    """CIFAR-10 scenarios read the user's folder: point them at one with (empty) files of its names."""
    phases = yaml.safe_load(path.read_text()).get("phases") or []
    if not any(isinstance(p, dict) and p.get("task", {}).get("kind") == "cifar10" for p in phases):
        return []
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir(exist_ok=True)
    for name in ("data_batch_1.bin", "test_batch.bin"):
        (folder / name).touch()
    return [f"phases.0.task.path={folder}"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_scenarios_load_and_round_trip(path, tmp_path):
    s = load_scenario(path, shipped_overrides(path, tmp_path))
    assert isinstance(s, URNScenario) and s.model == "urn"
    again = tmp_path / "resolved.yaml"
    again.write_text(scenario_to_yaml(s))
    assert load_scenario(again) == s


def test_paper_settings():
    s = load_scenario(SCENARIOS / "urn_spheres.yaml")
    assert (s.network.size, s.network.iterations, s.phases[0].epochs) == (5000, 4, 200)
    assert (s.optimizer.lr, s.loss.c_w, s.loss.c_n) == (7e-4, 5e-7, 2e-5)
    assert s.phases[0].task.dim == 10 and s.phases[0].task.train == 4000
    assert load_scenario(SCENARIOS / "urn_spheres_residual.yaml").network.update == "residual_output"
    long = load_scenario(SCENARIOS / "urn_spheres_1000.yaml")  # the paper's regulators, trained longer
    assert (long.loss.c_w, long.loss.c_n, long.optimizer.lr, long.training.batch_size) == (5e-7, 2e-5, 7e-4, 32)
    assert long.network.size == 1000 and long.deletion.enabled and long.phases[0].epochs == 800
    assert load_scenario(SCENARIOS / "urn_images.yaml").loss.c_syn > 0
    assert len(load_scenario(SCENARIOS / "urn_nesa.yaml").phases) >= 3


def test_a_scenario_without_model_is_a_char_rnn():
    s = load_scenario(SCENARIOS / "switch.yaml")
    assert isinstance(s, Scenario) and s.model == "charrnn"
    assert "model" not in scenario_to_yaml(s)  # the default is not written: run folders read as before


def test_model_charrnn_may_be_written_out(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("model: charrnn\n" + (SCENARIOS / "switch.yaml").read_text())
    assert load_scenario(path) == load_scenario(SCENARIOS / "switch.yaml")


def test_overrides_open_absent_sections_and_parse_yaml():
    path = SCENARIOS / "urn_spheres_residual.yaml"  # has no deletion or analysis section
    s = load_scenario(path, ["deletion.enabled=true", "deletion.patience=3", "loss.c_syn=0.5", "seed=7"])
    assert s.deletion.enabled and s.deletion.patience == 3 and s.loss.c_syn == 0.5 and s.seed == 7
    s = load_scenario(SCENARIOS / "urn_images.yaml", ["phases.0.task={kind: bars, classes: 2, pairs: true}"])
    assert s.phases[0].task.pairs and s.phases[0].task.classes == 2


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["loss.c_ww=1"], r"--set loss\.c_ww: no field loss\.c_ww"),
        (["network.update=skip"], r"network\.update \(from --set\): Input should be"),
        (["phases.0.task.classes=9"], r"phases\.0\.task\.classes"),
        (["bogus.section.x=1"], r"--set bogus\.section\.x: no field bogus"),
        (["phases.5.epochs=1"], r"no list item phases\.5"),
        (["loss.c_w"], r"expected path\.to\.field=value"),
        (["network.size=null"], r"network\.size \(S\) is required for spheres"),
    ],
)
def test_bad_overrides_are_one_line_errors(overrides, message):
    with pytest.raises(ScenarioError, match=message) as err:
        load_scenario(SCENARIOS / "urn_spheres_cpu.yaml", overrides)
    assert "\n" not in str(err.value)


def write(tmp_path, data) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def base() -> dict:
    phases = [{"task": {"kind": "spheres"}, "epochs": 1}]
    return {"model": "urn", "name": "t", "network": {"size": 50}, "phases": phases}


def test_file_errors(tmp_path):
    data = base()
    data["model"] = "rnn"
    with pytest.raises(ScenarioError, match=r"model: unknown model 'rnn'; accepted: charrnn \(the default\), urn"):
        load_scenario(write(tmp_path, data))
    data = base()
    data["phases"].append({"task": {"kind": "bars"}, "epochs": 1})
    with pytest.raises(ScenarioError, match="mix spheres with image tasks"):
        load_scenario(write(tmp_path, data))
    data = base()
    data["phases"][0]["task"] = {"kind": "bars"}
    with pytest.raises(ScenarioError, match="geometry.x and .y"):
        load_scenario(write(tmp_path, data))
    data = base()
    data["phases"][0]["task"] = {"kind": "cifar10", "path": "nowhere"}
    data["network"] = {"geometry": {"x": 8, "y": 8}}
    with pytest.raises(ScenarioError, match=r"phases\.0\.task\.path: CIFAR-10 folder .* not found"):
        load_scenario(write(tmp_path, data))
    data = base()
    data["phases"][0]["task"]["radii"] = [1.0, 1.1]
    with pytest.raises(ScenarioError, match="overlap"):
        load_scenario(write(tmp_path, data))


def test_cifar_path_is_resolved_against_the_scenario_file(tmp_path):
    (tmp_path / "cifar").mkdir()
    for name in ("data_batch_1.bin", "test_batch.bin"):
        (tmp_path / "cifar" / name).touch()
    data = base()
    data["phases"][0]["task"] = {"kind": "cifar10", "path": "cifar"}
    data["network"] = {"geometry": {"x": 8, "y": 8, "z": 3}}
    s = load_scenario(write(tmp_path, data))
    assert s.phases[0].task.path == str((tmp_path / "cifar").resolve())


def test_with_cycles_scales_phase_epochs():
    s = load_scenario(SCENARIOS / "urn_nesa.yaml").with_cycles(7)
    assert s.total_cycles == 7 and all(p.epochs >= 1 for p in s.phases)
    with pytest.raises(ScenarioError):
        s.with_cycles(0)


def test_schema_documents_every_paper_field():
    fields = URNScenario.model_fields["loss"].annotation.model_fields
    assert all(fields[name].description for name in ("c_w", "c_n", "c_syn", "gamma"))
