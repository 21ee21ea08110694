"""Tests for neurograph.yaml_file: size limit, duplicate keys, YAML 1.2 floats, one-line errors."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import yaml

from neurograph.yaml_file import MAX_FILE_BYTES, YAMLFileError, parse_yaml, read_yaml_mapping


@pytest.mark.parametrize(
    "text, value",
    [
        ("1e-4", 1e-4),
        ("-3E5", -3e5),
        ("+2e+3", 2e3),
        ("1.0e-4", 1e-4),
        ("12", 12),
        ("1_000", 1000),
        ("'1e-4'", "1e-4"),
        ("e5", "e5"),
        (".inf", float("inf")),
    ],
)
def test_numbers_read_as_yaml_1_2_does(text: str, value):
    assert parse_yaml(f"x: {text}") == {"x": value}


@pytest.mark.parametrize("text", ["a: 1\na: 2\n", "s: {k: 1, k: 2}\n", "l:\n  - {x: 1}\n  - {y: 1, y: 1}\n"])
def test_a_key_given_twice_is_an_error(text: str):
    with pytest.raises(yaml.YAMLError, match="duplicate key"):
        parse_yaml(text)


def test_merge_keys_may_override():
    assert parse_yaml("base: &b {x: 1, y: 2}\nuse: {<<: *b, x: 3}\n")["use"] == {"x": 3, "y": 2}


def test_read_names_the_file_and_line(tmp_path: Path):
    path = tmp_path / "s.yaml"
    path.write_text("name: a\nk: 1\nname: b\n")
    with pytest.raises(YAMLFileError, match=r"s\.yaml: line 3: YAML syntax error: duplicate key 'name'"):
        read_yaml_mapping(path)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file (expected a mapping)"),
        (b"- 1\n- 2\n", "top level must be a mapping, got a list"),
        (b"name: caf\xe9\n", "not a UTF-8 text file"),
        (b"x" * (MAX_FILE_BYTES + 1), f"larger than {MAX_FILE_BYTES:,} bytes"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "s.yaml"
    path.write_bytes(content)
    with pytest.raises(YAMLFileError) as err:
        read_yaml_mapping(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value) and "\n" not in str(err.value)


def test_a_file_exactly_at_the_limit_is_read(tmp_path: Path):
    path = tmp_path / "s.yaml"
    path.write_bytes(b"a: 1\n#" + b"x" * (MAX_FILE_BYTES - 7) + b"\n")
    assert path.stat().st_size == MAX_FILE_BYTES and read_yaml_mapping(path) == {"a": 1}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a FIFO")
def test_an_endless_stream_is_cut_at_the_limit(tmp_path: Path):
    fifo = tmp_path / "endless.yaml"
    os.mkfifo(fifo)

    def feed():
        with open(fifo, "wb") as f:
            try:
                for _ in range(MAX_FILE_BYTES // 1000 + 10):
                    f.write(b"#" * 999 + b"\n")
            except BrokenPipeError:
                pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    with pytest.raises(YAMLFileError, match="larger than"):
        read_yaml_mapping(fifo)
    writer.join(timeout=10)


def test_missing_file_and_folder(tmp_path: Path):
    with pytest.raises(YAMLFileError, match="file not found"):
        read_yaml_mapping(tmp_path / "none.yaml")
    with pytest.raises(YAMLFileError, match="cannot read"):
        read_yaml_mapping(tmp_path)
