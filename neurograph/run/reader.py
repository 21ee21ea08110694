"""Reading a run folder back: its logs, snapshots, graphs, phases and summary.

A run folder (:mod:`neurograph.run.folder`) is written as the run goes; every
command that looks at one (``show``, ``plot``, ``export``, ``report``, batch
resume) reads it through here. A run that has not finished (killed, or still
running) is described from its logs and its checkpoint.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import networkx as nx
import yaml

from neurograph.graph import Event, Fossil, Graph, Neuron
from neurograph.graphml import read_graphml
from neurograph.run.checkpoint import CheckpointError, load_checkpoint
from neurograph.run.folder import FOSSILS, RunFolderError
from neurograph.run.network_state import trained_graph

__all__ = [
    "ExportError",
    "finished",
    "run_folder",
    "read_jsonl",
    "read_events",
    "read_fossils",
    "snapshot_cycles",
    "graph_file",
    "load_graph",
    "run_graph",
    "checkpoint_graph",
    "run_phases",
    "run_summary",
]

_SNAPSHOT = re.compile(r"cycle-(\d+)\.graphml")


class ExportError(ValueError):
    """An export that cannot be written."""


def run_folder(path: str | os.PathLike) -> Path:
    """``path`` if it is a run folder (it has ``scenario.yaml``), else :class:`RunFolderError`."""
    path = Path(path)
    if not (path / "scenario.yaml").is_file():
        raise RunFolderError(f"{path}: not a run folder (scenario.yaml missing)")
    return path


def finished(run_dir: str | os.PathLike) -> bool:
    """True when the run's ``summary.json`` says it finished. A run killed while it
    finished has its final checkpoint but no such summary: ``resume`` completes it."""
    try:
        return json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8")).get("status") == "finished"
    except (OSError, ValueError):
        return False


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSON-lines log; [] if absent. A cut last line (a crash mid-write) is skipped."""
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = []
    for n, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if n < len(lines):
                raise RunFolderError(f"{path}: line {n} is not JSON") from None
    return rows


def read_events(run_dir: Path) -> list[Event]:
    """Structural events of a run (``events.jsonl``)."""
    path = Path(run_dir) / "events.jsonl"
    try:
        return [Event(**row) for row in read_jsonl(path)]
    except TypeError as e:
        raise RunFolderError(f"{path}: not an event log ({e})") from None


def read_fossils(run_dir: Path) -> list[Fossil]:
    """Deleted neurons with their wiring at death (``fossils.jsonl``), the last line per neuron."""
    path = Path(run_dir) / FOSSILS
    fossils = {}
    try:
        for row in read_jsonl(path):
            n = Neuron(row["neuron"], row["role"], born=row["born"], died=row["died"], bias=row["bias"],
                       multiplier=row["multiplier"])  # fmt: skip
            wiring = [{int(i): float(w) for i, w in row[k]} for k in ("incoming", "outgoing")]
            fossils[n.id] = Fossil(n, *wiring)
    except (KeyError, TypeError, ValueError) as e:
        raise RunFolderError(f"{path}: not a fossil log ({type(e).__name__}: {e})") from None
    return [fossils[i] for i in sorted(fossils)]


def snapshot_cycles(run_dir: Path) -> list[int]:
    """Cycles that have a snapshot in ``graphs/``, ascending."""
    folder = Path(run_dir) / "graphs"
    names = (p.name for p in folder.iterdir()) if folder.is_dir() else ()
    return sorted(int(m.group(1)) for m in map(_SNAPSHOT.fullmatch, names) if m)


def graph_file(run_dir: Path, cycle: int | None = None) -> Path:
    """The final graph, or the snapshot at ``cycle``; :class:`RunFolderError` naming what exists."""
    run_dir = Path(run_dir)
    path = run_dir / ("graph.graphml" if cycle is None else f"graphs/cycle-{cycle}.graphml")
    if path.is_file():
        return path
    cycles = ", ".join(map(str, snapshot_cycles(run_dir))) or "none"
    what = "no final graph.graphml (run not finished)" if cycle is None else f"no snapshot at cycle {cycle}"
    raise RunFolderError(f"{run_dir}: {what}; snapshot cycles: {cycles}")


def run_graph(run_dir: str | os.PathLike, cycle: int | None = None) -> tuple[Graph, list[int]]:
    """The run's final graph (or its snapshot at ``cycle``) and the ids it marks ``reserve``.

    A finished run without ``graph.graphml`` (a URN too large for a full
    snapshot, see neurograph.urn.runfolder) gives its final checkpoint's
    graph with the trained values; a checkpoint records no reserve states.
    """
    run_dir = Path(run_dir)
    if cycle is None and not (run_dir / "graph.graphml").is_file():
        summary = _summary_file(run_dir)
        if summary.get("status") == "finished":
            graph = checkpoint_graph(run_dir)
            if graph is not None and graph.cycle == summary.get("cycles"):
                return graph, []
    return load_graph(graph_file(run_dir, cycle))


def checkpoint_graph(run_dir: str | os.PathLike) -> Graph | None:
    """The graph of the run's checkpoint with its trained values (graveyard and all); None without one."""
    try:
        state, tensors = load_checkpoint(Path(run_dir))
        return trained_graph(state, tensors)
    except (CheckpointError, KeyError, TypeError, ValueError):
        return None


def _summary_file(run_dir: Path) -> dict:
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}


def load_graph(path: Path) -> tuple[Graph, list[int]]:
    """Graph of a GraphML file and the ids it marks ``reserve`` (the Graph has no such state)."""
    graph = read_graphml(path)  # validates the file first
    states = nx.get_node_attributes(nx.read_graphml(path), "state")
    labels = {n.label: i for i, n in graph.neurons.items()}
    return graph, sorted(labels[name] for name, state in states.items() if state == "reserve")


def run_phases(run_dir: str | os.PathLike, metrics_rows: list[dict] = ()) -> list[dict]:
    """Phases of the run's scenario: ``task``, ``start``, ``end`` (cycles), ``optimum``.

    ``optimum`` (nats per character) comes from the metrics rows of that phase;
    None for a phase not reached yet or a task without one.
    """
    outline = _scenario_outline(run_folder(run_dir) / "scenario.yaml")
    optimum = {}
    for row in metrics_rows:
        optimum.setdefault(row.get("phase"), row.get("optimum"))
    phases, start = [], 0
    for i, (task, cycles) in enumerate(outline["phases"]):
        phases.append({"task": task, "start": start, "end": start + cycles, "optimum": optimum.get(i)})
        start += cycles
    return phases


def _scenario_outline(path: Path) -> dict:
    """Name, seed and (task kind, cycles) per phase, read without resolving the scenario.

    The resolved file could fail to load elsewhere (a text task's file is not
    copied into the run folder); these fields are all an overview needs.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        phases = [(str(p["task"]["kind"]), int(p["cycles"] if "cycles" in p else p["epochs"])) for p in data["phases"]]
        return {"name": str(data["name"]), "seed": int(data.get("seed", 0)), "phases": phases}
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, ValueError) as e:
        problem = " ".join(str(e).split()) or type(e).__name__
        raise RunFolderError(f"{path}: not a resolved scenario ({problem})") from None


def run_summary(run_dir: str | os.PathLike) -> dict:
    """The run's ``summary.json``, or for a run without one the same fields rebuilt.

    A crashed (or still running) run has no summary: it is rebuilt from the last
    metrics row, the scenario and the checkpoint, with ``status`` "incomplete";
    ``checkpoint_cycle`` is the cycle a resume would continue from (None if the
    checkpoint is unusable) and ``wall_s`` the wall time at that checkpoint.
    ``phases`` lists finished phases, then the phase of the last row so far.
    """
    run_dir = run_folder(run_dir)
    rows = read_jsonl(run_dir / "metrics.jsonl")
    path = run_dir / "summary.json"
    if path.is_file():
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RunFolderError(f"{path}: not JSON ({e})") from None
        if not rows or rows[-1].get("cycle", 0) <= summary.get("cycles", 0):  # else: resumed since, then crashed
            return dict(summary, phases=_phase_results(summary.get("phases", []), rows))
    return _rebuilt_summary(run_dir, rows)


# a model's own fields of its rows that its summary also has (layered: depth, widths, accuracies)
_MODEL_FIELDS = ("loss_unit", "depth", "widths", "areas", "layer_adds", "layer_deletes", "accuracy", "test_accuracy")


def _rebuilt_summary(run_dir: Path, rows: list[dict]) -> dict:
    outline = _scenario_outline(run_dir / "scenario.yaml")
    try:
        state, _ = load_checkpoint(run_dir)
    except CheckpointError:
        state = {}
    last = rows[-1] if rows else {}
    return {
        "scenario": outline["name"],
        "seed": outline["seed"],
        "status": "incomplete",
        "cycles": max(last.get("cycle", 0), state.get("cycle", 0)),
        "checkpoint_cycle": state.get("cycle"),
        "total_cycles": sum(cycles for _, cycles in outline["phases"]),
        "hidden": last.get("hidden"),
        "reserve": last.get("reserve"),
        "loss": last.get("loss"),
        "optimum": last.get("optimum"),
        "adds": last.get("adds", state.get("adds", 0)),
        "deletes": last.get("deletes", state.get("deletes", 0)),
        "wall_s": state.get("wall"),
        "cycles_per_s": last.get("cycles_per_s"),
        "phases": _phase_results(state.get("phase_results", []), rows),
        **{k: last[k] for k in _MODEL_FIELDS if k in last},
    }


def _phase_results(finished: list[dict], rows: list[dict]) -> list[dict]:
    """Finished phases' results, then each later phase as of its last metrics row (``partial``)."""
    done = {p["phase"] for p in finished}
    last_rows = {row["phase"]: row for row in rows if row["phase"] not in done}
    partial = [
        {"phase": i, "task": r["task"], "end_cycle": r["cycle"], "hidden": r["hidden"], "loss": r["loss"],
         "optimum": r["optimum"], "partial": True}
        for i, r in sorted(last_rows.items())
    ]  # fmt: skip
    return [*finished, *partial]
