"""Loading a scenario: one YAML file, read once, validated as the model it names.

``model: urn`` selects :class:`~neurograph.urn.scenario.URNScenario`,
``model: layered`` :class:`~neurograph.layered.scenario.LayeredScenario`; no
``model`` (or ``model: charrnn``) the char-RNN's
:class:`~neurograph.charrnn.scenario.Scenario`. They form one pydantic
union discriminated by ``model`` (:data:`AnyScenario`), so a scenario is
validated once, against the schema it names. :func:`load_scenario` also
applies ``--set`` overrides and ``--cycles``, for every caller the same way.

Every error is a :class:`~neurograph.schema.ScenarioError` whose message is
one line naming the file and the field (or the YAML line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, Discriminator, Tag, TypeAdapter, ValidationError

from neurograph.charrnn.scenario import Scenario
from neurograph.registry import field_registry
from neurograph.schema import SCALED_INTERVALS, ScenarioError
from neurograph.layered.scenario import LayeredScenario
from neurograph.urn.scenario import URNScenario
from neurograph.yaml_file import YAMLFileError, parse_yaml, read_yaml_mapping

__all__ = [
    "MODELS",
    "AnyScenario",
    "Scenario",
    "URNScenario",
    "LayeredScenario",
    "ScenarioError",
    "load_scenario",
    "validate_scenario",
    "apply_overrides",
    "format_validation",
    "scenario_to_yaml",
]

DEFAULT_MODEL = "charrnn"
MODELS: dict[str, type[BaseModel]] = {"charrnn": Scenario, "urn": URNScenario, "layered": LayeredScenario}
_OTHER_MODELS = [m for m in MODELS if m != DEFAULT_MODEL]


def _model_tag(data: Any) -> str | None:
    """The union's tag: a mapping's ``model`` (char-RNN when absent), or a model instance's."""
    if isinstance(data, dict):
        return data.get("model", DEFAULT_MODEL)
    return getattr(data, "model", None)


AnyScenario = Annotated[
    Union[
        Annotated[Scenario, Tag("charrnn")],
        Annotated[URNScenario, Tag("urn")],
        Annotated[LayeredScenario, Tag("layered")],
    ],
    Discriminator(_model_tag, custom_error_type="unknown_model", custom_error_message="unknown model"),
]
_ADAPTER: TypeAdapter = TypeAdapter(AnyScenario)


# ------------------------------------------------------------------ loading
def load_scenario(
    path: str | Path, overrides: list[str] = (), *, cycles: int | None = None
) -> Scenario | URNScenario | LayeredScenario:
    """Read ``path`` once, apply ``overrides`` (``a.b=value``, value parsed as YAML), validate, resolve files.

    ``cycles``: scale the phases to that many steps in all (``--cycles``), and
    the snapshot and checkpoint intervals with them unless ``overrides`` set them.
    Relative file paths in the scenario (texts, CIFAR-10) become absolute,
    taken from the scenario file's folder.
    """
    path = Path(path)
    try:
        data = read_yaml_mapping(path, expected="a mapping with name, phases and the model's sections")
    except YAMLFileError as e:
        raise ScenarioError(str(e)) from None
    overrides = list(overrides)
    scenario = validate_scenario(apply_overrides(data, overrides, path), path, overrides)
    scenario = scenario.resolve_files(path)
    if cycles is not None:
        set_here = {item.split("=", 1)[0].strip() for item in overrides}  # --set report.graph_every=N wins
        keep = [name for name in SCALED_INTERVALS if f"report.{name}" in set_here]
        try:
            scenario = scenario.with_cycles(cycles, keep=keep)
        except ScenarioError as e:
            raise ScenarioError(f"{path}: {e}") from None
    return scenario


def validate_scenario(data: dict, path: Path, overrides: list[str] = ()) -> Scenario | URNScenario | LayeredScenario:
    """The scenario ``data`` describes; ScenarioError naming ``path`` and the field (and ``--set``)."""
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as err:
        set_by = {item.split("=", 1)[0].strip() for item in overrides}
        raise ScenarioError(format_validation(path, err, data, set_by)) from None


def scenario_to_yaml(scenario: Scenario | URNScenario | LayeredScenario) -> str:
    """The fully resolved scenario (every default written out) as YAML."""
    return yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False)


# ------------------------------------------------------------------ errors
def format_validation(path: Path, err: ValidationError, data: Any, set_by: set[str] = frozenset()) -> str:
    """One line naming the file and the field of the first validation error."""
    first = err.errors()[0]
    loc, tag = tuple(first["loc"]), _model_tag(data)
    if loc and loc[0] == tag:
        loc = loc[1:]  # the union's tag is not a field
    msg = first["msg"].removeprefix("Value error, ")  # a validator's own message
    where = _field_path(loc, data)
    if first["type"] == "unknown_model":
        accepted = ", ".join([f"{DEFAULT_MODEL} (the default)", *_OTHER_MODELS])
        where, msg = "model", f"unknown model {tag!r}; accepted: {accepted}"
    elif first["type"] == "extra_forbidden":
        section = _model_at(loc[:-1], MODELS.get(tag) if isinstance(tag, str) else None, data)
        msg = "unknown field" + (f"; accepted: {', '.join(section.model_fields)}" if section else "")
    elif ": " in msg and msg.split(": ", 1)[0].replace(".", "").replace("_", "").isalnum() and (
        not where or msg.startswith(where + ".")
    ):
        where, msg = msg.split(": ", 1)  # a section's rule names its field (within the section) first
    where = where or "(top level)"
    if where in set_by:
        where = f"{where} (from --set)"
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return _one_line(f"{path}: {where}: {msg}{more}")


def _field_path(loc: tuple, data: Any) -> str:
    """Dotted path of a pydantic error location, without the union tags.

    pydantic inserts a discriminated union's tag (``'outgoing_l1'``) after the
    field; walking the input alongside tells a tag (the node's ``kind``, not one
    of its keys) from a field name.
    """
    parts, node = [], data
    for part in loc:
        if isinstance(node, dict) and part not in node and node.get("kind") == part:
            continue
        parts.append(str(part))
        node = _child(node, part)
    return ".".join(parts)


def _child(node: Any, key: Any) -> Any:
    if isinstance(node, dict):
        return node.get(key)
    if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
        return node[key]
    return None


def _model_at(loc: tuple, root: type[BaseModel] | None, data: Any = None) -> type[BaseModel] | None:
    """Section model at a pydantic location (tags included), to list its fields.

    A registry's field (:attr:`neurograph.registry.Registry.field`) puts no tag
    into the location: the section registered under the input's ``kind`` there is taken.
    """
    node: Any = root
    for part in loc:
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(part)
            node = field.annotation if field else None
            data = _child(data, part)
            registry = field_registry(field)
            if registry is not None:
                kind = data.get("kind") if isinstance(data, dict) else None
                node = registry.config(kind) if kind in registry.kinds() else None
        elif get_origin(node) is list and isinstance(part, int):
            data = _child(data, part)
            node = get_args(node)[0]
        elif get_origin(node) is Union:  # discriminated: the tag names the member
            tagged = [m for m in get_args(node) if getattr(m, "model_fields", {}).get("kind")]
            node = next((m for m in tagged if m.model_fields["kind"].default == part), None)
        else:
            return None
    return node if isinstance(node, type) and issubclass(node, BaseModel) else None


def _one_line(text: str) -> str:
    """Messages end up on one stderr line: fold any newline a value brought in."""
    return " ".join(text.split())


# --------------------------------------------------------------- overrides
def apply_overrides(data: dict, overrides: list[str], path: Path) -> dict:
    """Apply ``a.b.c=value`` overrides (value parsed as YAML) to the nested dict ``data``, in place.

    An absent key is accepted only when it is a field of the scenario's
    model, checked by validating a probe. Setting a section's ``kind`` to
    another kind switches the rule: the old kind's fields are dropped and the
    new kind starts from its defaults (``--set structure.selector.kind=oldest``
    on an ``age_weighted`` selector drops its ``alpha``); set the new kind's
    fields after it (``--set structure.kind=fixed --set structure.hidden=20``).
    """
    for item in overrides:
        if "=" not in item:
            raise ScenarioError(f"{path}: --set {item!r}: expected path.to.field=value")
        dotted, raw = item.split("=", 1)
        keys = dotted.strip().split(".")
        try:
            value = parse_yaml(raw)
        except yaml.YAMLError:
            raise ScenarioError(f"{path}: --set {dotted}: value {raw!r} is not valid YAML") from None
        _set(data, keys, value, path, dotted)
    return data


def _set(data: dict, keys: list[str], value: Any, path: Path, dotted: str) -> None:
    node: Any = data
    for i, key in enumerate(keys):
        last = i == len(keys) - 1
        where = ".".join(keys[: i + 1])
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ScenarioError(f"{path}: --set {dotted}: no list item {where}")
            key = int(key)
        elif isinstance(node, dict):
            if key not in node and not _settable(data, keys[: i + 1]):
                switch = f"; to switch kinds set {'.'.join(keys[:i] + ['kind'])} first" if "kind" in node else ""
                of_kind = f" (kind {node['kind']!r}{switch})" if "kind" in node else ""
                raise ScenarioError(f"{path}: --set {dotted}: no field {where}{of_kind}")
            if not last and key not in node:
                node[key] = _default_section(data, keys[: i + 1])  # an optional section left to its defaults
        else:
            raise ScenarioError(f"{path}: --set {dotted}: {'.'.join(keys[:i])} is not a section")
        if last:
            if key == "kind" and isinstance(node, dict) and node.get("kind", value) != value:
                node.clear()  # another kind: the old kind's fields do not apply to it
            node[key] = value
        else:
            node = node[key]


def _default_section(data: dict, keys: list[str]) -> dict:
    """The defaults of the absent section at ``keys``, as data (a --set inside it keeps its kind); {} if unknown."""
    try:
        node: Any = _ADAPTER.validate_python(data)
    except ValidationError:
        return {}
    for key in keys:
        node = node[int(key)] if isinstance(node, list) else getattr(node, key, None)
    return node.model_dump(mode="json") if isinstance(node, BaseModel) else {}


def _settable(data: dict, keys: list[str]) -> bool:
    """Whether an absent key is a real (optional) field: validate a probe to find out."""
    probe = _copy(data)
    node: Any = probe
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[keys[-1]] = None
    try:
        _ADAPTER.validate_python(probe)
    except ValidationError as err:
        target = tuple(keys)
        for e in err.errors():
            loc = tuple(str(p) for p in e["loc"])
            if e["type"] == "extra_forbidden" and _same_field(loc, target):
                return False
    return True


def _same_field(loc: tuple[str, ...], keys: tuple[str, ...]) -> bool:
    # pydantic puts union tags (the model, each 'kind') into loc: compare ignoring them
    it = iter(loc)
    return all(any(k == part for part in it) for k in keys) and loc[-1] == keys[-1]


def _copy(data):
    if isinstance(data, dict):
        return {k: _copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy(v) for v in data]
    return data
