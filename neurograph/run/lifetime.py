"""A run's history as lives and spells: what the dynamic GEXF replays.

Every neuron that lived up to the graph's cycle has one *life*, from its
birth to the cycle before its deletion, and every connection has one or more.
Times are closed intervals of whole cycles (a neuron deleted at cycle ``d``
was last alive at ``d - 1``; snapshots are taken after a cycle's structural
changes, so a snapshot at ``d`` no longer holds it). What changes while a
neuron or connection lives (the :class:`~neurograph.graph_columns.Attribute`
marked ``dynamic``: state, bias, multiplier, L1 norms, weights) is a list of
*spells*, ``(value, start, end)``: each observation holds from its cycle to
the next one, the first from the birth on.

Observations are the run's graphs: its snapshots (``graphs/cycle-N.graphml``)
and the graph exported, and the graveyard's fossils (a deleted neuron's
wiring and values at its death). Dead neurons' dates and lineages come from
``events.jsonl`` (:func:`timeline`). A connection's life is bounded by its
ends' lives and by the snapshots that lack it while both ends lived, so the
history restricted to a snapshot's cycle is that snapshot's graph.
What no observation saw is not invented: the values of a neuron born and
deleted between two snapshots whose fossil the graveyard no longer holds
(it keeps the most recent deletions) are unknown, and so are its connections.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from neurograph.graph import ROLES, Event, Fossil, Graph, Neuron, neuron_label
from neurograph.graph_columns import (
    EDGE_ATTRIBUTES,
    NODE_ATTRIBUTES,
    UNSET,
    edge_columns,
    graph_attributes,
    layout_positions,
    node_attribute_names,
    node_columns,
)
from neurograph.run.folder import RunFolderError
from neurograph.run.reader import ExportError, checkpoint_graph, read_events, run_folder, run_graph

__all__ = ["Life", "Lifetime", "Observation", "timeline", "run_timeline", "lifetime"]

_ROLE_BY_INITIAL = {neuron_label(0, role)[0]: role for role in ROLES}  # "h" -> "hidden"
_DYNAMIC_NODE = tuple(a.name for a in NODE_ATTRIBUTES if a.dynamic)
_DYNAMIC_EDGE = tuple(a.name for a in EDGE_ATTRIBUTES if a.dynamic)

Spell = tuple  # (value, start, end), both ends included


@dataclass
class Observation:
    """One graph of the run at its cycle, with the ids its run marked ``reserve``."""

    graph: Graph
    reserve: list[int] = field(default_factory=list)

    @property
    def cycle(self) -> int:
        return self.graph.cycle


@dataclass
class Life:
    """A node or a connection: its lives ``(start, end)`` (end None: alive at the end),
    static values, and the spells of its dynamic ones."""

    lives: list[tuple[int, int | None]]
    static: dict
    spells: dict[str, list[Spell]]


@dataclass
class Lifetime:
    """Everything that lived up to ``cycle``: nodes by label, connections by (source, target) label."""

    cycle: int
    graph: dict  # graph attributes (neurograph.graph_columns.graph_attributes) of the graph at ``cycle``
    node_names: list[str]  # node attributes, in schema order
    nodes: dict[str, Life]
    positions: dict[str, tuple[float, float, float]]
    edges: dict[tuple[str, str], Life]


# ------------------------------------------------------------------ neurons
def timeline(graph: Graph, events: Iterable[Event]) -> list[tuple[Neuron, str]]:
    """(neuron, lineage label) of every neuron that lived up to ``graph.cycle``, ascending id.

    Living neurons come from the graph (``died`` None). Dead ones are rebuilt from
    their ``delete`` event, or taken from ``graph.dead`` when it knows their dates;
    events after ``graph.cycle`` are ignored (a snapshot predates them).
    """
    events = [e for e in events if e.cycle <= graph.cycle]
    added = {e.neuron: e.cycle for e in events if e.kind == "add"}
    out = {
        i: (n, graph.lineage_label(i))
        for i, n in graph.dead.items()
        if n.born >= 0 and n.died is not None and n.died <= graph.cycle
    }
    for e in events:
        if e.kind != "delete":
            continue
        if e.neuron in graph.neurons:
            label = graph.neurons[e.neuron].label
            raise ExportError(f"events.jsonl says {label} died at cycle {e.cycle}, but the graph has it alive")
        if e.neuron not in out:
            out[e.neuron] = (_dead_neuron(e, added.get(e.neuron, e.cycle - e.age)), e.lineage)
    out.update((i, (n, graph.lineage_label(i))) for i, n in graph.neurons.items())
    return [out[i] for i in sorted(out)]


def run_timeline(run_dir) -> tuple[list[tuple[Neuron, str]], int, str]:
    """:func:`timeline` of a run folder, the cycle it reaches (its final graph's, or for a
    run still going or killed its checkpoint's) and what that counts: cycle, or a URN's epoch."""
    run_dir = run_folder(run_dir)
    try:
        graph, _ = run_graph(run_dir)
    except RunFolderError:
        graph = checkpoint_graph(run_dir)
        if graph is None:
            raise
    return timeline(graph, read_events(run_dir)), graph.cycle, "epoch" if graph.meta.get("model") == "urn" else "cycle"


def _dead_neuron(event: Event, born: int) -> Neuron:
    """Record of a neuron deleted by ``event``, whose lineage reads like ``h3>h9>h17``."""
    chain = [(label[:1], label[1:]) for label in event.lineage.split(">")]
    if not all(c in _ROLE_BY_INITIAL and i.isdigit() for c, i in chain) or int(chain[-1][1]) != event.neuron:
        raise ExportError(f"delete event of neuron {event.neuron}: bad lineage {event.lineage!r}")
    parent = int(chain[-2][1]) if len(chain) > 1 else None
    role = _ROLE_BY_INITIAL[chain[-1][0]]
    return Neuron(event.neuron, role, born=born, died=event.cycle, generation=len(chain) - 1, inherited_from=parent)


# ------------------------------------------------------------------ history
def lifetime(
    graph: Graph,
    events: Iterable[Event],
    *,
    reserve: Iterable[int] = (),
    snapshots: Iterable[Observation] = (),
    fossils: Iterable[Fossil] = (),
) -> Lifetime:
    """The history up to ``graph.cycle`` of the run whose graph that is (see module docstring).

    ``snapshots``: earlier graphs of the run (later ones are ignored);
    ``fossils``: deleted neurons with their wiring at death (later deaths ignored).
    """
    cycle = graph.cycle
    records = timeline(graph, events)
    observed = sorted(
        [o for o in snapshots if o.cycle < cycle] + [Observation(graph, list(reserve))], key=lambda o: o.cycle
    )
    by_id = {n.id: n for n, _ in records}
    # a fossil of a neuron that (in this history) died at that cycle: a resumed run may log a death twice
    fossils = [f for f in fossils if f.neuron.id in by_id and by_id[f.neuron.id].died == f.neuron.died]
    span = {n.id: (n.born, None if n.died is None else n.died - 1) for n, _ in records}
    names = node_attribute_names(graph)
    nodes = _nodes(graph, records, names, observed, fossils, span)
    positions = layout_positions(graph, [n for n, _ in records])
    edges = _edges(by_id, observed, fossils, span, cycle)
    return Lifetime(
        cycle=cycle,
        graph=graph_attributes(graph),
        node_names=names,
        nodes=nodes,
        positions={n.label: tuple(p) for (n, _), p in zip(records, positions.tolist())},
        edges=edges,
    )


def _nodes(graph, records, names, observed, fossils, span) -> dict[str, Life]:
    dynamic = [k for k in _DYNAMIC_NODE if k in names]
    seen: dict[int, dict[str, list[tuple[int, object]]]] = defaultdict(lambda: defaultdict(list))
    for o in observed:
        c = node_columns(o.graph, reserve=o.reserve)
        values = {k: np.asarray(c.columns[k]).tolist() for k in dynamic}
        for row, i in enumerate(c.ids):
            for k in dynamic:
                seen[i][k].append((o.cycle, values[k][row]))
    for f in fossils:  # values at death, on the last cycle alive
        n, last = f.neuron, f.neuron.died - 1
        at_death = {"bias": n.bias, "multiplier": n.multiplier}
        at_death |= {"in_l1": _l1(f.incoming), "out_l1": _l1(f.outgoing)}
        for k in dynamic:
            if k in at_death:
                seen[n.id][k].append((last, float(at_death[k])))
    nodes = {}
    for n, lineage in records:
        start, end = span[n.id]
        static = {
            "neuron_id": n.id, "role": n.role, "born": n.born, "died": UNSET if n.died is None else n.died,
            "age": (graph.cycle if n.died is None else n.died) - n.born, "generation": n.generation,
            "inherited_from": UNSET if n.inherited_from is None else n.inherited_from, "lineage": lineage,
            "tags": ",".join(sorted(n.tags)), "area": n.area,
        }  # fmt: skip
        spells = {k: _spells(seen[n.id][k], start, graph.cycle if end is None else end) for k in dynamic}
        nodes[n.label] = Life([(start, end)], static, {k: v for k, v in spells.items() if v})
    return nodes


def _l1(wiring) -> float:
    return float(sum(abs(w) for w in wiring.values()))


def _edges(by_id, observed, fossils, span, cycle) -> dict[tuple[str, str], Life]:
    present: dict[tuple[int, int], list[tuple[int, float, int | None, int | None]]] = defaultdict(list)
    alive_at: list[tuple[int, set[int], set[tuple[int, int]]]] = []
    for o in observed:
        e = edge_columns(o.graph)
        ids = np.array(e.ids, dtype=np.int64)
        keys = list(zip(ids[e.source].tolist(), ids[e.target].tolist()))
        columns = [e.columns[k].tolist() for k in ("signed_weight", "born", "inherited_from")]
        for key, w, born, inherited in zip(keys, *columns):
            present[key].append((o.cycle, w, born, inherited))
        alive_at.append((o.cycle, set(e.ids), set(keys)))
    for f in fossils:
        n, last = f.neuron.id, f.neuron.died - 1
        wiring = [((s, n), w) for s, w in f.incoming.items()] + [((n, t), w) for t, w in f.outgoing.items()]
        for key, w in wiring:
            if key[0] in by_id and key[1] in by_id and all(o[0] != last for o in present[key]):
                present[key].append((last, float(w), None, None))  # born and origin: not in a fossil
    edges = {}
    for key, seen in present.items():
        if key[0] not in by_id or key[1] not in by_id:
            continue
        seen.sort(key=lambda o: o[0])
        absent = [c for c, alive, keys in alive_at if key[0] in alive and key[1] in alive and key not in keys]
        life = _edge_life(key, seen, absent, span, cycle)
        if life.lives:
            edges[(by_id[key[0]].label, by_id[key[1]].label)] = life
    return edges


def _edge_life(key, seen, absent, span, cycle) -> Life:
    """Lives of one connection: its observations split wherever a snapshot lacked it."""
    (s_start, s_end), (t_start, t_end) = span[key[0]], span[key[1]]
    ends_die = min((e for e in (s_end, t_end) if e is not None), default=None)
    groups, current = [], [seen[0]]
    for o in seen[1:]:
        if any(current[-1][0] < c < o[0] for c in absent):
            groups.append(current)
            current = []
        current.append(o)
    groups.append(current)
    lives, spells, born, inherited = [], defaultdict(list), UNSET, UNSET
    for group in groups:
        first, last = group[0][0], group[-1][0]
        dated = [o for o in group if o[2] is not None]
        born = dated[0][2] if dated else max(s_start, t_start)
        inherited = dated[0][3] if dated else UNSET
        start = max([born, *(c + 1 for c in absent if c < first)])
        stops = [c - 1 for c in absent if c > last] + ([ends_die] if ends_die is not None else [])
        end = min(stops) if stops else None
        if end is not None and end < start:
            continue
        lives.append((start, end))
        weights = [(c, w) for c, w, _, _ in group]
        spells["signed_weight"] += _spells(weights, start, cycle if end is None else end)
        spells["weight"] += _spells([(c, abs(w)) for c, w in weights], start, cycle if end is None else end)
    static = {"born": born, "inherited_from": inherited}
    return Life(lives, static, {k: spells[k] for k in _DYNAMIC_EDGE if spells[k]})


def _spells(observations: list[tuple[int, object]], start: int, end: int) -> list[Spell]:
    """Spells over ``[start, end]``: each value from its cycle to the next one's, the first from ``start``."""
    if len(observations) == 1:  # most lives of a run without snapshots: one spell
        c, v = observations[0]
        return [(v, start, end)] if start <= c <= end else []
    first: dict[int, object] = {}
    for c, v in observations:  # at one cycle the first observation counts: a snapshot before a fossil
        if start <= c <= end:
            first.setdefault(c, v)
    within = sorted(first.items(), key=lambda cv: cv[0])
    if not within:
        return []
    spells: list[list] = []
    for k, (c, v) in enumerate(within):
        begin = start if k == 0 else c
        stop = within[k + 1][0] - 1 if k + 1 < len(within) else end
        if spells and spells[-1][0] == v:
            spells[-1][2] = stop  # the same value again: one spell
        else:
            spells.append([v, begin, stop])
    return [tuple(s) for s in spells]
