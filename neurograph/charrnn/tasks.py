"""Character-sequence tasks of Miconi, "Neural networks with differentiable structure".

A char-level RNN reads one endless stream of characters, 40 at a time. Each task is
that stream: ``take(n)`` returns the next ``n`` characters as int64 indices into the
task's ``alphabet``, continuing where the previous call stopped.

- ``EasyTask``: groups ``"(" + "ab" * n + ")"`` with ``n >= 1`` geometric; after each
  ``"ab"`` another follows with probability ``p`` (0.6 in the original code, 0.75 in
  the paper text).
- ``HardTask``: groups ``"(" + L letters from {a, b} + ")"``; each group is the reverse
  of the previous one with exactly one uniformly chosen letter flipped.
- ``TextTask``: any UTF-8 text file, cycled from an offset drawn from the generator.

Every stream is a pure function of the generator's seed, whatever the split of
``take`` calls, and ``get_state``/``set_state`` round-trip through JSON so a run
resumes on the identical stream. A task owns the generator it is given: pass a
dedicated one (e.g. from ``np.random.Generator.spawn``), since ``set_state`` rewinds it.

A phase's ``task.kind`` picks its task through :data:`TASKS`: the built-in
kinds are registered with their sections (:mod:`neurograph.charrnn.scenario`),
and :func:`register_task` adds a user's own (see ``examples/custom_task.py``).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np
from pydantic import BaseModel

from neurograph.registry import Registry

__all__ = [
    "TASKS",
    "register_task",
    "ALPHABET",
    "AlphabetError",
    "shared_alphabet",
    "Task",
    "EasyTask",
    "HardTask",
    "TextTask",
    "easy_optimum",
    "hard_optimum",
]

ALPHABET = "ab()"
_A, _B, _OPEN, _CLOSE = range(4)  # indices into ALPHABET; a=0, b=1 double as letter bits

# Characters generated per refill: ~100 take(40) calls between refills keeps the
# per-call cost at one slice, while the saved buffer in get_state stays a few kB.
_CHUNK_CHARS = 4096

TASKS = Registry("task")  # phases.N.task.kind -> (section, build(section, rng) -> Task)


@runtime_checkable
class Task(Protocol):
    """An endless character stream for next-character prediction."""

    name: str
    alphabet: str

    def take(self, n: int) -> np.ndarray:
        """Next ``n`` characters, shape (n,), int64 indices into ``alphabet``."""
        ...

    def optimum(self) -> float | None:
        """Best achievable cross-entropy in nats per character, or None if unknown."""
        ...

    def get_state(self) -> dict:
        """JSON-serialisable state, generator included, to resume the stream exactly."""
        ...

    def set_state(self, state: dict) -> None:
        """Restore a state from ``get_state``; the stream continues identically."""
        ...


def easy_optimum(p: float) -> float:
    """Best cross-entropy of the easy task, nats per character.

    Only the character after each ``b`` is uncertain (``a`` with probability ``p``,
    ``)`` otherwise); a group holds E[n] = 1/(1-p) such choices in 2 + 2E[n]
    characters, so the rate is E[n] H(p) / (2 + 2E[n]). p=0.6 gives 0.2404.
    """
    _check_probability(p)
    entropy = -sum(q * math.log(q) for q in (p, 1.0 - p) if q > 0.0)
    mean_n = 1.0 / (1.0 - p)
    return mean_n * entropy / (2.0 + 2.0 * mean_n)


def hard_optimum(length: int) -> float:
    """Best cross-entropy of the hard task, nats per character: ln(L) / (L + 2).

    Given the previous group, the next is one of L equally likely one-letter flips of
    its reverse. Asymptotic rate: the uniformly random first group is ignored.
    L=6 gives 0.224.
    """
    _check_length(length)
    return math.log(length) / (length + 2)


def register_task(
    config: type[BaseModel], build: Callable[[BaseModel, np.random.Generator], "Task"], *, replace: bool = False
):
    """Make ``task.kind: <config's kind>`` build ``build(section, rng)``; returns ``config``.

    ``config``: a :class:`~neurograph.schema.Strict` section whose ``kind``
    field is ``Literal["name"] = "name"``, plus the task's parameters. A
    string field named ``path`` is taken relative to the scenario file, as
    the text task's. ``build`` returns a :class:`Task` that draws only from
    ``rng`` (the phase's own stream) and whose ``get_state`` is JSON.
    Every phase of a run must share one alphabet.
    """
    return TASKS.register(config, build, replace=replace)


class _BufferedTask:
    """Shared machinery of generated streams: a buffer refilled in whole chunks.

    Subclasses define ``_generate()`` (the next chunk, int64 indices) and the
    ``_params()``/``_extra_state()`` hooks for their state. Refills depend only on
    the generator, never on how ``take`` calls are split.
    """

    name: str
    alphabet: str = ALPHABET

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._buffer = np.empty(0, dtype=np.int64)  # (B,) generated, partly consumed
        self._pos = 0  # index of the next unread character in _buffer

    def take(self, n: int) -> np.ndarray:
        """Next ``n`` characters, shape (n,), int64 indices into ``ALPHABET``."""
        _check_count(n)
        if len(self._buffer) - self._pos < n:
            self._refill(n)
        out = self._buffer[self._pos : self._pos + n].copy()  # the caller owns its result
        self._pos += n
        return out

    def _refill(self, n: int) -> None:
        """Append whole chunks until at least ``n`` unread characters are buffered."""
        parts = [self._buffer[self._pos :]]
        have = len(parts[0])
        while have < n:
            parts.append(self._generate())
            have += len(parts[-1])
        self._buffer = np.concatenate(parts)
        self._pos = 0

    def get_state(self) -> dict:
        """JSON-serialisable state: parameters, unread buffer and generator state."""
        return {
            "name": self.name,
            **self._params(),
            "buffer": _decode(self._buffer[self._pos :]),
            "rng": _jsonable(self._rng.bit_generator.state),
            **self._extra_state(),
        }

    def set_state(self, state: dict) -> None:
        """Restore ``get_state`` output; parameters must match this task's."""
        expected = {"name": self.name, **self._params()}
        found = {key: state.get(key) for key in expected}
        if found != expected:
            raise ValueError(f"state is for task {found}, not for {expected}")
        buffer = _encode(state["buffer"], ALPHABET)  # validate before changing anything
        self._load_extra_state(state)
        self._rng.bit_generator.state = state["rng"]
        self._buffer, self._pos = buffer, 0

    def _generate(self) -> np.ndarray:
        raise NotImplementedError

    def _params(self) -> dict:
        return {}

    def _extra_state(self) -> dict:
        return {}

    def _load_extra_state(self, state: dict) -> None:
        pass


class EasyTask(_BufferedTask):
    """Groups ``(ab...ab)``: after each ``ab``, another with probability ``p``."""

    name = "easy"

    def __init__(self, p: float, *, rng: np.random.Generator) -> None:
        _check_probability(p)
        super().__init__(rng)
        self.p = float(p)
        mean_group = 2.0 + 2.0 / (1.0 - self.p)  # characters per group
        self._groups_per_chunk = max(1, int(_CHUNK_CHARS / mean_group))

    def optimum(self) -> float:
        """Best achievable cross-entropy, nats per character."""
        return easy_optimum(self.p)

    def _generate(self) -> np.ndarray:
        # n ~ Geometric(1 - p) on {1, 2, ...}: the number of "ab" per group.
        n = self._rng.geometric(1.0 - self.p, size=self._groups_per_chunk)
        return _easy_groups(n)

    def _params(self) -> dict:
        return {"p": self.p}


class HardTask(_BufferedTask):
    """Groups of ``length`` letters; each the reverse of the last with one letter flipped."""

    name = "hard"

    def __init__(self, length: int, *, rng: np.random.Generator) -> None:
        _check_length(length)
        super().__init__(rng)
        self.length = int(length)
        self._groups_per_chunk = max(1, _CHUNK_CHARS // (self.length + 2))
        first = rng.integers(0, 2, size=self.length, dtype=np.int64)
        self._last = first  # (L,) letter bits of the last generated group
        self._buffer = _hard_rows(first[None, :])

    def optimum(self) -> float:
        """Best achievable cross-entropy, nats per character (asymptotic)."""
        return hard_optimum(self.length)

    def _generate(self) -> np.ndarray:
        flips = self._rng.integers(0, self.length, size=self._groups_per_chunk)
        groups = _hard_groups(self._last, flips)
        self._last = groups[-1]
        return _hard_rows(groups)

    def _params(self) -> dict:
        return {"length": self.length}

    def _extra_state(self) -> dict:
        return {"last_group": _decode(self._last)}

    def _load_extra_state(self, state: dict) -> None:
        last = _encode(state["last_group"], "ab")
        if len(last) != self.length:
            raise ValueError(f"last_group has {len(last)} letters, expected {self.length}")
        self._last = last


class TextTask:
    """A UTF-8 text file, read cyclically from an offset drawn from ``rng``."""

    name = "text"

    def __init__(self, path: str | Path, *, rng: np.random.Generator) -> None:
        self.path = Path(path)
        raw = self.path.read_bytes()  # FileNotFoundError names the path
        self._digest = hashlib.sha256(raw).hexdigest()
        self.alphabet, self._text = _index_text(_decode_utf8(raw, self.path))
        self._rng = rng
        self._pos = int(rng.integers(len(self._text)))  # next character to read

    def take(self, n: int) -> np.ndarray:
        """Next ``n`` characters, shape (n,), int64 indices into ``alphabet``."""
        _check_count(n)
        out = np.take(self._text, np.arange(self._pos, self._pos + n), mode="wrap")
        self._pos = (self._pos + n) % len(self._text)
        return out

    def optimum(self) -> None:
        """Unknown for natural text."""
        return None

    def get_state(self) -> dict:
        """JSON-serialisable state; the file's hash guards against resuming on another."""
        return {
            "name": self.name,
            "sha256": self._digest,
            "position": self._pos,
            "rng": _jsonable(self._rng.bit_generator.state),
        }

    def set_state(self, state: dict) -> None:
        """Restore ``get_state`` output taken on a file with identical bytes."""
        if state.get("name") != self.name or state.get("sha256") != self._digest:
            raise ValueError(f"state is not for text task on {self.path} (content differs)")
        self._rng.bit_generator.state = state["rng"]
        self._pos = int(state["position"]) % len(self._text)


class AlphabetError(ValueError):
    """Phases of one run whose tasks use different characters."""


def shared_alphabet(alphabets: Sequence[str]) -> str:
    """The alphabet every phase shares (one network reads them all), in phase order.

    Raises :class:`AlphabetError` naming the first phase that differs from phase 0.
    """
    for i, alphabet in enumerate(alphabets[1:], start=1):
        if alphabet != alphabets[0]:
            raise AlphabetError(
                f"phases.{i}.task: alphabet {_short(alphabet)} differs from phases.0.task's "
                f"{_short(alphabets[0])}; all phases must share one alphabet"
            )
    return alphabets[0]


def _short(alphabet: str) -> str:
    shown = repr(alphabet) if len(alphabet) <= 24 else repr(alphabet[:24]) + "..."
    return f"{shown} ({len(alphabet)} characters)"


def _easy_groups(n: np.ndarray) -> np.ndarray:
    """Concatenated groups ``"(" + "ab" * n[i] + ")"``, int64 indices, shape (sum(2+2n),)."""
    sizes = 2 + 2 * n
    starts = np.cumsum(sizes) - sizes
    offset = np.arange(int(sizes.sum())) - np.repeat(starts, sizes)  # position in group
    out = (offset - 1) % 2  # a at odd offsets, b at even ones inside the group
    out[offset == 0] = _OPEN
    out[offset == np.repeat(sizes, sizes) - 1] = _CLOSE
    return out.astype(np.int64)


def _hard_groups(last: np.ndarray, flips: np.ndarray) -> np.ndarray:
    """Letter bits of the K groups after ``last``, shape (K, L).

    g_k = reverse(g_{k-1}) with bit flips[k-1] toggled. In the frame
    h_k = reverse^k(g_k) the reversals cancel and each step only toggles one bit
    (at flips[k-1] for even k, at L-1-flips[k-1] for odd k), so a cumulative sum
    of one-hot toggles gives all groups without a Python loop.
    """
    count, length = len(flips), len(last)
    k = np.arange(1, count + 1)
    odd = k % 2 == 1
    toggles = np.zeros((count, length), dtype=np.int64)
    toggles[np.arange(count), np.where(odd, length - 1 - flips, flips)] = 1
    frame = (last[None, :] + np.cumsum(toggles, axis=0)) % 2
    return np.where(odd[:, None], frame[:, ::-1], frame)


def _hard_rows(groups: np.ndarray) -> np.ndarray:
    """Groups of letter bits (K, L) framed by parentheses, flattened to (K*(L+2),)."""
    count = len(groups)
    opens = np.full((count, 1), _OPEN, dtype=np.int64)
    closes = np.full((count, 1), _CLOSE, dtype=np.int64)
    return np.concatenate([opens, groups, closes], axis=1).ravel()


def _index_text(text: str) -> tuple[str, np.ndarray]:
    """Alphabet (sorted distinct characters) and the text as int64 indices into it."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    points, indices = np.unique(codes, return_inverse=True)
    return "".join(map(chr, points)), indices.astype(np.int64).ravel()


def _decode_utf8(raw: bytes, path: Path) -> str:
    """``raw`` as text; ValueError naming ``path`` when empty or not UTF-8."""
    if not raw:
        raise ValueError(f"text file {path} is empty; a text task needs at least one character")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"text file {path} is not valid UTF-8: {err}") from err


def _decode(indices: np.ndarray) -> str:
    """Indices into ``ALPHABET`` as a string (compact JSON form of a buffer)."""
    return "".join(ALPHABET[i] for i in indices.tolist())


def _encode(chars: str, alphabet: str) -> np.ndarray:
    """String over ``alphabet`` as int64 indices; ValueError on foreign characters."""
    lookup = {c: i for i, c in enumerate(alphabet)}
    try:
        return np.array([lookup[c] for c in chars], dtype=np.int64)
    except KeyError as err:
        raise ValueError(f"character {err} in state is not in alphabet {alphabet!r}") from err


def _jsonable(value: Any) -> Any:
    """Bit-generator state with numpy arrays and scalars turned into JSON types."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _check_probability(p: float) -> None:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"continue probability p must be in [0, 1), got {p!r}")


def _check_length(length: int) -> None:
    if isinstance(length, bool) or int(length) != length or length < 1:
        raise ValueError(f"group length must be a positive integer, got {length!r}")


def _check_count(n: int) -> None:
    if n < 0:
        raise ValueError(f"number of characters to take must be >= 0, got {n}")
