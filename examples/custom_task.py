"""A task of your own, on your own text file, named in a scenario's YAML.

Registers the task kind ``words``: the words of a text file in random order,
one space apart (a stream the seed determines, unlike the ``text`` task, which
reads the file in order). A scenario then names it like a built-in task:

    phases:
      - task: {kind: words, path: corpus.txt}
        cycles: 300

Run: ``python examples/custom_task.py [TEXT_FILE] [--cycles N] [--out DIR]``
(without a file, a short sample text is used).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

import neurograph

SAMPLE = "the network grows when the task gets harder and sheds neurons when it gets easier\n"


class WordsTask(neurograph.Strict):
    """The words of a text file in random order, separated by single spaces."""

    kind: Literal["words"] = "words"
    path: str = Field(min_length=1, description="text file, relative to the scenario file")


class ShuffledWords:
    """An endless stream of the file's words, drawn uniformly at random (the Task protocol)."""

    name = "words"

    def __init__(self, path: Path, rng: np.random.Generator) -> None:
        words = Path(path).read_text(encoding="utf-8").split()
        if not words:
            raise ValueError(f"{path}: no words")
        self.alphabet = "".join(sorted(set(" ".join(words)) | {" "}))
        index = {c: i for i, c in enumerate(self.alphabet)}
        self._words = [np.array([index[c] for c in w + " "], dtype=np.int64) for w in words]
        self._rng = rng
        self._pending = np.empty(0, dtype=np.int64)  # characters drawn but not yet taken

    def take(self, n: int) -> np.ndarray:
        """Next ``n`` characters, int64 indices into ``alphabet``."""
        parts, have = [self._pending], len(self._pending)
        while have < n:
            parts.append(self._words[int(self._rng.integers(len(self._words)))])
            have += len(parts[-1])
        stream = np.concatenate(parts)
        self._pending = stream[n:]
        return stream[:n]

    def optimum(self) -> None:
        return None  # unknown

    def get_state(self) -> dict:
        return {"pending": self._pending.tolist(), "rng": self._rng.bit_generator.state}

    def set_state(self, state: dict) -> None:
        self._pending = np.array(state["pending"], dtype=np.int64)
        self._rng.bit_generator.state = state["rng"]


neurograph.register_task(WordsTask, lambda section, rng: ShuffledWords(Path(section.path), rng))

SCENARIO = """\
name: words
structure: {kind: outgoing_l1, max_hidden: 50}
phases:
  - task: {kind: words, path: %s}
    cycles: %d
"""


def main(argv: list[str] | None = None) -> dict:
    args = _arguments(argv)
    work = Path(tempfile.mkdtemp(prefix="neurograph-words-"))
    text = args.text or work / "sample.txt"
    if args.text is None:
        text.write_text(SAMPLE, encoding="utf-8")
    scenario_file = work / "words.yaml"
    scenario_file.write_text(SCENARIO % (Path(text).resolve(), args.cycles), encoding="utf-8")
    summary = neurograph.train(scenario_file, out=args.out or work / "run", force=True)
    print(f"{summary['cycles']} cycles on the words of {text}: {summary['hidden']} hidden neurons, "
          f"loss {summary['loss']:.3f} nats/char")  # fmt: skip
    return summary


def _arguments(argv):
    p = argparse.ArgumentParser(description="Train on the words of a text file, in random order.")
    p.add_argument("text", nargs="?", type=Path, help="UTF-8 text file (default: a short sample)")
    p.add_argument("--cycles", type=int, default=300, help="training cycles (default: 300)")
    p.add_argument("--out", type=Path, help="run folder (default: a temporary folder)")
    return p.parse_args(argv)


if __name__ == "__main__":
    main()
