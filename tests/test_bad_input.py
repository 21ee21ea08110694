"""Bad input: each malformed file or argument gives one line on stderr, exit code 2, and writes nothing.

The corpus lives in ``tests/fixtures/bad/``. Each case runs the CLI in-process
and checks the message names the file and the field (or the YAML line), that
no traceback leaks, and that every file under the test's folder and the
fixtures folder is byte-for-byte what it was.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
import torch

from neurograph.graphml import GraphMLError, read_graphml
from neurograph.run.reporters import ReporterSet
from neurograph.run.folder import RunFolder, prepare_run_folder
from neurograph.scenario import load_scenario
from neurograph.charrnn.trainer import Trainer
from neurograph.yaml_file import MAX_FILE_BYTES
from neurograph_cli.main import main

torch.set_num_threads(1)

BAD = Path(__file__).parent / "fixtures" / "bad"
SWITCH = Path(__file__).parents[1] / "scenarios" / "switch.yaml"
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without a GPU")


# -------------------------------------------------------------- helpers
def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root``: file bytes, or None for a folder."""
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes() for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A finished 300-cycle run folder with checkpoints, metrics and events."""
    folder = tmp_path_factory.mktemp("tiny") / "run"
    scenario = load_scenario(SWITCH, ["report.checkpoint_every=100"], cycles=300)
    trainer = Trainer(scenario)
    trainer.reporters = ReporterSet([RunFolder(prepare_run_folder(folder, scenario))])
    trainer.run()
    assert (folder / "events.jsonl").stat().st_size > 0, "the fixture run should have structural events"
    return folder


def run_copy(mutate: Callable[[Path], None]) -> Callable[[Path, Path], None]:
    """Prepare step: copy the tiny run to ``tmp/run``, then spoil it with ``mutate``."""

    def prepare(tmp: Path, tiny: Path) -> None:
        shutil.copytree(tiny, tmp / "run")
        mutate(tmp / "run")

    return prepare


def truncate(name: str, keep: Callable[[int], int]) -> Callable[[Path], None]:
    def mutate(run: Path) -> None:
        data = (run / name).read_bytes()
        (run / name).write_bytes(data[: keep(len(data))])

    return mutate


def replace_with(fixture: str, name: str = "checkpoint.safetensors") -> Callable[[Path], None]:
    return lambda run: shutil.copyfile(BAD / fixture, run / name)


def rename_scenario(run: Path) -> None:
    text = (run / "scenario.yaml").read_text()
    (run / "scenario.yaml").write_text(text.replace("name: switch", "name: another", 1))


def crash_after_checkpoint_then_lose_events(run: Path) -> None:
    """metrics.jsonl has a row past the checkpoint (to be cut), events.jsonl lost its lines."""
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"cycle": 400}\n')
    (run / "events.jsonl").write_bytes(b"")


def make_file(name: str) -> Callable[[Path, Path], None]:
    return lambda tmp, tiny: (tmp / name).write_text("a file, not a folder\n")


# ---------------------------------------------------------------- corpus
def scenario_case(name: str, *expect: str, marks=()):
    """``neurograph run`` of a bad fixture scenario; the message names the file and ``expect``."""
    argv = ["run", f"{{bad}}/{name}", "--out", "{tmp}/out", "--no-live"]
    return pytest.param(argv, None, (name, *expect), id=Path(name).stem, marks=marks)


def base_case(id: str, args: list[str], *expect: str, prepare=None, marks=()):
    """``neurograph run`` of the valid base scenario with bad arguments."""
    argv = ["run", "{bad}/base.yaml", "--no-live", *args]
    if "--out" not in args:
        argv += ["--out", "{tmp}/out"]
    return pytest.param(argv, prepare, expect, id=id, marks=marks)


def resume_case(id: str, mutate: Callable[[Path], None], *expect: str):
    """``neurograph resume`` of a copy of a real run spoilt by ``mutate``."""
    return pytest.param(["resume", "{tmp}/run", "--no-live"], run_copy(mutate), ("run", *expect), id=id)


CORPUS = [
    # schema
    scenario_case("unknown_key_top.yaml", "colour", "unknown field"),
    scenario_case("unknown_key_nested.yaml", "structure.p_dell", "unknown field", "p_del"),
    scenario_case("wrong_type.yaml", "phases.0.cycles", "integer"),
    scenario_case("negative_probability.yaml", "structure.p_add", "greater than or equal to 0"),
    scenario_case("probability_above_one.yaml", "structure.p_del", "less than or equal to 1"),
    scenario_case("easy_p_one.yaml", "phases.0.task.p", "less than 1"),
    scenario_case("negative_k.yaml", "structure.k", "greater than or equal to 0"),
    scenario_case("zero_cycles.yaml", "phases.0.cycles", "greater than 0"),
    scenario_case("empty_phases.yaml", "phases", "at least 1"),
    scenario_case("unknown_task_kind.yaml", "phases.0.task", "'medium'"),
    scenario_case("unknown_structure_kind.yaml", "structure", "'outgoing_l2'"),
    scenario_case("unknown_optimizer_kind.yaml", "optimizer", "'sgd'"),
    scenario_case("missing_section.yaml", "structure", "required"),
    scenario_case("m_min_above_threshold.yaml", "structure", "m_min", "threshold"),
    scenario_case("alphabet_mismatch.yaml", "phases.1.task", "alphabet"),
    scenario_case("cuda.yaml", "device", "'cuda'", "no CUDA GPU", marks=no_gpu),
    # bounds: memory and time stay finite, and each bound is stated
    scenario_case("window_huge.yaml", "window", "less than or equal to 10000"),
    scenario_case("window_float.yaml", "window", "valid integer"),
    scenario_case("initial_hidden_huge.yaml", "structure.initial_hidden", "less than or equal to 4096"),
    scenario_case("cycles_huge.yaml", "phases.0.cycles", "less than or equal to 1000000000"),
    scenario_case("total_cycles_huge.yaml", "phases", "2,000,000,000 cycles in all"),
    scenario_case("urn_dim_huge.yaml", "phases.0.task.dim", "less than or equal to 25000"),
    scenario_case("urn_train_huge.yaml", "phases.0.task.train", "less than or equal to 1000000"),
    scenario_case("urn_epochs_huge.yaml", "phases.0.epochs", "less than or equal to 100000"),
    scenario_case("urn_data_huge.yaml", "phases.0.task", "samples x 10,000 inputs"),
    # NaN and infinities
    scenario_case("alpha_nan.yaml", "structure.selector.alpha", "finite number"),
    scenario_case("lr_inf.yaml", "optimizer.lr", "finite number"),
    scenario_case("l1_inf.yaml", "structure.l1", "finite number"),
    scenario_case("inherit_noise_inf.yaml", "structure.init.noise", "finite number"),
    scenario_case("urn_c_n_nan.yaml", "loss.c_n", "finite number"),
    # rules across fields, types, names, models
    scenario_case("k_above_max_hidden.yaml", "structure", "k (5)", "max_hidden (3)"),
    scenario_case("urn_size_below_inputs.yaml", "network.size", "10 inputs + 2 outputs"),
    scenario_case("urn_lattice_below_size.yaml", "network.geometry", "48 sites", "S = 500"),
    scenario_case("k_boolean.yaml", "structure.k", "valid integer"),
    scenario_case("name_escapes.yaml", "name", "single folder name", "'../../escaped/evil'"),
    scenario_case("unknown_model.yaml", "model", "'gru'", "charrnn (the default), urn"),
    scenario_case("duplicate_key.yaml", "line 5", "duplicate key 'name'"),
    scenario_case("duplicate_key_nested.yaml", "line 2", "duplicate key 'k'"),
    # text files the scenario names
    scenario_case("missing_text.yaml", "phases.0.task.path", "no_such_text.txt", "not found"),
    scenario_case("text_not_utf8.yaml", "phases.0.task.path", "latin1.txt", "not UTF-8"),
    # the scenario file itself
    scenario_case("syntax_error.yaml", "line 4", "YAML syntax error"),
    scenario_case("empty.yaml", "empty file"),
    scenario_case("list.yaml", "top level must be a mapping", "list"),
    scenario_case("scenario_not_utf8.yaml", "not a UTF-8 text file"),
    scenario_case("no_such_scenario.yaml", "file not found"),
    scenario_case("not_a_run", "cannot read"),  # a folder given as the scenario
    # command line
    base_case("set-unknown-path", ["--set", "structure.p_dell=0.1"], "base.yaml", "--set structure.p_dell", "no field"),
    base_case("set-unknown-list-item", ["--set", "phases.3.cycles=5"], "base.yaml", "phases.3", "no list item"),
    base_case("set-bad-value-type", ["--set", "report.every=often"], "base.yaml", "report.every (from --set)", "integer"),
    base_case("set-value-not-yaml", ["--set", "report.every=[1"], "base.yaml", "report.every", "not valid YAML"),
    base_case("set-into-a-value", ["--set", "name.first=x"], "base.yaml", "--set name.first", "not a section"),
    base_case("set-without-equals", ["--set", "seed"], "base.yaml", "'seed'", "path.to.field=value"),
    base_case("device-cuda", ["--device", "cuda"], "base.yaml", "device", "no CUDA GPU", marks=no_gpu),
    base_case("cycles-zero", ["--cycles", "0"], "base.yaml", "--cycles", "from 1 to 1,000,000,000", "got 0"),
    base_case("cycles-huge", ["--cycles", str(10**23)], "base.yaml", "--cycles", "from 1 to 1,000,000,000"),
    base_case("set-nan", ["--set", "optimizer.lr=.nan"], "base.yaml", "optimizer.lr (from --set)", "finite number"),
    base_case("set-bool-as-int", ["--set", "structure.k=true"], "base.yaml", "structure.k (from --set)", "integer"),
    base_case("set-duplicate-key", ["--set", "structure={{kind: fixed, hidden: 2, hidden: 3}}"], "base.yaml", "not valid YAML"),
    base_case("seed-huge", ["--seed", str(2**40)], "base.yaml", "seed (from --set)", "less than or equal to 4294967295"),
    base_case("out-under-a-file", ["--out", "{tmp}/afile/run"], "afile", "not writable", prepare=make_file("afile")),
    base_case("out-is-a-file", ["--out", "{tmp}/afile"], "afile", "not a folder", prepare=make_file("afile")),
    # run folders
    pytest.param(["resume", "{bad}/not_a_run", "--no-live"], None, ("not_a_run", "not a run folder"), id="resume-not-a-run"),
    resume_case("checkpoint-missing", lambda run: (run / "checkpoint.safetensors").unlink(), "checkpoint.safetensors", "missing"),
    resume_case("checkpoint-truncated-header", truncate("checkpoint.safetensors", lambda n: n // 2), "checkpoint.safetensors", "truncated"),
    resume_case("checkpoint-truncated-data", truncate("checkpoint.safetensors", lambda n: n - 10), "checkpoint.safetensors", "truncated"),
    resume_case("checkpoint-random-bytes", replace_with("random.safetensors"), "checkpoint.safetensors", "corrupt"),
    resume_case("checkpoint-other-format", replace_with("other_format.safetensors"), "checkpoint.safetensors", "not a neurograph checkpoint"),
    resume_case("checkpoint-of-another-run", rename_scenario, "checkpoint.safetensors", "'switch'", "'another'"),
    resume_case("run-scenario-unknown-key", replace_with("unknown_key_top.yaml", "scenario.yaml"), "scenario.yaml", "colour"),
    resume_case("events-shorter-than-checkpoint", crash_after_checkpoint_then_lose_events, "events.jsonl", "shorter"),
    pytest.param(
        ["export", "{tmp}/run", "--format", "gexf", "--out", "{tmp}/graph.gexf"],
        run_copy(replace_with("edge_to_missing_node.graphml", "graph.graphml")),
        ("graph.graphml", "'o40'", "unknown node"),
        id="export-inconsistent-graphml",
    ),
    # layered scenarios: areas and projections, and what each task needs of them
    scenario_case("layered_unknown_area.yaml", "network.projections", "'v1 -> v3'", "unknown area"),
    scenario_case("layered_duplicate_area.yaml", "network.areas", "distinct"),
    scenario_case("layered_static_recurrent.yaml", "network", "static tasks need a feed-forward area graph"),
    scenario_case("layered_character_not_recurrent.yaml", "network", "character tasks need a recurrent projection"),
    scenario_case("layered_depth_skips_none.yaml", "depth.enabled", "skips all or output"),
]  # fmt: skip


@pytest.mark.parametrize("argv, prepare, expect", CORPUS)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    argv, prepare, expect, tmp_path, tiny_run, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a default run folder (runs/...) would land here and be seen
    if prepare:
        prepare(tmp_path, tiny_run)
    argv = [a.format(bad=BAD, tmp=tmp_path) for a in argv]
    before, fixtures = tree(tmp_path), tree(BAD)
    capsys.readouterr()

    code = main(argv)

    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("neurograph: ") and err.endswith("\n") and err.count("\n") == 1, err
    for part in expect:
        assert part in err
    assert tree(tmp_path) == before
    assert tree(BAD) == fixtures


def test_a_scenario_file_over_the_size_limit_is_refused_before_parsing(tmp_path, capsys) -> None:
    big = tmp_path / "big.yaml"
    big.write_text((BAD / "base.yaml").read_text() + "#" + "x" * MAX_FILE_BYTES + "\n")
    before = tree(tmp_path)

    code = main(["run", str(big), "--out", str(tmp_path / "out"), "--no-live"])

    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "big.yaml" in err and f"larger than {MAX_FILE_BYTES:,} bytes" in err
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    "args, expect",
    [
        (["--seeds", "5-2"], "seed range 5-2 is reversed; write 2-5"),
        (["--seeds", "0-20000"], "at most 10,000 seeds"),
        (["--seeds", "a-b"], "expected seeds like 0-19 or 0,3,7"),
        (["--threads", "0"], "argument --threads: expected an integer from 1 to 1,024, got '0'"),
        (["--threads", "-5"], "argument --threads: expected an integer from 1 to 1,024, got '-5'"),
        (["--threads", "100000"], "argument --threads: expected an integer from 1 to 1,024, got '100000'"),
        (["--threads", "two"], "argument --threads: expected an integer from 1 to 1,024, got 'two'"),
    ],
    ids=["seeds-reversed", "seeds-too-many", "seeds-not-numbers", "threads-zero", "threads-negative", "threads-huge",
         "threads-word"],
)
def test_bad_options_exit_2_with_what_is_accepted(args, expect, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(BAD / "base.yaml"), "--no-live", *args])
    assert exit_info.value.code == 2
    assert expect in capsys.readouterr().err.splitlines()[-1]
    assert not any(tmp_path.iterdir())


def test_resume_rejects_zero_threads(tiny_run, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["resume", str(tiny_run), "--threads", "0"])
    assert exit_info.value.code == 2 and "--threads" in capsys.readouterr().err


def test_no_traceback_reaches_stderr_of_the_real_command(tmp_path) -> None:
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "neurograph_cli.main", "run", str(BAD / "unknown_key_nested.yaml"), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [proc.stderr.strip()]
    assert "unknown_key_nested.yaml" in proc.stderr and "structure.p_dell" in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "name, expect",
    [
        ("edge_to_missing_node.graphml", "unknown node 'o40'"),
        ("truncated.graphml", "not XML"),
        ("weight_not_a_number.graphml", "'heavy'"),
    ],
)
def test_hand_edited_graphml_names_the_file(name: str, expect: str) -> None:
    with pytest.raises(GraphMLError) as info:
        read_graphml(BAD / name)
    message = str(info.value)
    assert name in message and expect in message
    assert "\n" not in message
