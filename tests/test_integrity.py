"""Integrity: a resume continues only the scenario its checkpoint was trained under, from a whole checkpoint.

A run stopped at cycle 300 of 600 is copied and spoilt: a value of its
``scenario.yaml`` changed, random bytes over the end of its checkpoint, a
checkpoint of another format version, an old checkpoint without digests.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from neurograph.charrnn.trainer import Trainer
from neurograph.run import checkpoint as ckpt
from neurograph.run.folder import RunFolder, prepare_run_folder
from neurograph.run.integrity import content_digest, scenario_changes
from neurograph.run.reporters import Reporter, ReporterSet
from neurograph.scenario import load_scenario
from neurograph_cli.main import main

torch.set_num_threads(1)

SWITCH = Path(__file__).resolve().parents[1] / "scenarios" / "switch.yaml"
SET = ["report.every=50", "report.checkpoint_every=100", "report.graph_every=0"]


class StopAt(Reporter):
    def __init__(self, trainer: Trainer, cycle: int) -> None:
        self.trainer, self.cycle = trainer, cycle

    def metrics(self, row):
        if row["cycle"] == self.cycle:
            self.trainer.request_stop()


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("stopped") / "run"
    scenario = load_scenario(SWITCH, SET, cycles=600)
    trainer = Trainer(scenario)
    trainer.reporters = ReporterSet([RunFolder(prepare_run_folder(folder, scenario)), StopAt(trainer, 300)])
    assert trainer.run()["status"] == "interrupted"
    return folder


@pytest.fixture
def run(stopped, tmp_path) -> Path:
    return Path(shutil.copytree(stopped, tmp_path / "run"))


def tree(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes() for p in sorted(root.rglob("*"))}


def refused(argv: list[str], folder: Path, capsys) -> str:
    """``main(argv)``'s one-line error; it exits 2 and changes nothing in ``folder``."""
    before = tree(folder)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("neurograph: ") and err.count("\n") == 1, err
    assert tree(folder) == before
    return err


def edit_scenario(folder: Path, old: str, new: str) -> None:
    text = (folder / "scenario.yaml").read_text()
    assert text.count(old) == 1, old
    (folder / "scenario.yaml").write_text(text.replace(old, new))


EDITS = {
    "p_del": ("  p_del: 0.05\n", "  p_del: 0.1\n", "structure.p_del 0.05 -> 0.1"),
    "window": ("window: 40\n", "window: 20\n", "window 40 -> 20"),
    "dtype": ("dtype: float32\n", "dtype: float64\n", "dtype float32 -> float64"),
    "phase-length": ("  cycles: 200\n- task:\n    kind: hard", "  cycles: 250\n- task:\n    kind: hard",
                     "phases.0.cycles 200 -> 250"),
}


@pytest.mark.parametrize("edit", EDITS)
def test_resume_refuses_a_changed_scenario_naming_what_changed(edit, run, capsys):
    old, new, named = EDITS[edit]
    edit_scenario(run, old, new)

    err = refused(["resume", str(run), "--no-live"], run, capsys)

    assert f"{run / 'scenario.yaml'}: changed since the checkpoint at cycle 300: {named}" in err
    assert "--allow-changed" in err


def test_allow_changed_continues_and_records_the_change(run, capsys):
    edit_scenario(run, *EDITS["p_del"][:2])

    assert main(["resume", str(run), "--no-live", "--allow-changed"]) == 0

    assert json.loads((run / "summary.json").read_text())["status"] == "finished"
    (record,) = [json.loads(line) for line in (run / "changes.jsonl").read_text().splitlines()]
    assert record["cycle"] == 300 and record["changes"] == ["structure.p_del 0.05 -> 0.1"]
    state, _ = ckpt.load_checkpoint(run)
    assert state["scenario_values"]["structure"]["p_del"] == 0.1  # the next resume needs no flag


def test_a_checkpoint_with_random_bytes_over_its_end_is_refused(run, capsys):
    path = run / ckpt.CHECKPOINT
    data = bytearray(path.read_bytes())
    data[-200:] = random.Random(7).randbytes(200)
    path.write_bytes(bytes(data))

    err = refused(["resume", str(run), "--no-live"], run, capsys)

    assert f"{path}: damaged checkpoint" in err


def rewrite_checkpoint(folder: Path, **meta) -> None:
    """The checkpoint in ``folder`` with its metadata updated by ``meta`` (a value None drops the key)."""
    raw = (folder / ckpt.CHECKPOINT).read_bytes()
    tensors, old = st_load(raw), ckpt._metadata(raw)
    new = {k: v for k, v in {**old, **meta}.items() if v is not None}
    (folder / ckpt.CHECKPOINT).write_bytes(st_save(tensors, metadata=new))


def test_a_checkpoint_of_another_format_version_is_named(run, capsys):
    rewrite_checkpoint(run, format_version="2")

    err = refused(["resume", str(run), "--no-live"], run, capsys)

    assert f"{run / ckpt.CHECKPOINT}: checkpoint format version 2; this neurograph reads version 1" in err


def test_an_old_checkpoint_without_digests_resumes_with_a_warning(run, capsys):
    raw = (run / ckpt.CHECKPOINT).read_bytes()
    state = json.loads(ckpt._metadata(raw)["state"])
    old_state = {k: v for k, v in state.items() if k not in ("scenario_values", "scenario_sha256")}
    rewrite_checkpoint(run, state=json.dumps(old_state), sha256=None)
    edit_scenario(run, *EDITS["p_del"][:2])  # cannot be seen without the digest
    capsys.readouterr()

    assert main(["resume", str(run), "--no-live"]) == 0

    (warning,) = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warning.startswith(f"neurograph: warning: {run / ckpt.CHECKPOINT}: written before checkpoints recorded")
    assert json.loads((run / "summary.json").read_text())["status"] == "finished"


def test_scenario_changes_name_each_path():
    old = {"a": 1, "b": {"c": "x", "d": [1, 2]}, "e": [{"f": 0.5}]}
    new = {"a": 1.0, "b": {"c": "y", "d": [1]}, "e": [{"f": 0.5}, {"f": 1}], "g": None}
    assert scenario_changes(old, new) == [
        "a 1 -> 1.0",
        "b.c x -> y",
        "b.d.1 2 -> (absent)",
        'e.1 (absent) -> {"f": 1}',
        "g (absent) -> null",
    ]
    assert scenario_changes(old, json.loads(json.dumps(old))) == []


def test_content_digest_sees_one_changed_byte_name_or_shape():
    tensors = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "m": torch.ones(3, dtype=torch.bool)}
    digest = content_digest("{}", tensors)
    flipped = tensors["w"].clone()
    flipped.view(torch.uint8)[0, 0] ^= 1
    assert content_digest("{}", {**tensors, "w": flipped}) != digest
    assert content_digest("{}", {**tensors, "w": tensors["w"].reshape(3, 2)}) != digest
    assert content_digest("{}", {"v": tensors["w"], "m": tensors["m"]}) != digest
    assert content_digest('{"a": 1}', tensors) != digest
    assert content_digest("{}", {k: v.clone() for k, v in tensors.items()}) == digest
