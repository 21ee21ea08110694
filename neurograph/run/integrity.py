"""What a checkpoint vouches for: the scenario it was trained under, and its own bytes.

Each checkpoint's state carries the resolved scenario it was trained under
(``scenario_values``, every default written out, as in ``scenario.yaml``) and
its sha256 (``scenario_sha256``, of the canonical JSON: sorted keys, no
spaces). A resume compares them with the run folder's ``scenario.yaml``, and
:func:`scenario_changes` names each value that differs, so a run is never
continued as a silent mix of two scenarios.

The checkpoint file carries :func:`content_digest`, the sha256 of its state
JSON and of every tensor (name, dtype, shape and bytes), so damage anywhere
in it is found before anything trains on it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch

__all__ = [
    "scenario_values",
    "scenario_digest",
    "stamp_scenario",
    "scenario_changes",
    "summarize_changes",
    "content_digest",
]

MAX_NAMED = 5  # changes named in one message; the rest are counted
MAX_VALUE_CHARS = 60  # a whole section that appeared or vanished is shortened to this


def scenario_values(scenario) -> dict:
    """The resolved scenario as JSON-able values (what ``scenario.yaml`` holds)."""
    return scenario.model_dump(mode="json")


def scenario_digest(values: dict) -> str:
    """sha256 (hex) of ``values``' canonical JSON."""
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def stamp_scenario(state: dict, scenario) -> dict:
    """``state`` with the scenario it was trained under and that scenario's digest."""
    values = scenario_values(scenario)
    return dict(state, scenario_values=values, scenario_sha256=scenario_digest(values))


def scenario_changes(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Each differing value as ``path old -> new`` (``structure.p_del 0.05 -> 0.1``), in order."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = list(dict.fromkeys([*old, *new]))
        return [c for k in keys for c in scenario_changes(old.get(k, _ABSENT), new.get(k, _ABSENT), _join(prefix, k))]
    if isinstance(old, list) and isinstance(new, list):
        n = max(len(old), len(new))
        pad = lambda xs: xs + [_ABSENT] * (n - len(xs))  # noqa: E731
        return [c for i, (a, b) in enumerate(zip(pad(old), pad(new))) for c in scenario_changes(a, b, _join(prefix, i))]
    if old == new and type(old) is type(new):
        return []
    return [f"{prefix or '(scenario)'} {_text(old)} -> {_text(new)}"]


def summarize_changes(changes: list[str]) -> str:
    """The first :data:`MAX_NAMED` changes on one line, and how many more there are."""
    text = ", ".join(changes[:MAX_NAMED])
    return text + (f" and {len(changes) - MAX_NAMED} more" if len(changes) > MAX_NAMED else "")


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


_ABSENT = _Absent()


def _join(prefix: str, key) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _text(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    text = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 3] + "..."


def content_digest(state_json: str, tensors: dict[str, torch.Tensor]) -> str:
    """sha256 (hex) of a checkpoint's state JSON and its tensors (CPU, contiguous), by name."""
    h = hashlib.sha256(state_json.encode("utf-8"))
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"\n{name} {t.dtype} {tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data if t.numel() else b"")
    return h.hexdigest()
