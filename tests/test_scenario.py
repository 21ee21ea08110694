"""Tests for neurograph.scenario: one read per file, the model picks the schema, and
``--set`` and ``--cycles`` are applied the same way for both models."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import neurograph.scenario as scenario_module
from neurograph.charrnn.scenario import Scenario
from neurograph.scenario import MODELS, ScenarioError, load_scenario, scenario_to_yaml
from neurograph.urn.scenario import URNScenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
SWITCH, URN = SCENARIOS / "switch.yaml", SCENARIOS / "urn_spheres_cpu.yaml"


@pytest.mark.parametrize("path, model", [(SWITCH, Scenario), (URN, URNScenario)], ids=["charrnn", "urn"])
def test_the_file_is_read_once_and_its_model_picks_the_schema(path, model, monkeypatch):
    reads = []
    original = scenario_module.read_yaml_mapping
    monkeypatch.setattr(scenario_module, "read_yaml_mapping", lambda p, **kw: reads.append(p) or original(p, **kw))
    assert type(load_scenario(path)) is model
    assert reads == [path]


def test_models_are_the_two_schemas():
    assert MODELS == {"charrnn": Scenario, "urn": URNScenario}


@pytest.mark.parametrize(
    "path, overrides, check",
    [
        (SWITCH, ["seed=7", "report.every=5"], lambda s: (s.seed, s.report.every) == (7, 5)),
        (SWITCH, ["structure.selector={kind: oldest}"], lambda s: s.structure.selector.kind == "oldest"),
        (URN, ["seed=7", "deletion.patience=2"], lambda s: (s.seed, s.deletion.patience) == (7, 2)),
        (URN, ["analysis.samples=10"], lambda s: s.analysis.samples == 10),  # absent section, opened
    ],
)
def test_overrides_apply_to_either_model(path, overrides, check):
    assert check(load_scenario(path, overrides))


@pytest.mark.parametrize("path, unit", [(SWITCH, "cycles"), (URN, "epochs")])
def test_cycles_scale_either_model(path, unit):
    s = load_scenario(path, cycles=12)
    assert s.total_cycles == 12 and sum(getattr(p, unit) for p in s.phases) == 12


@pytest.mark.parametrize("path", [SWITCH, URN])
def test_bad_cycles_name_the_file(path):
    with pytest.raises(ScenarioError) as err:
        load_scenario(path, cycles=0)
    assert str(err.value).startswith(f"{path}: --cycles must be an integer from 1 to")


def test_an_override_can_make_a_field_wrong_and_is_named():
    with pytest.raises(ScenarioError, match=r"optimizer\.lr \(from --set\): Input should be a finite number"):
        load_scenario(SWITCH, ["optimizer.lr=.inf"])


def test_a_char_rnn_field_in_a_urn_scenario_lists_the_urn_fields(tmp_path):
    path = tmp_path / "u.yaml"
    path.write_text(URN.read_text() + "window: 40\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    message = str(err.value)
    assert "window: unknown field; accepted: model, name" in message and "network" in message


def test_model_can_be_set_on_the_command_line(tmp_path):
    with pytest.raises(ScenarioError, match="unknown model 'lstm'"):
        load_scenario(SWITCH, ["model=lstm"])


@pytest.mark.parametrize("path", sorted(SCENARIOS.rglob("*.yaml")), ids=lambda p: str(p.relative_to(SCENARIOS)))
def test_shipped_scenarios_round_trip(path, tmp_path):
    if path.parent.name == "sweeps":
        pytest.skip("a sweep file, not a scenario")
    s = load_scenario(path)
    again = tmp_path / path.name
    again.write_text(scenario_to_yaml(s))
    assert load_scenario(again) == s
    assert ("model" in yaml.safe_load(again.read_text())) == (s.model == "urn")
