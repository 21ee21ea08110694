"""Running a sweep: every (case, seed) is an ordinary run folder, trained on any executor.

Layout of a sweep folder::

    cases.json                      case id -> its overrides
    <case-id>/seed-<n>/             one run folder per run (see neurograph.run.folder)
    results.csv                     one row per run, rewritten as runs end (see neurograph.studies.sweep_report)
    figures/<metric>-vs-<param>.png each metric against each numeric swept parameter

Each run is a pure function of (scenario, seed) and is trained by
:func:`run_job`, a top-level function that any ``concurrent.futures.Executor``
can ship to another process or machine. Resume: a run whose ``summary.json``
says ``finished`` is never redone; any other run with a checkpoint continues
from it (``open_for_resume`` + ``Trainer.restore``); a run that failed is
tried again. A failing run (its overrides do not load, or training raises)
becomes a table row with its error and does not stop the others.

Progress: the caller's :class:`SweepReporter` hears when each run ends and,
while runs are going, each one's cycle. The cycle is read from the last line
of the run's ``metrics.jsonl`` every ``poll_s`` seconds: the file exists
anyway, works for any executor whose workers share the sweep folder's
filesystem (a process pool, a LocalCluster; a remote cluster when the folder
is on a shared disk), needs no queue between processes, and survives a
worker being killed. Its resolution is ``report.every`` cycles.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurograph.studies.executors import make_executor
from neurograph.run.folder import release_run_folder, write_json_atomic
from neurograph.scenario import Scenario, ScenarioError
from neurograph.studies.extensions import StudyError, is_finished, measures, run_one
from neurograph.studies.sweep_file import SUMMARY_METRICS, Sweep, SweepError, case_id, expand_cases, scenario_of
from neurograph.studies.sweep_report import write_figures, write_table

__all__ = [
    "Job",
    "SweepReporter",
    "SweepResult",
    "plan_jobs",
    "run_job",
    "failed_outcome",
    "outcome_of",
    "last_cycle",
    "ProgressWatcher",
    "run_sweep",
]

POLL_S = 0.5  # progress resolution; reading a file's last 4 KiB this often costs nothing
TAIL_BYTES = 4096  # a metrics row is ~300 bytes: the last complete one is in here


@dataclass(frozen=True)
class Job:
    """One run of a sweep; ``scenario`` is None when its overrides do not load (``error`` says why)."""

    id: str  # "<case-id>/seed-<n>", also its folder under the sweep folder
    case: str
    seed: int
    overrides: dict[str, Any]
    values: dict[str, Any]  # each swept parameter's value in this run (the base's where not overridden)
    folder: str  # absolute: workers may run elsewhere
    metrics: tuple[str, ...]
    scenario: Scenario | None = None
    error: str = ""

    @property
    def total_cycles(self) -> int:
        return self.scenario.total_cycles if self.scenario else 0


@dataclass
class SweepResult:
    rows: list[dict]  # in plan order: cases, then seeds
    table: Path
    figures: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.rows if r["status"] != "finished"]


class SweepReporter:
    """Do-nothing hooks for a sweep's progress; subclasses override what they need."""

    def start(self, jobs: list[str]) -> None:
        """The sweep's job ids, in table order."""

    def job_progress(self, job: str, cycle: int, total: int) -> None:
        """A running job reached ``cycle`` of ``total`` (called only when it changed)."""

    def job_end(self, job: str, row: dict, completed: int, total: int, *, skipped: bool = False) -> None:
        """A job's table row is final (``skipped``: finished in an earlier session); ``completed`` of ``total`` jobs."""


# ------------------------------------------------------------------ planning
def plan_jobs(sweep: Sweep) -> list[Job]:
    """Every (case, seed) of a loaded sweep, with its scenario (or load error) and folder."""
    out = Path(sweep.out).resolve()
    jobs = []
    for overrides in expand_cases(sweep):
        cid = case_id(overrides)
        for seed in sweep.seed_list:
            try:
                scenario, error = scenario_of(sweep, overrides, seed), ""
            except ScenarioError as e:
                scenario, error = None, str(e)
            jobs.append(
                Job(
                    id=f"{cid}/seed-{seed}",
                    case=cid,
                    seed=seed,
                    overrides=overrides,
                    values=_param_values(sweep.params, overrides, scenario),
                    folder=str(out / cid / f"seed-{seed}"),
                    metrics=tuple(sweep.metrics),
                    scenario=scenario,
                    error=error,
                )
            )
    return jobs


def _param_values(params: list[str], overrides: dict, scenario: Scenario | None) -> dict[str, Any]:
    resolved = scenario.model_dump(mode="json") if scenario else None
    return {p: overrides[p] if p in overrides else _value_at(resolved, p) for p in params}


def _value_at(data: Any, path: str) -> Any:
    for key in path.split("."):
        if isinstance(data, list) and key.isdigit() and int(key) < len(data):
            data = data[int(key)]
        elif isinstance(data, dict):
            data = data.get(key)
        else:
            return None
    return data


# ------------------------------------------------------------------ one run
def run_job(job: Job) -> dict:
    """Train ``job`` into its folder, continuing its checkpoint if any; its outcome.

    Runs in a worker. The outcome is ``status``, ``error`` (one line, empty
    unless failed) and the job's metrics. A run's own failure is returned, not
    raised: an exception need not survive pickling through the executor, and
    the row reads the same whichever executor ran it. The run folder is
    locked while the run writes it (another writer fails with RunFolderBusy)
    and let go however the run ends: a worker outlives its runs.
    """
    try:
        run_one(job.scenario, Path(job.folder))
        return outcome_of(Path(job.folder), job.metrics)
    except Exception as e:
        return failed_outcome(e, job.metrics)
    finally:
        release_run_folder(Path(job.folder))


def failed_outcome(error: BaseException | str, metrics: tuple[str, ...]) -> dict:
    """Outcome of a run that did not finish: ``error`` as one line, metrics None."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return {"status": "failed", "error": " ".join(text.split()), **dict.fromkeys(metrics)}


def outcome_of(folder: Path, metrics: tuple[str, ...]) -> dict:
    """Status and metrics of a run folder with a ``summary.json``.

    Summary fields (:data:`SUMMARY_METRICS`) come from ``summary.json``; study
    measures (``hard_loss``, ``recover_easy_to_hard``, ...) from
    ``metrics.jsonl`` through :func:`neurograph.studies.extensions.measures`.
    """
    folder = Path(folder)
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    extra: dict = {}
    if any(m not in SUMMARY_METRICS for m in metrics):
        with open(folder / "metrics.jsonl", encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        extra = measures(rows, summary["phases"])
    values = {m: summary.get(m) if m in SUMMARY_METRICS else extra.get(m) for m in metrics}
    return {"status": summary["status"], "error": "", **values}


# ------------------------------------------------------------------ progress
def last_cycle(metrics_path: Path) -> int | None:
    """Cycle of the last complete row of a ``metrics.jsonl``; None if there is none (yet)."""
    try:
        with open(metrics_path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - TAIL_BYTES))
            tail = f.read()
    except OSError:
        return None
    for line in reversed(tail.split(b"\n")):
        try:
            return int(json.loads(line)["cycle"])
        except (ValueError, KeyError, TypeError):  # empty, half-written or cut at the front
            continue
    return None


class ProgressWatcher:
    """Polls each submitted job's ``metrics.jsonl``; reports a job once its cycle moves.

    A resumed job's old rows are the baseline: it shows up when it trains,
    not while it waits for a worker.
    """

    def __init__(self, jobs: list[Job]) -> None:
        self._jobs = {j.id: (Path(j.folder) / "metrics.jsonl", j.total_cycles) for j in jobs}
        self._seen = {job_id: last_cycle(path) for job_id, (path, _) in self._jobs.items()}

    def forget(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)

    def poll(self) -> list[tuple[str, int, int]]:
        """(job id, cycle, total) of each job whose cycle changed since the last poll."""
        moved = []
        for job_id, (path, total) in self._jobs.items():
            cycle = last_cycle(path)
            if cycle is not None and cycle != self._seen[job_id]:
                self._seen[job_id] = cycle
                moved.append((job_id, cycle, total))
        return moved


# ------------------------------------------------------------------ a sweep
def run_sweep(
    sweep: Sweep,
    *,
    executor: cf.Executor | None = None,
    reporter: SweepReporter | None = None,
    poll_s: float = POLL_S,
) -> SweepResult:
    """Run every job of a loaded sweep not finished yet; write the table and figures.

    ``executor``: where runs go; None makes the sweep's own (``executor``,
    ``workers``, ``scheduler``) and shuts it down at the end; one passed in is
    left running. Raises :class:`SweepError` before running anything if a run
    folder holds a different run. On KeyboardInterrupt, queued runs are
    cancelled and ``results.csv`` shows them ``pending``; running ones get
    the interrupt too (same process group) and keep their checkpoints.
    """
    reporter = reporter or SweepReporter()
    jobs = plan_jobs(sweep)
    finished = _finished_jobs(jobs)
    out = Path(sweep.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "cases.json", {j.case: j.overrides for j in jobs})
    ledger = _Ledger(jobs, sweep, out / "results.csv", reporter)
    reporter.start([j.id for j in jobs])
    todo = []
    for job in jobs:
        if job.scenario is None:
            ledger.end(job, failed_outcome(job.error, job.metrics))
        elif job.id in finished:
            ledger.end(job, outcome_of(Path(job.folder), job.metrics), skipped=True)
        else:
            todo.append(job)
    ledger.write()
    if todo:
        own = executor is None
        executor = executor or make_executor(sweep.executor, sweep.workers, sweep.scheduler)
        interrupted = True
        try:
            _execute(todo, executor, ledger, reporter, poll_s)
            interrupted = False
        finally:
            if own:
                executor.shutdown(wait=not interrupted, cancel_futures=interrupted)
    rows = ledger.rows
    return SweepResult(rows, ledger.table, write_figures(rows, sweep.params, sweep.metrics, out / "figures"))


class _Ledger:
    """The sweep's rows in plan order (``pending`` until final); each final one is reported."""

    def __init__(self, jobs: list[Job], sweep: Sweep, table: Path, reporter: SweepReporter) -> None:
        self._rows = {j.id: _row(j, {"status": "pending", "error": "", **dict.fromkeys(j.metrics)}) for j in jobs}
        self.table, self._reporter = table, reporter
        self._params, self._metrics = sweep.params, sweep.metrics
        self._completed = 0

    @property
    def rows(self) -> list[dict]:
        return list(self._rows.values())

    def end(self, job: Job, outcome: dict, *, skipped: bool = False) -> None:
        self._completed += 1
        row = self._rows[job.id] = _row(job, outcome)
        self._reporter.job_end(job.id, row, self._completed, len(self._rows), skipped=skipped)

    def write(self) -> None:
        write_table(self.rows, self._params, self._metrics, self.table)


def _finished_jobs(jobs: list[Job]) -> set[str]:
    """Ids of jobs already finished; SweepError if a folder holds another run."""
    done = set()
    for job in jobs:
        if job.scenario is None:
            continue
        try:
            if is_finished(Path(job.folder), job.scenario):
                done.add(job.id)
        except StudyError as e:
            raise SweepError(str(e)) from None
    return done


def _execute(todo: list[Job], executor: cf.Executor, ledger: _Ledger, reporter: SweepReporter, poll_s: float) -> None:
    watcher = ProgressWatcher(todo)  # before submitting: a quick run's first rows are not the baseline
    futures: dict[cf.Future, Job] = {}
    try:
        for job in todo:  # the in-process executor trains here, inside submit
            futures[executor.submit(run_job, job)] = job
        pending = set(futures)
        while pending:
            done, pending = cf.wait(pending, timeout=poll_s, return_when=cf.FIRST_COMPLETED)
            for future in done:
                job = futures[future]
                watcher.forget(job.id)
                ledger.end(job, _future_outcome(future, job))
            if done:
                ledger.write()  # results.csv is current after every batch of ended runs
            for job_id, cycle, total in watcher.poll():
                reporter.job_progress(job_id, cycle, total)
    except BaseException:  # Ctrl-C: drop the runs not started; the table keeps those that ended
        for future in futures:
            future.cancel()
        raise


def _future_outcome(future: cf.Future, job: Job) -> dict:
    """The job's outcome; a failure of the executor itself (a dead worker) counts as the run's."""
    if future.cancelled():
        return failed_outcome("cancelled", job.metrics)
    error = future.exception()
    if error is None:
        return future.result()
    if not isinstance(error, Exception):  # KeyboardInterrupt in the worker
        return {**failed_outcome(error, job.metrics), "status": "interrupted"}
    return failed_outcome(error, job.metrics)


def _row(job: Job, outcome: dict) -> dict:
    return {"case": job.case, **job.values, "seed": job.seed, **outcome}
