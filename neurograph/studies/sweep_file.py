"""Sweep files: which runs a sweep makes, validated with pydantic v2.

A sweep names a base scenario and the ``--set``-style overrides to vary::

    base: ../outgoing-l1/easy.yaml      # relative to this file
    set: {phases.0.cycles: 2000}        # every run
    grid:                               # cartesian product
      structure.p_del: [0.01, 0.05]
      structure.k: [1, 2]
    cases:                              # optional; product with the grid
      - {structure.selector: {kind: oldest}}
      - {structure.selector: {kind: youngest}}
    seeds: 3                            # 0, 1, 2 (or a list)

Each combination is a *case*, identified by :func:`case_id`, a short slug of
its overrides that does not depend on the order they are written in; each
(case, seed) is one run. Errors are :class:`SweepError` with one line naming
the file and the field.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from neurograph.scenario import Scenario, ScenarioError, load_scenario
from neurograph.studies.extensions import MEASURES
from neurograph.yaml_file import YAMLFileError, read_yaml_mapping

__all__ = [
    "SUMMARY_METRICS",
    "SweepError",
    "Sweep",
    "load_sweep",
    "expand_cases",
    "case_id",
    "override_text",
    "scenario_of",
]

# summary.json fields that can be tabulated; study measures (MEASURES, recover_*) come from metrics.jsonl
SUMMARY_METRICS = ("hidden", "loss", "reserve", "adds", "deletes", "optimum", "cycles", "wall_s", "cycles_per_s",
                   "depth", "accuracy", "test_accuracy", "layer_adds", "layer_deletes")  # the last five: layered
SLUG_CHARS = 48  # readable part of a case id; the hash keeps longer ones unique
_SCHEDULER = re.compile(r"tcp://(\[[0-9A-Fa-f:]+\]|[A-Za-z0-9.\-]+):\d{1,5}")

_PATH = re.compile(r"[A-Za-z_0-9]+(\.[A-Za-z_0-9]+)*")  # structure.p_del, phases.0.cycles


class SweepError(ValueError):
    """A sweep file that cannot be used; the message is one line."""


class Sweep(BaseModel):
    """A sweep file; after :func:`load_sweep`, ``base`` is absolute and ``name``, ``out`` are set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(None, min_length=1, description="default: the sweep file's name without .yaml")
    base: str = Field(min_length=1, description="scenario file, relative to the sweep file")
    set: dict[str, Any] = Field({}, description="overrides applied to every run")
    grid: dict[str, list[Any]] = Field({}, description="override path -> values; cartesian product")
    cases: list[dict[str, Any]] | None = Field(None, min_length=1, description="override sets, x grid")
    seeds: int | list[int] = Field(1, description="N (seeds 0..N-1) or the seeds themselves")
    out: str | None = Field(None, description="sweep folder, relative to the current folder; runs/sweeps/<name>")
    metrics: list[str] = Field(["hidden", "loss"], min_length=1, description="what the table and figures show")
    executor: Literal["local", "inprocess", "dask"] = "local"
    # two: the papers' networks are small, and a laptop has at least two cores to spare
    workers: int = Field(2, ge=1, description="parallel runs (local pool or LocalCluster processes)")
    scheduler: str | None = Field(None, description="dask scheduler tcp://host:port; absent: start a LocalCluster")

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, seeds):
        count = _is_int(seeds) and seeds >= 1
        listed = isinstance(seeds, list) and all(_is_int(s) and s >= 0 for s in seeds)
        if not (count or listed and seeds and len(set(seeds)) == len(seeds)):
            raise ValueError(f"expected a count >= 1 or a list of distinct seeds >= 0, got {seeds!r}")
        return seeds

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, metrics):
        for m in metrics:
            if m not in SUMMARY_METRICS and m not in MEASURES and not m.startswith("recover_"):
                raise ValueError(f"unknown metric {m!r}; accepted: {', '.join((*SUMMARY_METRICS, *MEASURES))}")
        return metrics

    @field_validator("scheduler")
    @classmethod
    def _scheduler_address(cls, scheduler):
        if scheduler is not None and not _SCHEDULER.fullmatch(scheduler):
            raise ValueError(f"expected tcp://host:port, got {scheduler!r}")
        return scheduler

    @model_validator(mode="after")
    def _consistent(self):
        if self.scheduler is not None and self.executor != "dask":
            raise ValueError(f"scheduler: only used with executor: dask (executor is {self.executor})")
        sections = {"set": self.set, "grid": self.grid, **{f"cases.{i}": c for i, c in enumerate(self.cases or [])}}
        for where, overrides in sections.items():
            for key in overrides:
                if not _PATH.fullmatch(key):
                    raise ValueError(f"{where}.{key}: an override path is dotted names, like structure.p_del")
                if key == "seed":
                    raise ValueError(f"{where}.seed: seeds are given by 'seeds', not by an override")
                if where.startswith("cases") and (key in self.grid or key in self.set):
                    raise ValueError(f"{where}.{key}: also in {'grid' if key in self.grid else 'set'}")
        for key, values in self.grid.items():
            if key in self.set:
                raise ValueError(f"grid.{key}: also in set")
            texts = [override_text(v) for v in values]
            if len(set(texts)) < len(texts) or not texts:
                raise ValueError(f"grid.{key}: needs distinct values, at least one, got {values!r}")
        ids = [case_id(c) for c in self.cases or []]
        for i, cid in enumerate(ids):
            if cid in ids[:i]:
                raise ValueError(f"cases.{i}: repeats cases.{ids.index(cid)}")
        return self

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    @property
    def params(self) -> list[str]:
        """Swept override paths: the grid's, then the cases', in order of appearance."""
        return list(dict.fromkeys([*self.grid, *(k for case in self.cases or [] for k in case)]))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # YAML's true is not a seed


def load_sweep(path: str | Path, settings: dict | None = None) -> Sweep:
    """Read and validate a sweep file; ``settings`` replace top-level fields (command-line options).

    The base scenario is loaded once with ``set`` applied, so a broken base or
    a bad ``set`` is reported here rather than once per run.
    """
    path = Path(path)
    given = {k: v for k, v in (settings or {}).items() if v is not None}
    data = {**_read(path), **given}
    try:
        sweep = Sweep.model_validate(data)
    except ValidationError as err:
        raise SweepError(_validation_line(path, err, set(given))) from None
    base = Path(sweep.base)
    base = base if base.is_absolute() else path.parent / base
    try:
        scenario = load_scenario(base, [f"{k}={override_text(v)}" for k, v in sweep.set.items()])
    except ScenarioError as e:
        raise SweepError(f"{path}: base: {e}") from None
    if scenario.model not in ("charrnn", "layered"):
        raise SweepError(f"{path}: base: a sweep trains char-RNN and layered scenarios, got model {scenario.model!r}")
    name = sweep.name or path.stem
    out = sweep.out or str(Path("runs") / "sweeps" / name)
    return sweep.model_copy(update={"base": str(base.resolve()), "name": name, "out": out})


def _read(path: Path) -> dict:
    try:
        return read_yaml_mapping(path, expected="a mapping with base, grid and/or cases, seeds")
    except YAMLFileError as e:
        raise SweepError(str(e)) from None


def _validation_line(path: Path, err: ValidationError, from_settings: set[str]) -> str:
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"]]
    msg = first["msg"].removeprefix("Value error, ")  # a validator's own message
    if first["type"] == "extra_forbidden":
        msg = f"unknown field; accepted: {', '.join(Sweep.model_fields)}"
    if loc and loc[0] in from_settings:
        loc[0] += " (from the command line)"
    where = f"{'.'.join(loc)}: " if loc else ""  # whole-file checks name their field in the message
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return " ".join(f"{path}: {where}{msg}{more}".split())


# ---------------------------------------------------------------- expansion
def expand_cases(sweep: Sweep) -> list[dict[str, Any]]:
    """Each case's overrides: grid combinations (last key fastest) x cases, in that order."""
    keys = list(sweep.grid)
    grid = [dict(zip(keys, combo)) for combo in itertools.product(*sweep.grid.values())]
    return [{**g, **c} for g in grid for c in (sweep.cases or [{}])]


def case_id(overrides: dict[str, Any]) -> str:
    """Short stable slug: ``k=2_p_del=0.05_1a2b3c`` (sorted by path; hash of all values).

    Each override shows as its path's last name (with the list index before it
    if the last is a number) and value; the 6-hex hash of the canonical JSON
    keeps ids unique when names clash or the readable part is cut short.
    ``base`` when there are no overrides.
    """
    if not overrides:
        return "base"
    parts = [f"{_short_name(k)}={_slug(override_text(v))}" for k, v in sorted(overrides.items())]
    readable = "_".join(parts)[:SLUG_CHARS].rstrip("_=-.")
    canonical = json.dumps(overrides, sort_keys=True, separators=(",", ":"), default=str)
    return f"{readable}_{hashlib.sha1(canonical.encode()).hexdigest()[:6]}"


def _short_name(path: str) -> str:
    keys = path.split(".")
    return ".".join(keys[-2:]) if keys[-1].isdigit() and len(keys) > 1 else keys[-1]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-") or "-"


def override_text(value: Any) -> str:
    """A value as ``--set`` text that YAML reads back as the same value (``1e-05`` -> ``1.0e-05``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return {math.inf: ".inf", -math.inf: "-.inf"}.get(value, ".nan")
    text = yaml.safe_dump(value, default_flow_style=True, width=math.inf, sort_keys=False)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def scenario_of(sweep: Sweep, overrides: dict[str, Any], seed: int) -> Scenario:
    """The scenario of one run: base, then ``set``, then the case's overrides, then the seed."""
    items = {**sweep.set, **overrides, "seed": seed}
    return load_scenario(sweep.base, [f"{k}={override_text(v)}" for k, v in items.items()])
