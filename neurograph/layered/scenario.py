"""Layered and multi-area scenario schema: the YAML of a ``model: layered`` run.

Miconi's conclusion proposes three extensions of the reserve rule beyond one
recurrent layer, and this schema names each:

- ``network``: the areas and the projections between them, either a
  ``stack`` of layers (input -> layer -> ... -> output, with ``skips``) or an
  explicit area graph (``areas`` and ``projections``: feed-forward chains,
  skips, feedback, recurrence within an area);
- ``width``: the reserve rule of the outgoing-L1 revision (k, T_D, P_add,
  P_del, selectors and inheritance of the extensions), run in every area
  separately;
- ``depth``: the same rule one level up, with layers as the nodes: a layer's
  norm is the L1 norm of all its outgoing weights; new layers enter on top of
  the stack with small outgoing weights (a "reserve" layer), sub-threshold
  layers beyond k are deleted.

Static tasks (``digits``, ``parity``) train on minibatches, one step per
cycle, and need a feed-forward area graph; the char-level tasks (``easy``,
``hard``, ``text``) train on windows of characters, one window per cycle,
and need at least one recurrent projection. Every default is written in
``docs/layered.md`` with the reason for it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from neurograph.charrnn.scenario import (
    EasyTask,
    HardTask,
    InheritInit,
    RandomInit,
    TextTask,
    UniformSelector,
    _text_file,
)
from neurograph.charrnn.selectors import SELECTORS
from neurograph.schema import (
    MAX_PHASES,
    AdamConfig,
    Description,
    DeviceName,
    DtypeName,
    OptimizerConfig,
    PhasedScenario,
    Probability,
    ReportConfig,
    RunName,
    Seed,
    Strict,
)

__all__ = [
    "MAX_WIDTH",
    "MAX_AREAS",
    "LayeredScenario",
    "DigitsTask",
    "ParityTask",
    "AreaConfig",
    "StackConfig",
    "NetworkConfig",
    "WidthRule",
    "DepthRule",
    "Phase",
    "STATIC_TASKS",
    "parse_projection",
]

MAX_WIDTH = 2048  # neurons per area: blocks stay small dense matrices
MAX_AREAS = 64  # areas (layers) at once; each layer adds projections to every later one with skips: all
MAX_CYCLES = 10**8
MAX_WEIGHT = 1e3
MAX_L1 = 10.0
MAX_BATCH = 65_536
STATIC_TASKS = ("digits", "parity")
RESERVED_AREAS = ("input", "output")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
_PROJECTION = re.compile(r"\s*([A-Za-z][A-Za-z0-9_]*)\s*->\s*([A-Za-z][A-Za-z0-9_]*)\s*")


# ------------------------------------------------------------------ tasks
class DigitsTask(Strict):
    """scikit-learn's bundled 8 x 8 handwritten digits (shipped inside neurograph), 10 classes."""

    kind: Literal["digits"] = "digits"
    test_fraction: float = Field(0.25, gt=0.0, lt=1.0, description="share of each class held out for testing")


class ParityTask(Strict):
    """Parity of n bits (+-1 inputs): trained and tested on the whole truth table."""

    kind: Literal["parity"] = "parity"
    bits: int = Field(4, ge=1, le=16, description="n; one hidden layer needs n threshold units")


Task = Annotated[Union[DigitsTask, ParityTask, EasyTask, HardTask, TextTask], Field(discriminator="kind")]


class Phase(Strict):
    """One stretch of training on one task."""

    task: Task = Field(description="digits, parity (static) or easy, hard, text (characters, recurrent areas)")
    cycles: int = Field(gt=0, le=MAX_CYCLES, description="training steps: minibatches, or character windows")


# -------------------------------------------------------------- network
class AreaConfig(Strict):
    """One area of an explicit area graph."""

    name: str = Field(min_length=1, max_length=40, description="a name: letter, then letters, digits or _")
    size: int = Field(1, ge=1, le=MAX_WIDTH, description="neurons at the start (Miconi: 1)")
    grow: bool = Field(True, description="whether the width rule resizes this area")


class StackConfig(Strict):
    """A stack of layers: input -> layer_1 -> ... -> layer_L -> output."""

    layers: int = Field(1, ge=1, le=MAX_AREAS, description="layers at the start (the extension: 1)")
    size: int = Field(1, ge=1, le=MAX_WIDTH, description="neurons per layer at the start (the extension: 1)")
    skips: Literal["all", "output", "none"] = Field(
        "all",
        description="all: every layer also reads the input and every earlier layer, and feeds the output "
        "(a new or fading layer only adds to paths that exist without it); output: every layer feeds the "
        "output; none: a plain chain",
    )
    recurrent: bool = Field(False, description="each layer also reads its own previous state (character tasks)")


class NetworkConfig(Strict):
    """Areas and projections: a ``stack``, or ``areas`` with ``projections``."""

    activation: Literal["tanh", "relu"] = Field("tanh", description="hidden neurons' nonlinearity (Miconi: tanh)")
    init_std: float = Field(0.1, gt=0.0, le=10.0, description="std of new incoming weights (inputs are 0..1 or +-1)")
    stack: StackConfig | None = Field(None, description="a stack of layers (default when areas are not given)")
    areas: list[AreaConfig] | None = Field(
        None, min_length=1, max_length=MAX_AREAS, description="hidden areas in evaluation order"
    )
    projections: list[str] | None = Field(
        None,
        min_length=1,
        max_length=MAX_AREAS * MAX_AREAS,
        description="'source -> target' between areas, input and output; a target evaluated before its source "
        "(itself included) reads the source's previous step",
    )

    @model_validator(mode="after")
    def _one_layout(self):
        if self.areas is None and self.projections is not None:
            raise ValueError("network.projections needs network.areas")
        if self.areas is not None and self.stack is not None:
            raise ValueError("network: give either a stack or areas with projections, not both")
        if self.areas is None:
            return self
        if self.projections is None:
            raise ValueError("network.areas needs network.projections")
        names = [a.name for a in self.areas]
        for name in names:
            if not _NAME.fullmatch(name) or name in RESERVED_AREAS:
                raise ValueError(f"network.areas: area name {name!r} must be a letter then letters, digits or _, "
                                 "and not input or output")  # fmt: skip
        if len(set(names)) != len(names):
            raise ValueError("network.areas: area names must be distinct")
        known = ["input", *names, "output"]
        pairs = [parse_projection(p) for p in self.projections]
        for (src, dst), text in zip(pairs, self.projections):
            if src not in known or dst not in known:
                raise ValueError(f"network.projections: {text!r} names an unknown area; known: {', '.join(known)}")
            if dst == "input" or src == "output":
                raise ValueError(f"network.projections: {text!r}: nothing projects to input or from output")
        if len(set(pairs)) != len(pairs):
            raise ValueError("network.projections: a projection is listed twice")
        _check_paths(names, pairs)
        return self

    def stack_or_default(self) -> StackConfig:
        return self.stack if self.stack is not None else StackConfig()


def parse_projection(text: str) -> tuple[str, str]:
    """``"a -> b"`` as ``("a", "b")`` (ValueError otherwise)."""
    m = _PROJECTION.fullmatch(text)
    if m is None:
        raise ValueError(f"network.projections: {text!r} is not 'source -> target'")
    return m.group(1), m.group(2)


def _check_paths(names: list[str], pairs: list[tuple[str, str]]) -> None:
    """Every area is reached from the input and reaches the output."""
    forward, backward = {}, {}
    for s, t in pairs:
        forward.setdefault(s, set()).add(t)
        backward.setdefault(t, set()).add(s)

    def reach(start: str, edges: dict) -> set[str]:
        seen, todo = {start}, [start]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    from_input, to_output = reach("input", forward), reach("output", backward)
    for name in names:  # (with at least one area, this also makes a path from input to output)
        if name not in from_input or name not in to_output:
            raise ValueError(f"network.projections: area {name!r} is not on a path from input to output")


# ------------------------------------------------------------------ rules
class NewNeuronInit(RandomInit):
    """New neurons get random incoming weights ~ N(0, std^2) (the papers' rule, at the inputs' scale)."""

    std: float = Field(0.1, gt=0.0, le=10.0, description="as network.init_std: inputs are 0..1 or +-1")


class WidthRule(Strict):
    """The outgoing-L1 reserve rule inside every area (Miconi's rule, applied per area)."""

    kind: Literal["reserve", "fixed"] = Field("reserve", description="fixed: no neuron is added or deleted")
    k: int = Field(1, ge=0, le=MAX_WIDTH, description="sub-threshold 'reserve' neurons to keep in each area")
    threshold: float = Field(0.05, gt=0.0, le=MAX_WEIGHT, description="T_D on a neuron's outgoing L1 norm")
    p_add: Probability = Field(0.01, description="P_add per area per cycle when it has fewer than k below T_D")
    p_del: Probability = Field(0.05, description="P_del per cycle for each excess sub-threshold neuron")
    p_spontaneous: Probability = Field(0.0, description="extra addition chance per area per cycle (char-RNN code: 1e-4)")
    max_size: int = Field(256, ge=1, le=MAX_WIDTH, description="cap on an area's neurons")
    new_norm: float = Field(0.5, gt=0.0, le=MAX_WEIGHT, description="a new neuron's outgoing norm, as a fraction of T_D")
    norm: Literal["text", "original"] = Field(
        "text", description="text: sum|w| over all outgoing weights; original: the char-RNN code's "
        "0.5*(sum|W_out| + 4*sum|W_hh|/H), each hidden target area's weights divided by its size",
    )
    selector: SELECTORS.field = Field(UniformSelector(), description="which sub-threshold neurons risk deletion")

    @model_validator(mode="after")
    def _reserve_fits(self):
        if self.kind == "reserve" and self.k > self.max_size:
            raise ValueError(f"width.k: {self.k} reserve neurons cannot exceed width.max_size ({self.max_size})")
        return self

    init: Annotated[Union[NewNeuronInit, InheritInit], Field(discriminator="kind")] = Field(
        NewNeuronInit(), description="a new neuron's incoming wiring: random, or a deleted neuron's of its area"
    )


class DepthRule(Strict):
    """The reserve rule over layers: each layer is one node whose norm is all its outgoing weights' L1."""

    enabled: bool = Field(False, description="grow and prune layers (needs a stack with skips)")
    k: int = Field(1, ge=0, le=MAX_AREAS, description="sub-threshold 'reserve' layers to keep")
    threshold: float = Field(0.05, gt=0.0, le=MAX_WEIGHT, description="T_L on a layer's outgoing L1 norm")
    p_add: Probability = Field(0.002, description="P_add per cycle when fewer than k layers are below T_L")
    p_del: Probability = Field(0.01, description="P_del per cycle for each excess sub-threshold layer")
    max_layers: int = Field(8, ge=1, le=MAX_AREAS, description="cap on layers")
    new_size: int = Field(1, ge=1, le=MAX_WIDTH, description="neurons of a new layer")
    new_norm: float = Field(0.5, gt=0.0, le=MAX_WEIGHT, description="a new layer's outgoing norm, as a fraction of T_L")
    selector: SELECTORS.field = Field(UniformSelector(), description="which sub-threshold layers risk deletion")

    @model_validator(mode="after")
    def _reserve_fits(self):
        if self.enabled and self.k > self.max_layers:
            raise ValueError(f"depth.k: {self.k} reserve layers cannot exceed depth.max_layers ({self.max_layers})")
        return self


class Penalty(Strict):
    """The outgoing-L1 revision's penalty on every hidden neuron's outgoing weights."""

    l1: float = Field(1e-4, ge=0.0, le=MAX_L1, description="lambda (outgoing-L1 revision: 1e-4)")
    placement: Literal["after_update", "gradient"] = Field(
        "gradient", description="gradient: lambda*sign(W) added to the gradient, the penalised loss of the text "
        "(with Adam, the default: Adam's steps do not shrink with the gradient, so a step after it cannot hold "
        "a weight down); after_update: W -= lambda*sign(W) after each step, the char-RNN code's (with RMSProp)",
    )


class Training(Strict):
    batch_size: int = Field(32, ge=1, le=MAX_BATCH, description="samples per step (static tasks)")
    window: int = Field(40, ge=1, le=10_000, description="characters per cycle (character tasks; Miconi: 40)")
    loss_smoothing: float = Field(0.99, ge=0.0, lt=1.0, description="EMA factor of the reported loss")


# -------------------------------------------------------------- scenario
class LayeredScenario(PhasedScenario):
    """A layered or multi-area run: areas, width and depth rules, tasks in phases."""

    model: Literal["layered"] = Field(description="marks a layered / multi-area scenario")
    name: RunName = Field(description="the run's name: its folder is runs/<name>-seed<seed>")
    description: Description = Field("", description="free text, kept in the run folder")
    seed: Seed = Field(0, description="the run is a function of (scenario, seed): structure, weights and data")
    device: DeviceName = Field("cpu", description="where tensors live (auto: cuda when there is a GPU)")
    dtype: DtypeName = Field("float32", description="compiled tensors' precision (the graph keeps float64)")
    network: NetworkConfig = Field(NetworkConfig(), description="areas and projections")
    width: WidthRule = Field(WidthRule(), description="the reserve rule in every area")
    depth: DepthRule = Field(DepthRule(), description="the reserve rule over layers")
    penalty: Penalty = Field(Penalty(), description="L1 on hidden neurons' outgoing weights")
    optimizer: OptimizerConfig = Field(AdamConfig(lr=1e-3), description="Adam lr 1e-3 (not given by the papers)")
    training: Training = Field(Training(), description="minibatches and windows")
    graveyard: int = Field(64, ge=0, le=10_000, description="deleted neurons kept with their wiring")
    phases: list[Phase] = Field(min_length=1, max_length=MAX_PHASES, description="tasks trained one after the other")
    report: ReportConfig = Field(ReportConfig(every=100, graph_every=0, checkpoint_every=5000),
                                 description="in cycles")  # fmt: skip

    max_total = MAX_CYCLES

    @property
    def sequence(self) -> bool:
        """Whether the phases are character tasks (windows through time) rather than static samples."""
        return self.phases[0].task.kind not in STATIC_TASKS

    @model_validator(mode="after")
    def _fits(self):
        kinds = {p.task.kind in STATIC_TASKS for p in self.phases}
        if len(kinds) > 1:
            raise ValueError("phases: static and character tasks cannot share one network")
        static = [p.task for p in self.phases if p.task.kind in STATIC_TASKS]
        shapes = {(t.kind, getattr(t, "bits", None)) for t in static}
        if len(shapes) > 1:
            raise ValueError("phases: static tasks must share inputs and classes (one kind, one bits)")
        recurrent = self._has_recurrence()
        if self.sequence and not recurrent:
            raise ValueError("network: character tasks need a recurrent projection (stack.recurrent: true, "
                             "or a projection into an area evaluated before its source)")  # fmt: skip
        if not self.sequence and recurrent:
            raise ValueError("network: static tasks need a feed-forward area graph")
        if self.depth.enabled:
            stack = self.network.stack_or_default()
            if self.network.areas is not None or stack.skips == "none":
                raise ValueError("depth.enabled: needs network.stack with skips all or output (a layer must "
                                 "be removable without cutting the path from input to output)")  # fmt: skip
            if stack.layers > self.depth.max_layers:
                raise ValueError(f"network.stack.layers: {stack.layers} exceeds depth.max_layers ({self.depth.max_layers})")
        sizes = [a.size for a in self.network.areas] if self.network.areas else [self.network.stack_or_default().size]
        if self.width.kind == "reserve" and max(sizes) > self.width.max_size:
            raise ValueError(f"network: a starting area of {max(sizes)} neurons exceeds width.max_size "
                             f"({self.width.max_size})")  # fmt: skip
        return self

    def _has_recurrence(self) -> bool:
        net = self.network
        if net.areas is None:
            return net.stack_or_default().recurrent
        order = {"input": -1, **{a.name: i for i, a in enumerate(net.areas)}, "output": len(net.areas)}
        return any(order[s] >= order[t] for s, t in map(parse_projection, net.projections))

    def resolve_files(self, scenario_file: Path) -> "LayeredScenario":
        """Text task paths made absolute (relative to the scenario file's folder)."""
        phases = []
        for i, phase in enumerate(self.phases):
            if phase.task.kind == "text":
                file, _ = _text_file(phase.task.path, scenario_file, f"{scenario_file}: phases.{i}.task.path")
                phase = phase.model_copy(update={"task": phase.task.model_copy(update={"path": str(file)})})
            phases.append(phase)
        return self.model_copy(update={"phases": phases})
