"""Tests for neurograph.atomic: whole files only, with the mode an ordinary open() gives."""

from __future__ import annotations

import os
import stat

import pytest

from neurograph.atomic import atomic_open, write_text_atomic


@pytest.fixture
def umask():
    """Set the process umask for one test, then put it back."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield os.umask
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_new_file_mode_follows_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    write_text_atomic(tmp_path / "a.txt", "x")
    with open(tmp_path / "b.txt", "w") as f:  # what an ordinary write gives
        f.write("x")
    assert mode(tmp_path / "a.txt") == mode(tmp_path / "b.txt") == expected


def test_replaced_file_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "a.txt"
    path.write_text("old")
    path.chmod(0o640)
    write_text_atomic(path, "new")
    assert (path.read_text(), mode(path)) == ("new", 0o640)


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(path, "w") as f:
            f.write("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
