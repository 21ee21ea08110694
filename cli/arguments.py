"""Argument types shared by the commands: each refuses a bad value with a message saying what is accepted."""

from __future__ import annotations

import argparse

from neurograph.schema import MAX_SEED

__all__ = ["MAX_SEEDS", "positive_int", "seed_list"]

MAX_SEEDS = 10_000  # seeds in one --seeds batch: each is a run folder


def positive_int(text: str) -> int:
    """An integer >= 1 (``--threads``, ``--workers``, the study's ``--seeds``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def seed_list(spec: str) -> list[int]:
    """``0-19,25`` -> [0, ..., 19, 25]: ranges and single seeds, each from 0 to ``MAX_SEED``."""
    seeds: set[int] = set()
    for part in spec.split(","):
        lo, dash, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi) if dash else int(lo)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected seeds like 0-19 or 0,3,7, got {spec!r}") from None
        if last < first:
            raise argparse.ArgumentTypeError(f"seed range {part.strip()} is reversed; write {last}-{first}")
        if first < 0 or last > MAX_SEED:
            raise argparse.ArgumentTypeError(f"seeds must be from 0 to {MAX_SEED}, got {spec!r}")
        if last - first + 1 + len(seeds) > MAX_SEEDS:
            raise argparse.ArgumentTypeError(f"at most {MAX_SEEDS:,} seeds in one batch, got {spec!r}")
        seeds.update(range(first, last + 1))
    return sorted(seeds)
