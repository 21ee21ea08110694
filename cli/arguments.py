"""Argument types shared by the commands: each refuses a bad value with a message saying what is accepted."""

from __future__ import annotations

import argparse
from typing import Callable

from neurograph.schema import MAX_SEED

__all__ = ["MAX_SEEDS", "MAX_THREADS", "MAX_WORKERS", "int_between", "thread_count", "worker_count", "seed_count", "seed_list"]

MAX_SEEDS = 10_000  # seeds in one --seeds batch or study: each is a run folder
MAX_THREADS = 1_024  # torch threads: more than any machine's cores
MAX_WORKERS = 1_024  # parallel runs of a study


def int_between(low: int, high: int) -> Callable[[str], int]:
    """Argument type: an integer from ``low`` to ``high``; the message says so."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an integer from {low} to {high:,}, got {text!r}")
        return value

    parse.__name__ = f"integer from {low} to {high}"  # argparse names the type in its messages
    return parse


thread_count = int_between(1, MAX_THREADS)
worker_count = int_between(1, MAX_WORKERS)
seed_count = int_between(1, MAX_SEEDS)


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
