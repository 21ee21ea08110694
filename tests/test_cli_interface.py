"""Tests for the command line explaining itself: --version, help texts with defaults and
units, the resume command printed on an interrupt, and the thread count a run records
and its resume uses."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import neurograph
import neurograph_cli.main as cli
from neurograph.run.checkpoint import load_checkpoint, save_checkpoint
from neurograph_cli.main import main

SWITCH = Path(__file__).resolve().parents[1] / "scenarios" / "switch.yaml"


@pytest.fixture(autouse=True)
def keep_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"neurograph {neurograph.__version__}\n"


def actions(parser: argparse.ArgumentParser, command: str = "neurograph"):
    """(command, action) of every argument of every subcommand."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from actions(sub, f"{command} {name}")
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield command, action


ALL = list(actions(cli._parser()))


@pytest.mark.parametrize("command, action", ALL, ids=[f"{c} {a.dest}" for c, a in ALL])
def test_every_argument_explains_itself_and_its_default(command, action):
    assert action.help, f"{command} {action.option_strings or action.dest}: no help"
    takes_value = action.option_strings and action.nargs != 0
    if takes_value and not action.required:
        assert "default" in action.help, f"{command} {action.option_strings}: help does not give the default"


def test_help_says_that_urn_steps_are_epochs(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "a URN in epochs" in text and "char-RNN cycles or URN epochs" in text
    assert "--set structure.p_del=0.1" in text and "(default: the scenario's seed" in text


# ------------------------------------------------------------ interrupts
def stop_at_once(trainer):
    """``_train`` as if Ctrl-C came before the first cycle: a clean stop."""
    trainer.request_stop()
    return trainer.run()


def interrupted_run(folder: Path, monkeypatch, *extra: str) -> None:
    monkeypatch.setattr(cli, "_train", stop_at_once)
    assert main(["run", str(SWITCH), "--cycles", "300", "--out", str(folder), "--no-live", *extra]) == 130


def test_an_interrupted_run_prints_the_command_that_resumes_it(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "my run"
    interrupted_run(folder, monkeypatch)
    assert capsys.readouterr().err == f"neurograph: interrupted; resume with: neurograph resume '{folder}'\n"


def test_a_second_interrupt_prints_it_too(tmp_path, monkeypatch, capsys):
    def ctrl_c(trainer):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_train", ctrl_c)
    assert main(["run", str(SWITCH), "--cycles", "300", "--out", str(tmp_path / "r"), "--no-live"]) == 130
    assert capsys.readouterr().err.endswith(f"resume with: neurograph resume {tmp_path / 'r'}\n")


def test_sigint_to_a_run_prints_the_resume_command(tmp_path):
    folder = tmp_path / "run"
    cmd = [sys.executable, "-m", "neurograph_cli.main", "run", str(SWITCH), "--out", str(folder), "--no-live"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (folder / "metrics.jsonl").is_file():
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    assert proc.stderr.read().endswith(f"neurograph: interrupted; resume with: neurograph resume {folder}\n")
    assert main(["show", str(folder)]) == 0


# ---------------------------------------------------- threads and version
def test_a_run_records_its_thread_count_and_version_and_resume_uses_them(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "run"
    interrupted_run(folder, monkeypatch, "--threads", "2")
    state = load_checkpoint(folder)[0]
    assert (state["threads"], state["neurograph_version"]) == (2, neurograph.__version__)
    capsys.readouterr()

    used = []
    monkeypatch.setattr(torch, "set_num_threads", used.append)
    assert main(["resume", str(folder), "--no-live"]) == 130  # stopped at once again
    assert used == [2] and "warning" not in capsys.readouterr().err


def test_resuming_with_another_thread_count_warns(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "run"
    interrupted_run(folder, monkeypatch, "--threads", "2")
    capsys.readouterr()
    assert main(["resume", str(folder), "--no-live", "--threads", "1"]) == 130
    err = capsys.readouterr().err
    assert f"neurograph: warning: {folder} was trained with --threads 2; continuing with 1" in err
    assert "omit --threads to keep 2" in err and load_checkpoint(folder)[0]["threads"] == 1


def test_resuming_a_checkpoint_of_another_version_warns(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "run"
    interrupted_run(folder, monkeypatch)
    state, tensors = load_checkpoint(folder)
    save_checkpoint(folder, {**state, "neurograph_version": "0.0.1"}, tensors)
    capsys.readouterr()
    assert main(["resume", str(folder), "--no-live"]) == 130
    assert f"written by neurograph 0.0.1, resumed by {neurograph.__version__}" in capsys.readouterr().err
