"""Tests for the public API (neurograph/__init__.py, docs/api.md): every name resolves,
the import stays light, and every documented example runs."""

from __future__ import annotations

import doctest
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import neurograph
from neurograph.charrnn.selectors import SELECTORS
from neurograph.charrnn.tasks import TASKS

ROOT = Path(__file__).resolve().parents[1]


def test_every_public_name_resolves():
    for name in neurograph.__all__:
        assert getattr(neurograph, name) is not None, name
    assert set(neurograph.__all__) <= set(dir(neurograph))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        neurograph.nope  # noqa: B018


def test_import_neurograph_does_not_import_torch():
    code = "import sys, neurograph; neurograph.load_scenario; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"


@pytest.fixture
def in_a_work_folder(tmp_path, monkeypatch):
    """A folder holding the repository's scenarios/, where examples write runs/; registered kinds are forgotten after."""
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios")
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for registry in (SELECTORS, TASKS):
        for kind in set(registry.kinds()) - set(registry.kinds(builtin_only=True)):
            registry.unregister(kind)


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("doc", ["docs/api.md", "README.md"])
def test_the_documented_examples_run(doc, in_a_work_folder, capsys):
    blocks = python_blocks(ROOT / doc)
    assert blocks
    namespace: dict = {"__name__": "__docs__"}
    for block in blocks:
        exec(compile(block, doc, "exec", dont_inherit=True), namespace)  # noqa: S102 (the docs' own examples)


DOCTESTED = [
    "neurograph",
    "neurograph.graph",
    "neurograph.registry",
    "neurograph.charrnn.selectors",
    "neurograph.charrnn.trainer",
    "neurograph.training",
]


@pytest.mark.parametrize("module", DOCTESTED)
def test_docstring_examples_run(module, in_a_work_folder):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_train_writes_a_run_folder_that_reads_back(in_a_work_folder):
    summary = neurograph.train("scenarios/switch.yaml", "runs/t", overrides=["seed=3"], cycles=200)
    assert neurograph.run_summary("runs/t") == summary
    graph, _ = neurograph.load_graph(neurograph.graph_file("runs/t"))
    assert len(graph.hidden) == summary["hidden"] and graph.meta["seed"] == "3"
    with pytest.raises(ValueError, match="exists and is not empty"):
        neurograph.train("scenarios/switch.yaml", "runs/t", cycles=200)
    with pytest.raises(ValueError, match="overrides and cycles apply to a scenario file"):
        neurograph.train(neurograph.load_scenario("scenarios/switch.yaml"), cycles=10)


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "examples").glob("*.py")))
def test_examples_run(script, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "cycles" in done.stdout and (tmp_path / "run" / "summary.json").is_file()


def test_the_text_scenario_trains_on_its_corpus(in_a_work_folder):
    """scenarios/text.yaml (README: "Train on your own text"): its corpus has commas and newlines."""
    corpus = (ROOT / "scenarios" / "texts" / "growth.txt").read_text(encoding="utf-8")
    assert "," in corpus and "\n" in corpus
    summary = neurograph.train("scenarios/text.yaml", "runs/text", overrides=["report.graph_every=100"], cycles=300)
    assert summary["status"] == "finished" and summary["optimum"] is None
    graph, _ = neurograph.load_graph(neurograph.graph_file("runs/text", 100))
    assert len(graph.inputs) == len(graph.outputs) == len(set(corpus))
