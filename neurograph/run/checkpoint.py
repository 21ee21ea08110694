"""Checkpoints: the whole state of a run in one safetensors file, never a pickle.

One file, ``checkpoint.safetensors``, holds the tensors (compiled weights,
mask, biases, multipliers, hidden state, optimizer memories, the graph's
weight block) and, in its string metadata, one JSON document with everything
else: graph structure, graveyard and event log, RNG and task states, counters,
and the byte length of ``metrics.jsonl`` and ``events.jsonl`` at that moment
(resume truncates them there, so nothing is repeated or skipped). It is
written to a temporary file, fsynced, then renamed over the previous one: a
kill at any moment leaves either the old or the new checkpoint, both whole.

The metadata also holds ``sha256``, the digest of the state JSON and every
tensor (:func:`neurograph.run.integrity.content_digest`): a checkpoint
damaged after it was written is refused on loading. Checkpoints written
before the digest existed load without this check.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from neurograph.atomic import write_bytes_atomic
from neurograph.run.integrity import content_digest

__all__ = ["FORMAT_VERSION", "CHECKPOINT", "CheckpointError", "save_checkpoint", "load_checkpoint"]

FORMAT_VERSION = 1
CHECKPOINT = "checkpoint.safetensors"


class CheckpointError(ValueError):
    """A checkpoint that is missing, truncated or of another format."""


def save_checkpoint(folder: Path, state: dict, tensors: dict[str, torch.Tensor]) -> Path:
    """Atomically write ``state`` (JSON-able) and ``tensors`` to ``folder``."""
    folder = Path(folder)
    payload = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    state_json = json.dumps(state)
    meta = {
        "format": "neurograph-checkpoint",
        "format_version": str(FORMAT_VERSION),
        "state": state_json,
        "sha256": content_digest(state_json, payload),
    }
    data = st_save(payload, metadata=meta)
    path = folder / CHECKPOINT
    write_bytes_atomic(path, data)
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def load_checkpoint(folder: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(state, tensors) of the checkpoint in ``folder``; CheckpointError if unusable."""
    path = Path(folder) / CHECKPOINT
    if not path.is_file():
        raise CheckpointError(f"{folder}: not a run folder with a checkpoint ({CHECKPOINT} missing)")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror})") from None
    try:
        meta = _metadata(raw)  # first: its errors say more than safetensors' on a short file
        tensors = st_load(raw)
    except (SafetensorError, ValueError) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({reason})") from None
    if meta.get("format") != "neurograph-checkpoint":
        raise CheckpointError(f"{path}: not a neurograph checkpoint")
    if meta.get("format_version") != str(FORMAT_VERSION):
        found = meta.get("format_version")
        raise CheckpointError(
            f"{path}: checkpoint format version {found}; this neurograph reads version {FORMAT_VERSION}"
        )
    try:
        state = json.loads(meta["state"])
    except (KeyError, TypeError, ValueError):
        state = None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: corrupt checkpoint (its state metadata is not a JSON object)")
    if "sha256" in meta and meta["sha256"] != content_digest(meta["state"], tensors):
        raise CheckpointError(f"{path}: damaged checkpoint (its contents do not match the sha256 it was written with)")
    return state, tensors


def _metadata(raw: bytes) -> dict:
    """The safetensors header's ``__metadata__`` (ValueError if the header is unreadable)."""
    if len(raw) < 8:
        raise ValueError(f"file of {len(raw)} bytes, too short for a header")
    n = int.from_bytes(raw[:8], "little")
    if n > len(raw) - 8:
        raise ValueError(f"header of {n} bytes but file of {len(raw)}")
    header = json.loads(raw[8 : 8 + n])  # UnicodeDecodeError and JSONDecodeError are ValueErrors
    meta = header.get("__metadata__", {}) if isinstance(header, dict) else None
    if not isinstance(meta, dict):
        raise ValueError("header is not a safetensors header")
    return meta


def numpy_state(rng: np.random.Generator) -> dict:
    """JSON-able state of a numpy Generator."""
    return rng.bit_generator.state


def set_numpy_state(rng: np.random.Generator, state: dict) -> None:
    rng.bit_generator.state = state
