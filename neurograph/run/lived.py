"""Everything that lived up to a graph's cycle, as columns: what the connectome formats write.

GraphML and CSV hold one graph; SONATA and neuPrint's CSV hold the dead too,
each row with its birth and death. Nodes are every neuron that lived
(:func:`neurograph.run.lifetime.timeline`: living ones from the graph,
deleted ones from ``events.jsonl``), ascending id, with the attributes of
:mod:`neurograph.graph_columns`; a deleted neuron has state ``deleted``. Edges
are the graph's connections (``died`` -1) and each deleted neuron's wiring at
its death, from its fossil (``died`` its death cycle), sorted by target, then
source.

A deleted neuron's values are those at its death: bias, multiplier, position
and tags from its record (the checkpoint's, or the graph's own), L1 norms from
its fossil. What the run kept no record of is NaN (tags ``""``): the wiring
and L1 norms of a neuron without a fossil (a URN keeps none; a char-RNN run
logs every one in ``fossils.jsonl``). A fossil keeps no dates, so a deleted
neuron's connection is dated as the GEXF dates it: ``born`` the later birth
of its ends, ``inherited_from`` -1. Connections removed while both ends lived
are not kept by any record and are not here (the GEXF's replay of the
snapshots shows them).

Connections are columns from :meth:`Graph.connection_arrays`, never one
object per connection: bounded for a URN's millions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from neurograph.graph import Event, Fossil, Graph, Neuron
from neurograph.graph_columns import (
    UNSET,
    EdgeColumns,
    NodeColumns,
    graph_attributes,
    has_geometry,
    layout_positions,
    node_attribute_names,
    node_columns,
)
from neurograph.run.lifetime import timeline

__all__ = ["Lived", "lived_columns"]


@dataclass
class Lived:
    """Nodes (every neuron that lived, ascending id), edges (rows into ``nodes.ids``) and graph attributes."""

    nodes: NodeColumns
    edges: EdgeColumns  # columns: weight, signed_weight, born, inherited_from, died
    graph: dict


def lived_columns(
    graph: Graph,
    events: Iterable[Event],
    *,
    reserve: Iterable[int] = (),
    fossils: Iterable[Fossil] = (),
    records: Mapping[int, Neuron] | None = None,
) -> Lived:
    """Every neuron and connection that lived up to ``graph.cycle`` (see the module docstring).

    ``events``: the run's event log; ``fossils``: deleted neurons with their
    wiring at death; ``records``: deleted neurons' full records (a checkpoint's
    ``Graph.dead``). Fossils and records of a death after the graph's cycle are ignored.
    """
    everyone = timeline(graph, events)
    dead = {n.id: n for n, _ in everyone if n.died is not None}
    full = {i: n for i, n in {**(records or {}), **graph.dead}.items() if n.born >= 0}
    full = {i: full[i] for i in dead if i in full and full[i].died == dead[i].died}
    fossils = {f.neuron.id: f for f in fossils if f.neuron.id in dead and f.neuron.died == dead[f.neuron.id].died}
    ids = np.array([n.id for n, _ in everyone], dtype=np.int64)
    living = node_columns(graph, reserve=reserve)
    dead_values = _dead_columns(graph, everyone, full, fossils)
    at, dead_at = np.searchsorted(ids, living.ids), np.searchsorted(ids, sorted(dead))
    names = node_attribute_names(graph)
    columns = {k: _merged(len(ids), living.columns[k], at, dead_values[k], dead_at) for k in names}
    labels = _merged(len(ids), living.labels, at, [dead[i].label for i in sorted(dead)], dead_at).tolist()
    nodes = NodeColumns(labels, ids.tolist(), columns)
    return Lived(nodes, _edges(graph, ids, columns["born"], fossils), graph_attributes(graph))


def _dead_columns(graph: Graph, everyone, full: dict, fossils: dict) -> dict[str, list | np.ndarray]:
    """Node attributes of the deleted neurons, ascending id: their records where known, else NaN."""
    dead = [(full.get(n.id, n), lineage) for n, lineage in everyone if n.died is not None]
    position = layout_positions(graph, [n for n, _ in dead]) if dead else np.zeros((0, 3))
    if has_geometry(graph):
        position[[n.id not in full for n, _ in dead]] = np.nan  # only a record knows where it stood

    def value(n: Neuron, key: str) -> float:
        if n.id in full:
            return float(getattr(n, key))
        return float(getattr(fossils[n.id].neuron, key)) if n.id in fossils else np.nan

    def l1(n: Neuron, side: str) -> float:
        return float(sum(abs(w) for w in getattr(fossils[n.id], side).values())) if n.id in fossils else np.nan

    ints = lambda values: np.array(list(values), dtype=np.int64)  # noqa: E731
    return {
        "neuron_id": ints(n.id for n, _ in dead),
        "role": [n.role for n, _ in dead],
        "area": [n.area for n, _ in dead],
        "state": ["deleted"] * len(dead),
        "born": ints(n.born for n, _ in dead),
        "died": ints(n.died for n, _ in dead),
        "age": ints(n.died - n.born for n, _ in dead),
        "generation": ints(n.generation for n, _ in dead),
        "inherited_from": ints(UNSET if n.inherited_from is None else n.inherited_from for n, _ in dead),
        "lineage": [lineage for _, lineage in dead],
        "multiplier": np.array([value(n, "multiplier") for n, _ in dead]),
        "bias": np.array([value(n, "bias") for n, _ in dead]),
        "in_l1": np.array([l1(n, "incoming") for n, _ in dead]),
        "out_l1": np.array([l1(n, "outgoing") for n, _ in dead]),
        "x": position[:, 0].copy(),
        "y": position[:, 1].copy(),
        "z": position[:, 2].copy(),
        "tags": [",".join(sorted(n.tags)) if n.id in full else "" for n, _ in dead],
    }


def _merged(n: int, living, at: np.ndarray, dead, dead_at: np.ndarray) -> np.ndarray:
    """(n,) column with the living rows at ``at`` and the dead ones at ``dead_at`` (text: an object array)."""
    living, dead = np.asarray(living), np.asarray(dead)
    text = living.dtype.kind in "UO" or dead.dtype.kind in "UO"
    out = np.empty(n, dtype=object if text else np.result_type(living.dtype, dead.dtype))
    out[at], out[dead_at] = living, dead
    return out


def _edges(graph: Graph, ids: np.ndarray, born_of: np.ndarray, fossils: dict[int, Fossil]) -> EdgeColumns:
    """The graph's connections, then the fossils' (weights at death), sorted by (target, source) row."""
    living_ids, c = graph.connection_arrays()
    living_ids = np.asarray(living_ids, dtype=np.int64)
    source = np.searchsorted(ids, living_ids[c["source"]])
    target = np.searchsorted(ids, living_ids[c["target"]])
    s_id, t_id, weight, died = _fossil_wiring(fossils)
    known = np.isin(s_id, ids) & np.isin(t_id, ids)  # both ends lived by the graph's cycle
    s_row, t_row = np.searchsorted(ids, s_id[known]), np.searchsorted(ids, t_id[known])
    source, target = np.concatenate([source, s_row]), np.concatenate([target, t_row])
    signed = np.concatenate([c["weight"], weight[known]])
    born = np.concatenate([c["born"], np.maximum(born_of[s_row], born_of[t_row])])
    inherited = np.concatenate([c["inherited_from"], np.full(len(s_row), UNSET, dtype=np.int64)])
    died = np.concatenate([np.full(len(c["weight"]), UNSET, dtype=np.int64), died[known]])
    order = np.lexsort((source, target))
    columns = {"weight": np.abs(signed), "signed_weight": signed, "born": born, "inherited_from": inherited}
    columns["died"] = died
    return EdgeColumns(ids.tolist(), source[order], target[order], {k: v[order] for k, v in columns.items()})


def _fossil_wiring(fossils: dict[int, Fossil]) -> tuple[np.ndarray, ...]:
    """Source ids, target ids, weights and death cycles of the fossils' connections (a self-loop once)."""
    parts = []
    for i in sorted(fossils):
        f = fossils[i]
        outgoing = {t: w for t, w in f.outgoing.items() if t != i}  # a self-loop is also incoming
        n_in, n_out = len(f.incoming), len(outgoing)
        source = np.concatenate([np.fromiter(f.incoming, np.int64, n_in), np.full(n_out, i, dtype=np.int64)])
        target = np.concatenate([np.full(n_in, i, dtype=np.int64), np.fromiter(outgoing, np.int64, n_out)])
        weight = np.fromiter([*f.incoming.values(), *outgoing.values()], np.float64, n_in + n_out)
        parts.append((source, target, weight, np.full(n_in + n_out, f.neuron.died, dtype=np.int64)))
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64)
    return tuple(np.concatenate(column) for column in zip(*parts))
