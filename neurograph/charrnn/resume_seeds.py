"""Continue a seeds directory (``run --seeds``) as one batch.

A seeds directory is what :func:`~neurograph.charrnn.trainer.run_seeds` writes: run
folders ``DIR/seed-<n>/`` and ``DIR/aggregate.json``. :func:`resume_seeds`
reads every folder's checkpoint, checks them all (scenario, checkpoint, logs,
a shared optimizer step count) before it changes anything, then cuts each
unfinished folder's logs back to its checkpoint (as ``neurograph resume``
does for one run), trains those seeds in one
:class:`~neurograph.charrnn.trainer.BatchedTrainer` and rewrites the aggregate from
every seed's whole metrics log. Seeds that had finished are not retrained.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from neurograph.charrnn.trainer import BatchedTrainer
from neurograph.studies.aggregate import aggregate_rows
from neurograph.run.checkpoint import CHECKPOINT
from neurograph.run.export import read_jsonl
from neurograph.run.reporters import Reporter, ReporterSet
from neurograph.run.folder import RunFolder, RunFolderError, cut_logs, read_for_resume, write_json_atomic
from neurograph.scenario import Scenario

__all__ = ["is_seeds_dir", "seed_folders", "resume_seeds"]

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


def resume_seeds(
    root: Path,
    *,
    reporter_for: Callable[[Scenario], Reporter] | None = None,
    kernel: str | None = None,
    train: Callable[[BatchedTrainer], list[dict]] | None = None,
) -> list[dict]:
    """Continue every unfinished seed of ``root`` in one batch; rewrite ``root/aggregate.json``.

    ``reporter_for(scenario)`` may add a reporter per trained seed (a progress
    display); ``train(trainer)`` runs the batch (default ``trainer.run()``, as
    :func:`~neurograph.charrnn.trainer.run_seeds`). Returns the trained seeds' summaries, by seed. Raises
    :class:`RunFolderError` for an unusable folder or when every seed has
    finished, ValueError when the seeds cannot continue as one batch (their
    checkpoints were taken at different optimizer steps, say); either way no
    log has been cut yet.
    """
    root = Path(root)
    folders = seed_folders(root)
    if not folders:
        raise RunFolderError(f"{root}: no seed-<n>/ run folders to resume")
    opened = [(folder, *read_for_resume(folder)) for folder in folders]
    todo = [entry for entry in opened if not _finished(entry[1], entry[2])]
    if not todo:
        raise RunFolderError(f"{root}: every seed already finished ({len(folders)} seed folders)")
    trainer = BatchedTrainer(
        [scenario for _, scenario, *_ in todo],
        checkpoints=[None if state is None else (state, tensors) for _, _, state, tensors, _ in todo],
        kernel=kernel,
    )
    for member, (folder, scenario, state, _, sizes) in zip(trainer.members, todo):
        if state is not None:
            cut_logs(folder, sizes)
        extra = [reporter_for(scenario)] if reporter_for is not None else []
        member.reporters = ReporterSet([RunFolder(folder), *extra])
    summaries = train(trainer) if train is not None else trainer.run()
    _write_aggregate(root, opened[0][1].name, folders)
    return summaries


def _finished(scenario: Scenario, state: dict | None) -> bool:
    return state is not None and state["cycle"] >= scenario.total_cycles


def _write_aggregate(root: Path, name: str, folders: list[Path]) -> None:
    """``root/aggregate.json`` from each seed folder's whole ``metrics.jsonl``."""
    rows = {_seed(folder): read_jsonl(folder / "metrics.jsonl") for folder in folders}
    write_json_atomic(root / "aggregate.json", {"scenario": name, **aggregate_rows(rows)})
