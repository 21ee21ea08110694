"""The scenario reference, generated from the schemas: JSON Schema and Markdown.

:func:`json_schema` is the JSON Schema of a scenario file (``neurograph
schema`` prints it; editors validate YAML against it).
:func:`markdown_reference` renders the same schema as ``docs/scenarios.md``
(``neurograph schema --markdown``): one table per section, with each field's
type, default, bounds and meaning, in the order a scenario file nests them. A
test compares the file with the rendering, so the reference cannot go stale.
The kinds a registry holds (tasks, deletion selectors) are documented as they
are registered when it runs: neurograph's own, unless user code added more.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import TypeAdapter

from neurograph.scenario import _ADAPTER, MODELS

__all__ = ["json_schema", "markdown_reference"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"  # the draft pydantic writes

_PREAMBLE = """\
# Scenario reference

<!-- Generated from the schemas by `neurograph schema --markdown > docs/scenarios.md`; do not edit by hand.
     tests/test_scenario_reference.py fails when this file is stale. -->

A scenario is one YAML file: a char-RNN run (Miconi's papers; no `model:` key)
or a URN run (Golkar's; `model: urn`). Every section below refuses unknown
keys, every number has the bounds shown (NaN and infinities are refused, `true`
is not a number), and a field left out takes its default. Where the papers give
a value, the meaning says so (`paper: ...`, `original code: ...`).

- **Units.** A char-RNN phase lasts `cycles`: one cycle trains one window of
  `window` characters (40 in the papers). A URN phase lasts `epochs`: passes
  over its training set. Everything counted in "steps" (`report`, `--cycles`,
  the live view's progress) is cycles for a char-RNN and epochs for a URN.
- **Kinds.** Pluggable parts are chosen by `kind` (`structure`, `optimizer`,
  `task`, `selector`, `init`); each kind has its own fields. Tasks and deletion
  selectors are registries: Python code can add kinds
  (`neurograph.register_task`, `neurograph.register_selector`, see
  `docs/api.md`), which a scenario then names like these.
- **Your own text.** `task: {kind: text, path: corpus.txt}` trains on any UTF-8
  file (up to 100 MB); `path` is relative to the scenario file, the alphabet
  is the file's characters, and every phase must share it
  (`scenarios/text.yaml`).
- **Overrides.** `--set a.b=value` sets any field (value parsed as YAML;
  list items by index: `phases.1.task.length=5`). Setting a `kind` to another
  kind drops the old kind's fields and starts the new one from its defaults
  (`--set structure.selector.kind=oldest`); set the new kind's fields after it.
- **Editors.** `neurograph schema > scenario.schema.json` writes the JSON
  Schema; YAML editors validate scenario files against it.
"""


def json_schema(model: str | None = None) -> dict:
    """JSON Schema of a scenario file: any model, or ``model`` (``charrnn``, ``urn`` or ``layered``) only."""
    if model is not None and model not in MODELS:
        raise ValueError(f"unknown model {model!r}; accepted: {', '.join(MODELS)}")
    schema = (_ADAPTER if model is None else TypeAdapter(MODELS[model])).json_schema()
    title = "neurograph scenario" + ("" if model is None else f" ({model})")
    return {"$schema": SCHEMA_DIALECT, **schema, "title": title}


def markdown_reference() -> str:
    """``docs/scenarios.md``: the preamble, then every section of each model's schema."""
    parts = [_PREAMBLE]
    headings = (("charrnn", "Char-RNN scenarios"), ("urn", "URN scenarios (`model: urn`)"),
                ("layered", "Layered and multi-area scenarios (`model: layered`)"))  # fmt: skip
    for model, heading in headings:
        schema = json_schema(model)
        parts.append(f"\n## {heading}\n")
        parts.extend(_Sections(schema, model).render())
    return "".join(parts)


class _Sections:
    """Sections of one model's schema, each rendered once where a scenario file first nests it."""

    def __init__(self, schema: dict, model: str) -> None:
        self.defs = schema.get("$defs", {})
        self.root = schema
        self.model = model
        self.anchors: dict[int, str] = {}  # id(section schema) -> anchor
        self.defaults: dict[int, dict] = {}  # id(section schema) -> its field's default, where that is not its own
        self.queue: list[tuple[str, str, dict]] = []  # (path, kind, schema) to render, in order

    def render(self) -> list[str]:
        out = []
        self._enqueue("(top level)", "", self.root)
        while self.queue:
            path, kind, section = self.queue.pop(0)
            out.append(self._table(path, kind, section))
        return out

    # ----------------------------------------------------------- sections
    def _resolve(self, node: dict) -> dict:
        ref = node.get("$ref")
        return self.defs[ref.rsplit("/", 1)[-1]] if ref else node

    def _enqueue(self, path: str, kind: str, node: dict) -> str:
        """Anchor of the section ``node`` (queued for rendering the first time it is met)."""
        section = self._resolve(node)
        if isinstance(node.get("default"), dict) and node["default"].keys() - {"kind"}:
            self.defaults[id(section)] = node["default"]  # e.g. the URN's report: its own defaults
        if id(section) not in self.anchors:
            title = f"{path} {kind}".strip()
            self.anchors[id(section)] = f"{self.model}-" + re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
            self.queue.append((path, kind, section))
        return self.anchors[id(section)]

    def _table(self, path: str, kind: str, section: dict) -> str:
        heading = f"`{path}`" if path != "(top level)" else "Top level"
        if kind:
            heading += f", kind `{kind}`"
        lines = [f'\n<a id="{self.anchors[id(section)]}"></a>\n### {heading}\n']
        if section.get("description"):
            lines.append(f"\n{_text(section['description'])}\n")
        lines.append("\n| field | type | default | bounds | meaning |\n|---|---|---|---|---|\n")
        required = set(section.get("required", ()))
        defaults = self.defaults.get(id(section), {})
        for name, field in section.get("properties", {}).items():
            field = {**field, "default": defaults[name]} if name in defaults else field
            child = name if path == "(top level)" else f"{path}.{name}"
            meaning = field.get("description", "selects this section" if name == "kind" else "")
            cells = [f"`{name}`", self._type(child, field), _default(field, name in required),
                     _bounds(field), _text(meaning)]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |\n")
        return "".join(lines)

    # -------------------------------------------------------------- types
    def _type(self, path: str, field: dict) -> str:
        if "$ref" in field or field.get("properties"):
            return f"[section](#{self._enqueue(path, '', field)})"
        members = field.get("oneOf") or field.get("anyOf")
        if members:
            kinds = [self._resolve(m).get("properties", {}).get("kind", {}).get("const") for m in members]
            if all(kinds):
                links = [f"[`{k}`](#{self._enqueue(path, k, m)})" for k, m in zip(kinds, members)]
                return "one of " + ", ".join(links)
            return " or ".join(self._type(path, m) for m in members)
        if "const" in field:
            return f"`{json.dumps(field['const'])}`"
        if "enum" in field:
            return "one of " + ", ".join(f"`{v}`" for v in field["enum"])
        if field.get("type") == "array":
            if "prefixItems" in field:
                return "[" + ", ".join(self._type(path, m) for m in field["prefixItems"]) + "]"
            return "list of " + self._type(f"{path}[]", field.get("items", {}))
        return field.get("type", "any")


def _default(field: dict, required: bool) -> str:
    if required:
        return "required"
    if "default" not in field:
        return "see meaning"
    value = field["default"]
    if isinstance(value, dict):  # a section: its kind, or its own defaults (shown in its table)
        return f"`{value['kind']}`" if "kind" in value else "see section"
    return f"`{json.dumps(value)}`"


_BOUNDS = (("minimum", ">= {}"), ("exclusiveMinimum", "> {}"), ("maximum", "<= {}"), ("exclusiveMaximum", "< {}"))


def _bounds(field: dict) -> str:
    """Numeric bounds and lengths, from the field or (optional fields) its non-null alternative."""
    nodes = [field] + [m for m in field.get("anyOf", ()) if m.get("type") != "null"] + field.get("prefixItems", [])
    found: list[str] = []
    for node in nodes:
        found += [fmt.format(_number(node[key])) for key, fmt in _BOUNDS if key in node]
        if "minLength" in node or "maxLength" in node:
            found.append(f"{node.get('minLength', 0)} to {_number(node['maxLength'])} characters")
        if ("minItems" in node or "maxItems" in node) and "prefixItems" not in node:
            found.append(f"{node.get('minItems', 0)} to {_number(node['maxItems'])} items")
    return ", ".join(dict.fromkeys(found))  # a tuple's items share theirs: once


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) >= 10_000:
        value = int(value)
    return f"{value:,}" if isinstance(value, int) and abs(value) >= 10_000 else str(value)


def _text(text: str) -> str:
    """A description as one Markdown table cell: rst literals as code, no pipes or newlines."""
    return " ".join(text.replace("``", "`").replace("|", "\\|").split())
