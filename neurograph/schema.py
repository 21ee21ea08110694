"""Building blocks shared by the scenario schemas (:mod:`neurograph.charrnn.scenario`, :mod:`neurograph.urn.scenario`).

Every section is a :class:`Strict` model: unknown keys are errors, numbers are
strict (``true`` is not 1, ``"5"`` is not 5) and finite (``.nan`` and
``.inf`` are refused), and every numeric field states its bounds in its
``Field`` so that no scenario can ask for unbounded memory or time. Sections
both models use live here: the optimizers, ``report`` and the run-level
fields' types.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Collection, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "MAX_SEED",
    "MAX_PHASES",
    "SCALED_INTERVALS",
    "ScenarioError",
    "Strict",
    "Probability",
    "RunName",
    "Description",
    "Seed",
    "DeviceName",
    "DtypeName",
    "ReportConfig",
    "PhasedScenario",
    "AdagradConfig",
    "RMSPropConfig",
    "AdamConfig",
    "OptimizerConfig",
]

MAX_SEED = 2**32 - 1  # numpy's legacy seed range; SeedSequence takes more, but nobody needs it
MAX_PHASES = 100  # a phase list is written by hand
MAX_LOG_CYCLES = 10**9  # report intervals: never more than a run's cycles
SCALED_INTERVALS = ("graph_every", "checkpoint_every")  # report fields --cycles scales with the phases


class ScenarioError(ValueError):
    """A scenario that cannot be loaded; the message is one line naming the file and the field."""


class Strict(BaseModel):
    """A scenario section: unknown keys, booleans as numbers, NaN and infinities are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _single_path_component(name: str) -> str:
    """A run name becomes a folder name (``runs/<name>-seed<n>``): it must not leave that folder."""
    if name in (".", "..") or any(c in name for c in "/\\") or any(ord(c) < 32 for c in name):
        raise ValueError(f"must be a single folder name (no '/', '\\', control characters, '.' or '..'), got {name!r}")
    return name


Probability = Annotated[float, Field(ge=0.0, le=1.0)]
RunName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_single_path_component)]
Description = Annotated[str, Field(max_length=10_000)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
DeviceName = Literal["cpu", "cuda", "auto"]
DtypeName = Literal["float32", "float64"]  # torch dtypes in neurograph.device.DTYPES


class ReportConfig(Strict):
    """When a run writes metrics, graph snapshots and checkpoints, in its steps (char-RNN cycles, URN epochs).

    The defaults are the char-RNN's; a URN scenario has its own (every epoch,
    final graph only, a checkpoint every 10 epochs).
    """

    every: int = Field(100, ge=1, le=MAX_LOG_CYCLES, description="steps between metrics lines")
    graph_every: int = Field(
        10_000, ge=0, le=MAX_LOG_CYCLES, description="steps between graph snapshots (0: final only)"
    )
    checkpoint_every: int = Field(
        10_000, ge=0, le=MAX_LOG_CYCLES, description="steps between checkpoints (0: start and end only)"
    )


class PhasedScenario(Strict):
    """A scenario whose ``phases`` each train for ``phase_length`` steps (``cycles`` or ``epochs``).

    Subclasses set :attr:`phase_length` and :attr:`max_total`, the bound on a
    run's summed steps, which also bounds ``--cycles``.
    """

    phase_length: ClassVar[str] = "cycles"
    max_total: ClassVar[int] = MAX_LOG_CYCLES

    @property
    def total_cycles(self) -> int:
        """Steps over all phases (char-RNN cycles, URN epochs)."""
        return sum(getattr(p, self.phase_length) for p in self.phases)

    @model_validator(mode="after")
    def _total_bounded(self):
        if self.total_cycles > self.max_total:
            raise ValueError(
                f"phases: {self.total_cycles:,} {self.phase_length} in all, more than the {self.max_total:,} allowed"
            )
        return self

    def with_cycles(self, total: int, *, keep: Collection[str] = ()):
        """Same scenario scaled to ``total`` steps: phase lengths keep their proportions, and so
        do ``report.graph_every`` and ``report.checkpoint_every`` (a short run gets as many
        snapshots and checkpoints as the full one) unless named in ``keep``."""
        if isinstance(total, bool) or not isinstance(total, int) or not 0 < total <= self.max_total:
            raise ScenarioError(f"--cycles must be an integer from 1 to {self.max_total:,}, got {total}")
        old, field = self.total_cycles, self.phase_length
        lengths = [getattr(p, field) for p in self.phases]
        ends = [round(total * sum(lengths[: i + 1]) / old) for i in range(len(lengths))]
        starts = [0] + ends[:-1]
        phases = [p.model_copy(update={field: max(1, b - s)}) for p, s, b in zip(self.phases, starts, ends)]
        intervals = {
            name: max(1, round(getattr(self.report, name) * total / old))
            for name in SCALED_INTERVALS
            if name not in keep and getattr(self.report, name)  # 0 (final only, start and end only) stays 0
        }
        return self.model_copy(update={"phases": phases, "report": self.report.model_copy(update=intervals)})


# ------------------------------------------------------------- optimizers
MAX_LR = 100.0  # far above any rate that trains; keeps a typo (1e5) out
MAX_CLIP = 1e6


class AdagradConfig(Strict):
    """min-char-rnn's Adagrad (multiplier revision: lr 0.1, gradients clipped to +-5)."""

    kind: Literal["adagrad"] = "adagrad"
    lr: float = Field(0.1, gt=0.0, le=MAX_LR, description="learning rate (multiplier code: 0.1)")
    grad_clip: float | None = Field(
        5.0, gt=0.0, le=MAX_CLIP, description="each gradient clipped to +-this before the step (code: 5; null: none)"
    )
    memory_init: float = Field(
        0.0, ge=0.0, le=MAX_CLIP, description="starting value of each squared-gradient memory (min-char-rnn: 0)"
    )


class RMSPropConfig(Strict):
    """Outgoing-L1 revision's RMSProp: decay 0.01, lr 0.01, each update clipped to 0.01."""

    kind: Literal["rmsprop"] = "rmsprop"
    lr: float = Field(0.01, gt=0.0, le=MAX_LR, description="learning rate (outgoing-L1 code: 0.01)")
    decay: float = Field(
        0.01, gt=0.0, le=1.0, description="weight of the new squared gradient in the memory (code: 0.01)"
    )
    update_clip: float | None = Field(
        0.01, gt=0.0, le=MAX_CLIP, description="each weight update clipped to +-this (code: 0.01; null: none)"
    )
    grad_clip: float | None = Field(
        None, gt=0.0, le=MAX_CLIP, description="each gradient clipped to +-this (code: none)"
    )
    memory_init: float = Field(0.01, ge=0.0, le=MAX_CLIP, description="original code starts new memories at 0.01")


class AdamConfig(Strict):
    """Adam, the URN's optimizer (Golkar: learning rate 7e-4)."""

    kind: Literal["adam"] = "adam"
    lr: float = Field(7e-4, gt=0.0, le=MAX_LR, description="learning rate (paper: 7e-4)")
    beta1: float = Field(0.9, ge=0.0, lt=1.0, description="decay of the gradient's running mean (Adam's default)")
    beta2: float = Field(0.999, ge=0.0, lt=1.0, description="decay of the squared gradient's (Adam's default)")
    grad_clip: float | None = Field(
        None, gt=0.0, le=MAX_CLIP, description="each gradient clipped to +-this (paper: none)"
    )


OptimizerConfig = Annotated[Union[AdagradConfig, RMSPropConfig, AdamConfig], Field(discriminator="kind")]
