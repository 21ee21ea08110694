"""URN scenario schema: the YAML of a Golkar URN run, validated with pydantic v2.

A URN scenario says ``model: urn`` at the top level;
:func:`neurograph.scenario.load_scenario` reads it. Every section forbids
unknown keys, tasks are a union discriminated by ``kind``, and every number
has bounds (see :mod:`neurograph.schema`); the sizes are checked against one
another (inputs and outputs fit in S, the lattice holds S, the data fit in
memory). Defaults are the paper's values where it gives them and documented
choices where it does not (docs/urn.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, field_validator, model_validator

from neurograph.schema import (
    MAX_PHASES,
    AdamConfig,
    Description,
    DeviceName,
    DtypeName,
    PhasedScenario,
    ReportConfig,
    RunName,
    ScenarioError,
    Seed,
    Strict,
)

__all__ = [
    "MAX_SIZE",
    "MAX_EPOCHS",
    "MAX_DATA_VALUES",
    "URNScenario",
    "SpheresTask",
    "BarsTask",
    "Cifar10Task",
]

MAX_SIZE = 25_000  # S: W is S x S, and Adam keeps two more; the paper's images use 21,600
MAX_EPOCHS = 100_000  # per run; the paper trains 200 per task
MAX_SAMPLES = 1_000_000  # per split of a generated task
MAX_DATA_VALUES = 2**28  # samples x inputs of one phase: 1 GiB of float32
MAX_GRID = 1_000  # lattice columns and rows
MAX_VALUE = 1e3  # radii, noise, thresholds and loss coefficients: far above any sensible value
CIFAR_SIZES = (50_000, 10_000)  # training and test images in the binary files
CIFAR_FILES = "expected data_batch_1.bin .. data_batch_5.bin and test_batch.bin (CIFAR-10's binary version)"

# ------------------------------------------------------------------ tasks
Radius = Annotated[float, Field(strict=True, gt=0.0, le=MAX_VALUE)]


class SpheresTask(Strict):
    """Two concentric uniform spherical shells (Golkar Sec. 2); class k lies in shell k."""

    kind: Literal["spheres"] = "spheres"
    dim: int = Field(10, ge=2, le=MAX_SIZE, description="d, input dimension (paper: 10)")
    train: int = Field(4000, ge=2, le=MAX_SAMPLES, description="training samples (paper: 4,000)")
    test: int = Field(1000, ge=2, le=MAX_SAMPLES, description="held-out samples (paper: not given)")
    # a YAML list: not strict, but each radius is
    radii: tuple[Radius, Radius] = Field((1.0, 1.5), strict=False, description="shell centre radii (not given)")
    thickness: float = Field(0.2, ge=0.0, le=MAX_VALUE, description="shell thickness, both shells (not given)")

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
    noise: float = Field(0.3, ge=0.0, le=MAX_VALUE, description="std of the Gaussian pixel noise (bar pixels are 1)")
    pairs: bool = Field(False, description="two bars; label: parallel or not (a harder, deeper task)")
    train: int = Field(3000, ge=2, le=MAX_SAMPLES, description="training samples")
    test: int = Field(1000, ge=2, le=MAX_SAMPLES, description="held-out samples")


class Cifar10Task(Strict):
    """Monochrome CIFAR-10 from its binary files, resized to the input grid (Golkar Sec. 3)."""

    kind: Literal["cifar10"] = "cifar10"
    path: str = Field(
        min_length=1, max_length=4096, description="cifar-10-batches-bin folder, relative to the scenario file"
    )
    resize: Literal["bilinear", "area"] = Field("bilinear", description="paper: 'interpolation' from 32 to 60")
    train: int | None = Field(None, ge=1, le=CIFAR_SIZES[0], description="use only the first N training images")
    test: int | None = Field(None, ge=1, le=CIFAR_SIZES[1], description="use only the first N test images")


TaskConfig = Annotated[Union[SpheresTask, BarsTask, Cifar10Task], Field(discriminator="kind")]


class Phase(Strict):
    """One task, trained for some epochs (NESA: the next phase trains the same network on another)."""

    task: TaskConfig = Field(description="the dataset: a task kind and its parameters")
    epochs: int = Field(gt=0, le=MAX_EPOCHS, description="passes over the task's training set (paper: 200)")


# ---------------------------------------------------------------- network
class GeometryConfig(Strict):
    """The eq. 8 lattice; x and y default to the input grid (images) or a square plane."""

    x: int | None = Field(None, ge=1, le=MAX_GRID, description="lattice columns (images: the input grid's width)")
    y: int | None = Field(None, ge=1, le=MAX_GRID, description="lattice rows (images: the input grid's height)")
    z: int = Field(6, ge=2, le=100, description="planes; inputs on z = 1, outputs on z = Z (paper: 6)")
    beta: float = Field(
        1.0, gt=0.0, le=MAX_VALUE, description="beta of eq. 8: ds^2 = dx^2 + dy^2 + beta dz^2 (not given)"
    )


class NetworkConfig(Strict):
    size: int | None = Field(
        None, ge=3, le=MAX_SIZE, description="S, total neurons (paper: 5,000; images: default x*y*z, paper 21,600)"
    )
    iterations: int = Field(4, ge=1, le=100, description="I, applications of the update rule (paper: 4)")
    update: Literal["plain", "residual_output", "residual_input"] = Field(
        "plain", description="eq. 3, eq. 6 (output nodes accumulate) or eq. 7 (input fed every step)"
    )
    activation: Literal["relu", "tanh", "softplus", "leaky_relu"] = Field("relu", description="phi (not given)")
    output_activation: Literal["linear", "phi"] = Field(
        "linear", description="phi on the output nodes too (eq. 4 literally) or not (default, see docs/urn.md)"
    )
    init_gain: float = Field(
        1.0, gt=0.0, le=100.0, description="W ~ N(0, gain^2 2/S): He normal at 1 (paper: He normal)"
    )
    geometry: GeometryConfig = Field(GeometryConfig(), description="neuron positions (eq. 8 lattice)")


class LossConfig(Strict):
    c_w: float = Field(5e-7, ge=0.0, le=MAX_VALUE, description="c_W, L1 on every weight (paper Sec. 2: 5e-7)")
    c_n: float = Field(2e-5, ge=0.0, le=MAX_VALUE, description="c_N, L1 on activities per iteration (paper: 2e-5)")
    activity_reduction: Literal["mean", "sum"] = Field(
        "sum",
        description="|N^(l)| over a minibatch: sum over its samples (default: eq. 5 as printed, whose 1/N "
        "averages the cross-entropy only), or mean over them (as sum with c_N / B)",
    )
    c_syn: float = Field(
        0.0, ge=0.0, le=MAX_VALUE, description="c_syn of eq. 9, L1 on weights times length^gamma (Sec. 3)"
    )
    gamma: float = Field(1.0, ge=0.0, le=10.0, description="gamma, the length power of eq. 9 (not given)")
    synapse_pairs: Literal["all", "i<j"] = Field(
        "all",
        description="eq. 9's sum: every ordered pair (W_ij and W_ji are two synapses of one length), or i<j "
        "as printed (only synapses whose target precedes their source in the order inputs, hidden, outputs)",
    )


class TrainingConfig(Strict):
    batch_size: int = Field(
        32,
        ge=1,
        le=MAX_SAMPLES,
        description="minibatch size; the paper trains 'via stochastic gradient descent' and gives none: 32, the "
        "common default (Keras' fit, whose terms it uses: He normal, epochs). With the summed activity term "
        "c_N's strength grows with it",
    )


class AnalysisConfig(Strict):
    activity_threshold: float = Field(
        1e-3, ge=0.0, le=MAX_VALUE, description="a neuron is active when max |N| exceeds this"
    )
    weight_threshold: float = Field(
        1e-2, ge=0.0, le=MAX_VALUE, description="a synapse is in the active network above this |W|"
    )
    samples: int = Field(1000, ge=1, le=MAX_SAMPLES, description="training samples the per-epoch analysis looks at")


class DeletionConfig(Strict):
    """Lifetime structural deletion of silent hidden neurons (neurograph's addition, not the paper's)."""

    enabled: bool = Field(False, description="delete hidden neurons silent for patience epochs")
    patience: int = Field(
        5, ge=1, le=MAX_EPOCHS, description="M: consecutive inactive epochs before a hidden neuron is deleted"
    )


# report in epochs: every epoch, the final graph only, a checkpoint every 10 epochs (a paper-size one is 3 S^2 floats)
REPORT_DEFAULTS = {"every": 1, "graph_every": 0, "checkpoint_every": 10}


class URNScenario(PhasedScenario):
    """A URN run (Golkar): one S x S matrix applied I times under L1 pressure; tasks in phases of epochs."""

    model: Literal["urn"] = Field(description="marks a URN scenario (the CLI dispatches on it)")
    name: RunName = Field(description="the run's name: its folder is runs/<name>-seed<seed>")
    description: Description = Field("", description="free text, kept in the run folder")
    seed: Seed = Field(0, description="the run is a function of (scenario, seed): weights, data and minibatches")
    device: DeviceName = Field("cpu", description="where tensors live (auto: cuda when there is a GPU)")
    dtype: DtypeName = Field("float32", description="compiled tensors' precision (the graph keeps float64)")
    network: NetworkConfig = Field(NetworkConfig(), description="S, I, update rule and geometry")
    loss: LossConfig = Field(LossConfig(), description="the L1 penalties of eq. 5 and eq. 9")
    optimizer: AdamConfig = Field(AdamConfig(), description="Adam (paper: lr 7e-4)")
    training: TrainingConfig = Field(TrainingConfig(), description="minibatches")
    analysis: AnalysisConfig = Field(AnalysisConfig(), description="what counts as active in the per-epoch analysis")
    deletion: DeletionConfig = Field(DeletionConfig(), description="lifetime deletion of silent neurons")
    phases: list[Phase] = Field(
        min_length=1, max_length=MAX_PHASES, description="tasks trained one after the other (NESA)"
    )
    report: ReportConfig = Field(ReportConfig(**REPORT_DEFAULTS), description="in epochs")

    phase_length = "epochs"
    max_total = MAX_EPOCHS

    @field_validator("report", mode="before")
    @classmethod
    def _report_in_epochs(cls, value):
        """A partial report section keeps the URN's defaults for the fields it leaves out."""
        return {**REPORT_DEFAULTS, **value} if isinstance(value, dict) else value

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

    @model_validator(mode="after")
    def _sizes_fit(self):
        """S holds the inputs and outputs, the lattice holds S, and each phase's data fit in memory."""
        geometry, n_in = self.network.geometry, self._inputs()
        n_out = max(_outputs(p.task) for p in self.phases)
        size = self.network.size if self.network.size is not None else geometry.x * geometry.y * geometry.z
        if size > MAX_SIZE:
            raise ValueError(f"network.size: S = x*y*z = {size:,} neurons, more than the {MAX_SIZE:,} allowed")
        if n_in + n_out > size:
            raise ValueError(f"network.size: S = {size:,} neurons cannot hold {n_in:,} inputs + {n_out} outputs")
        if geometry.x is not None and geometry.y is not None and geometry.x * geometry.y * geometry.z < size:
            shape, sites = f"{geometry.x}x{geometry.y}x{geometry.z}", geometry.x * geometry.y * geometry.z
            raise ValueError(f"network.geometry: the {shape} lattice has {sites:,} sites, fewer than S = {size:,}")
        for i, phase in enumerate(self.phases):
            values = _samples(phase.task) * n_in
            if values > MAX_DATA_VALUES:
                raise ValueError(
                    f"phases.{i}.task: {_samples(phase.task):,} samples x {n_in:,} inputs is more than "
                    f"{MAX_DATA_VALUES:,} values; use fewer samples"
                )
        return self

    def _inputs(self) -> int:
        """Input neurons: the spheres' dimension, or the image grid's pixels."""
        if self.phases[0].task.kind == "spheres":
            return self.phases[0].task.dim
        return self.network.geometry.x * self.network.geometry.y

    def resolve_files(self, scenario_file: Path) -> "URNScenario":
        """Same scenario with CIFAR-10 folders made absolute (relative ones are to ``scenario_file``'s folder)."""
        phases = []
        for i, phase in enumerate(self.phases):
            task = phase.task
            if task.kind == "cifar10":
                folder = Path(task.path)
                folder = folder if folder.is_absolute() else scenario_file.parent / folder
                where = f"{scenario_file}: phases.{i}.task.path"
                expected = f"{CIFAR_FILES}; give the folder with --set phases.{i}.task.path=DIR"
                if not folder.is_dir():
                    raise ScenarioError(f"{where}: CIFAR-10 folder {folder} not found; {expected}")
                if not any(folder.glob("data_batch_*.bin")) or not (folder / "test_batch.bin").is_file():
                    raise ScenarioError(f"{where}: {folder} lacks the CIFAR-10 binary files; {expected}")
                task = task.model_copy(update={"path": str(folder.resolve())})
            phases.append(phase.model_copy(update={"task": task}))
        return self.model_copy(update={"phases": phases})


def _outputs(task: SpheresTask | BarsTask | Cifar10Task) -> int:
    if task.kind == "spheres":
        return 2
    if task.kind == "bars":
        return 2 if task.pairs else task.classes
    return 10


def _samples(task: SpheresTask | BarsTask | Cifar10Task) -> int:
    """Training and test samples a phase holds in memory."""
    if task.kind == "cifar10":
        return (task.train or CIFAR_SIZES[0]) + (task.test or CIFAR_SIZES[1])
    return task.train + task.test
