"""Char-RNN scenario schema: the YAML of a Miconi run, validated with pydantic v2.

A scenario without ``model:`` (or with ``model: charrnn``) is a char-RNN
scenario; :func:`neurograph.scenario.load_scenario` reads it. Every section
forbids unknown keys, every pluggable rule is chosen by its ``kind``, and
every number has bounds (see :mod:`neurograph.schema`). Tasks and deletion
selectors are registries (:data:`~neurograph.charrnn.tasks.TASKS`,
:data:`~neurograph.charrnn.selectors.SELECTORS`): the built-in kinds are
registered here with their sections, and user code may add more. Defaults are
the papers' values; each field says what it means in the paper. The reference
of every field is ``docs/scenarios.md`` (``neurograph schema --markdown``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from neurograph.charrnn import selectors as sel
from neurograph.charrnn import tasks
from neurograph.charrnn.selectors import SELECTORS
from neurograph.charrnn.tasks import ALPHABET, TASKS, AlphabetError, shared_alphabet
from neurograph.schema import (
    MAX_PHASES,
    AdagradConfig,
    Description,
    DeviceName,
    DtypeName,
    OptimizerConfig,
    PhasedScenario,
    Probability,
    ReportConfig,
    RMSPropConfig,
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
    "revision_optimizer",
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
    """Groups ``(ab...ab)``: after each ``ab`` another follows with probability p (alphabet ``ab()``)."""

    kind: Literal["easy"] = "easy"
    # below 1: at p = 1 a group never closes and the stream has no ')'
    p: float = Field(0.6, ge=0.0, lt=1.0, description="continue probability; paper text 0.75, original data 0.6")


class HardTask(Strict):
    """Groups of L letters a/b in parentheses, each the reverse of the previous with one letter flipped."""

    kind: Literal["hard"] = "hard"
    length: int = Field(6, ge=2, le=MAX_GROUP, description="letters per group; multiplier text 5, original data 6")


class TextTask(Strict):
    """Your own corpus: any UTF-8 text file (up to 100 MB), read cyclically from a random offset.

    The alphabet is the file's distinct characters (at most 1,000: each is an
    input and an output neuron); every phase must share it. No optimum is known.
    """

    kind: Literal["text"] = "text"
    path: str = Field(min_length=1, max_length=4096, description="text file, relative to the scenario file")


TASKS.register(EasyTask, lambda c, rng: tasks.EasyTask(c.p, rng=rng), builtin=True)
TASKS.register(HardTask, lambda c, rng: tasks.HardTask(c.length, rng=rng), builtin=True)
TASKS.register(TextTask, lambda c, rng: tasks.TextTask(Path(c.path), rng=rng), builtin=True)


class Phase(Strict):
    """One stretch of training on one task."""

    task: TASKS.field = Field(description="what the network reads: a task kind and its parameters")
    cycles: int = Field(gt=0, le=MAX_CYCLES, description="training cycles (40-character windows) in this phase")


# ------------------------------------------------------------- selectors
class UniformSelector(Strict):
    """Which sub-threshold neurons to delete: uniformly at random (the papers)."""

    kind: Literal["uniform"] = "uniform"


class OldestSelector(Strict):
    """The oldest sub-threshold neurons (ties by id): age-biased deletion, the papers' future work."""

    kind: Literal["oldest"] = "oldest"


class YoungestSelector(Strict):
    """The youngest sub-threshold neurons (ties by id): age-biased deletion, the papers' future work."""

    kind: Literal["youngest"] = "youngest"


class AgeWeightedSelector(Strict):
    """Probability proportional to age**alpha (alpha may be negative)."""

    kind: Literal["age_weighted"] = "age_weighted"
    alpha: float = Field(1.0, ge=-10.0, le=10.0, description="beyond +-10, age**alpha overflows for old neurons")


SELECTORS.register(UniformSelector, lambda c: sel.Uniform(), builtin=True)
SELECTORS.register(OldestSelector, lambda c: sel.Oldest(), builtin=True)
SELECTORS.register(YoungestSelector, lambda c: sel.Youngest(), builtin=True)
SELECTORS.register(AgeWeightedSelector, lambda c: sel.AgeWeighted(c.alpha), builtin=True)


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
    selector: SELECTORS.field = Field(UniformSelector(), description="which sub-threshold neurons risk deletion")
    init: InitConfig = Field(RandomInit(), description="how a new neuron is wired")

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
    p_add: Probability = Field(0.05, description="P_add: chance per cycle to add one when fewer than k are below T_D")
    p_del: Probability = Field(0.25, description="P_del: chance per cycle to delete each excess sub-threshold neuron")
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
    p_add: Probability = Field(0.01, description="P_add: chance per cycle to add one when fewer than k are below T_D")
    p_del: Probability = Field(0.05, description="P_del: chance per cycle to delete each excess sub-threshold neuron")
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
    penalty: Literal["outgoing_l1", "multipliers", "none"] = Field(
        "outgoing_l1", description="which revision's L1 penalty trains the fixed network (none: plain min-char-rnn)"
    )
    l1: float = Field(1e-4, ge=0.0, le=MAX_L1, description="L1 strength (outgoing-L1 lambda 1e-4; multipliers A 3e-5)")
    l1_placement: L1Placement = Field("after_update", description="where the L1 term enters, as in the rules")
    m_min: float = Field(0.025, ge=0.0, le=MAX_WEIGHT, description="M_min, multiplier floor (penalty multipliers)")
    scope: Literal["readout", "all"] = Field("readout", description="what multipliers scale (penalty multipliers)")
    norm: Literal["original", "text"] = Field("original", description="outgoing norm, as in outgoing_l1")
    threshold: float = Field(0.05, gt=0.0, le=MAX_WEIGHT, description="only to report how many are sub-threshold")
    init: InitConfig = Field(RandomInit(), description="how the hidden neurons are wired at the start")


RuleConfig = Annotated[Union[MultipliersRule, OutgoingL1Rule, FixedRule], Field(discriminator="kind")]


def revision_optimizer(structure) -> AdagradConfig | RMSPropConfig:
    """The optimizer of ``structure``'s paper revision, the default when a scenario names none.

    The multiplier revision trained with min-char-rnn's Adagrad (lr 0.1,
    gradients clipped to +-5); the outgoing-L1 revision with RMSProp (lr 0.01,
    decay 0.01, each update clipped to +-0.01, memories starting at 0.01). A
    fixed network takes the optimizer of its penalty's revision.
    """
    if isinstance(structure, dict):
        kind, penalty = structure.get("kind"), structure.get("penalty", "outgoing_l1")
    else:
        kind, penalty = getattr(structure, "kind", None), getattr(structure, "penalty", None)
    return AdagradConfig() if "multipliers" in (kind, penalty) else RMSPropConfig()


# -------------------------------------------------------------- scenario
class Scenario(PhasedScenario):
    """A char-RNN run: tasks in phases, a structural rule, an optimizer."""

    model: Literal["charrnn"] = Field(
        "charrnn", exclude=True, description="the default model; written only to tell a URN scenario apart"
    )
    name: RunName = Field(description="the run's name: its folder is runs/<name>-seed<seed>")
    description: Description = Field("", description="free text, kept in the run folder")
    seed: Seed = Field(0, description="the run is a function of (scenario, seed): structure, weights and data")
    device: DeviceName = Field("cpu", description="where tensors live (auto: cuda when there is a GPU)")
    dtype: DtypeName = Field("float32", description="compiled tensors' precision (the graph keeps float64)")
    window: int = Field(40, gt=0, le=MAX_WINDOW, description="characters per cycle (BPTT window; papers: 40)")
    loss_smoothing: float = Field(
        0.999, ge=0.0, lt=1.0, description="EMA factor of the reported loss (min-char-rnn 0.999; outgoing-L1 code 0.99)"
    )
    graveyard: int = Field(64, ge=0, le=MAX_GRAVEYARD, description="deleted neurons kept with their wiring")
    structure: RuleConfig = Field(description="the structural rule: which paper revision, its penalty and parameters")
    optimizer: OptimizerConfig = Field(
        default_factory=lambda data: revision_optimizer(data.get("structure")),
        description="default: the structure's paper revision's: multipliers -> adagrad (lr 0.1, clip 5), "
        "outgoing_l1 -> rmsprop (lr 0.01, decay 0.01, update clip 0.01), fixed -> its penalty's",
    )
    phases: list[Phase] = Field(min_length=1, max_length=MAX_PHASES, description="tasks trained one after the other")
    report: ReportConfig = Field(ReportConfig(), description="when metrics, snapshots and checkpoints are written")

    def resolve_files(self, scenario_file: Path) -> "Scenario":
        """Same scenario with task paths made absolute (relative ones are to ``scenario_file``'s folder).

        Raises :class:`~neurograph.schema.ScenarioError` for a text file that is
        missing, too large, not UTF-8 or too short, and when phases differ in
        alphabet. A registered task's string ``path`` field is made absolute
        too; its alphabet is checked when the trainer builds the task.
        """
        phases, alphabets = [], []
        for i, phase in enumerate(self.phases):
            task, alphabet = phase.task, ALPHABET if phase.task.kind in ("easy", "hard") else None
            if task.kind == "text":
                file, alphabet = _text_file(task.path, scenario_file, f"{scenario_file}: phases.{i}.task.path")
                task = task.model_copy(update={"path": str(file)})
            elif isinstance(getattr(task, "path", None), str):
                task = task.model_copy(update={"path": str((scenario_file.parent / task.path).resolve())})
            phases.append(phase.model_copy(update={"task": task}))
            alphabets.append(alphabet)
        try:
            if None not in alphabets:
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
