"""Tests for neurograph_cli.arguments: seed lists and bounded integers of the command line."""

from __future__ import annotations

import argparse

import pytest

from neurograph.schema import MAX_SEED
from neurograph_cli.arguments import int_between, seed_list


@pytest.mark.parametrize(
    "spec, seeds",
    [("0-3", [0, 1, 2, 3]), ("7", [7]), ("0,3,7", [0, 3, 7]), ("5-6,0,6", [0, 5, 6]), (" 1 - 2 ", [1, 2])],
)
def test_seed_lists(spec: str, seeds: list[int]):
    assert seed_list(spec) == seeds


@pytest.mark.parametrize(
    "spec, message",
    [
        ("5-2", "seed range 5-2 is reversed; write 2-5"),
        ("0,9-1", "seed range 9-1 is reversed; write 1-9"),
        ("-3", "expected seeds like 0-19"),
        ("a", "expected seeds like 0-19"),
        ("", "expected seeds like 0-19"),
        (f"0-{MAX_SEED + 1}", f"seeds must be from 0 to {MAX_SEED}"),
        ("0-10000", "at most 10,000 seeds"),
    ],
)
def test_bad_seed_lists_say_what_is_accepted(spec: str, message: str):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        seed_list(spec)


def test_int_between_accepts_its_bounds_and_names_them():
    parse = int_between(1, 8)
    assert parse("1") == 1 and parse("8") == 8
    for bad in ("0", "9", "-1", "1.5", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match=f"expected an integer from 1 to 8, got '{bad}'"):
            parse(bad)
