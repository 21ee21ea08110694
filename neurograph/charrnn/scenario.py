"""Char-RNN scenario schema: the YAML of a Miconi run, validated with pydantic v2.

A scenario without ``model:`` (or with ``model: charrnn``) is a char-RNN
scenario; :func:`neurograph.scenario.load_scenario` reads it. Every section
forbids unknown keys, every pluggable rule is a union discriminated by
``kind``, and every number has bounds (see :mod:`neurograph.schema`).
Defaults are the papers' values; each field says what it means in the paper.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from neurograph.charrnn.tasks import ALPHABET, AlphabetError, shared_alphabet
from neurograph.schema import (
    MAX_PHASES,
    Description,
    DeviceName,
    DtypeName,
    OptimizerConfig,
    PhasedScenario,
    Probability,
    ReportConfig,
    RunName,
    ScenarioError,
    Seed,
    Strict,
)

__all__ = [
    "MAX_CYCLES",
    "MAX_HIDDEN",
    "MAX_WINDOW",
    "MAX_TEXT_BYTES",
    "MAX_ALPHABET",
    "Scenario",
    "EasyTask",
    "HardTask",
    "TextTask",
    "Phase",
    "UniformSelector",
    "OldestSelector",
    "YoungestSelector",
    "AgeWeightedSelector",
    "RandomInit",
    "InheritInit",
    "MultipliersRule",
    "OutgoingL1Rule",
    "FixedRule",
]

MAX_CYCLES = 10**9  # per run: a day at ~10k cycles/s; the papers train 3e5
MAX_HIDDEN = 4096  # the papers grow tens of neurons; (V + H)^2 weights stay under 100 MB
MAX_WINDOW = 10_000  # BPTT keeps window x hidden activations; the papers use 40
MAX_GRAVEYARD = 10_000  # each entry keeps a neuron's wiring
MAX_GROUP = 1_000  # letters per hard-task group
MAX_TEXT_BYTES = 100_000_000  # a text task is read whole into memory
MAX_ALPHABET = 1_000  # characters of a text task: each is an input and an output neuron
MAX_WEIGHT = 1e3  # thresholds, norms and multipliers: weights live around 0.01-1
MAX_STD = 10.0
MAX_L1 = 10.0


# ---------------------------------------------------------------- tasks
class EasyTask(Strict):
    """Groups ``(ab...ab)``: after each ``ab`` another follows with probability p."""

    kind: Literal["easy"] = "easy"
    # below 1: at p = 1 a group never closes and the stream has no ')'
    p: float = Field(0.6, ge=0.0, lt=1.0, description="continue probability; paper text 0.75, original data 0.6")


class HardTask(Strict):
    """Groups of L letters, each the reverse of the previous with one flip."""

    kind: Literal["hard"] = "hard"
    length: int = Field(6, ge=2, le=MAX_GROUP, description="letters per group; multiplier text 5, original data 6")


class TextTask(Strict):
    """Any UTF-8 text file; the alphabet is taken from the file."""

    kind: Literal["text"] = "text"
    path: str = Field(min_length=1, max_length=4096, description="text file, relative to the scenario file")


TaskConfig = Annotated[Union[EasyTask, HardTask, TextTask], Field(discriminator="kind")]


class Phase(Strict):
    task: TaskConfig
    cycles: int = Field(gt=0, le=MAX_CYCLES, description="training cycles (40-character windows) in this phase")


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
    alpha: float = Field(1.0, ge=-10.0, le=10.0, description="beyond +-10, age**alpha overflows for old neurons")


SelectorConfig = Annotated[
    Union[UniformSelector, OldestSelector, YoungestSelector, AgeWeightedSelector], Field(discriminator="kind")
]


class RandomInit(Strict):
    """New neurons get random connectivity (the papers): weights ~ N(0, std^2)."""

    kind: Literal["random"] = "random"
    std: float = Field(0.01, gt=0.0, le=MAX_STD, description="min-char-rnn's randn*0.01")


class InheritInit(Strict):
    """New neurons inherit a deleted neuron's wiring (the papers' future work)."""

    kind: Literal["inherit"] = "inherit"
    choice: Literal["recent", "random", "strongest"] = Field("recent", description="which graveyard entry")
    noise: float = Field(0.0, ge=0.0, le=MAX_STD, description="multiplicative noise: w * (1 + noise * N(0,1))")
    consume: bool = Field(True, description="remove the entry from the graveyard once inherited")
    std: float = Field(0.01, gt=0.0, le=MAX_STD, description="random init when the graveyard is empty")


InitConfig = Annotated[Union[RandomInit, InheritInit], Field(discriminator="kind")]

L1Placement = Literal["gradient_per_step", "gradient", "after_update"]


# ------------------------------------------------------------------ rules
class _Reserve(Strict):
    k: int = Field(1, ge=0, le=MAX_HIDDEN, description="sub-threshold 'reserve' neurons to keep")
    threshold: float = Field(0.05, gt=0.0, le=MAX_WEIGHT, description="deletion threshold T_D")
    p_add: Probability = Field(description="P_add: chance per cycle to add one when fewer than k are below T_D")
    p_del: Probability = Field(description="P_del: chance per cycle to delete each excess sub-threshold neuron")
    p_spontaneous: Probability = Field(0.0, description="extra addition chance per cycle (original code: 1e-4)")
    max_hidden: int | None = Field(
        None, ge=1, le=MAX_HIDDEN, description="cap on hidden neurons (original code: 100)"
    )
    initial_hidden: int = Field(1, ge=1, le=MAX_HIDDEN, description="hidden neurons at the start (papers: 1)")
    selector: SelectorConfig = UniformSelector()
    init: InitConfig = RandomInit()

    @model_validator(mode="after")
    def _within_cap(self):
        cap = self.max_hidden
        if cap is not None and self.k > cap:
            raise ValueError(f"k ({self.k}) reserve neurons cannot exceed max_hidden ({cap})")
        if cap is not None and self.initial_hidden > cap:
            raise ValueError(f"initial_hidden ({self.initial_hidden}) exceeds max_hidden ({cap})")
        return self


class MultipliersRule(_Reserve):
    """First revision: per-neuron output multipliers under an L1 penalty."""

    kind: Literal["multipliers"] = "multipliers"
    p_add: Probability = 0.05
    p_del: Probability = 0.25
    l1: float = Field(3e-5, ge=0.0, le=MAX_L1, description="A: L1 strength on the multipliers")
    m_min: float = Field(0.025, ge=0.0, le=MAX_WEIGHT, description="M_min: floor of every multiplier")
    first_multiplier: float = Field(1.0, gt=0.0, le=MAX_WEIGHT, description="multiplier of the initial neuron(s)")
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
    l1: float = Field(1e-4, ge=0.0, le=MAX_L1, description="lambda: L1 strength on readout and recurrent weights")
    l1_placement: L1Placement = Field("after_update", description="original code: W -= lambda*sign(W) after update")
    norm: Literal["original", "text"] = Field(
        "original", description="text: sum|out|; original: 0.5*(sum|W_out| + 4*sum|W_hh|/H)"
    )
    new_norm: float = Field(
        0.5, gt=0.0, le=MAX_WEIGHT, description="new neuron's outgoing norm as a fraction of T_D (text: 1)"
    )


class FixedRule(Strict):
    """No structural change: N hidden neurons, penalties still on (baselines)."""

    kind: Literal["fixed"] = "fixed"
    hidden: int = Field(ge=1, le=MAX_HIDDEN, description="fixed number of hidden neurons")
    penalty: Literal["outgoing_l1", "multipliers", "none"] = "outgoing_l1"
    l1: float = Field(1e-4, ge=0.0, le=MAX_L1)
    l1_placement: L1Placement = "after_update"
    m_min: float = Field(0.025, ge=0.0, le=MAX_WEIGHT)
    scope: Literal["readout", "all"] = "readout"
    norm: Literal["original", "text"] = "original"
    threshold: float = Field(0.05, gt=0.0, le=MAX_WEIGHT, description="only to report how many are sub-threshold")
    init: InitConfig = RandomInit()


RuleConfig = Annotated[Union[MultipliersRule, OutgoingL1Rule, FixedRule], Field(discriminator="kind")]


# -------------------------------------------------------------- scenario
class Scenario(PhasedScenario):
    """A char-RNN run: tasks in phases, a structural rule, an optimizer."""

    model: Literal["charrnn"] = Field(
        "charrnn", exclude=True, description="the default model; written only to tell a URN scenario apart"
    )
    name: RunName
    description: Description = ""
    seed: Seed = 0
    device: DeviceName = "cpu"
    dtype: DtypeName = "float32"
    window: int = Field(40, gt=0, le=MAX_WINDOW, description="characters per cycle (BPTT window)")
    loss_smoothing: float = Field(
        0.999, ge=0.0, lt=1.0, description="EMA factor of the reported loss (min-char-rnn 0.999; outgoing-L1 code 0.99)"
    )
    graveyard: int = Field(64, ge=0, le=MAX_GRAVEYARD, description="deleted neurons kept with their wiring")
    structure: RuleConfig
    optimizer: OptimizerConfig
    phases: list[Phase] = Field(min_length=1, max_length=MAX_PHASES)
    report: ReportConfig = ReportConfig()

    def resolve_files(self, scenario_file: Path) -> "Scenario":
        """Same scenario with text paths made absolute (relative ones are to ``scenario_file``'s folder).

        Raises :class:`~neurograph.schema.ScenarioError` for a text file that is
        missing, too large, not UTF-8 or too short, and when phases differ in alphabet.
        """
        phases, alphabets = [], []
        for i, phase in enumerate(self.phases):
            task, alphabet = phase.task, ALPHABET
            if task.kind == "text":
                file, alphabet = _text_file(task.path, scenario_file, f"{scenario_file}: phases.{i}.task.path")
                task = task.model_copy(update={"path": str(file)})
            phases.append(phase.model_copy(update={"task": task}))
            alphabets.append(alphabet)
        try:
            shared_alphabet(alphabets)
        except AlphabetError as e:
            raise ScenarioError(f"{scenario_file}: {e}") from None
        return self.model_copy(update={"phases": phases})


def _text_file(path: str, scenario_file: Path, where: str) -> tuple[Path, str]:
    """Absolute path and alphabet (sorted distinct characters, as TextTask reads it) of a text task's file."""
    file = Path(path)
    file = file if file.is_absolute() else (scenario_file.parent / file)
    if not file.is_file():
        raise ScenarioError(f"{where}: text file {file} not found")
    try:
        if file.stat().st_size > MAX_TEXT_BYTES:
            raise ScenarioError(f"{where}: {file} is larger than {MAX_TEXT_BYTES:,} bytes")
        text = file.read_bytes().decode("utf-8")  # bytes, as TextTask reads it: no newline translation
    except UnicodeDecodeError:
        raise ScenarioError(f"{where}: {file} is not UTF-8 text") from None
    except OSError as e:
        raise ScenarioError(f"{where}: cannot read {file} ({e.strerror})") from None
    if len(text) < 2:
        raise ScenarioError(f"{where}: {file} has fewer than 2 characters")
    alphabet = "".join(sorted(set(text)))
    if len(alphabet) > MAX_ALPHABET:
        raise ScenarioError(f"{where}: {file} has {len(alphabet):,} distinct characters, more than {MAX_ALPHABET:,}")
    return file.resolve(), alphabet
