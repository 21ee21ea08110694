"""Tests for neurograph.registry and the kinds registered through it: a task or a
deletion selector of the user's own is named in YAML like a built-in one."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from pydantic import BaseModel, Field

from neurograph.charrnn.growth import build_rule
from neurograph.charrnn.run_state import make_task
from neurograph.charrnn.selectors import SELECTORS, Selector, build_selector, register_selector
from neurograph.charrnn.tasks import TASKS, EasyTask, register_task
from neurograph.registry import Registry, RegistryError
from neurograph.scenario import ScenarioError, load_scenario
from neurograph.scenario_reference import json_schema
from neurograph.schema import Strict

SWITCH = Path(__file__).resolve().parents[1] / "scenarios" / "switch.yaml"


class Spare(Strict):
    """Spares neurons younger than ``grace`` cycles."""

    kind: Literal["spare_young"] = "spare_young"
    grace: int = Field(10, ge=0, le=1000, description="cycles a new neuron is spared")


class SpareYoung(Selector):
    def __init__(self, grace: int) -> None:
        self.grace = grace

    def pick(self, candidates, ages, n, rng):
        old = candidates[ages >= self.grace]
        return np.sort(old)[:n]


class Reversed(Strict):
    """The easy task's stream, from a file of settings."""

    kind: Literal["from_file"] = "from_file"
    path: str = Field(min_length=1, description="a file, relative to the scenario")


@pytest.fixture
def spare():
    register_selector(Spare, lambda c: SpareYoung(c.grace))
    yield Spare
    SELECTORS.unregister("spare_young")


@pytest.fixture
def from_file():
    register_task(Reversed, lambda c, rng: EasyTask(float(Path(c.path).read_text()), rng=rng))
    yield Reversed
    TASKS.unregister("from_file")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- registry
def test_a_registry_builds_by_kind_and_lists_its_kinds():
    shapes = Registry("shape")
    shapes.register(Spare, lambda c, scale: c.grace * scale)
    assert shapes.kinds() == ["spare_young"] and shapes.config("spare_young") is Spare
    assert shapes.build(Spare(grace=3), 2) == 6


def test_a_kind_is_registered_once_unless_replaced():
    shapes = Registry("shape")
    shapes.register(Spare, lambda c: 1)
    with pytest.raises(RegistryError, match="'spare_young' is already registered"):
        shapes.register(Spare, lambda c: 2)
    shapes.register(Spare, lambda c: 2, replace=True)
    assert shapes.build(Spare()) == 2


def test_built_in_kinds_cannot_be_replaced_or_removed():
    with pytest.raises(RegistryError, match="built-in"):
        register_selector(SELECTORS.config("oldest"), lambda c: None, replace=True)
    with pytest.raises(RegistryError, match="built-in"):
        SELECTORS.unregister("uniform")
    assert SELECTORS.kinds(builtin_only=True) == ["uniform", "oldest", "youngest", "age_weighted"]
    assert TASKS.kinds(builtin_only=True) == ["easy", "hard", "text"]


class NoKind(BaseModel):
    alpha: float = 1.0


@pytest.mark.parametrize("config", [NoKind, dict, "oldest"])
def test_a_config_needs_a_kind_field(config):
    with pytest.raises(RegistryError, match="kind: Literal"):
        Registry("shape").register(config, lambda c: None)


def test_building_an_unknown_kind_says_what_is_accepted():
    with pytest.raises(RegistryError, match="unknown selector kind 'spare_young'; accepted: uniform, oldest"):
        SELECTORS.build(Spare())  # not registered here


# ------------------------------------------------------ kinds in a scenario
def test_a_registered_selector_is_named_in_yaml_and_used(spare):
    scenario = load_scenario(SWITCH, ["structure.selector={kind: spare_young, grace: 5}"])
    assert scenario.structure.selector == Spare(grace=5)
    rule = build_rule(scenario.structure)
    assert isinstance(rule.selector, SpareYoung) and rule.selector.grace == 5
    # three below threshold, k = 1: two at risk, the young one (age 2) spared; p_del decides
    picked = rule.selector.pick(np.array([4, 7, 9]), np.array([50, 2, 60]), 2, np.random.default_rng(0))
    assert picked.tolist() == [4, 9]


def test_set_switches_to_a_registered_selector(spare):
    scenario = load_scenario(SWITCH, ["structure.selector.kind=spare_young", "structure.selector.grace=7"])
    assert isinstance(build_selector(scenario.structure.selector), SpareYoung)


def test_a_registered_selector_reports_its_own_fields(spare):
    with pytest.raises(ScenarioError) as err:
        load_scenario(SWITCH, ["structure.selector={kind: spare_young, grce: 5}"])
    assert str(err.value) == f"{SWITCH}: structure.selector.grce: unknown field; accepted: kind, grace"
    with pytest.raises(ScenarioError, match=r"structure\.selector\.grace: Input should be less than or equal to 1000"):
        load_scenario(SWITCH, ["structure.selector={kind: spare_young, grace: 5000}"])


def test_an_unregistered_kind_is_one_line_listing_the_accepted(spare):
    with pytest.raises(ScenarioError) as err:
        load_scenario(SWITCH, ["structure.selector.kind=spare_old"])
    assert str(err.value) == (
        f"{SWITCH}: structure.selector: unknown selector kind 'spare_old'; "
        "accepted: uniform, oldest, youngest, age_weighted, spare_young"
    )


def test_a_registered_task_takes_its_path_from_the_scenario_folder(from_file, tmp_path):
    (tmp_path / "p.txt").write_text("0.5")
    path = write(tmp_path, "name: t\nstructure: {kind: outgoing_l1}\nphases:\n- task: {kind: from_file, path: p.txt}\n  cycles: 10\n")
    scenario = load_scenario(path)
    task = scenario.phases[0].task
    assert task.path == str(tmp_path / "p.txt")
    built = make_task(task, np.random.default_rng(0))
    assert isinstance(built, EasyTask) and built.p == 0.5


def test_registered_kinds_are_in_the_json_schema(spare):
    schema = json_schema("charrnn")
    selector = schema["$defs"]["OutgoingL1Rule"]["properties"]["selector"]
    assert [m["title"] for m in selector["oneOf"]][-1] == "Spare"
    SELECTORS.unregister("spare_young")
    selector = json_schema("charrnn")["$defs"]["OutgoingL1Rule"]["properties"]["selector"]
    assert "Spare" not in [m["title"] for m in selector["oneOf"]]
    register_selector(Spare, lambda c: SpareYoung(c.grace))  # for the fixture's teardown
