"""Tests for neurograph.scenario: one read per file, the model picks the schema, and
``--set`` and ``--cycles`` are applied the same way for both models."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import neurograph.scenario as scenario_module
from neurograph.charrnn.scenario import Scenario, revision_optimizer
from neurograph.scenario import MODELS, ScenarioError, load_scenario, scenario_to_yaml
from neurograph.layered.scenario import LayeredScenario
from neurograph.urn.scenario import URNScenario
from test_urn_scenario import shipped_overrides

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
SWITCH, URN = SCENARIOS / "switch.yaml", SCENARIOS / "urn_spheres_cpu.yaml"
LAYERED = SCENARIOS / "layered" / "digits.yaml"


@pytest.mark.parametrize(
    "path, model", [(SWITCH, Scenario), (URN, URNScenario), (LAYERED, LayeredScenario)], ids=["charrnn", "urn", "layered"]
)
def test_the_file_is_read_once_and_its_model_picks_the_schema(path, model, monkeypatch):
    reads = []
    original = scenario_module.read_yaml_mapping
    monkeypatch.setattr(scenario_module, "read_yaml_mapping", lambda p, **kw: reads.append(p) or original(p, **kw))
    assert type(load_scenario(path)) is model
    assert reads == [path]


def test_models_are_the_three_schemas():
    assert MODELS == {"charrnn": Scenario, "urn": URNScenario, "layered": LayeredScenario}


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
    s = load_scenario(path, shipped_overrides(path, tmp_path))
    again = tmp_path / path.name
    again.write_text(scenario_to_yaml(s))
    assert load_scenario(again) == s
    assert ("model" in yaml.safe_load(again.read_text())) == (s.model != "charrnn")


# ------------------------------------------------------------- switching kinds
AGE_WEIGHTED = SCENARIOS / "extensions" / "ext-age-weighted.yaml"  # selector: {kind: age_weighted, alpha: ...}


@pytest.mark.parametrize(
    "overrides, selector",
    [
        (["structure.selector.kind=oldest"], {"kind": "oldest"}),  # alpha went with its kind
        (["structure.selector.kind=uniform", "structure.selector.kind=age_weighted"], {"kind": "age_weighted", "alpha": 1.0}),
        (["structure.selector.kind=youngest", "structure.selector.kind=age_weighted", "structure.selector.alpha=-2"],
         {"kind": "age_weighted", "alpha": -2.0}),
    ],
)  # fmt: skip
def test_set_kind_switches_a_rule_and_drops_the_old_kinds_fields(overrides, selector):
    assert load_scenario(AGE_WEIGHTED, overrides).structure.selector.model_dump() == selector


def test_setting_the_same_kind_keeps_its_fields():
    before = load_scenario(AGE_WEIGHTED).structure.selector
    assert load_scenario(AGE_WEIGHTED, ["structure.selector.kind=age_weighted"]).structure.selector == before


def test_set_kind_then_the_new_kinds_fields():
    s = load_scenario(SWITCH, ["structure.kind=fixed", "structure.hidden=20"])
    assert (s.structure.kind, s.structure.hidden, s.structure.threshold) == ("fixed", 20, 0.05)
    assert s.optimizer.kind == "rmsprop"  # switch.yaml names its optimizer


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["structure.kind=multipliers", "structure.new_norm=0.5"],
         "--set structure.new_norm: no field structure.new_norm (kind 'multipliers'; to switch kinds set structure.kind first)"),
        (["structure.selector.alpha=2"],  # the absent selector is the default one, uniform
         "--set structure.selector.alpha: no field structure.selector.alpha (kind 'uniform'; to switch kinds set "
         "structure.selector.kind first)"),
    ],
)  # fmt: skip
def test_a_field_of_another_kind_says_how_to_switch(overrides, message):
    with pytest.raises(ScenarioError) as err:
        load_scenario(SWITCH, overrides)
    assert str(err.value) == f"{SWITCH}: {message}"


# ----------------------------------------------------------- default optimizer
@pytest.mark.parametrize(
    "structure, optimizer",
    [
        ("{kind: multipliers}", {"kind": "adagrad", "lr": 0.1, "grad_clip": 5.0, "memory_init": 0.0}),
        ("{kind: outgoing_l1}",
         {"kind": "rmsprop", "lr": 0.01, "decay": 0.01, "update_clip": 0.01, "grad_clip": None, "memory_init": 0.01}),
        ("{kind: fixed, hidden: 5, penalty: multipliers}", {"kind": "adagrad", "lr": 0.1, "grad_clip": 5.0, "memory_init": 0.0}),
        ("{kind: fixed, hidden: 5}", {"kind": "rmsprop", "lr": 0.01, "decay": 0.01, "update_clip": 0.01,
                                      "grad_clip": None, "memory_init": 0.01}),
    ],
)  # fmt: skip
def test_the_optimizer_defaults_to_the_revisions(structure, optimizer, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(f"name: s\nstructure: {structure}\nphases: [{{task: {{kind: easy}}, cycles: 10}}]\n")
    assert load_scenario(path).optimizer.model_dump() == optimizer
    assert load_scenario(path, ["optimizer.lr=0.5"]).optimizer.model_dump() == {**optimizer, "lr": 0.5}


def test_the_shipped_scenarios_use_their_revisions_default_optimizer():
    """The defaults are the optimizers the shipped scenarios (the papers' settings) spell out."""
    checked = 0
    for path in sorted(SCENARIOS.rglob("*.yaml")):
        if path.parent.name != "sweeps" and yaml.safe_load(path.read_text()).get("model") not in ("urn", "layered"):
            s = load_scenario(path)
            assert s.optimizer == revision_optimizer(s.structure), path
            checked += 1
    assert checked > 10
