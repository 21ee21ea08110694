"""Exporting a run's graph as GraphML, GEXF or CSV, one attribute schema for all three.

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
from neurograph.graph_columns import edge_columns, graph_attributes, node_columns
from neurograph.graphml import write_graphml
from neurograph.run.gexf import write_lifetime_gexf
from neurograph.run.lifetime import Observation, lifetime, timeline
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

__all__ = ["FORMATS", "CSV_CHUNK_ROWS", "timeline", "write_gexf", "write_csv", "export_run"]

FORMATS = ("graphml", "gexf", "csv")
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

    Default ``out``: ``RUN_DIR/export/graph.<fmt>`` or ``cycle-N.<fmt>`` (a folder for csv).
    """
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    run_dir = run_folder(run_dir)
    graph, reserve = run_graph(run_dir, cycle)
    stem = "graph" if cycle is None else f"cycle-{cycle}"
    out = Path(out) if out is not None else run_dir / "export" / (stem if fmt == "csv" else f"{stem}.{fmt}")
    try:
        if fmt != "csv":
            out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "graphml":
            write_graphml(graph, out, reserve=reserve)
        elif fmt == "gexf":
            snapshots = [Observation(*load_graph(run_dir / "graphs" / f"cycle-{c}.graphml"))
                         for c in snapshot_cycles(run_dir) if c < graph.cycle]  # fmt: skip
            final = checkpoint_graph(run_dir)  # its graveyard holds the latest deleted neurons' wiring
            fossils = {f.neuron.id: f for f in (final.graveyard if final is not None else ())}
            fossils |= {f.neuron.id: f for f in read_fossils(run_dir)}  # a char-RNN run logs every one
            write_gexf(graph, read_events(run_dir), out, reserve=reserve, snapshots=snapshots, fossils=fossils.values())
        else:
            write_csv(graph, out, reserve=reserve)
    except OSError as e:
        raise ExportError(f"cannot write {out}: {e.strerror or e}") from None
    return out
