"""Many seeds of one scenario as one batch: ``run --seeds`` and its resume.

:func:`run_seeds` trains a scenario over seeds in one
:class:`~neurograph.charrnn.trainer.Trainer` into a seeds directory: run
folders ``DIR/seed-<n>/`` and ``DIR/aggregate.json``. :func:`resume_seeds`
reads every folder's checkpoint, checks them all (scenario, checkpoint, logs,
a shared optimizer step count) before it changes anything, then cuts each
unfinished folder's logs back to its checkpoint (as ``neurograph resume``
does for one run), trains those seeds in one
:class:`~neurograph.charrnn.trainer.Trainer` and rewrites the aggregate from
every seed's whole metrics log. Seeds that had finished are not retrained.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from neurograph.charrnn.trainer import Trainer
from neurograph.studies.aggregate import aggregate_rows
from neurograph.run.checkpoint import CHECKPOINT
from neurograph.run.reader import finished, read_jsonl
from neurograph.run.reporters import Reporter, ReporterSet
from neurograph.run.lock import LOCK
from neurograph.run.folder import (
    RunFolder,
    RunFolderError,
    cut_logs,
    lock_run_folder,
    prepare_run_folder,
    read_for_resume,
    record_scenario_changes,
    release_run_folder,
    write_json_atomic,
)
from neurograph.scenario import Scenario, load_scenario
from neurograph.training import trainer_class

__all__ = ["is_seeds_dir", "seed_folders", "run_seeds", "resume_seeds"]

_SEED_FOLDER = re.compile(r"seed-(\d+)")


def seed_folders(root: Path) -> list[Path]:
    """``root/seed-<n>/`` folders, by seed."""
    found = [(_seed(p), p) for p in Path(root).glob("seed-*") if p.is_dir() and _SEED_FOLDER.fullmatch(p.name)]
    return [p for _, p in sorted(found)]


def _seed(folder: Path) -> int:
    return int(_SEED_FOLDER.fullmatch(folder.name).group(1))


def is_seeds_dir(path: Path) -> bool:
    """True for a folder of ``seed-<n>/`` run folders that is not a run folder itself."""
    path = Path(path)
    own = (path / "scenario.yaml").exists() or (path / CHECKPOINT).exists()
    return path.is_dir() and not own and bool(seed_folders(path))


def run_seeds(
    scenario: Scenario,
    seeds: list[int],
    out_root: Path,
    *,
    force: bool = False,
    reporter_for: Callable[[Scenario], Reporter] | None = None,
    train: Callable[[Trainer], list[dict]] | None = None,
) -> list[dict]:
    """Run ``scenario`` for each seed, batched, into run folders ``out_root/seed-<n>/``.

    Each folder is an ordinary run folder (``prepare_run_folder`` + ``RunFolder``);
    ``reporter_for(seeded scenario)`` may add a reporter per member (a progress
    display); ``train(trainer)`` runs the batch (default ``trainer.run()``; the
    command line's turns Ctrl-C into :meth:`Trainer.request_stop`).
    Writes ``out_root/aggregate.json``: median and inter-quartile range over
    seeds of the loss and the hidden size at each metrics cycle
    (:func:`~neurograph.studies.aggregate.aggregate_rows`). Returns the
    members' summaries in the order of ``seeds``.
    """
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"seeds must be a non-empty list of distinct integers >= 0, got {seeds}")
    out_root = Path(out_root)
    scenarios = [scenario.model_copy(update={"seed": int(s)}) for s in seeds]
    collectors = [_Rows() for _ in seeds]
    for s in scenarios:  # every seed folder there is, before --force empties any of them
        if (out_root / f"seed-{s.seed}").is_dir():
            lock_run_folder(out_root / f"seed-{s.seed}")
    sets = []
    for s, rows in zip(scenarios, collectors):
        folder = prepare_run_folder(out_root / f"seed-{s.seed}", s, force=force)
        extra = [reporter_for(s)] if reporter_for is not None else []
        sets.append(ReporterSet([RunFolder(folder), rows, *extra]))
    trainer = trainer_class(scenario)(scenarios, reporters=sets)
    summaries = train(trainer) if train is not None else trainer.run()
    aggregate = aggregate_rows({s.seed: rows.rows for s, rows in zip(scenarios, collectors)})
    write_json_atomic(out_root / "aggregate.json", {"scenario": scenario.name, **aggregate})
    return summaries


class _Rows(Reporter):
    """Keeps a member's metrics rows for the aggregate."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def metrics(self, row):
        self.rows.append(row)



def resume_seeds(
    root: Path,
    *,
    reporter_for: Callable[[Scenario], Reporter] | None = None,
    kernel: str | None = None,
    train: Callable[[Trainer], list[dict]] | None = None,
    allow_changed: bool = False,
) -> list[dict]:
    """Continue every unfinished seed of ``root`` in one batch; rewrite ``root/aggregate.json``.

    ``reporter_for(scenario)`` may add a reporter per trained seed (a progress
    display); ``train(trainer)`` runs the batch (default ``trainer.run()``, as
    :func:`run_seeds`); ``allow_changed``: as for
    :func:`~neurograph.run.folder.open_for_resume`. Every seed folder is
    locked while this runs. Returns the trained seeds' summaries, by seed. Raises
    :class:`RunFolderError` for an unusable folder or when every seed has
    finished, ValueError when the seeds cannot continue as one batch (their
    checkpoints were taken at different optimizer steps, say); either way no
    log has been cut yet.
    """
    root = Path(root)
    folders = seed_folders(root)
    if not folders:
        raise RunFolderError(f"{root}: no seed-<n>/ run folders to resume")
    _complete_unwritten(root, folders)
    try:
        opened = [(folder, *read_for_resume(folder, allow_changed=allow_changed)) for folder in folders]
        todo = [entry for entry in opened if not finished(entry[0])]
        if not todo:
            raise RunFolderError(f"{root}: every seed already finished ({len(folders)} seed folders)")
        trainer = trainer_class(todo[0][1])(
            [scenario for _, scenario, *_ in todo],
            checkpoints=[None if state is None else (state, tensors) for _, _, state, tensors, _ in todo],
            kernel=kernel,
        )
        for member, (folder, scenario, state, _, sizes) in zip(trainer.members, todo):
            if state is not None:
                cut_logs(folder, sizes)
                record_scenario_changes(folder, scenario, state)
            extra = [reporter_for(scenario)] if reporter_for is not None else []
            member.reporters = ReporterSet([RunFolder(folder), *extra])
        summaries = train(trainer) if train is not None else trainer.run()
        _write_aggregate(root, opened[0][1].name, folders)
    finally:
        for folder in folders:
            release_run_folder(folder)
    return summaries


def _complete_unwritten(root: Path, folders: list[Path]) -> None:
    """Give seed folders that a kill left before their scenario was written (empty
    but for the lock) the scenario of their siblings with their own seed: the
    batch then trains them from cycle 0."""
    unwritten = [f for f in folders if not (f / "scenario.yaml").exists() and not _holds_files(f)]
    written = [f for f in folders if (f / "scenario.yaml").exists()]
    if not unwritten:
        return
    if not written:
        raise RunFolderError(
            f"{root}: stopped before any seed wrote its scenario; nothing was trained: "
            "start it again with `neurograph run SCENARIO --seeds ... --out` this folder"
        )
    base = load_scenario(written[0] / "scenario.yaml")
    for folder in unwritten:
        prepare_run_folder(folder, base.model_copy(update={"seed": _seed(folder)}))
        release_run_folder(folder)


def _holds_files(folder: Path) -> bool:
    return any(p.name != LOCK for p in folder.iterdir())


def _write_aggregate(root: Path, name: str, folders: list[Path]) -> None:
    """``root/aggregate.json`` from each seed folder's whole ``metrics.jsonl``."""
    rows = {_seed(folder): read_jsonl(folder / "metrics.jsonl") for folder in folders}
    write_json_atomic(root / "aggregate.json", {"scenario": name, **aggregate_rows(rows)})
