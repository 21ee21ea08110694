"""Sweeps: expansion and ids, bad files, one small sweep on each executor, failures, resume, command line.

The real sweep: outgoing-L1 easy at 150 cycles, ``structure.k`` x
``structure.p_del`` with p_del 1.5 invalid (its runs fail to load), 2 seeds:
8 runs, 4 of them trained. Every executor must give the same table.
"""

from __future__ import annotations

import concurrent.futures as cf
import io
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
import yaml

from neurograph.studies.executors import ExecutorError, InProcessExecutor, make_executor
from neurograph.run.reporters import Reporter, ReporterSet
from neurograph.run.folder import RunFolder, prepare_run_folder
from neurograph_cli.sweep import main
from neurograph.studies.sweep_file import SweepError, case_id, expand_cases, load_sweep, override_text, scenario_of
from neurograph_cli.sweep_progress import TextProgress
from neurograph.studies.sweep_report import read_table
from neurograph.studies.sweep_run import ProgressWatcher, SweepReporter, last_cycle, plan_jobs, run_sweep
from neurograph.charrnn.trainer import Trainer

torch.set_num_threads(1)  # in-process runs share pytest's process: one thread, as each pool worker has here

BASE = Path(__file__).resolve().parents[1] / "scenarios" / "outgoing-l1" / "easy.yaml"
EXAMPLE = Path(__file__).resolve().parents[1] / "scenarios" / "sweeps" / "example.yaml"
CYCLES = 150
SET = {"phases.0.cycles": CYCLES, "report.every": 50, "report.graph_every": 0, "report.checkpoint_every": 50}
GRID = {"structure.k": [1, 2], "structure.p_del": [0.05, 1.5]}  # p_del 1.5 > 1: those runs cannot load
TIMING = ("wall_s", "cycles_per_s")


def write_sweep(folder: Path, name: str = "small", **fields) -> Path:
    path = folder / f"{name}.yaml"
    data = {"base": str(BASE), "set": SET, "grid": GRID, "seeds": 2, **fields}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class Recorder(SweepReporter):
    def __init__(self) -> None:
        self.jobs: list[str] = []
        self.ends: list[tuple] = []
        self.progress: list[tuple] = []

    def start(self, jobs):
        self.jobs = list(jobs)

    def job_progress(self, job, cycle, total):
        self.progress.append((job, cycle, total))

    def job_end(self, job, row, completed, total, *, skipped=False):
        self.ends.append((job, row["status"], completed, total, skipped))


def summaries(out: Path) -> dict[str, dict]:
    """Each run's summary.json without its timings, by run folder relative to ``out``."""
    found = {}
    for path in sorted(out.glob("*/seed-*/summary.json")):
        summary = json.loads(path.read_text())
        found[str(path.parent.relative_to(out))] = {k: v for k, v in summary.items() if k not in TIMING}
    return found


def metrics_rows(folder: Path) -> list[dict]:
    """A run's metrics rows without their speed (a resumed run's differs)."""
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "cycles_per_s"} for row in rows]


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory) -> Path:
    return write_sweep(tmp_path_factory.mktemp("sweep"))


def run_with(sweep_file: Path, out: Path, executor: str, **kw):
    recorder = Recorder()
    sweep = load_sweep(sweep_file, {"out": str(out), "executor": executor, "workers": 2})
    return run_sweep(sweep, reporter=recorder, **kw), recorder


@pytest.fixture(scope="module")
def inprocess(sweep_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("inprocess")
    result, recorder = run_with(sweep_file, out, "inprocess")
    return out, result, recorder


@pytest.fixture(scope="module")
def local(sweep_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    result, recorder = run_with(sweep_file, out, "local", poll_s=0.05)
    return out, result, recorder


# ------------------------------------------------------------------ the file
def test_grid_times_cases_times_seeds(tmp_path):
    cases = [{"structure.selector": {"kind": "oldest"}}, {"structure.selector": {"kind": "youngest"}}]
    sweep = load_sweep(write_sweep(tmp_path, cases=cases, seeds=[3, 7]))
    expanded = expand_cases(sweep)
    assert len(expanded) == 2 * 2 * 2
    assert expanded[:3] == [
        {"structure.k": 1, "structure.p_del": 0.05, "structure.selector": {"kind": "oldest"}},
        {"structure.k": 1, "structure.p_del": 0.05, "structure.selector": {"kind": "youngest"}},
        {"structure.k": 1, "structure.p_del": 1.5, "structure.selector": {"kind": "oldest"}},
    ]
    jobs = plan_jobs(sweep)
    assert [j.seed for j in jobs[:4]] == [3, 7, 3, 7] and len(jobs) == 16
    assert jobs[0].id == f"{case_id(expanded[0])}/seed-3"
    assert jobs[0].folder == str(Path("runs/sweeps/small").resolve() / jobs[0].id)
    assert jobs[0].values == {"structure.k": 1, "structure.p_del": 0.05, "structure.selector": {"kind": "oldest"}}
    ok, bad = jobs[0], jobs[4]
    assert ok.scenario.seed == 3 and ok.scenario.structure.selector.kind == "oldest" and ok.total_cycles == CYCLES
    assert bad.scenario is None and "structure.p_del" in bad.error
    assert sweep.params == ["structure.k", "structure.p_del", "structure.selector"]


def test_only_cases_and_only_seeds(tmp_path):
    only_cases = load_sweep(write_sweep(tmp_path, grid={}, cases=[{"structure.k": 3}], seeds=1))
    assert expand_cases(only_cases) == [{"structure.k": 3}]
    plain = load_sweep(write_sweep(tmp_path, grid={}, seeds=3))
    assert expand_cases(plain) == [{}]
    assert [j.id for j in plan_jobs(plain)] == ["base/seed-0", "base/seed-1", "base/seed-2"]


def test_case_ids_are_short_stable_slugs():
    overrides = {"structure.p_del": 0.05, "structure.k": 2}
    assert case_id(overrides) == "k=2_p_del=0.05_f12f61"  # fixed forever: folders of old sweeps keep their names
    assert case_id(dict(reversed(overrides.items()))) == case_id(overrides)
    assert case_id({"structure.p_del": 0.05, "structure.k": 3}) != case_id(overrides)
    assert case_id({"structure.k": 2}) != case_id({"other.k": 2})  # same short name, told apart by the hash
    assert case_id({}) == "base"
    long = case_id({"structure.selector": {"kind": "age_weighted", "alpha": -1.5}, "phases.1.task.length": 5})
    assert len(long) <= 48 + 7 and "/" not in long and " " not in long


@pytest.mark.parametrize("value", [0.05, 1e-5, 1e20, 3, -2, "text", "yes", True, None, [1, 2], {"kind": "oldest"}])
def test_override_text_reads_back_as_the_same_value(value):
    assert yaml.safe_load(override_text(value)) == value


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"grdi": {}}, r"grdi: unknown field; accepted: name, base"),
        ({"seeds": 0}, r"seeds: expected a count >= 1"),
        ({"seeds": [1, 1]}, r"seeds: expected a count >= 1 or a list of distinct"),
        ({"grid": {"structure.k": []}}, r"grid.structure.k: needs distinct values"),
        ({"grid": {"seed": [1, 2]}}, r"grid.seed: seeds are given by 'seeds'"),
        ({"cases": [{"structure.k": 3}]}, r"cases.0.structure.k: also in grid"),
        ({"scheduler": "tcp://127.0.0.1:8786"}, r"scheduler: only used with executor: dask"),
        ({"executor": "dask", "scheduler": "http://x"}, r"scheduler: expected tcp://host:port"),
        ({"metrics": ["hiden"]}, r"metrics: unknown metric 'hiden'"),
        ({"base": "missing.yaml"}, r"base: .*missing.yaml: file not found"),
        ({"set": {**SET, "structure.l1": -1}}, r"base: .*easy.yaml: structure.l1 \(from --set\)"),
    ],
)
def test_bad_sweep_files_name_file_and_field(tmp_path, fields, match):
    path = write_sweep(tmp_path, **fields)
    with pytest.raises(SweepError, match=match) as err:
        load_sweep(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_command_line_settings_are_named_in_errors(tmp_path):
    with pytest.raises(SweepError, match=r"workers \(from the command line\)"):
        load_sweep(write_sweep(tmp_path), {"workers": 0})


def test_example_sweep_loads():
    sweep = load_sweep(EXAMPLE)
    assert sweep.params == ["structure.p_del", "structure.k"] and sweep.seed_list == [0, 1, 2]
    assert scenario_of(sweep, expand_cases(sweep)[0], 0).total_cycles == sweep.set["phases.0.cycles"]


# ------------------------------------------------------------------ running
def test_inprocess_sweep_tabulates_every_run(inprocess):
    out, result, _ = inprocess
    rows = result.rows
    assert [(r["structure.k"], r["structure.p_del"], r["seed"]) for r in rows] == [
        (k, p, s) for k in (1, 2) for p in (0.05, 1.5) for s in (0, 1)
    ]
    finished = [r for r in rows if r["structure.p_del"] == 0.05]
    failed = [r for r in rows if r["structure.p_del"] == 1.5]
    assert all(r["status"] == "finished" and r["error"] == "" for r in finished)
    assert all(isinstance(r["hidden"], int) and r["loss"] > 0 for r in finished)
    assert all(r["status"] == "failed" and "structure.p_del" in r["error"] and r["hidden"] is None for r in failed)
    assert result.failed == failed
    for r in finished:
        summary = json.loads((out / r["case"] / f"seed-{r['seed']}" / "summary.json").read_text())
        assert summary["cycles"] == CYCLES and (summary["hidden"], summary["loss"]) == (r["hidden"], r["loss"])
    assert json.loads((out / "cases.json").read_text()) == {
        case_id({"structure.k": k, "structure.p_del": p}): {"structure.k": k, "structure.p_del": p}
        for k in (1, 2)
        for p in (0.05, 1.5)
    }


def test_table_and_figures(inprocess):
    out, result, _ = inprocess
    table = read_table(result.table)
    assert list(table[0]) == ["case", "structure.k", "structure.p_del", "seed", "status", "error", "hidden", "loss"]
    assert [r["loss"] for r in table] == ["" if r["loss"] is None else repr(r["loss"]) for r in result.rows]
    # only k varies among finished runs: p_del 1.5 never ran
    assert sorted(p.name for p in result.figures) == ["hidden-vs-structure.k.png", "loss-vs-structure.k.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in result.figures)


def test_reporter_hears_every_run(inprocess, local):
    for _, result, recorder in (inprocess, local):
        assert recorder.jobs == [f"{r['case']}/seed-{r['seed']}" for r in result.rows]
        assert sorted(e[0] for e in recorder.ends) == sorted(recorder.jobs)
        assert [e[2:4] for e in recorder.ends] == [(i, 8) for i in range(1, 9)]
        assert not any(e[4] for e in recorder.ends)
    for job, cycle, total in local[2].progress:
        assert job in local[2].jobs and total == CYCLES and 0 < cycle <= CYCLES


def test_local_pool_equals_inprocess(inprocess, local):
    assert local[1].rows == inprocess[1].rows
    assert summaries(local[0]) == summaries(inprocess[0]) and len(summaries(local[0])) == 4


def test_dask_local_cluster_equals_local(sweep_file, local, tmp_path):
    pytest.importorskip("distributed", reason="dask.distributed not installed (pip install 'neurograph[dask]')")
    executor = make_executor("dask", 2)  # a LocalCluster of 2 worker processes
    try:
        workers = executor.client.scheduler_info()["workers"]
        assert len(workers) == 2 and all(address.startswith("tcp://127.0.0.1:") for address in workers)
        assert executor.client.scheduler.address.startswith("tcp://127.0.0.1:")
        recorder = Recorder()
        sweep = load_sweep(sweep_file, {"out": str(tmp_path / "dask"), "executor": "dask"})
        result = run_sweep(sweep, executor=executor, reporter=recorder)
    finally:
        executor.shutdown()
    assert result.rows == local[1].rows
    assert summaries(tmp_path / "dask") == summaries(local[0])
    assert [e[2] for e in recorder.ends] == list(range(1, 9))


def test_rerun_skips_finished_runs(sweep_file, inprocess):
    out, result, _ = inprocess
    files = sorted(p for p in out.glob("*/seed-*/*") if p.is_file())
    before = {p: p.stat().st_mtime_ns for p in files}
    again, recorder = run_with(sweep_file, out, "inprocess")
    assert {p: p.stat().st_mtime_ns for p in files} == before
    skipped = {e[0] for e in recorder.ends if e[4]}
    assert skipped == {f"{r['case']}/seed-{r['seed']}" for r in result.rows if r["status"] == "finished"}
    assert again.rows == result.rows


class StopAt(Reporter):
    def __init__(self, trainer: Trainer, cycle: int) -> None:
        self.trainer, self.cycle = trainer, cycle

    def metrics(self, row):
        if row["cycle"] >= self.cycle:
            self.trainer.request_stop()


def test_interrupted_run_continues_from_its_checkpoint(sweep_file, inprocess, tmp_path):
    out, result, _ = inprocess
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    job = next(j for j in plan_jobs(load_sweep(sweep_file, {"out": str(copy)})) if j.scenario is not None)
    folder = Path(job.folder)
    shutil.rmtree(folder)
    trainer = Trainer(job.scenario)
    prepare_run_folder(folder, job.scenario)
    trainer.reporters = ReporterSet([RunFolder(folder), StopAt(trainer, 100)])
    assert trainer.run()["status"] == "interrupted" and trainer.run_state.cycle == 100

    again, recorder = run_with(sweep_file, copy, "inprocess")
    ran = [e for e in recorder.ends if not e[4] and e[1] == "finished"]
    assert [e[0] for e in ran] == [job.id]
    assert again.rows == result.rows and summaries(copy) == summaries(out)
    assert metrics_rows(folder) == metrics_rows(out / job.id)


def test_a_run_failing_in_its_worker_does_not_stop_the_others(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path, grid={"structure.k": [1, 2]}, seeds=1), {"out": str(tmp_path / "out")})
    blocked = Path(plan_jobs(sweep)[0].folder)
    blocked.parent.mkdir(parents=True)
    blocked.write_text("not a folder")
    result = run_sweep(sweep, executor=InProcessExecutor())
    first, second = result.rows
    assert first["status"] == "failed" and first["error"].startswith("RunFolderError: ")
    assert "exists and is not a folder" in first["error"] and "\n" not in first["error"]
    assert second["status"] == "finished" and second["hidden"] >= 1


def test_a_folder_holding_another_run_is_refused(inprocess, tmp_path):
    out, _, _ = inprocess
    other = write_sweep(tmp_path, set={**SET, "phases.0.cycles": 2 * CYCLES})
    with pytest.raises(SweepError, match="holds a different run"):
        run_sweep(load_sweep(other, {"out": str(out), "executor": "inprocess"}))


def test_study_measures_can_be_tabulated(tmp_path):
    path = write_sweep(tmp_path, grid={}, seeds=1, metrics=["final_hidden", "recover_easy_to_hard", "hidden"])
    result = run_sweep(load_sweep(path, {"out": str(tmp_path / "out"), "executor": "inprocess"}))
    (row,) = result.rows
    assert row["final_hidden"] == row["hidden"] and row["recover_easy_to_hard"] is None  # one phase: no switch
    assert result.figures == []  # nothing swept


# ------------------------------------------------------------------ progress
def test_last_cycle_reads_the_last_complete_row(tmp_path):
    path = tmp_path / "metrics.jsonl"
    assert last_cycle(path) is None
    path.write_text('{"cycle": 50, "loss": 1.0}\n{"cycle": 100, "loss": 0.9}\n{"cycle": 15')  # mid-write
    assert last_cycle(path) == 100


def test_watcher_reports_a_job_only_when_its_cycle_moves(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path, grid={"structure.k": [1, 2]}, seeds=1), {"out": str(tmp_path / "out")})
    a, b = plan_jobs(sweep)
    for job in (a, b):
        Path(job.folder).mkdir(parents=True)
    (Path(b.folder) / "metrics.jsonl").write_text('{"cycle": 100}\n')  # an old session's rows
    watcher = ProgressWatcher([a, b])
    assert watcher.poll() == []
    (Path(a.folder) / "metrics.jsonl").write_text('{"cycle": 50}\n')
    assert watcher.poll() == [(a.id, 50, CYCLES)]
    assert watcher.poll() == []
    (Path(b.folder) / "metrics.jsonl").write_text('{"cycle": 100}\n{"cycle": 150}\n')
    watcher.forget(a.id)
    assert watcher.poll() == [(b.id, 150, CYCLES)]


def test_text_progress_lines():
    stream = io.StringIO()
    now = [0.0]
    p = TextProgress(stream, live=False, metrics=["hidden", "loss"], every_s=10, clock=lambda: now[0])
    p.start(["a/seed-0", "b/seed-0"])
    p.job_progress("a/seed-0", 50, 150)
    p.job_progress("a/seed-0", 100, 150)  # within every_s: not written
    p.job_end("a/seed-0", {"status": "finished", "error": "", "hidden": 3, "loss": 0.25}, 1, 2)
    p.job_end("b/seed-0", {"status": "failed", "error": "x.yaml: bad", "hidden": None, "loss": None}, 2, 2)
    assert stream.getvalue().splitlines() == [
        "sweep: 2 runs",
        "  a/seed-0  [########................] 50/150",
        "[........................] 0/2 runs, 0 not finished",
        "1/2 finished    a/seed-0  hidden 3  loss 0.25",
        "2/2 failed      b/seed-0  x.yaml: bad",
    ]


def test_live_progress_redraws_its_block_in_place():
    stream = io.StringIO()
    p = TextProgress(stream, live=True, metrics=["hidden"])
    p.start(["a/seed-0"])
    stream.seek(0), stream.truncate()
    p.job_progress("a/seed-0", 50, 150)  # block: the running job and the overall bar
    assert stream.getvalue() == (
        "\x1b[1F\x1b[J  a/seed-0  [########................] 50/150\n[........................] 0/1 runs, 0 not finished\n"
    )
    stream.seek(0), stream.truncate()
    p.job_end("a/seed-0", {"status": "finished", "error": "", "hidden": 3}, 1, 1)
    assert stream.getvalue() == (
        "\x1b[2F\x1b[J1/1 finished    a/seed-0  hidden 3\n[########################] 1/1 runs, 0 not finished\n"
    )


# ------------------------------------------------------------------ executors
def test_inprocess_executor_runs_at_submit_and_keeps_errors():
    ex = InProcessExecutor()
    assert ex.submit(pow, 2, 5).result() == 32
    future = ex.submit(int, "x")
    assert future.done() and isinstance(future.exception(), ValueError)
    assert list(ex.map(abs, [-1, -2])) == [1, 2]
    ex.shutdown()
    with pytest.raises(RuntimeError):
        ex.submit(abs, 1)


def test_executors_share_one_interface():
    for kind in ("inprocess", "local"):
        ex = make_executor(kind, 1)
        assert isinstance(ex, cf.Executor)
        ex.shutdown()


def test_missing_dask_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ExecutorError, match=r"pip install 'neurograph\[dask\]'"):
        make_executor("dask", 2)


# ------------------------------------------------------------------ command line
def test_command_line_exit_codes(tmp_path, capsys):
    good = write_sweep(tmp_path, "good", grid={"structure.k": [1, 2]}, seeds=1)
    out = tmp_path / "out"
    assert main([str(good), "--executor", "inprocess", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out.splitlines()
    assert stdout[0] == "sweep: 2 runs" and stdout[-2] == f"table: {out.resolve() / 'results.csv'}"
    assert stdout[-1].startswith("figures: ")
    bad = write_sweep(tmp_path, "bad")  # p_del 1.5 fails to load
    assert main([str(bad), "--executor", "inprocess", "--out", str(tmp_path / "bad-out")]) == 1
    assert "4 of 8 runs did not finish" in capsys.readouterr().err
    assert main([str(good), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"neurograph: {good}: workers (from the command line)") and err.count("\n") == 1


def test_figures_skip_parameters_whose_values_are_lists_or_mappings():
    """A case may set a whole section (a layered network's area list): no figure against it, and no crash."""
    from neurograph.studies.sweep_report import numeric_params

    rows = [
        {"network.areas": [{"name": "a", "size": 2}], "width.p_del": 0.05},
        {"network.areas": [{"name": "a", "size": 4}], "width.p_del": 0.25},
    ]
    assert numeric_params(rows, ["network.areas", "width.p_del"]) == ["width.p_del"]
