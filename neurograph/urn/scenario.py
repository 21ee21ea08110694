"""URN scenario schema: the YAML of a Golkar URN run, validated with pydantic v2.

A URN scenario says ``model: urn`` at the top level, which is how the command
line tells it from a char-RNN scenario (:func:`scenario_model`). Every section
forbids unknown keys; tasks are a union discriminated by ``kind``. Defaults are
the paper's values where it gives them and documented choices where it does
not (docs/urn.md). Loading errors are one-line
:class:`~neurograph.scenario.ScenarioError` messages naming file and field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

import yaml
from pydantic import Field, ValidationError, model_validator

from neurograph.scenario import AdamConfig, ScenarioError, Strict, _read_yaml, format_validation, parse_overrides

__all__ = [
    "URNScenario",
    "SpheresTask",
    "BarsTask",
    "Cifar10Task",
    "load_urn_scenario",
    "scenario_model",
]

PositiveFloat = Annotated[float, Field(gt=0.0)]
NonNegFloat = Annotated[float, Field(ge=0.0)]


# ------------------------------------------------------------------ tasks
class SpheresTask(Strict):
    """Two concentric uniform spherical shells (Golkar Sec. 2); class k lies in shell k."""

    kind: Literal["spheres"] = "spheres"
    dim: int = Field(10, ge=2, description="d, input dimension (paper: 10)")
    train: int = Field(4000, ge=2, description="training samples (paper: 4,000)")
    test: int = Field(1000, ge=2, description="held-out samples (paper: not given)")
    radii: tuple[PositiveFloat, PositiveFloat] = Field((1.0, 1.5), description="shell centre radii (not given)")
    thickness: NonNegFloat = Field(0.2, description="shell thickness, both shells (not given)")

    @model_validator(mode="after")
    def _shells_apart(self):
        lo, hi = sorted(self.radii)
        if hi - lo <= self.thickness or lo - self.thickness / 2 < 0:
            raise ValueError(f"shells {self.radii} +- {self.thickness / 2} overlap or reach the origin")
        return self


class BarsTask(Strict):
    """Generated oriented bars in noise on the input grid (offline stand-in for images)."""

    kind: Literal["bars"] = "bars"
    classes: int = Field(4, ge=2, le=4, description="orientations: horizontal, vertical, diagonal, antidiagonal")
    noise: NonNegFloat = Field(0.3, description="std of the Gaussian pixel noise (bar pixels are 1)")
    pairs: bool = Field(False, description="two bars; label: parallel or not (a harder, deeper task)")
    train: int = Field(3000, ge=2)
    test: int = Field(1000, ge=2)


class Cifar10Task(Strict):
    """Monochrome CIFAR-10 from its binary files, resized to the input grid (Golkar Sec. 3)."""

    kind: Literal["cifar10"] = "cifar10"
    path: str = Field(description="cifar-10-batches-bin folder, relative to the scenario file")
    resize: Literal["bilinear", "area"] = Field("bilinear", description="paper: 'interpolation' from 32 to 60")
    train: int | None = Field(None, ge=1, description="use only the first N training images")
    test: int | None = Field(None, ge=1, description="use only the first N test images")


TaskConfig = Annotated[Union[SpheresTask, BarsTask, Cifar10Task], Field(discriminator="kind")]


class Phase(Strict):
    task: TaskConfig
    epochs: int = Field(gt=0, description="passes over the task's training set (paper: 200)")


# ---------------------------------------------------------------- network
class GeometryConfig(Strict):
    """The eq. 8 lattice; x and y default to the input grid (images) or a square plane."""

    x: int | None = Field(None, ge=1, description="lattice columns (images: the input grid's width)")
    y: int | None = Field(None, ge=1, description="lattice rows (images: the input grid's height)")
    z: int = Field(6, ge=2, description="planes; inputs on z = 1, outputs on z = Z (paper: 6)")
    beta: PositiveFloat = Field(1.0, description="beta of eq. 8: ds^2 = dx^2 + dy^2 + beta dz^2 (not given)")


class NetworkConfig(Strict):
    size: int | None = Field(
        None, ge=3, description="S, total neurons (paper: 5,000; images: default x*y*z, paper 21,600)"
    )
    iterations: int = Field(4, ge=1, description="I, applications of the update rule (paper: 4)")
    update: Literal["plain", "residual_output", "residual_input"] = Field(
        "plain", description="eq. 3, eq. 6 (output nodes accumulate) or eq. 7 (input fed every step)"
    )
    activation: Literal["relu", "tanh", "softplus", "leaky_relu"] = Field("relu", description="phi (not given)")
    output_activation: Literal["linear", "phi"] = Field(
        "linear", description="phi on the output nodes too (eq. 4 literally) or not (default, see docs/urn.md)"
    )
    init_gain: PositiveFloat = Field(1.0, description="W ~ N(0, gain^2 2/S): He normal at 1 (paper: He normal)")
    geometry: GeometryConfig = GeometryConfig()


class LossConfig(Strict):
    c_w: NonNegFloat = Field(5e-7, description="c_W, L1 on every weight (paper Sec. 2: 5e-7)")
    c_n: NonNegFloat = Field(2e-5, description="c_N, L1 on activities per iteration (paper: 2e-5)")
    activity_reduction: Literal["mean", "sum"] = Field(
        "mean",
        description="|N^(l)| over a minibatch: mean over samples (like the cross-entropy's 1/N), or sum "
        "(eq. 5 as printed, the 1/N on the cross-entropy only: B times stronger)",
    )
    c_syn: NonNegFloat = Field(0.0, description="c_syn of eq. 9, L1 on weights times length^gamma (Sec. 3)")
    gamma: NonNegFloat = Field(1.0, description="gamma, the length power of eq. 9 (not given)")


class TrainingConfig(Strict):
    batch_size: int = Field(100, ge=1, description="minibatch size (not given)")


class AnalysisConfig(Strict):
    activity_threshold: NonNegFloat = Field(1e-3, description="a neuron is active when max |N| exceeds this")
    weight_threshold: NonNegFloat = Field(1e-2, description="a synapse is in the active network above this |W|")
    samples: int = Field(1000, ge=1, description="training samples the per-epoch analysis looks at")


class DeletionConfig(Strict):
    """Lifetime structural deletion of silent hidden neurons (neurograph's addition, not the paper's)."""

    enabled: bool = False
    patience: int = Field(5, ge=1, description="M: consecutive inactive epochs before a hidden neuron is deleted")


class ReportConfig(Strict):
    every: int = Field(1, gt=0, description="epochs between metrics rows")
    graph_every: int = Field(0, ge=0, description="epochs between graph snapshots (0: final only)")
    checkpoint_every: int = Field(
        10, ge=0, description="epochs between checkpoints (0: start and end only); a paper-size one is 3 S^2 floats"
    )


class URNScenario(Strict):
    model: Literal["urn"] = Field(description="marks a URN scenario (the CLI dispatches on it)")
    name: str = Field(min_length=1)
    description: str = ""
    seed: int = Field(0, ge=0)
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    dtype: Literal["float32", "float64"] = "float32"
    network: NetworkConfig = NetworkConfig()
    loss: LossConfig = LossConfig()
    optimizer: AdamConfig = AdamConfig()
    training: TrainingConfig = TrainingConfig()
    analysis: AnalysisConfig = AnalysisConfig()
    deletion: DeletionConfig = DeletionConfig()
    phases: list[Phase] = Field(min_length=1, description="tasks trained one after the other (NESA)")
    report: ReportConfig = ReportConfig()

    @model_validator(mode="after")
    def _tasks_share_inputs(self):
        kinds = {"image" if p.task.kind != "spheres" else "vector" for p in self.phases}
        if len(kinds) > 1:
            raise ValueError("phases mix spheres with image tasks; one network needs one input layout")
        if kinds == {"vector"}:
            dims = {p.task.dim for p in self.phases}
            if len(dims) > 1:
                raise ValueError(f"spheres phases must share dim, got {sorted(dims)}")
            if self.network.size is None:
                raise ValueError("network.size (S) is required for spheres")
        elif self.network.geometry.x is None or self.network.geometry.y is None:
            raise ValueError("image tasks need network.geometry.x and .y (the input grid)")
        return self

    @property
    def total_cycles(self) -> int:
        return sum(p.epochs for p in self.phases)

    def with_cycles(self, total: int) -> "URNScenario":
        """Same scenario with phase epochs scaled to ``total`` epochs."""
        if total <= 0:
            raise ScenarioError(f"--cycles must be > 0, got {total}")
        old = self.total_cycles
        bounds = [round(total * sum(p.epochs for p in self.phases[: i + 1]) / old) for i in range(len(self.phases))]
        starts = [0] + bounds[:-1]
        phases = [p.model_copy(update={"epochs": max(1, b - s)}) for p, s, b in zip(self.phases, starts, bounds)]
        return self.model_copy(update={"phases": phases})


# ------------------------------------------------------------------ loading
def scenario_model(path: str | Path) -> str | None:
    """The top-level ``model`` of a scenario file (``"urn"``), None when absent or unreadable."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    value = data.get("model") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def load_urn_scenario(path: str | Path, overrides: list[str] = ()) -> URNScenario:
    """Read, override (``a.b=value``, value parsed as YAML) and validate; CIFAR paths become absolute."""
    path = Path(path)
    data = parse_overrides(_read_yaml(path), list(overrides), path, URNScenario)
    try:
        scenario = URNScenario.model_validate(data)
    except ValidationError as err:
        set_by = {item.split("=", 1)[0].strip() for item in overrides}
        raise ScenarioError(format_validation(path, err, data, set_by, URNScenario)) from None
    return _resolve_paths(scenario, path)


def _resolve_paths(scenario: URNScenario, path: Path) -> URNScenario:
    phases = []
    for i, phase in enumerate(scenario.phases):
        task = phase.task
        if task.kind == "cifar10":
            folder = Path(task.path)
            folder = folder if folder.is_absolute() else path.parent / folder
            if not folder.is_dir():
                raise ScenarioError(f"{path}: phases.{i}.task.path: CIFAR-10 folder {folder} not found")
            task = task.model_copy(update={"path": str(folder.resolve())})
        phases.append(phase.model_copy(update={"task": task}))
    return scenario.model_copy(update={"phases": phases})







