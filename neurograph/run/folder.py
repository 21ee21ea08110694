"""Run folders: what a run leaves on disk, written as it goes.

Layout of a run folder::

    scenario.yaml        fully resolved scenario (every default written out)
    metrics.jsonl        one metrics row per line (see neurograph.charrnn.train)
    events.jsonl         one structural event per line (id, age, lineage)
    graphs/cycle-N.graphml  periodic snapshots
    graph.graphml        final graph
    summary.json         final size and loss, wall time, cycles/s, status

Lines are flushed as they are written and JSON/GraphML files are replaced
atomically, so a crash loses at most the line being written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from neurograph.atomic import write_text_atomic
from neurograph.run.checkpoint import CHECKPOINT, CheckpointError, load_checkpoint, save_checkpoint
from neurograph.graphml import write_graphml
from neurograph.run.reporters import Reporter
from neurograph.scenario import Scenario, ScenarioError, load_scenario, scenario_to_yaml

__all__ = [
    "RunFolderError",
    "RunFolder",
    "prepare_run_folder",
    "open_for_resume",
    "read_for_resume",
    "cut_logs",
    "write_json_atomic",
]

_LOGS = ("metrics.jsonl", "events.jsonl")


class RunFolderError(ValueError):
    """A run folder that cannot be created or used."""


def write_json_atomic(path: Path, data) -> None:
    """Write JSON through a temporary file, fsync, rename."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def prepare_run_folder(path: Path, scenario: Scenario, *, force: bool = False) -> Path:
    """Create ``path`` for a new run; refuses a non-empty folder unless ``force``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"{path}: exists and is not a folder")
    try:
        if path.is_dir() and any(path.iterdir()):
            if not force:
                raise RunFolderError(f"{path}: run folder exists and is not empty (use --force to overwrite)")
            _probe_writable(path)  # before deleting anything
            _remove_run_files(path)
        path.mkdir(parents=True, exist_ok=True)
        _probe_writable(path)
    except OSError as e:
        raise RunFolderError(f"{path}: output folder not writable ({e.strerror})") from None
    write_text_atomic(path / "scenario.yaml", scenario_to_yaml(scenario))
    return path


def _remove_run_files(path: Path) -> None:
    """What a previous run left (--force); other files in the folder stay."""
    for name in (*_LOGS, "summary.json", "graph.graphml", CHECKPOINT, "plot.png"):
        (path / name).unlink(missing_ok=True)
    shutil.rmtree(path / "export", ignore_errors=True)
    for snapshot in (path / "graphs").glob("cycle-*.graphml"):
        snapshot.unlink()


class RunFolder(Reporter):
    """Reporter that writes metrics, events, snapshots and the summary."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._metrics = open(self.path / "metrics.jsonl", "a", encoding="utf-8")
        self._events = open(self.path / "events.jsonl", "a", encoding="utf-8")

    def metrics(self, row):
        self._metrics.write(json.dumps(row) + "\n")
        self._metrics.flush()

    def events(self, events):
        for e in events:
            self._events.write(json.dumps(e.to_dict()) + "\n")
        self._events.flush()

    def snapshot(self, cycle, graph, reserve, final):
        if final:
            write_graphml(graph, self.path / "graph.graphml", reserve=reserve)
        else:
            (self.path / "graphs").mkdir(exist_ok=True)
            write_graphml(graph, self.path / "graphs" / f"cycle-{cycle}.graphml", reserve=reserve)

    def checkpoint(self, cycle, state, tensors):
        # log lengths at this cycle: a resume truncates the logs back to them
        state = dict(state, logs={name: (self.path / name).stat().st_size for name in _LOGS})
        save_checkpoint(self.path, state, tensors)

    def end(self, summary):
        write_json_atomic(self.path / "summary.json", summary)
        self._metrics.close()
        self._events.close()


def open_for_resume(path: Path, loader=load_scenario) -> tuple[Scenario, dict | None, dict | None]:
    """Scenario, checkpoint state and tensors of a run folder; logs cut to the checkpoint.

    ``loader(path)`` reads the folder's ``scenario.yaml`` (the char-RNN's by
    default; the URN passes its own). State and tensors are None for a run
    killed before it wrote anything: it starts from cycle 0.

    Raises :class:`RunFolderError` for a folder that is not a run or whose
    checkpoint is unusable.
    """
    scenario, state, tensors, sizes = read_for_resume(path, loader)
    if state is not None:
        cut_logs(path, sizes)
    return scenario, state, tensors


def read_for_resume(
    path: Path, loader=load_scenario
) -> tuple[Scenario, dict | None, dict | None, dict[Path, int]]:
    """:func:`open_for_resume` without cutting anything: also each log's length at the
    checkpoint, for :func:`cut_logs` (a batch checks every folder before it cuts one)."""
    path = Path(path)
    if not (path / "scenario.yaml").is_file():
        raise RunFolderError(f"{path}: not a run folder (scenario.yaml missing)")
    for tmp in path.glob(f".{CHECKPOINT}.*.tmp"):  # left by a kill mid-write
        tmp.unlink(missing_ok=True)
    try:
        scenario = loader(path / "scenario.yaml")
        if not (path / CHECKPOINT).exists() and not _logged_anything(path):
            return scenario, None, None, {}  # killed before its first checkpoint: start over
        state, tensors = load_checkpoint(path)
    except (ScenarioError, CheckpointError) as e:
        raise RunFolderError(str(e)) from None
    _check_same_run(path, scenario, state)
    return scenario, state, tensors, _log_sizes(path, state)


def cut_logs(path: Path, sizes: dict[Path, int]) -> None:
    """Truncate each log to its length at the checkpoint (``sizes`` from :func:`read_for_resume`)."""
    try:
        _probe_writable(Path(path))
        for log, size in sizes.items():
            with open(log, "r+b") as f:
                f.truncate(size)
    except OSError as e:
        raise RunFolderError(f"{path}: run folder not writable ({e.strerror})") from None


def _logged_anything(path: Path) -> bool:
    return any((path / name).is_file() and (path / name).stat().st_size > 0 for name in _LOGS)


def _check_same_run(path: Path, scenario: Scenario, state: dict) -> None:
    found = (state.get("scenario"), state.get("seed"))
    if found != (scenario.name, scenario.seed):
        raise RunFolderError(
            f"{path / CHECKPOINT}: checkpoint is of scenario {found[0]!r} seed {found[1]}, "
            f"but scenario.yaml is {scenario.name!r} seed {scenario.seed}"
        )


def _log_sizes(path: Path, state: dict) -> dict[Path, int]:
    """Each log's byte length at the checkpoint; RunFolderError if one is shorter now."""
    sizes = {path / name: size for name, size in state.get("logs", {}).items() if name in _LOGS}
    for log, size in sizes.items():
        if not log.is_file() or log.stat().st_size < size:
            raise RunFolderError(f"{log}: shorter than at the checkpoint; the run folder was modified")
    return sizes


def _probe_writable(path: Path) -> None:
    """OSError unless a file can be created in ``path`` (permissions alone lie to root)."""
    probe = path / ".write-test"
    probe.write_text("")
    probe.unlink()
