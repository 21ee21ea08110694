"""Reading the YAML a person writes (scenarios, sweep files, ``--set`` values) strictly.

- A file is read only up to :data:`MAX_FILE_BYTES`: a scenario is a page of
  settings, and a larger file (or an endless one such as a FIFO) is refused
  before any of it is parsed.
- A key given twice in one mapping is an error (PyYAML keeps the last one
  silently, so a pasted block could override a setting unseen).
- ``1e-4`` is a float, as in YAML 1.2 (PyYAML's YAML 1.1 rules read it as a
  string unless written ``1.0e-4``).

Errors are :class:`YAMLFileError` with one line naming the file and, for
syntax errors, the line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

__all__ = ["MAX_FILE_BYTES", "YAMLFileError", "parse_yaml", "read_yaml_mapping"]

MAX_FILE_BYTES = 1_000_000  # a scenario is ~2 kB; 1 MB leaves room for long comments, not for data


class YAMLFileError(ValueError):
    """A YAML file that cannot be read; the message is one line naming the file."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and reads ``1e-4`` as a float."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # '<<' merges may repeat keys by design
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: SafeLoader reports it
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"), list("-+0123456789")
)


def parse_yaml(text: str) -> Any:
    """``text`` as YAML under the rules above; raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


def read_yaml_mapping(path: str | Path, *, expected: str = "a mapping") -> dict:
    """The top-level mapping of a YAML file; :class:`YAMLFileError` for anything else.

    ``expected`` describes the mapping in the messages for an empty file or
    another top-level type (e.g. ``"a mapping with name, structure, ..."``).
    """
    path = Path(path)
    text = _read_text(path)
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise YAMLFileError(f"{path}: {line}YAML syntax error: {problem}") from None
    if data is None:
        raise YAMLFileError(f"{path}: empty file (expected {expected})")
    if not isinstance(data, dict):
        raise YAMLFileError(f"{path}: top level must be {expected}, got a {type(data).__name__}")
    return data


def _read_text(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise YAMLFileError(f"{path}: file not found") from None
    except OSError as e:
        raise YAMLFileError(f"{path}: cannot read ({e.strerror})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise YAMLFileError(f"{path}: larger than {MAX_FILE_BYTES:,} bytes; not a scenario or sweep file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise YAMLFileError(f"{path}: not a UTF-8 text file") from None
