"""Exporting a run's graph as GraphML, GEXF, CSV, SONATA or neuPrint CSV, one attribute schema for all.

Every format writes the attributes of :mod:`neurograph.graph_columns` (the
table in ``docs/exports.md``) with the same names, types and sentinels
(``-1`` for an unset id or cycle): GraphML through :mod:`neurograph.graphml`,
CSV as ``neurons.csv`` (a ``label`` column, the node key, then the node
attributes), ``connections.csv`` (``source``, ``target`` labels, then the
edge attributes), streamed in chunks, and ``graph.csv`` (the graph
attributes: a header and one row).

GEXF is the run's lifetime view: a dynamic graph (:mod:`neurograph.run.gexf`)
of everything that lived up to the graph's cycle, replayed from the run
folder (:mod:`neurograph.run.lifetime`): dates and lineages of deleted
neurons from ``events.jsonl``, values and connections from the snapshots
(``graphs/cycle-N.graphml``) and from the deleted neurons' fossils
(``fossils.jsonl``, which a char-RNN run writes as neurons die, and the
checkpoint's graveyard), so that at any snapshot's cycle it is that
snapshot's graph.

SONATA (:mod:`neurograph.run.sonata`) and neuPrint's CSV are the
connectome formats: everything that lived up to the graph's cycle, deleted
neurons and their wiring at death included, each row with its birth and
death (:mod:`neurograph.run.lived`). neuPrint's CSV is ``neurons.csv``
(``bodyId``: the neuron id, ``instance``: its label, ``type``: its role,
then the node attributes), ``connections.csv`` (``bodyId_pre``,
``bodyId_post``, then the edge attributes and ``died``) and ``graph.csv``.
Its ``weight`` is ``abs(w)``, a float: neuPrint's own weight counts synapses.

A finished run whose folder has no ``graph.graphml`` (a URN too large for a
full snapshot) is exported from its final checkpoint.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import IO, Iterable

import numpy as np

from neurograph.atomic import atomic_open
from neurograph.graph import Event, Graph
from neurograph.graph_columns import (
    CONNECTOME_EDGE_ATTRIBUTES,
    EDGE_ATTRIBUTES,
    NODE_ATTRIBUTES,
    edge_columns,
    graph_attributes,
    names_in,
    node_columns,
)
from neurograph.graphml import write_graphml
from neurograph.run.gexf import write_lifetime_gexf
from neurograph.run.lifetime import Observation, lifetime, timeline
from neurograph.run.lived import Lived, lived_columns
from neurograph.run.sonata import write_sonata
from neurograph.run.reader import (
    ExportError,
    checkpoint_graph,
    load_graph,
    read_events,
    read_fossils,
    run_folder,
    run_graph,
    snapshot_cycles,
)

__all__ = ["FORMATS", "CSV_CHUNK_ROWS", "timeline", "write_gexf", "write_csv", "write_neuprint", "export_run"]

FORMATS = ("graphml", "gexf", "csv", "sonata", "neuprint")
_FOLDERS = {"csv": "", "sonata": "-sonata", "neuprint": "-neuprint"}  # formats written as a folder: its suffix
CSV_CHUNK_ROWS = 50_000  # rows turned into text at once


def write_gexf(
    graph: Graph,
    events: Iterable[Event],
    path: str | os.PathLike,
    *,
    reserve: Iterable[int] = (),
    snapshots: Iterable[Observation] = (),
    fossils: Iterable = (),
) -> None:
    """Dynamic GEXF 1.2 of the history up to ``graph.cycle`` (see :func:`neurograph.run.lifetime.lifetime`)."""
    history = lifetime(graph, events, reserve=reserve, snapshots=snapshots, fossils=fossils)
    write_lifetime_gexf(history, path)


def write_csv(graph: Graph, folder: str | os.PathLike, *, reserve: Iterable[int] = ()) -> None:
    """``neurons.csv``, ``connections.csv`` and ``graph.csv`` of the living graph in ``folder``, each atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    nodes = node_columns(graph, reserve=reserve)
    with atomic_open(folder / "neurons.csv", "w") as f:
        _write_rows(f, {"label": nodes.labels, **nodes.columns})
    edges = edge_columns(graph)
    labels = np.array([graph.neurons[i].label for i in edges.ids], dtype=object)
    with atomic_open(folder / "connections.csv", "w") as f:
        _write_rows(f, {"source": labels[edges.source], "target": labels[edges.target], **edges.columns})
    with atomic_open(folder / "graph.csv", "w") as f:
        _write_rows(f, {k: [v] for k, v in graph_attributes(graph).items()})


def write_neuprint(lived: Lived, folder: str | os.PathLike) -> None:
    """neuPrint-style ``neurons.csv``, ``connections.csv`` and ``graph.csv`` of everything that lived, in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    nodes, edges = lived.nodes, lived.edges
    columns = {"bodyId": nodes.columns["neuron_id"], "instance": nodes.labels, "type": nodes.columns["role"]}
    columns |= {alias: nodes.columns[k] for k, alias in names_in("neuprint", NODE_ATTRIBUTES).items()
                if k in nodes.columns and alias not in columns}  # fmt: skip
    with atomic_open(folder / "neurons.csv", "w") as f:
        _write_rows(f, columns)
    body = np.asarray(nodes.columns["neuron_id"])
    columns = {"bodyId_pre": body[edges.source], "bodyId_post": body[edges.target]}
    names = names_in("neuprint", (*EDGE_ATTRIBUTES, *CONNECTOME_EDGE_ATTRIBUTES))
    columns |= {alias: edges.columns[k] for k, alias in names.items()}
    with atomic_open(folder / "connections.csv", "w") as f:
        _write_rows(f, columns)
    with atomic_open(folder / "graph.csv", "w") as f:
        _write_rows(f, {k: [v] for k, v in lived.graph.items()})


def _write_rows(f: IO[str], columns: dict) -> None:
    """Header, then one row per index of the columns, a chunk at a time (floats by repr: exact)."""
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(list(columns))
    n = len(next(iter(columns.values()))) if columns else 0
    for start in range(0, n, CSV_CHUNK_ROWS):
        chunk = [np.asarray(v[start : start + CSV_CHUNK_ROWS]).tolist() for v in columns.values()]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(zip(*chunk))
        f.write(buffer.getvalue())


def export_run(
    run_dir: str | os.PathLike, fmt: str, out: str | os.PathLike | None = None, *, cycle: int | None = None
) -> Path:
    """Export a run's final graph (or its snapshot at ``cycle``); returns the path written.

    Default ``out``: ``RUN_DIR/export/graph.<fmt>`` or ``cycle-N.<fmt>``; folders for
    csv (``graph``), sonata (``graph-sonata``) and neuprint (``graph-neuprint``).
    """
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    run_dir = run_folder(run_dir)
    graph, reserve = run_graph(run_dir, cycle)
    stem = "graph" if cycle is None else f"cycle-{cycle}"
    name = stem + _FOLDERS[fmt] if fmt in _FOLDERS else f"{stem}.{fmt}"
    out = Path(out) if out is not None else run_dir / "export" / name
    try:
        if fmt not in _FOLDERS:
            out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "graphml":
            write_graphml(graph, out, reserve=reserve)
        elif fmt == "gexf":
            snapshots = [Observation(*load_graph(run_dir / "graphs" / f"cycle-{c}.graphml"))
                         for c in snapshot_cycles(run_dir) if c < graph.cycle]  # fmt: skip
            fossils, _ = _the_dead(run_dir)
            write_gexf(graph, read_events(run_dir), out, reserve=reserve, snapshots=snapshots, fossils=fossils)
        elif fmt == "csv":
            write_csv(graph, out, reserve=reserve)
        else:
            fossils, records = _the_dead(run_dir)
            lived = lived_columns(graph, read_events(run_dir), reserve=reserve, fossils=fossils, records=records)
            (write_sonata if fmt == "sonata" else write_neuprint)(lived, out)
    except OSError as e:
        raise ExportError(f"cannot write {out}: {e.strerror or e}") from None
    return out


def _the_dead(run_dir: Path) -> tuple[list, dict]:
    """Deleted neurons' fossils (wiring at death) and full records, as the run folder keeps them."""
    final = checkpoint_graph(run_dir)  # its graveyard holds the latest deleted neurons' wiring, its dead every record
    fossils = {f.neuron.id: f for f in (final.graveyard if final is not None else ())}
    fossils |= {f.neuron.id: f for f in read_fossils(run_dir)}  # a char-RNN run logs every one
    return list(fossils.values()), dict(final.dead) if final is not None else {}
