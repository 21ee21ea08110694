"""Tests for neurograph.schema and the two scenario schemas built on it: every number is
bounded, strict and finite, names stay in their folder, and with_cycles keeps proportions."""

from __future__ import annotations

import inspect
import math
from typing import Union, get_args, get_origin

import annotated_types
import pytest
import yaml
from pydantic import BaseModel, ValidationError

import neurograph.charrnn.scenario as charrnn_scenario
import neurograph.schema as schema
import neurograph.urn.scenario as urn_scenario
from neurograph.charrnn.scenario import AgeWeightedSelector, EasyTask, Scenario
from neurograph.scenario import load_scenario
from neurograph.schema import ReportConfig, ScenarioError
from neurograph.urn.scenario import URNScenario

SECTIONS = sorted(
    {
        cls
        for module in (schema, charrnn_scenario, urn_scenario)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, schema.Strict)
    },
    key=lambda cls: cls.__qualname__,
)


def numeric_fields():
    """(section, field name, number type, constraints) for every int or float a scenario can hold."""
    for cls in SECTIONS:
        for name, field in cls.model_fields.items():
            for kind, metadata in _numbers(field.annotation, list(field.metadata)):
                yield pytest.param(cls, name, kind, metadata, id=f"{cls.__name__}.{name}")


def _numbers(annotation, metadata):
    """Number types inside an annotation (``int | None``, ``tuple[float, float]``) with their constraints."""
    if annotation in (int, float):
        yield annotation, metadata
    elif get_origin(annotation) in (Union, tuple) or type(annotation).__name__ == "UnionType":
        for arg in get_args(annotation):
            yield from _numbers(arg, metadata)
    elif hasattr(annotation, "__metadata__"):  # Annotated[float, Field(...)]
        inner = get_args(annotation)[0]
        extra = [m for field in annotation.__metadata__ for m in getattr(field, "metadata", [field])]
        yield from _numbers(inner, metadata + extra)


NUMERIC = list(numeric_fields())


def test_the_schemas_have_numbers_to_check():
    assert len(NUMERIC) > 60


@pytest.mark.parametrize("cls, name, kind, metadata", NUMERIC)
def test_every_number_has_both_bounds_in_its_field(cls, name, kind, metadata):
    lower = [m for m in metadata if isinstance(m, (annotated_types.Ge, annotated_types.Gt))]
    upper = [m for m in metadata if isinstance(m, (annotated_types.Le, annotated_types.Lt))]
    assert lower and upper, f"{cls.__name__}.{name} needs ge/gt and le/lt in its Field"
    bound = getattr(upper[0], "le", None) or getattr(upper[0], "lt", None)
    assert math.isfinite(bound)


@pytest.mark.parametrize("cls", SECTIONS, ids=lambda c: c.__name__)
def test_every_section_is_strict_finite_and_closed(cls):
    config = cls.model_config
    assert config["extra"] == "forbid" and config["strict"] and config["allow_inf_nan"] is False


def test_json_schema_documents_the_bounds():
    window = Scenario.model_json_schema()["properties"]["window"]
    assert window["maximum"] == charrnn_scenario.MAX_WINDOW and window["exclusiveMinimum"] == 0
    network = URNScenario.model_json_schema()["$defs"]["NetworkConfig"]["properties"]
    assert network["size"]["anyOf"][0]["maximum"] == urn_scenario.MAX_SIZE


@pytest.mark.parametrize(
    "model, data, field",
    [
        (EasyTask, {"p": True}, "p"),
        (AgeWeightedSelector, {"alpha": float("nan")}, "alpha"),
        (AgeWeightedSelector, {"alpha": float("-inf")}, "alpha"),
        (ReportConfig, {"every": 1.0}, "every"),
        (ReportConfig, {"every": "5"}, "every"),
        (ReportConfig, {"checkpoint_every": False}, "checkpoint_every"),
    ],
)
def test_numbers_are_strict_and_finite(model: type[BaseModel], data: dict, field: str):
    with pytest.raises(ValidationError) as err:
        model.model_validate(data)
    assert err.value.errors()[0]["loc"] == (field,)


def test_an_int_is_a_float():
    assert AgeWeightedSelector.model_validate({"alpha": 2}).alpha == 2.0


def base(name: str = "t", **extra) -> dict:
    phases = [{"task": {"kind": "easy"}, "cycles": 30}, {"task": {"kind": "hard"}, "cycles": 70}]
    return {"name": name, "structure": {"kind": "outgoing_l1"}, "optimizer": {"kind": "rmsprop"}, "phases": phases, **extra}


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../../escaped/evil", "a\\b", "tab\there", "", "x" * 101])
def test_a_name_must_be_one_folder_name(name: str):
    with pytest.raises(ValidationError) as err:
        Scenario.model_validate(base(name))
    assert err.value.errors()[0]["loc"] == ("name",)


@pytest.mark.parametrize("name", ["switch", "fixed-10-hard", "ext_age.weighted", "a b", "données"])
def test_ordinary_names_are_accepted(name: str):
    assert Scenario.model_validate(base(name)).name == name


@pytest.mark.parametrize(
    "structure, message",
    [
        ({"kind": "outgoing_l1", "k": 5, "max_hidden": 4}, r"k \(5\) reserve neurons cannot exceed max_hidden \(4\)"),
        ({"kind": "multipliers", "initial_hidden": 9, "max_hidden": 4}, r"initial_hidden \(9\) exceeds max_hidden \(4\)"),
    ],
)
def test_reserve_and_start_fit_under_the_cap(structure: dict, message: str):
    with pytest.raises(ValidationError, match=message):
        Scenario.model_validate(base(structure=structure))
    assert Scenario.model_validate(base(structure={**structure, "max_hidden": 9}))


def test_with_cycles_keeps_proportions_and_checks_its_bound():
    s = Scenario.model_validate(base())
    assert [p.cycles for p in s.with_cycles(10).phases] == [3, 7]
    assert s.with_cycles(10).total_cycles == 10
    for bad in (0, -1, charrnn_scenario.MAX_CYCLES + 1, True, 2.5):
        with pytest.raises(ScenarioError, match="--cycles must be an integer from 1 to 1,000,000,000"):
            s.with_cycles(bad)


LONG = [{"task": {"kind": "easy"}, "cycles": 3_000}, {"task": {"kind": "hard"}, "cycles": 7_000}]


def test_with_cycles_scales_snapshot_and_checkpoint_intervals():
    """A 100-cycle run of a 10,000-cycle scenario still gets its snapshots and checkpoints."""
    s = Scenario.model_validate(base(phases=LONG, report={"every": 100, "graph_every": 2_000, "checkpoint_every": 5_000}))
    short = s.with_cycles(100)
    assert short.report == ReportConfig(every=100, graph_every=20, checkpoint_every=50)
    assert s.with_cycles(2).report.graph_every == 1  # never 0: that means "final only"
    assert s.with_cycles(100, keep=["graph_every"]).report.graph_every == 2_000
    final_only = Scenario.model_validate(base(report={"graph_every": 0, "checkpoint_every": 0}))
    assert final_only.with_cycles(10).report == final_only.report


def test_cycles_option_keeps_intervals_given_with_set(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(base(phases=LONG, report={"graph_every": 2_000, "checkpoint_every": 5_000})))
    scaled = load_scenario(path, cycles=100).report
    kept = load_scenario(path, ["report.checkpoint_every=7"], cycles=100).report
    assert (scaled.graph_every, scaled.checkpoint_every) == (20, 50)
    assert (kept.graph_every, kept.checkpoint_every) == (20, 7)


def test_urn_with_cycles_scales_epochs_up_to_its_own_bound():
    s = URNScenario.model_validate(
        {"model": "urn", "name": "u", "network": {"size": 50}, "phases": [{"task": {"kind": "spheres"}, "epochs": 2}]}
    )
    assert s.with_cycles(5).phases[0].epochs == 5
    with pytest.raises(ScenarioError, match="from 1 to 100,000"):
        s.with_cycles(urn_scenario.MAX_EPOCHS + 1)


def test_urn_report_defaults_are_in_epochs_even_for_a_partial_section():
    data = {"model": "urn", "name": "u", "network": {"size": 50}, "phases": [{"task": {"kind": "spheres"}, "epochs": 2}]}
    assert URNScenario.model_validate(data).report == ReportConfig(every=1, graph_every=0, checkpoint_every=10)
    partial = URNScenario.model_validate({**data, "report": {"every": 5}}).report
    assert partial == ReportConfig(every=5, graph_every=0, checkpoint_every=10)
    assert Scenario.model_validate(base()).report == ReportConfig()  # the char-RNN's: in cycles
