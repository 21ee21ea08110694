"""Reading a run folder back, and exporting its graph as GraphML, GEXF or CSV.

A run folder (:mod:`neurograph.run.folder`) keeps its graphs as GraphML, which
holds no event log, so the birth and death of deleted neurons come from
``events.jsonl``: a ``delete`` event gives the death cycle and, through its
``age``, the birth; an ``add`` event gives the birth directly.

GEXF export is dynamic (``mode="dynamic"``, ``timeformat="integer"``, time in
cycles): one node per neuron that lived up to the graph's cycle, spanning
``start`` = born to ``end`` = died (no ``end`` while alive), and the living
neurons' connections starting at their own birth, so Gephi's timeline replays
the growth. The XML is written here with ElementTree: networkx's GEXF writer
declares integer times as ``timeformat="long"``, which the GEXF 1.2 schema
does not allow.

CSV export writes ``neurons.csv`` (one row per living neuron) and
``connections.csv`` into a folder. Empty cells stand for "none".
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterable

import networkx as nx
import yaml

from neurograph import __version__
from neurograph.run.checkpoint import CheckpointError, load_checkpoint
from neurograph.graph import ROLES, Event, Graph, Neuron, neuron_label
from neurograph.graphml import read_graphml, write_graphml
from neurograph.run.folder import RunFolderError, write_text_atomic

__all__ = [
    "FORMATS",
    "ExportError",
    "run_folder",
    "read_jsonl",
    "read_events",
    "snapshot_cycles",
    "graph_file",
    "load_graph",
    "timeline",
    "write_gexf",
    "write_csv",
    "export_run",
    "run_phases",
    "run_summary",
]

FORMATS = ("graphml", "gexf", "csv")
GEXF_NS = "http://www.gexf.net/1.2draft"
NEURON_COLUMNS = (
    "id", "label", "role", "state", "born", "died", "age", "generation", "inherited_from",
    "lineage", "multiplier", "bias", "x", "y", "z",
)  # fmt: skip
CONNECTION_COLUMNS = ("pre", "post", "weight", "born", "inherited_from")
_ROLE_BY_INITIAL = {neuron_label(0, role)[0]: role for role in ROLES}  # "h" -> "hidden"
_SNAPSHOT = re.compile(r"cycle-(\d+)\.graphml")


class ExportError(ValueError):
    """An export that cannot be written."""


# ------------------------------------------------------- reading a run folder
def run_folder(path: str | os.PathLike) -> Path:
    """``path`` if it is a run folder (it has ``scenario.yaml``), else :class:`RunFolderError`."""
    path = Path(path)
    if not (path / "scenario.yaml").is_file():
        raise RunFolderError(f"{path}: not a run folder (scenario.yaml missing)")
    return path


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


def load_graph(path: Path) -> tuple[Graph, list[int]]:
    """Graph of a GraphML file and the ids it marks ``reserve`` (the Graph has no such state)."""
    graph = read_graphml(path)  # validates the file first
    states = nx.get_node_attributes(nx.read_graphml(path), "state")
    labels = {n.label: i for i, n in graph.neurons.items()}
    return graph, sorted(labels[name] for name, state in states.items() if state == "reserve")


# ------------------------------------------------------------------ timeline
def timeline(graph: Graph, events: Iterable[Event]) -> list[tuple[Neuron, str]]:
    """(neuron, lineage label) of every neuron that lived up to ``graph.cycle``, ascending id.

    Living neurons come from the graph (``died`` None). Dead ones are rebuilt from
    their ``delete`` event, or taken from ``graph.dead`` when it knows their dates;
    events after ``graph.cycle`` are ignored (a snapshot predates them).
    """
    events = [e for e in events if e.cycle <= graph.cycle]
    added = {e.neuron: e.cycle for e in events if e.kind == "add"}
    out = {i: (n, graph.lineage_label(i)) for i, n in graph.dead.items() if n.born >= 0 and n.died is not None}
    for e in events:
        if e.kind != "delete":
            continue
        if e.neuron in graph.neurons:
            label = graph.neurons[e.neuron].label
            raise ExportError(f"events.jsonl says {label} died at cycle {e.cycle}, but the graph has it alive")
        out[e.neuron] = (_dead_neuron(e, added.get(e.neuron, e.cycle - e.age)), e.lineage)
    out.update((i, (n, graph.lineage_label(i))) for i, n in graph.neurons.items())
    return [out[i] for i in sorted(out)]


def _dead_neuron(event: Event, born: int) -> Neuron:
    """Record of a neuron deleted by ``event``, whose lineage reads like ``h3>h9>h17``."""
    chain = [(label[:1], label[1:]) for label in event.lineage.split(">")]
    if not all(c in _ROLE_BY_INITIAL and i.isdigit() for c, i in chain) or int(chain[-1][1]) != event.neuron:
        raise ExportError(f"delete event of neuron {event.neuron}: bad lineage {event.lineage!r}")
    parent = int(chain[-2][1]) if len(chain) > 1 else None
    role = _ROLE_BY_INITIAL[chain[-1][0]]
    return Neuron(event.neuron, role, born=born, died=event.cycle, generation=len(chain) - 1, inherited_from=parent)


# ---------------------------------------------------------------------- GEXF
_NODE_ATTRS = {
    "role": "string", "state": "string", "born": "integer", "died": "integer", "generation": "integer",
    "inherited_from": "integer", "lineage": "string", "multiplier": "double", "bias": "double",
}  # fmt: skip
_EDGE_ATTRS = {"signed_weight": "double", "born": "integer", "inherited_from": "integer"}


def write_gexf(
    graph: Graph, events: Iterable[Event], path: str | os.PathLike, *, reserve: Iterable[int] = ()
) -> None:
    """Dynamic GEXF 1.2 of the graph's history (see module docstring), written atomically.

    Edge ``weight`` is ``|w|`` (layouts want it non-negative); ``signed_weight`` is the real one.
    Unset ids and cycles are -1 in attributes.
    """
    reserve = set(reserve)
    root = ET.Element("gexf", {"xmlns": GEXF_NS, "version": "1.2"})
    meta = ET.SubElement(root, "meta")
    ET.SubElement(meta, "creator").text = f"neurograph {__version__}"
    about = " ".join(f"{k} {v}" for k, v in sorted(graph.meta.items()))
    ET.SubElement(meta, "description").text = f"{about} at cycle {graph.cycle}".strip()
    g = ET.SubElement(
        root,
        "graph",
        {"mode": "dynamic", "defaultedgetype": "directed", "timeformat": "integer", "end": str(graph.cycle)},
    )
    _declare(g, "node", _NODE_ATTRS)
    _declare(g, "edge", _EDGE_ATTRS)
    nodes = ET.SubElement(g, "nodes")
    for n, lineage in timeline(graph, events):
        state = "deleted" if n.died is not None else "reserve" if n.id in reserve else "alive"
        span = {"start": str(n.born)} | ({} if n.died is None else {"end": str(n.died)})
        node = ET.SubElement(nodes, "node", {"id": n.label, "label": n.label, **span})
        values = {
            "role": n.role, "state": state, "born": n.born, "died": _unset(n.died), "generation": n.generation,
            "inherited_from": _unset(n.inherited_from), "lineage": lineage, "multiplier": n.multiplier,
            "bias": n.bias,
        }  # fmt: skip
        _values(node, values)
    edges = ET.SubElement(g, "edges")
    for k, c in enumerate(graph.connections()):
        pre, post = graph.neurons[c.source].label, graph.neurons[c.target].label
        attrs = {"id": str(k), "source": pre, "target": post, "weight": repr(abs(c.weight)), "start": str(c.born)}
        edge = ET.SubElement(edges, "edge", attrs)
        _values(edge, {"signed_weight": c.weight, "born": c.born, "inherited_from": _unset(c.inherited_from)})
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode", xml_declaration=False)
    write_text_atomic(Path(path), '<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n")


def _declare(graph_element: ET.Element, kind: str, attrs: dict[str, str]) -> None:
    block = ET.SubElement(graph_element, "attributes", {"class": kind, "mode": "static"})
    for name, type_ in attrs.items():
        ET.SubElement(block, "attribute", {"id": name, "title": name, "type": type_})


def _values(element: ET.Element, values: dict) -> None:
    block = ET.SubElement(element, "attvalues")
    for name, value in values.items():
        text = repr(float(value)) if isinstance(value, float) else str(value)
        ET.SubElement(block, "attvalue", {"for": name, "value": text})


def _unset(value: int | None) -> int:
    return -1 if value is None else value


# ----------------------------------------------------------------------- CSV
def write_csv(graph: Graph, folder: str | os.PathLike, *, reserve: Iterable[int] = ()) -> None:
    """``neurons.csv`` and ``connections.csv`` (ids, signed weights) in ``folder``, each atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    reserve = set(reserve)
    neurons = [
        _neuron_row(graph, n, "reserve" if n.id in reserve else "alive") for n in map(graph.neuron, graph.ids())
    ]
    connections = [(c.source, c.target, c.weight, c.born, _blank(c.inherited_from)) for c in graph.connections()]
    write_text_atomic(folder / "neurons.csv", _csv_text(NEURON_COLUMNS, neurons))
    write_text_atomic(folder / "connections.csv", _csv_text(CONNECTION_COLUMNS, connections))


def _neuron_row(graph: Graph, n: Neuron, state: str) -> tuple:
    x, y, z = n.position
    return (
        n.id, n.label, n.role, state, n.born, _blank(n.died), graph.age(n.id), n.generation,
        _blank(n.inherited_from), graph.lineage_label(n.id), n.multiplier, n.bias, x, y, z,
    )  # fmt: skip


def _blank(value: int | None):
    return "" if value is None else value


def _csv_text(header: tuple[str, ...], rows: list[tuple]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)  # floats are written with repr: they read back exactly
    return buffer.getvalue()


# -------------------------------------------------------------- whole export
def export_run(
    run_dir: str | os.PathLike, fmt: str, out: str | os.PathLike | None = None, *, cycle: int | None = None
) -> Path:
    """Export a run's final graph (or its snapshot at ``cycle``); returns the path written.

    Default ``out``: ``RUN_DIR/export/graph.<fmt>`` or ``cycle-N.<fmt>`` (a folder for csv).
    """
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    run_dir = run_folder(run_dir)
    graph, reserve = load_graph(graph_file(run_dir, cycle))
    stem = "graph" if cycle is None else f"cycle-{cycle}"
    out = Path(out) if out is not None else run_dir / "export" / (stem if fmt == "csv" else f"{stem}.{fmt}")
    try:
        if fmt != "csv":
            out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "graphml":
            write_graphml(graph, out, reserve=reserve)
        elif fmt == "gexf":
            write_gexf(graph, read_events(run_dir), out, reserve=reserve)
        else:
            write_csv(graph, out, reserve=reserve)
    except OSError as e:
        raise ExportError(f"cannot write {out}: {e.strerror or e}") from None
    return out


# ------------------------------------------------------------ run overview
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
