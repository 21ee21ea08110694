"""Exporting a run's graph as GraphML, GEXF or CSV.

A run folder (:mod:`neurograph.run.folder`, read by :mod:`neurograph.run.reader`) keeps its graphs as GraphML, which
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
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterable


from neurograph import __version__
from neurograph.graph import ROLES, Event, Graph, Neuron, neuron_label
from neurograph.graphml import write_graphml
from neurograph.run.folder import write_text_atomic
from neurograph.run.reader import ExportError, graph_file, load_graph, read_events, run_folder

__all__ = ["FORMATS", "timeline", "write_gexf", "write_csv", "export_run"]

FORMATS = ("graphml", "gexf", "csv")
GEXF_NS = "http://www.gexf.net/1.2draft"
NEURON_COLUMNS = (
    "id", "label", "role", "state", "born", "died", "age", "generation", "inherited_from",
    "lineage", "multiplier", "bias", "x", "y", "z",
)  # fmt: skip
CONNECTION_COLUMNS = ("pre", "post", "weight", "born", "inherited_from")
_ROLE_BY_INITIAL = {neuron_label(0, role)[0]: role for role in ROLES}  # "h" -> "hidden"


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
