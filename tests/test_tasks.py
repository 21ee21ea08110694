"""Tests for neurograph.charrnn.tasks: stream structure, entropy optima, determinism, resumption."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from neurograph.charrnn.tasks import (
    ALPHABET,
    EasyTask,
    HardTask,
    Task,
    TextTask,
    easy_optimum,
    hard_optimum,
)

# Non-repeating, with multi-byte characters, so every offset gives a distinct stream.
TEXT = "".join(f"line {i}: ü∑ {i * i}\n" for i in range(40))

# Statistical checks allow this many standard errors; all samples use fixed seeds.
Z = 5.0


def decode(indices: np.ndarray, alphabet: str = ALPHABET) -> str:
    return "".join(alphabet[i] for i in indices.tolist())


def whole_groups(stream: str) -> str:
    """The stream cut after its last closing parenthesis."""
    return stream[: stream.rindex(")") + 1]


def plugin_entropy(counts: np.ndarray) -> float:
    """Plug-in entropy in nats of a histogram."""
    q = counts / counts.sum()
    return float(-(q * np.log(q)).sum())


def conditional_entropy(context: np.ndarray, following: np.ndarray) -> float:
    """Plug-in H(following | context) in nats, from paired samples of int labels."""
    _, joint = np.unique(np.stack([context, following], axis=1), axis=0, return_counts=True)
    _, marginal = np.unique(context, return_counts=True)
    return plugin_entropy(joint) - plugin_entropy(marginal)


def hard_groups(task: HardTask, count: int) -> np.ndarray:
    """The first ``count`` groups' letter bits, shape (count, L)."""
    rows = task.take(count * (task.length + 2)).reshape(count, task.length + 2)
    assert (rows[:, 0] == ALPHABET.index("(")).all()
    assert (rows[:, -1] == ALPHABET.index(")")).all()
    return rows[:, 1:-1]


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture(params=["easy", "hard", "text"])
def make_task(request, text_file: Path) -> Callable[[int], Task]:
    """Factory: seed -> fresh task of the parametrized kind."""
    builders = {
        "easy": lambda rng: EasyTask(0.6, rng=rng),
        "hard": lambda rng: HardTask(6, rng=rng),
        "text": lambda rng: TextTask(text_file, rng=rng),
    }
    build = builders[request.param]
    return lambda seed: build(np.random.default_rng(seed))


# ---- easy task -------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.0, 0.6, 0.75])
def test_easy_stream_is_only_valid_groups(p: float) -> None:
    stream = decode(EasyTask(p, rng=np.random.default_rng(0)).take(20_000))
    assert stream.startswith("(")
    assert re.fullmatch(r"(?:\((?:ab)+\))+", whole_groups(stream))


@pytest.mark.parametrize("p", [0.6, 0.75])
def test_easy_group_sizes_follow_geometric_law(p: float) -> None:
    stream = decode(EasyTask(p, rng=np.random.default_rng(1)).take(300_000))
    n = np.array([len(g) // 2 for g in re.findall(r"\(((?:ab)+)\)", stream)])
    mean, sd = 1.0 / (1.0 - p), math.sqrt(p) / (1.0 - p)
    assert abs(n.mean() - mean) < Z * sd / math.sqrt(len(n))
    for k in range(1, 6):
        law = (1.0 - p) * p ** (k - 1)
        se = math.sqrt(law * (1.0 - law) / len(n))
        assert abs((n == k).mean() - law) < Z * se, f"P(n={k})"


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan")])
def test_easy_rejects_bad_probability(p: float) -> None:
    with pytest.raises(ValueError, match="probability"):
        EasyTask(p, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="probability"):
        easy_optimum(p)


# ---- hard task -------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 5, 6])
def test_hard_stream_is_only_valid_groups(length: int) -> None:
    stream = decode(HardTask(length, rng=np.random.default_rng(0)).take(20_000))
    assert stream.startswith("(")
    assert re.fullmatch(rf"(?:\([ab]{{{length}}}\))+", whole_groups(stream))


@pytest.mark.parametrize("length", [1, 5, 6])
def test_hard_group_is_reversed_previous_with_one_flip(length: int) -> None:
    # 3000 groups span several generation chunks, so chunk seams are checked too.
    groups = hard_groups(HardTask(length, rng=np.random.default_rng(2)), 3000)
    differs = groups[:-1, ::-1] != groups[1:]
    assert (differs.sum(axis=1) == 1).all()


@pytest.mark.parametrize("length", [5, 6])
def test_hard_flip_positions_are_uniform(length: int) -> None:
    groups = hard_groups(HardTask(length, rng=np.random.default_rng(3)), 30_000)
    positions = np.argmax(groups[:-1, ::-1] != groups[1:], axis=1)
    counts = np.bincount(positions, minlength=length)
    total, share = len(positions), 1.0 / length
    se = math.sqrt(total * share * (1.0 - share))
    assert np.all(np.abs(counts - total * share) < Z * se), counts


def test_hard_first_group_is_uniform() -> None:
    letters = np.concatenate(
        [hard_groups(HardTask(6, rng=np.random.default_rng(seed)), 1)[0] for seed in range(500)]
    )
    assert abs(letters.mean() - 0.5) < Z * 0.5 / math.sqrt(len(letters))


@pytest.mark.parametrize("length", [0, -3, 2.5, True])
def test_hard_rejects_bad_length(length) -> None:
    with pytest.raises(ValueError, match="length"):
        HardTask(length, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="length"):
        hard_optimum(length)


# ---- optima ----------------------------------------------------------------------


def test_optimum_reference_values() -> None:
    assert easy_optimum(0.6) == pytest.approx(0.2404, abs=5e-5)
    assert hard_optimum(6) == pytest.approx(math.log(6) / 8)
    assert hard_optimum(6) == pytest.approx(0.224, abs=5e-4)
    # Per 40-character window, as the original code reported: about 9.6 and 9.0.
    assert 40 * easy_optimum(0.6) == pytest.approx(9.6, abs=0.05)
    assert 40 * hard_optimum(6) == pytest.approx(9.0, abs=0.05)
    assert easy_optimum(0.0) == 0.0 and hard_optimum(1) == 0.0


@pytest.mark.parametrize("p", [0.6, 0.75])
def test_easy_optimum_matches_empirical_entropy(p: float) -> None:
    # The easy stream is first-order Markov in characters, so H(next | previous char)
    # is the entropy rate; only the choice after "b" contributes.
    task = EasyTask(p, rng=np.random.default_rng(4))
    stream = task.take(200_000)
    empirical = conditional_entropy(stream[:-1], stream[1:])
    assert empirical == pytest.approx(easy_optimum(p), abs=0.005)
    assert task.optimum() == easy_optimum(p)


@pytest.mark.parametrize("length", [3, 6])
def test_hard_optimum_matches_empirical_entropy(length: int) -> None:
    # Entropy of a group given the previous one should be ln(L) nats, spread over
    # L + 2 characters.
    task = HardTask(length, rng=np.random.default_rng(5))
    codes = hard_groups(task, 20_000) @ (1 << np.arange(length))
    per_group = conditional_entropy(codes[:-1], codes[1:])
    assert per_group == pytest.approx(math.log(length), abs=0.03)
    assert per_group / (length + 2) == pytest.approx(hard_optimum(length), abs=0.03 / (length + 2))
    assert task.optimum() == hard_optimum(length)


# ---- every task: protocol, determinism, resumption ---------------------------------


def test_task_satisfies_protocol(make_task) -> None:
    task = make_task(0)
    assert isinstance(task, Task)
    assert task.name in {"easy", "hard", "text"}
    chars = task.take(500)
    assert chars.dtype == np.int64 and chars.shape == (500,)
    assert chars.min() >= 0 and chars.max() < len(task.alphabet)
    assert task.take(0).shape == (0,)


def test_take_rejects_negative_count(make_task) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        make_task(0).take(-1)


def test_take_is_split_invariant(make_task) -> None:
    sizes = [40, 40, 0, 1, 39, 4096, 3, 12_000, 5000]
    split, whole = make_task(7), make_task(7)
    pieces = [split.take(n) for n in sizes]
    assert np.array_equal(np.concatenate(pieces), whole.take(sum(sizes)))


def test_stream_is_determined_by_seed(make_task) -> None:
    assert np.array_equal(make_task(3).take(10_000), make_task(3).take(10_000))
    assert not np.array_equal(make_task(3).take(10_000), make_task(4).take(10_000))


def test_state_round_trip_through_json_resumes_stream(make_task) -> None:
    original = make_task(1)
    original.take(123)
    state = json.loads(json.dumps(original.get_state()))
    expected = original.take(9000)
    resumed = make_task(2)  # different seed: everything must come from the state
    resumed.take(77)
    resumed.set_state(state)
    assert np.array_equal(resumed.take(9000), expected)


def test_state_round_trip_with_array_valued_generator_state() -> None:
    # MT19937 keeps its key as an ndarray; the state must still go through JSON.
    make = lambda seed: HardTask(6, rng=np.random.Generator(np.random.MT19937(seed)))  # noqa: E731
    original = make(1)
    original.take(5000)
    state = json.loads(json.dumps(original.get_state()))
    resumed = make(2)
    resumed.set_state(state)
    assert np.array_equal(resumed.take(9000), original.take(9000))


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (lambda rng: EasyTask(0.6, rng=rng), lambda rng: EasyTask(0.75, rng=rng)),
        (lambda rng: EasyTask(0.6, rng=rng), lambda rng: HardTask(6, rng=rng)),
        (lambda rng: HardTask(5, rng=rng), lambda rng: HardTask(6, rng=rng)),
    ],
)
def test_set_state_rejects_state_of_another_task(source, target) -> None:
    state = source(np.random.default_rng(0)).get_state()
    with pytest.raises(ValueError, match="state"):
        target(np.random.default_rng(0)).set_state(state)


# ---- text task -------------------------------------------------------------------


def test_text_alphabet_is_sorted_characters_of_file(text_file: Path) -> None:
    task = TextTask(text_file, rng=np.random.default_rng(0))
    assert task.alphabet == "".join(sorted(set(TEXT)))
    assert task.name == "text" and task.optimum() is None


def test_text_stream_cycles_through_file(text_file: Path) -> None:
    task = TextTask(text_file, rng=np.random.default_rng(0))
    stream = decode(task.take(3 * len(TEXT) + 11), task.alphabet)
    start = (TEXT + TEXT).index(stream[: len(TEXT)])  # a rotation of the file
    rotation = (TEXT + TEXT)[start : start + len(TEXT)]
    assert stream == (rotation * 4)[: len(stream)]


def test_text_offset_is_drawn_from_rng(text_file: Path) -> None:
    starts = {int(TextTask(text_file, rng=np.random.default_rng(s)).get_state()["position"])
              for s in range(20)}
    assert len(starts) > 10


def test_text_state_rejects_other_file(text_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.txt"
    other.write_text(TEXT + "!", encoding="utf-8")
    state = TextTask(text_file, rng=np.random.default_rng(0)).get_state()
    with pytest.raises(ValueError, match="state"):
        TextTask(other, rng=np.random.default_rng(0)).set_state(state)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"ok \xff\xfe bad", "UTF-8"), ("caf\u00e9".encode("latin-1"), "UTF-8")],
)
def test_text_rejects_unusable_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as caught:
        TextTask(path, rng=np.random.default_rng(0))
    assert str(path) in str(caught.value)


def test_text_rejects_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        TextTask(tmp_path / "missing.txt", rng=np.random.default_rng(0))
