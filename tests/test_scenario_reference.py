"""Tests for neurograph.scenario_reference: docs/scenarios.md is the schema's rendering,
the JSON Schema holds every field, and every field says what it means."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neurograph.charrnn.selectors import SELECTORS
from neurograph.charrnn.tasks import TASKS
from neurograph.scenario_reference import json_schema, markdown_reference
from neurograph_cli.main import main

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "scenarios.md"


def test_docs_scenarios_md_is_up_to_date():
    assert SELECTORS.kinds() == SELECTORS.kinds(builtin_only=True), "a test left a registered kind behind"
    assert TASKS.kinds() == TASKS.kinds(builtin_only=True), "a test left a registered kind behind"
    fresh = markdown_reference()
    assert REFERENCE.read_text(encoding="utf-8") == fresh, (
        "docs/scenarios.md is stale: regenerate it with `neurograph schema --markdown > docs/scenarios.md`"
    )


def properties(node, where=""):
    """(section title, field name, field schema) of every field anywhere in a schema."""
    if isinstance(node, dict):
        for name, field in node.get("properties", {}).items():
            yield node.get("title", where), name, field
        for key, value in node.items():
            yield from properties(value, key)
    elif isinstance(node, list):
        for value in node:
            yield from properties(value, where)


def test_every_field_says_what_it_means():
    missing = sorted({f"{t}.{n}" for t, n, f in properties(json_schema()) if n != "kind" and not f.get("description")})
    assert not missing


def test_every_section_and_kind_is_in_the_reference():
    text = markdown_reference()
    for kind in [*SELECTORS.kinds(), *TASKS.kinds(), "multipliers", "outgoing_l1", "fixed", "adagrad", "rmsprop",
                 "adam", "random", "inherit", "spheres", "bars", "cifar10", "digits", "parity"]:  # fmt: skip
        assert f"kind `{kind}`" in text, kind
    for _, name, _ in properties(json_schema()):
        assert f"| `{name}` |" in text, name


def test_the_reference_gives_types_defaults_and_bounds():
    text = markdown_reference()
    assert "| `p_del` | number | `0.05` | >= 0.0, <= 1.0 | P_del:" in text
    assert "| `hidden` | integer | required | >= 1, <= 4096 |" in text
    assert "| `every` | integer | `1` |" in text  # the URN's own report defaults, in epochs
    assert "cycles for a char-RNN and epochs for a URN" in text


def test_schema_prints_the_json_schema(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"].startswith("https://json-schema.org/") and schema["title"] == "neurograph scenario"
    assert [ref["$ref"] for ref in schema["oneOf"]] == [
        "#/$defs/Scenario", "#/$defs/URNScenario", "#/$defs/LayeredScenario"
    ]
    assert schema == json_schema()


@pytest.mark.parametrize("model, root", [("charrnn", "Scenario"), ("urn", "URNScenario")])
def test_schema_of_one_model(model, root, capsys):
    assert main(["schema", "--model", model]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == f"neurograph scenario ({model})" and "phases" in schema["properties"]
    assert root not in schema.get("$defs", {})


def test_schema_markdown_is_the_reference(capsys):
    assert main(["schema", "--markdown"]) == 0
    assert capsys.readouterr().out == markdown_reference()


def test_schema_of_an_unknown_model_is_refused():
    with pytest.raises(ValueError, match="unknown model 'lstm'; accepted: charrnn, urn"):
        json_schema("lstm")
