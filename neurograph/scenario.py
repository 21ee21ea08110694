"""Scenario schema: the YAML that drives a run, validated with pydantic v2.

Every section forbids unknown keys, and every pluggable rule is a union
discriminated by ``kind``, so a typo is reported with its field path. Defaults
are the papers' values; each field says what it means in the paper.

Loading errors are :class:`ScenarioError` with one line naming the file and
the field (or the YAML line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from neurograph.charrnn.tasks import ALPHABET

__all__ = [
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "parse_overrides",
    "format_validation",
    "scenario_to_yaml",
]

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
NonNegFloat = Annotated[float, Field(ge=0.0)]


class ScenarioError(ValueError):
    """A scenario that cannot be loaded; the message is one line."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- tasks
class EasyTask(Strict):
    """Groups ``(ab...ab)``: after each ``ab`` another follows with probability p."""

    kind: Literal["easy"] = "easy"
    # below 1: at p = 1 a group never closes and the stream has no ')'
    p: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        0.6, description="continue probability; paper text 0.75, original data 0.6"
    )


class HardTask(Strict):
    """Groups of L letters, each the reverse of the previous with one flip."""

    kind: Literal["hard"] = "hard"
    length: int = Field(6, ge=2, description="letters per group; multiplier text 5, original data 6")


class TextTask(Strict):
    """Any UTF-8 text file; the alphabet is taken from the file."""

    kind: Literal["text"] = "text"
    path: str = Field(description="text file, relative to the scenario file")


TaskConfig = Annotated[Union[EasyTask, HardTask, TextTask], Field(discriminator="kind")]


class Phase(Strict):
    task: TaskConfig
    cycles: int = Field(gt=0, description="training cycles (40-character windows) in this phase")


# ------------------------------------------------------------- selectors
class UniformSelector(Strict):
    """Which sub-threshold neurons to delete: uniformly at random (the papers)."""

    kind: Literal["uniform"] = "uniform"


class OldestSelector(Strict):
    kind: Literal["oldest"] = "oldest"


class YoungestSelector(Strict):
    kind: Literal["youngest"] = "youngest"


class AgeWeightedSelector(Strict):
    """Probability proportional to age**alpha (alpha may be negative)."""

    kind: Literal["age_weighted"] = "age_weighted"
    alpha: float = 1.0


SelectorConfig = Annotated[
    Union[UniformSelector, OldestSelector, YoungestSelector, AgeWeightedSelector], Field(discriminator="kind")
]


class RandomInit(Strict):
    """New neurons get random connectivity (the papers): weights ~ N(0, std^2)."""

    kind: Literal["random"] = "random"
    std: PositiveFloat = Field(0.01, description="min-char-rnn's randn*0.01")


class InheritInit(Strict):
    """New neurons inherit a deleted neuron's wiring (the papers' future work)."""

    kind: Literal["inherit"] = "inherit"
    choice: Literal["recent", "random", "strongest"] = Field("recent", description="which graveyard entry")
    noise: NonNegFloat = Field(0.0, description="multiplicative noise: w * (1 + noise * N(0,1))")
    consume: bool = Field(True, description="remove the entry from the graveyard once inherited")
    std: PositiveFloat = Field(0.01, description="random init when the graveyard is empty")


InitConfig = Annotated[Union[RandomInit, InheritInit], Field(discriminator="kind")]

L1Placement = Literal["gradient_per_step", "gradient", "after_update"]


# ------------------------------------------------------------------ rules
class _Reserve(Strict):
    k: int = Field(1, ge=0, description="sub-threshold 'reserve' neurons to keep")
    threshold: PositiveFloat = Field(0.05, description="deletion threshold T_D")
    p_add: Probability = Field(description="P_add: chance per cycle to add one when fewer than k are below T_D")
    p_del: Probability = Field(description="P_del: chance per cycle to delete each excess sub-threshold neuron")
    p_spontaneous: Probability = Field(0.0, description="extra addition chance per cycle (original code: 1e-4)")
    max_hidden: int | None = Field(None, ge=1, description="cap on hidden neurons (original code: 100)")
    initial_hidden: int = Field(1, ge=1, description="hidden neurons at the start (papers: 1)")
    selector: SelectorConfig = UniformSelector()
    init: InitConfig = RandomInit()


class MultipliersRule(_Reserve):
    """First revision: per-neuron output multipliers under an L1 penalty."""

    kind: Literal["multipliers"] = "multipliers"
    p_add: Probability = 0.05
    p_del: Probability = 0.25
    l1: NonNegFloat = Field(3e-5, description="A: L1 strength on the multipliers")
    m_min: NonNegFloat = Field(0.025, description="M_min: floor of every multiplier")
    first_multiplier: PositiveFloat = Field(1.0, description="multiplier of the initial neuron(s)")
    l1_placement: L1Placement = Field(
        "gradient_per_step", description="original code: A*sign(m) added at each of the window's steps"
    )
    scope: Literal["readout", "all"] = Field("readout", description="original code: readout only")

    @model_validator(mode="after")
    def _floor_below_threshold(self):
        if self.m_min >= self.threshold:
            raise ValueError(f"m_min ({self.m_min}) must be below threshold ({self.threshold})")
        return self


class OutgoingL1Rule(_Reserve):
    """Later revision: L1 penalty on each neuron's outgoing weights."""

    kind: Literal["outgoing_l1"] = "outgoing_l1"
    p_add: Probability = 0.01
    p_del: Probability = 0.05
    l1: NonNegFloat = Field(1e-4, description="lambda: L1 strength on readout and recurrent weights")
    l1_placement: L1Placement = Field("after_update", description="original code: W -= lambda*sign(W) after update")
    norm: Literal["original", "text"] = Field(
        "original", description="text: sum|out|; original: 0.5*(sum|W_out| + 4*sum|W_hh|/H)"
    )
    new_norm: PositiveFloat = Field(0.5, description="new neuron's outgoing norm as a fraction of T_D (text: 1)")


class FixedRule(Strict):
    """No structural change: N hidden neurons, penalties still on (baselines)."""

    kind: Literal["fixed"] = "fixed"
    hidden: int = Field(ge=1, description="fixed number of hidden neurons")
    penalty: Literal["outgoing_l1", "multipliers", "none"] = "outgoing_l1"
    l1: NonNegFloat = 1e-4
    l1_placement: L1Placement = "after_update"
    m_min: NonNegFloat = 0.025
    scope: Literal["readout", "all"] = "readout"
    norm: Literal["original", "text"] = "original"
    threshold: PositiveFloat = Field(0.05, description="only to report how many are sub-threshold")
    init: InitConfig = RandomInit()


RuleConfig = Annotated[Union[MultipliersRule, OutgoingL1Rule, FixedRule], Field(discriminator="kind")]


# ------------------------------------------------------------- optimizers
class AdagradConfig(Strict):
    """min-char-rnn's Adagrad (multiplier revision: lr 0.1, gradients clipped to +-5)."""

    kind: Literal["adagrad"] = "adagrad"
    lr: PositiveFloat = 0.1
    grad_clip: PositiveFloat | None = 5.0
    memory_init: NonNegFloat = 0.0


class RMSPropConfig(Strict):
    """Outgoing-L1 revision's RMSProp: decay 0.01, lr 0.01, each update clipped to 0.01."""

    kind: Literal["rmsprop"] = "rmsprop"
    lr: PositiveFloat = 0.01
    decay: Annotated[float, Field(gt=0.0, le=1.0)] = 0.01
    update_clip: PositiveFloat | None = 0.01
    grad_clip: PositiveFloat | None = None
    memory_init: NonNegFloat = Field(0.01, description="original code starts new memories at 0.01")


class AdamConfig(Strict):
    kind: Literal["adam"] = "adam"
    lr: PositiveFloat = 7e-4
    beta1: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9
    beta2: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.999
    grad_clip: PositiveFloat | None = None


OptimizerConfig = Annotated[Union[AdagradConfig, RMSPropConfig, AdamConfig], Field(discriminator="kind")]


class ReportConfig(Strict):
    every: int = Field(100, gt=0, description="cycles between metrics lines")
    graph_every: int = Field(10_000, ge=0, description="cycles between GraphML snapshots (0: final only)")
    checkpoint_every: int = Field(10_000, ge=0, description="cycles between checkpoints (0: end only)")


class Scenario(Strict):
    name: str = Field(min_length=1)
    description: str = ""
    seed: int = Field(0, ge=0)
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    dtype: Literal["float32", "float64"] = "float32"
    window: int = Field(40, gt=0, description="characters per cycle (BPTT window)")
    loss_smoothing: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        0.999, description="EMA factor of the reported loss (min-char-rnn 0.999; outgoing-L1 code 0.99)"
    )
    graveyard: int = Field(64, ge=0, description="deleted neurons kept with their wiring")
    structure: RuleConfig
    optimizer: OptimizerConfig
    phases: list[Phase] = Field(min_length=1)
    report: ReportConfig = ReportConfig()

    @property
    def total_cycles(self) -> int:
        return sum(p.cycles for p in self.phases)

    def with_cycles(self, total: int) -> "Scenario":
        """Same scenario with phase lengths scaled to ``total`` cycles."""
        if total <= 0:
            raise ScenarioError(f"--cycles must be > 0, got {total}")
        old = self.total_cycles
        bounds = [round(total * sum(p.cycles for p in self.phases[: i + 1]) / old) for i in range(len(self.phases))]
        starts = [0] + bounds[:-1]
        phases = [p.model_copy(update={"cycles": max(1, b - s)}) for p, s, b in zip(self.phases, starts, bounds)]
        return self.model_copy(update={"phases": phases})


# ------------------------------------------------------------------ loading
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


def format_validation(
    path: Path, err: ValidationError, data: Any, set_by: set[str] = frozenset(), model: type[BaseModel] | None = None
) -> str:
    """One line naming the file and the field of a validation error of ``model`` (default :class:`Scenario`)."""
    first = err.errors()[0]
    where = _field_path(first["loc"], data) or "(top level)"
    if where in set_by:
        where = f"{where} (from --set)"
    msg = first["msg"].removeprefix("Value error, ")  # a model validator's own message
    if first["type"] == "extra_forbidden":
        section = _model_at(first["loc"][:-1], model or Scenario)
        msg = "unknown field" + (f"; accepted: {', '.join(section.model_fields)}" if section else "")
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return _one_line(f"{path}: {where}: {msg}{more}")


def _model_at(loc: tuple, root: type[BaseModel]) -> type[BaseModel] | None:
    """Section model at a pydantic location (tags included), to list its fields."""
    node: Any = root
    for part in loc:
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(part)
            node = field.annotation if field else None
        elif get_origin(node) is list and isinstance(part, int):
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


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{path}: not a UTF-8 text file") from None
    except OSError as e:
        raise ScenarioError(f"{path}: cannot read ({e.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ScenarioError(f"{path}: {line}YAML syntax error: {problem}") from None
    if data is None:
        raise ScenarioError(f"{path}: empty file (expected a mapping with name, structure, optimizer, phases)")
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: top level must be a mapping, got a {type(data).__name__}")
    return data


def parse_overrides(data: dict, overrides: list[str], path: Path, model: type[BaseModel] | None = None) -> dict:
    """Apply ``a.b.c=value`` overrides (value parsed as YAML) to a nested dict.

    An absent key is accepted only when it is a field of ``model`` (default
    :class:`Scenario`), checked by validating a probe.
    """
    model = model or Scenario
    for item in overrides:
        if "=" not in item:
            raise ScenarioError(f"{path}: --set {item!r}: expected path.to.field=value")
        dotted, raw = item.split("=", 1)
        keys = dotted.strip().split(".")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ScenarioError(f"{path}: --set {dotted}: value {raw!r} is not valid YAML") from None
        node: Any = data
        for i, key in enumerate(keys):
            last = i == len(keys) - 1
            where = ".".join(keys[: i + 1])
            if isinstance(node, list):
                if not key.isdigit() or int(key) >= len(node):
                    raise ScenarioError(f"{path}: --set {dotted}: no list item {where}")
                key = int(key)
            elif isinstance(node, dict):
                if not last and key not in node:
                    # an optional section left to its defaults: open it if it is a field
                    if not _settable(data, keys[: i + 1], model):
                        raise ScenarioError(f"{path}: --set {dotted}: no field {where}")
                    node[key] = {}
            else:
                raise ScenarioError(f"{path}: --set {dotted}: {'.'.join(keys[:i])} is not a section")
            if last:
                if isinstance(node, dict) and key not in node and not _settable(data, keys, model):
                    raise ScenarioError(f"{path}: --set {dotted}: no field {where}")
                node[key] = value
            else:
                node = node[key]
    return data


def _settable(data: dict, keys: list[str], model: type[BaseModel]) -> bool:
    """Whether an absent key is a real (optional) field: validate to find out."""
    probe = _copy(data)
    node: Any = probe
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[keys[-1]] = None
    try:
        model.model_validate(probe)
    except ValidationError as err:
        target = tuple(keys)
        for e in err.errors():
            loc = tuple(str(p) for p in e["loc"])
            if e["type"] == "extra_forbidden" and _same_field(loc, target):
                return False
    return True


def _same_field(loc: tuple[str, ...], keys: tuple[str, ...]) -> bool:
    # pydantic puts union tags (the 'kind') into loc: compare ignoring them
    it = iter(loc)
    return all(any(k == part for part in it) for k in keys) and loc[-1] == keys[-1]


def _copy(data):
    if isinstance(data, dict):
        return {k: _copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy(v) for v in data]
    return data


def load_scenario(path: str | Path, overrides: list[str] = ()) -> Scenario:
    """Read, override and validate a scenario file; text paths become absolute."""
    path = Path(path)
    data = parse_overrides(_read_yaml(path), list(overrides), path)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as err:
        set_by = {item.split("=", 1)[0].strip() for item in overrides}
        raise ScenarioError(format_validation(path, err, data, set_by)) from None
    scenario, alphabets = _resolve_text_paths(scenario, path)
    _check_alphabets(alphabets, path)
    return scenario


def _resolve_text_paths(scenario: Scenario, path: Path) -> tuple[Scenario, list[str]]:
    """Scenario with absolute text paths, and each phase's alphabet."""
    phases, alphabets = [], []
    for i, phase in enumerate(scenario.phases):
        task = phase.task
        alphabet = ALPHABET
        if task.kind == "text":
            file = Path(task.path)
            file = file if file.is_absolute() else (path.parent / file)
            if not file.is_file():
                raise ScenarioError(f"{path}: phases.{i}.task.path: text file {file} not found")
            try:
                text = file.read_bytes().decode("utf-8")  # bytes, as TextTask reads it: no newline translation
            except UnicodeDecodeError:
                raise ScenarioError(f"{path}: phases.{i}.task.path: {file} is not UTF-8 text") from None
            except OSError as e:
                raise ScenarioError(f"{path}: phases.{i}.task.path: cannot read {file} ({e.strerror})") from None
            if len(text) < 2:
                raise ScenarioError(f"{path}: phases.{i}.task.path: {file} has fewer than 2 characters")
            alphabet = "".join(sorted(set(text)))  # TextTask's alphabet: sorted distinct characters
            task = task.model_copy(update={"path": str(file.resolve())})
        phases.append(phase.model_copy(update={"task": task}))
        alphabets.append(alphabet)
    return scenario.model_copy(update={"phases": phases}), alphabets


def _check_alphabets(alphabets: list[str], path: Path) -> None:
    """One network reads every phase: all tasks must use the same characters."""
    for i, alphabet in enumerate(alphabets[1:], start=1):
        if alphabet != alphabets[0]:
            raise ScenarioError(
                f"{path}: phases.{i}.task: alphabet {_short(alphabet)} differs from phases.0.task's "
                f"{_short(alphabets[0])}; all phases must share one alphabet"
            )


def _short(alphabet: str) -> str:
    shown = repr(alphabet) if len(alphabet) <= 24 else repr(alphabet[:24]) + "..."
    return f"{shown} ({len(alphabet)} characters)"


def scenario_to_yaml(scenario: Scenario) -> str:
    """The fully resolved scenario (every default written out) as YAML."""
    return yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False)
