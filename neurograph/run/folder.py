"""Run folders: what a run leaves on disk, written as it goes.

Layout of a run folder::

    scenario.yaml        fully resolved scenario (every default written out)
    metrics.jsonl        one metrics row per line (see neurograph.charrnn.trainer)
    events.jsonl         one structural event per line (id, age, lineage)
    fossils.jsonl        each deleted neuron's values and wiring at death (char-RNN; for the lifetime view)
    graphs/cycle-N.graphml  periodic snapshots
    graph.graphml        final graph
    summary.json         final size and loss, wall time, cycles/s, status
    checkpoint.safetensors  the last checkpoint (neurograph.run.checkpoint); its state also
                         records the thread count and the neurograph version it was written under
    changes.jsonl        each resume that continued under a changed scenario.yaml (--allow-changed)
    .lock                the writer's lock (neurograph.run.lock)

Lines are flushed as they are written and JSON/GraphML files are replaced
atomically, so a crash loses at most the line being written.

One process writes a run folder at a time: :func:`prepare_run_folder` and
:func:`read_for_resume` lock it (:class:`RunFolderBusy` if another process
holds it) and the :class:`RunFolder` writing the run lets go at its end; a
process that dies lets go with it. A resume refuses a checkpoint trained
under another scenario than ``scenario.yaml`` (see neurograph.run.integrity)
unless asked to continue anyway, which ``changes.jsonl`` then records.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from pathlib import Path

import torch

from neurograph import __version__
from neurograph.atomic import write_text_atomic
from neurograph.graph import Fossil
from neurograph.run.checkpoint import CHECKPOINT, CheckpointError, load_checkpoint, save_checkpoint
from neurograph.graphml import write_graphml
from neurograph.run import lock
from neurograph.run.integrity import scenario_changes, scenario_digest, scenario_values, summarize_changes
from neurograph.run.reporters import Reporter
from neurograph.scenario import Scenario, ScenarioError, load_scenario, scenario_to_yaml

__all__ = [
    "RunFolderError",
    "RunFolderBusy",
    "CheckpointWarning",
    "RunFolder",
    "lock_run_folder",
    "release_run_folder",
    "prepare_run_folder",
    "open_for_resume",
    "read_for_resume",
    "cut_logs",
    "record_scenario_changes",
    "write_json_atomic",
    "FOSSILS",
    "fossil_dict",
]

_LOGS = ("metrics.jsonl", "events.jsonl")
FOSSILS = "fossils.jsonl"
_CHANGES = "changes.jsonl"


class RunFolderError(ValueError):
    """A run folder that cannot be created or used."""


class RunFolderBusy(RunFolderError):
    """A run folder another process is writing."""


class CheckpointWarning(UserWarning):
    """A checkpoint resumed without the checks it predates (no scenario digest), or written by another version."""


def lock_run_folder(path: Path) -> None:
    """Hold ``path``'s writer lock in this process; RunFolderBusy if another process holds it."""
    try:
        held = lock.acquire(path)
    except OSError as e:
        raise RunFolderError(f"{path}: run folder not writable ({e.strerror})") from None
    if not held:
        raise RunFolderBusy(
            f"{path}: run folder is in use by another process (one writer at a time: wait for it or stop it)"
        )


def release_run_folder(path: Path) -> None:
    """Let go of ``path``'s writer lock (a :class:`RunFolder` does at its end)."""
    lock.release(path)


def fossil_dict(f: Fossil) -> dict:
    """One line of ``fossils.jsonl``: the neuron's record at death and its wiring, ``[[other id, w], ...]``."""
    n = f.neuron
    return {
        "neuron": n.id, "role": n.role, "born": n.born, "died": n.died, "bias": n.bias, "multiplier": n.multiplier,
        "incoming": [[i, w] for i, w in f.incoming.items()], "outgoing": [[i, w] for i, w in f.outgoing.items()],
    }  # fmt: skip


def write_json_atomic(path: Path, data) -> None:
    """Write JSON through a temporary file, fsync, rename."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def prepare_run_folder(path: Path, scenario: Scenario, *, force: bool = False) -> Path:
    """Create ``path`` for a new run and lock it; refuses a non-empty folder unless ``force``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"{path}: exists and is not a folder")
    try:
        if path.is_dir() and any(p.name != lock.LOCK for p in path.iterdir()):
            if not force:
                raise RunFolderError(f"{path}: run folder exists and is not empty (use --force to overwrite)")
            _probe_writable(path)  # before deleting anything
            lock_run_folder(path)
            _remove_run_files(path)
        path.mkdir(parents=True, exist_ok=True)
        _probe_writable(path)
        lock_run_folder(path)
    except OSError as e:
        raise RunFolderError(f"{path}: output folder not writable ({e.strerror})") from None
    write_text_atomic(path / "scenario.yaml", scenario_to_yaml(scenario))
    return path


def _remove_run_files(path: Path) -> None:
    """What a previous run left (--force); other files in the folder stay."""
    for name in (*_LOGS, FOSSILS, "summary.json", "graph.graphml", CHECKPOINT, "plot.png", "lineage.png", _CHANGES):
        (path / name).unlink(missing_ok=True)
    shutil.rmtree(path / "export", ignore_errors=True)
    for snapshot in (path / "graphs").glob("cycle-*.graphml"):
        snapshot.unlink()


class RunFolder(Reporter):
    """Reporter that writes metrics, events, snapshots and the summary; holds the folder's lock until ``end``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        lock_run_folder(self.path)  # already held after prepare_run_folder or open_for_resume
        self._metrics = open(self.path / "metrics.jsonl", "a", encoding="utf-8")
        self._events = open(self.path / "events.jsonl", "a", encoding="utf-8")
        self._fossils = None  # fossils.jsonl, opened at the first deletion

    def metrics(self, row):
        self._metrics.write(json.dumps(row) + "\n")
        self._metrics.flush()

    def events(self, events):
        for e in events:
            self._events.write(json.dumps(e.to_dict()) + "\n")
        self._events.flush()

    def fossils(self, fossils):
        # not cut back on resume: a resumed run deletes the same neurons again, and readers keep the last line
        if self._fossils is None:
            self._fossils = open(self.path / FOSSILS, "a", encoding="utf-8")
        for f in fossils:
            self._fossils.write(json.dumps(fossil_dict(f)) + "\n")
        self._fossils.flush()

    def snapshot(self, cycle, graph, reserve, final):
        if final:
            write_graphml(graph, self.path / "graph.graphml", reserve=reserve)
        else:
            (self.path / "graphs").mkdir(exist_ok=True)
            write_graphml(graph, self.path / "graphs" / f"cycle-{cycle}.graphml", reserve=reserve)

    def checkpoint(self, cycle, state, tensors):
        # log lengths at this cycle: a resume truncates the logs back to them; the thread count and the
        # library's version: a run continues bit for bit only under both (resume uses the one, warns of the other)
        logs = {name: (self.path / name).stat().st_size for name in _LOGS}
        state = dict(state, logs=logs, threads=torch.get_num_threads(), neurograph_version=__version__)
        save_checkpoint(self.path, state, tensors)

    def end(self, summary):
        write_json_atomic(self.path / "summary.json", summary)
        self._metrics.close()
        self._events.close()
        if self._fossils is not None:
            self._fossils.close()
        release_run_folder(self.path)


def open_for_resume(
    path: Path, loader=load_scenario, *, allow_changed: bool = False
) -> tuple[Scenario, dict | None, dict | None]:
    """Scenario, checkpoint state and tensors of a run folder, locked; logs cut to the checkpoint.

    ``loader(path)`` reads the folder's ``scenario.yaml`` (the char-RNN's by
    default; the URN passes its own). State and tensors are None for a run
    killed before it wrote anything: it starts from cycle 0.

    Raises :class:`RunFolderError` for a folder that is not a run, whose
    checkpoint is unusable or was trained under another scenario than
    ``scenario.yaml`` (unless ``allow_changed``: the change is then recorded
    in ``changes.jsonl``), and :class:`RunFolderBusy` for one another process
    is writing.
    """
    scenario, state, tensors, sizes = read_for_resume(path, loader, allow_changed=allow_changed)
    if state is not None:
        cut_logs(path, sizes)
        record_scenario_changes(path, scenario, state)
    return scenario, state, tensors


def read_for_resume(
    path: Path, loader=load_scenario, *, allow_changed: bool = False
) -> tuple[Scenario, dict | None, dict | None, dict[Path, int]]:
    """:func:`open_for_resume` without cutting or recording anything: also each log's length at
    the checkpoint, for :func:`cut_logs` (a batch checks every folder before it cuts one).

    The folder stays locked by this process, unless this raises."""
    path = Path(path)
    if not (path / "scenario.yaml").is_file():
        if path.is_dir() and all(p.name == lock.LOCK for p in path.iterdir()):
            raise RunFolderError(
                f"{path}: stopped before it wrote its scenario, nothing was trained: "
                f"start it again with `neurograph run SCENARIO --out {path}`"
            )
        raise RunFolderError(f"{path}: not a run folder (scenario.yaml missing)")
    lock_run_folder(path)
    try:
        return _read_locked(path, loader, allow_changed)
    except BaseException:
        release_run_folder(path)
        raise


def _read_locked(path: Path, loader, allow_changed: bool):
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
    _check_same_scenario(path, scenario, state, allow_changed)
    _check_same_version(path, state)
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


def _check_same_scenario(path: Path, scenario: Scenario, state: dict, allow_changed: bool) -> None:
    """RunFolderError naming what differs if ``scenario`` is not the one the checkpoint was trained under."""
    if "scenario_sha256" not in state:
        warnings.warn(
            f"{path / CHECKPOINT}: written before checkpoints recorded their scenario and digest; "
            "resuming without checking scenario.yaml against it",
            CheckpointWarning,
            stacklevel=4,
        )
        return
    if allow_changed or scenario_digest(scenario_values(scenario)) == state["scenario_sha256"]:
        return
    changes = scenario_changes(state.get("scenario_values", {}), scenario_values(scenario))
    raise RunFolderError(
        f"{path / 'scenario.yaml'}: changed since the checkpoint at cycle {state.get('cycle')}: "
        f"{summarize_changes(changes) or 'its digest differs'} (resume --allow-changed continues under the new one)"
    )


def _check_same_version(path: Path, state: dict) -> None:
    """A :class:`CheckpointWarning` when another neurograph version wrote the checkpoint."""
    written_by = state.get("neurograph_version")
    if written_by is not None and written_by != __version__:
        warnings.warn(
            f"{path / CHECKPOINT}: written by neurograph {written_by}, resumed by {__version__}; "
            "the result may differ from an uninterrupted run's",
            CheckpointWarning,
            stacklevel=4,
        )


def record_scenario_changes(path: Path, scenario: Scenario, state: dict) -> list[str]:
    """Append to ``changes.jsonl`` how ``scenario`` differs from the one ``state`` was trained under; the changes."""
    if "scenario_values" not in state:
        return []
    changes = scenario_changes(state["scenario_values"], scenario_values(scenario))
    if changes:
        record = {"cycle": state.get("cycle"), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "changes": changes}
        with open(Path(path) / _CHANGES, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    return changes


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
