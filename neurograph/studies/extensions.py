"""Multi-seed studies: every (scenario, seed) run in a process pool, then measured.

Built for the extension experiment (docs/extensions.md): the multiplier
revision's easy -> hard -> easy switch under each deletion selector, with and
without inheritance. Each run is an ordinary run folder,
``out_dir/<scenario name>/seed-<n>/``, written by the library's
:class:`~neurograph.charrnn.trainer.Trainer` and :class:`~neurograph.run.folder.RunFolder`;
a finished one (``summary.json`` with status ``finished``) is never rerun, an
interrupted one continues from its checkpoint, so a study can be stopped and
started again at any time.

Measures (:func:`measures`) come from a run's metrics rows alone:

- ``final_hidden``: hidden neurons at the last row (after returning to easy).
- ``hard_hidden``: hidden neurons at the last row of the first hard phase.
- ``hard_loss``: smoothed loss (nats/char) at the last row of the first hard phase.
- ``final_loss``: smoothed loss at the last row of the run.
- ``recover_<a>_to_<b>``: cycles from the switch into a phase until the
  smoothed loss *settles*: the first row from which it stays at or below
  ``(1 + RECOVERY_TOL) * reference`` to the end of the phase, minus the switch
  cycle. ``reference = max(optimum, L_end)``, with ``L_end`` the phase's
  final smoothed loss: a phase that reaches its optimum is measured against
  the optimum, one that does not (usually hard) against where it ended.
  "Stays" rather than "first gets": right after a switch the smoothed loss
  still carries the previous task's, which may already be under the band.
  Resolution is ``report.every`` cycles.

Run from the shell (:mod:`neurograph_cli.study`)::

    neurograph study scenarios/extensions/*.yaml --seeds 10 --workers 2 --out runs/extensions
"""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from neurograph.run.checkpoint import CHECKPOINT
from neurograph.run.reporters import ReporterSet
from neurograph.run.folder import open_for_resume, prepare_run_folder
from neurograph.run.reader import finished
from neurograph.scenario import Scenario, ScenarioError, load_scenario, scenario_to_yaml
from neurograph.training import run_folder_class, trainer_class

__all__ = [
    "RECOVERY_TOL",
    "MEASURES",
    "RUN_KEYS",
    "StudyError",
    "measures",
    "recovery_cycles",
    "aggregate",
    "run_path",
    "record_of",
    "run_study",
    "run_one",
    "is_finished",
]

RECOVERY_TOL = 0.05  # 5% above the reference: wider than the EMA's noise (~0.5%), narrow enough to mean "back"

# Measure names in report order, with what each means (the switch's recoveries first).
MEASURES = {
    "final_hidden": "hidden neurons at the end (after returning to easy)",
    "hard_hidden": "hidden neurons at the end of the hard phase",
    "hard_loss": "smoothed loss at the end of the hard phase, nats/char",
    "final_loss": "smoothed loss at the end of the run, nats/char",
    "recover_easy_to_hard": "cycles to settle within 5% of max(optimum, phase's final loss) after easy -> hard",
    "recover_hard_to_easy": "cycles to settle within 5% of max(optimum, phase's final loss) after hard -> easy",
}
RUN_KEYS = ("scenario", "seed", "folder", "cycles")  # what identifies a run; every other record key is a measure


class StudyError(RuntimeError):
    """A study that cannot run as asked (a clashing folder, failed runs)."""


# ------------------------------------------------------------------ measures
def measures(metrics_rows: Sequence[dict], phases: Sequence[dict]) -> dict:
    """Measures of one run (see the module docstring); None where undefined.

    ``metrics_rows``: the run's metrics rows (``cycle``, ``loss``, ``hidden``).
    ``phases``: per-phase results as in ``summary.json`` (``task``, ``end_cycle``,
    ``optimum`` or None), in order.
    """
    rows = sorted(metrics_rows, key=lambda r: r["cycle"])
    ends = [p["end_cycle"] for p in phases]
    starts = [0] + ends[:-1]
    in_phase = [[r for r in rows if s < r["cycle"] <= e] for s, e in zip(starts, ends)]
    out = {"final_hidden": rows[-1]["hidden"] if rows else None, "hard_hidden": None, "hard_loss": None}
    out["final_loss"] = rows[-1]["loss"] if rows else None
    hard = next((i for i, p in enumerate(phases) if p["task"] == "hard"), None)
    if hard is not None and in_phase[hard]:
        out["hard_hidden"] = in_phase[hard][-1]["hidden"]
        out["hard_loss"] = in_phase[hard][-1]["loss"]
    for i in range(1, len(phases)):
        name = f"recover_{phases[i - 1]['task']}_to_{phases[i]['task']}"
        if name in out:  # a repeated switch, e.g. easy -> hard twice
            name = f"{name}_{i}"
        out[name] = recovery_cycles(in_phase[i], starts[i], phases[i].get("optimum"))
    return out


def recovery_cycles(rows: Sequence[dict], switch: int, optimum: float | None, tol: float = RECOVERY_TOL) -> int | None:
    """Cycles after ``switch`` until the smoothed loss stays within ``tol`` above the reference.

    ``rows``: one phase's metrics rows in cycle order. Reference: the higher of
    ``optimum`` (when known) and the phase's last loss. None without rows.
    """
    if not rows:
        return None
    losses = np.array([r["loss"] for r in rows])
    reference = losses[-1] if optimum is None else max(optimum, losses[-1])
    above = np.flatnonzero(losses > (1 + tol) * reference)
    first = 0 if above.size == 0 else above[-1] + 1  # the last row is never above: first <= len - 1
    return int(rows[first]["cycle"] - switch)


def aggregate(records: Iterable[dict]) -> dict[str, dict]:
    """Per scenario (first-seen order): ``n`` runs and, per measure, median and quartiles.

    Each measure maps to ``{"median", "q25", "q75", "n"}`` (numpy percentiles
    50/25/75 over the runs where it is defined; NaN where none is).
    """
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(r["scenario"], []).append(r)
    result = {}
    for name, runs in groups.items():
        keys = [k for k in dict.fromkeys(k for r in runs for k in r) if k not in RUN_KEYS]
        stats: dict = {"n": len(runs)}
        for key in keys:
            values = np.array([r[key] for r in runs if r.get(key) is not None], dtype=np.float64)
            q25, median, q75 = np.percentile(values, [25, 50, 75]) if values.size else (np.nan,) * 3
            stats[key] = {"median": float(median), "q25": float(q25), "q75": float(q75), "n": int(values.size)}
        result[name] = stats
    return result


# ------------------------------------------------------------------ running
def run_path(out_dir: Path, scenario: Scenario) -> Path:
    """Where a study keeps one run: ``out_dir/<scenario name>/seed-<n>``."""
    return Path(out_dir) / scenario.name / f"seed-{scenario.seed}"


def record_of(folder: Path) -> dict:
    """One finished run's record: scenario, seed, folder, cycles, measures, wall time, speed."""
    folder = Path(folder)
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    with open(folder / "metrics.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return {
        "scenario": summary["scenario"],
        "seed": summary["seed"],
        "folder": str(folder),
        "cycles": summary["cycles"],
        **measures(rows, summary["phases"]),
        "wall_s": summary["wall_s"],
        "cycles_per_s": summary["cycles"] / max(summary["wall_s"], 1e-9),
    }


def run_study(
    scenario_paths: Sequence[str | Path],
    seeds: Iterable[int],
    *,
    cycles: int | None = None,
    workers: int = 2,
    out_dir: str | Path,
    progress: Callable[[str, int, str], None] | None = None,
    batched: bool = False,
) -> list[dict]:
    """Run every (scenario, seed) not yet finished under ``out_dir``; records of all.

    ``cycles`` scales each scenario's phases to that total (None: as written).
    ``workers`` processes, one torch thread each; 1 runs in this process.
    ``progress(scenario name, seed, status)`` is called as each run is
    skipped, done or failed. ``batched`` trains every unfinished run in one
    :class:`~neurograph.charrnn.trainer.Trainer` (they must share alphabet,
    optimizer and penalty kind); runs with a checkpoint start over. Raises :class:`StudyError` after the other runs
    finish if any run failed, or before starting if a folder holds another
    scenario.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    seeds = list(seeds)
    jobs = _jobs([_scenario(p, s, cycles) for p in scenario_paths for s in seeds], Path(out_dir))
    progress = progress or (lambda name, seed, status: None)
    todo = []
    for folder, scenario in jobs.items():
        if is_finished(folder, scenario):
            progress(scenario.name, scenario.seed, "skipped")
        else:
            todo.append((scenario, folder))
    failures = _execute_batched(todo, progress) if batched and todo else _execute(todo, workers, progress)
    if failures:
        raise StudyError(f"{len(failures)} run(s) failed: " + "; ".join(failures))
    return [record_of(folder) for folder in jobs]


def _jobs(scenarios: list[Scenario], out_dir: Path) -> dict[Path, Scenario]:
    """Run folder -> scenario, once each; StudyError if two different runs share a folder."""
    jobs: dict[Path, Scenario] = {}
    for scenario in scenarios:
        folder = run_path(out_dir, scenario)
        if folder in jobs and scenario_to_yaml(jobs[folder]) != scenario_to_yaml(scenario):
            raise StudyError(f"two different scenarios are named {scenario.name!r}: names must be unique in a study")
        jobs.setdefault(folder, scenario)
    return jobs


def _scenario(path: str | Path, seed: int, cycles: int | None) -> Scenario:
    scenario = load_scenario(path, [f"seed={int(seed)}"], cycles=cycles)
    if scenario.model != "charrnn":
        raise ScenarioError(f"{path}: model: a study trains char-RNN scenarios, got {scenario.model!r}")
    return scenario


def is_finished(folder: Path, scenario: Scenario) -> bool:
    """Whether ``folder`` holds this run, finished; StudyError if it holds another."""
    stored = folder / "scenario.yaml"
    if stored.is_file() and stored.read_text(encoding="utf-8") != scenario_to_yaml(scenario):
        raise StudyError(
            f"{folder}: holds a different run of {scenario.name} (other settings or --cycles); "
            "use another output folder or delete this one"
        )
    return finished(folder)


def _execute(todo: list[tuple[Scenario, Path]], workers: int, progress) -> list[str]:
    """Run ``todo``; returns one message per failed run."""
    failures = []
    if workers == 1 or len(todo) <= 1:
        threads = torch.get_num_threads()
        try:
            _init_worker()
            for scenario, folder in todo:
                failures += _outcome(scenario, progress, lambda: run_one(scenario, folder))
        finally:
            torch.set_num_threads(threads)
        return failures
    # spawn, not fork: a forked torch (OpenMP pools, locks held by other threads) can hang
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker) as pool:
        futures = {pool.submit(run_one, s, folder): s for s, folder in todo}
        for future in as_completed(futures):
            failures += _outcome(futures[future], progress, future.result)
    return failures


def _execute_batched(todo: list[tuple[Scenario, Path]], progress) -> list[str]:
    """Run ``todo`` as one batch in this process; returns one message per unfinished run."""
    from neurograph.charrnn.trainer import Trainer
    from neurograph.run.folder import RunFolder

    reporters = [RunFolder(prepare_run_folder(folder, scenario, force=True)) for scenario, folder in todo]
    threads = torch.get_num_threads()
    _init_worker()
    try:
        summaries = Trainer([s for s, _ in todo], reporters=reporters).run()
    finally:
        torch.set_num_threads(threads)
    failures = []
    for (scenario, _), summary in zip(todo, summaries):
        status = "done" if summary["status"] == "finished" else summary["status"]
        failures += _outcome(scenario, progress, lambda status=status: status)
    return failures


def _outcome(scenario: Scenario, progress, result: Callable[[], str]) -> list[str]:
    try:
        status = result()
    except Exception as e:  # one bad run must not cost the others
        progress(scenario.name, scenario.seed, "failed")
        return [f"{scenario.name} seed-{scenario.seed}: {type(e).__name__}: {e}"]
    progress(scenario.name, scenario.seed, status)
    return [] if status == "done" else [f"{scenario.name} seed-{scenario.seed}: {status}"]


def _init_worker() -> None:
    torch.set_num_threads(1)  # small networks: one thread per run, runs in parallel


def run_one(scenario: Scenario, folder: Path) -> str:
    """Train one run into ``folder`` (continuing its checkpoint if any); "done" or its status."""
    checkpoint = None
    if (folder / CHECKPOINT).is_file():
        _, state, tensors = open_for_resume(folder)
        checkpoint = None if state is None else (state, tensors)
    else:
        prepare_run_folder(folder, scenario, force=True)
    trainer = trainer_class(scenario)(scenario, reporters=ReporterSet([run_folder_class(scenario)(folder)]),
                                      checkpoint=checkpoint)  # fmt: skip
    summary = trainer.run()
    return "done" if summary["status"] == "finished" else summary["status"]
