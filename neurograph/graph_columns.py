"""A graph as named columns: the one attribute schema of every file format.

GraphML (:mod:`neurograph.graphml`), GEXF and CSV (:mod:`neurograph.run.export`)
write the same attributes with the same names, types, meanings and sentinels:
:data:`NODE_ATTRIBUTES`, :data:`EDGE_ATTRIBUTES` and :data:`GRAPH_ATTRIBUTES`
(``docs/exports.md`` shows them as one table). The connectome formats, SONATA
(:mod:`neurograph.run.sonata`) and neuPrint's CSV, keep deleted neurons and
their connections too: they add :data:`CONNECTOME_EDGE_ATTRIBUTES` (a
connection's death) and give a few attributes those formats' own names
(:attr:`Attribute.sonata`, :attr:`Attribute.neuprint`; :func:`names_in`).

A node's key is its label (``h17``: role initial and id): the node id in
GraphML and GEXF, the ``label`` column of ``neurons.csv`` and the ``source`` /
``target`` columns of ``connections.csv``. No attribute takes a name that
igraph or Gephi keep for themselves (``id``, ``label``, ``name``, ``start``,
``end``, ``source``, ``target``, ``type``); ``weight`` is meant for them:
Gephi's edge weight, non-negative for layouts (``|w|``), with the real one in
``signed_weight``.

An attribute that means nothing for a model is left out rather than written
as a constant: ``multiplier`` only where the network trains multipliers (the
char-RNN's first revision). Every graph has positions: the URN's are its
geometry (eq. 8), read back on import; a char-RNN's neurons have none, so
they get a fixed layout that depends only on a neuron's role and id (inputs
on a column on the left, outputs on the right, hidden neurons on a circle),
which keeps each neuron in place while the network changes, and the graph
attribute ``positions`` says ``layout`` so that import ignores them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from neurograph import __version__
from neurograph.graph import Area, Graph, Neuron

__all__ = [
    "FORMAT_VERSION",
    "UNSET",
    "META_PREFIX",
    "Attribute",
    "NODE_ATTRIBUTES",
    "EDGE_ATTRIBUTES",
    "GRAPH_ATTRIBUTES",
    "CONNECTOME_EDGE_ATTRIBUTES",
    "CONNECTOME_FORMATS",
    "RESERVED",
    "NodeColumns",
    "EdgeColumns",
    "has_multipliers",
    "has_areas",
    "has_geometry",
    "node_attribute_names",
    "names_in",
    "layout_positions",
    "node_columns",
    "edge_columns",
    "graph_attributes",
    "areas_text",
    "parse_areas",
]

FORMAT_VERSION = 2  # 2: node attribute neuron_id (was id), multiplier only where trained, positions, model
UNSET = -1  # stands for None in id and cycle fields
META_PREFIX = "meta_"  # graph.meta keys other than scenario, seed and model: "meta_<key>"
RESERVED = ("id", "label", "name", "start", "end", "source", "target", "type")  # igraph's and Gephi's own
CONNECTOME_FORMATS = ("sonata", "neuprint")  # the formats that keep the dead, with names of their own
LAYOUT_RADIUS = 100.0  # hidden circle; the input and output columns stand at twice this to its sides
_GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))  # consecutive ids fall far apart on the circle


@dataclass(frozen=True)
class Attribute:
    """One attribute of the schema (a row of the table in ``docs/exports.md``)."""

    name: str
    type: type  # int, float or str
    meaning: str
    sentinel: str = ""  # the value that stands for "none", if any
    models: str = "all"
    dynamic: bool = False  # changes while the neuron or connection lives: spells in the dynamic GEXF
    sonata: str = ""  # its name in SONATA files: "" the same, "-" not written
    neuprint: str = ""  # its name in neuPrint's CSV: "" the same, "-" not written


NODE_ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute(
        "neuron_id", int, "the neuron's id, never reused (the node key is its label, e.g. h17)", neuprint="bodyId"
    ),
    Attribute("role", str, "input, hidden or output", neuprint="type"),
    Attribute("area", str, "the area (layer) the neuron belongs to", models="layered"),
    Attribute("state", str, "alive, or reserve (below the deletion threshold); deleted (dead nodes)", dynamic=True),
    Attribute("born", int, "cycle (URN: epoch) the neuron was added", "-1: unknown (an ancestor named by a lineage)"),
    Attribute("died", int, "cycle it was deleted", "-1: alive"),
    Attribute("age", int, "cycles from birth to the graph's cycle, or to death"),
    Attribute("generation", int, "inheritances in its lineage"),
    Attribute("inherited_from", int, "dead neuron whose wiring it took", "-1: none"),
    Attribute("lineage", str, "ancestors, oldest first, ending with itself: h3>h9>h17"),
    Attribute("multiplier", float, "output multiplier", models="char-RNN with the multipliers penalty", dynamic=True),
    Attribute("bias", float, "bias", dynamic=True),
    Attribute("in_l1", float, "sum of abs(w) over incoming connections", dynamic=True),
    Attribute("out_l1", float, "sum of abs(w) over outgoing connections", dynamic=True),
    Attribute("x", float, "position: the URN's geometry, or the char-RNN's layout (graph attribute positions)"),
    Attribute("y", float, "position"),
    Attribute("z", float, "position (0 in the char-RNN's layout)"),
    Attribute("tags", str, "comma-separated tags, e.g. char:a", '"": none'),
)
EDGE_ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("weight", float, "abs(w): non-negative, for layouts (Gephi's and igraph's edge weight)",
              dynamic=True, sonata="-"),  # fmt: skip
    Attribute("signed_weight", float, "w, the trained weight", dynamic=True, sonata="syn_weight"),
    Attribute("born", int, "cycle the connection was made"),
    Attribute("inherited_from", int, "dead neuron whose wiring it restores", "-1: none"),
)
CONNECTOME_EDGE_ATTRIBUTES: tuple[Attribute, ...] = (  # only where deleted neurons' connections are kept
    Attribute("died", int, "cycle the connection was deleted with its neuron (SONATA and neuPrint only)", "-1: alive"),
)
GRAPH_ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("neurograph_version", str, "version that wrote the file"),
    Attribute("format_version", int, f"{FORMAT_VERSION}; files of version 1 (node attribute id) are read too"),
    Attribute("model", str, "charrnn or urn", '"": unknown'),
    Attribute("scenario", str, "scenario name", '"": none'),
    Attribute("seed", int, "the run's seed", "-1: none"),
    Attribute("cycle", int, "cycle (URN: epoch) of the graph"),
    Attribute("next_id", int, "id the next neuron would get"),
    Attribute("graveyard_size", int, "deleted neurons kept with their wiring"),
    Attribute("positions", str, "geometry (the model's, read back) or layout (drawn for viewers, ignored on import)"),
    Attribute("areas", str, "the areas in evaluation order, then the deleted ones, each name:kind:born:died:grown_from "
              "(died -1: alive), joined by ';'", models="layered"),
)


@dataclass
class NodeColumns:
    """Nodes as columns: ``labels`` (n,) keys, ``ids`` (n,) and one (n,) column per attribute."""

    labels: list[str]
    ids: list[int]
    columns: dict[str, np.ndarray | list]


@dataclass
class EdgeColumns:
    """Edges as columns: ``source`` and ``target`` (E,) int64 rows into ``ids``, one (E,) column per attribute."""

    ids: list[int]  # living neuron ids, ascending
    source: np.ndarray
    target: np.ndarray
    columns: dict[str, np.ndarray]


# ------------------------------------------------------------ what applies
def has_multipliers(graph: Graph) -> bool:
    """Whether the network trains output multipliers (``meta['penalty']``; older graphs: any is not 1)."""
    if "penalty" in graph.meta:
        return graph.meta["penalty"] == "multipliers"
    neurons = [*graph.neurons.values(), *graph.dead.values()]
    return graph.meta.get("model") != "urn" and any(n.multiplier != 1.0 for n in neurons)


def has_areas(graph: Graph) -> bool:
    """Whether the neurons belong to areas (a layered or multi-area network)."""
    return bool(graph.areas or graph.dead_areas) or any(n.area for n in graph.neurons.values())


def has_geometry(graph: Graph) -> bool:
    """Whether the neurons have positions of their own (the URN's); else they get :func:`layout_positions`."""
    neurons = [*graph.neurons.values(), *graph.dead.values()]
    return graph.meta.get("model") == "urn" or any(any(n.position) for n in neurons)


def node_attribute_names(graph: Graph) -> list[str]:
    """The node attributes written for ``graph``, in schema order."""
    skip = (set() if has_multipliers(graph) else {"multiplier"}) | (set() if has_areas(graph) else {"area"})
    return [a.name for a in NODE_ATTRIBUTES if a.name not in skip]


def names_in(fmt: str, attributes: Iterable[Attribute]) -> dict[str, str]:
    """Attribute name -> its name in ``fmt`` (one of :data:`CONNECTOME_FORMATS`), for those ``fmt`` writes."""
    if fmt not in CONNECTOME_FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {', '.join(CONNECTOME_FORMATS)}")
    own = {a.name: getattr(a, fmt) for a in attributes}
    return {name: alias or name for name, alias in own.items() if alias != "-"}


# --------------------------------------------------------------- positions
def layout_positions(graph: Graph, neurons: list[Neuron]) -> np.ndarray:
    """(n, 3) positions of ``neurons``: their own if the graph has a geometry, else the fixed layout.

    Layout: input k of I at ``(-2R, R (2k / (I - 1) - 1), 0)``, outputs likewise at
    ``+2R``, hidden neuron ``i`` on the circle of radius R at angle ``i`` times
    the golden angle (R = :data:`LAYOUT_RADIUS`); a layered network's areas
    stand in columns instead, left to right in evaluation order. Ranks among inputs and
    outputs count dead ones too, so no neuron moves when another dies.
    """
    if has_geometry(graph):
        return np.array([n.position for n in neurons], dtype=np.float64).reshape(len(neurons), 3)
    if graph.areas or graph.dead_areas:
        return _area_layout(graph, neurons)
    known = {**graph.dead, **graph.neurons}
    rank = {
        role: {i: k for k, i in enumerate(sorted(i for i, n in known.items() if n.role == role))}
        for role in ("input", "output")
    }
    out = np.zeros((len(neurons), 3))
    for row, n in enumerate(neurons):
        if n.role == "hidden":
            angle = n.id * _GOLDEN_ANGLE
            out[row, :2] = LAYOUT_RADIUS * math.cos(angle), LAYOUT_RADIUS * math.sin(angle)
        else:
            ranks = rank[n.role]
            k, count = ranks.get(n.id, 0), len(ranks)
            side = -2.0 if n.role == "input" else 2.0
            out[row, :2] = side * LAYOUT_RADIUS, LAYOUT_RADIUS * (2.0 * k / max(count - 1, 1) - 1.0)
    return out


def _area_layout(graph: Graph, neurons: list[Neuron]) -> np.ndarray:
    """A layered network's layout: one column per area, left to right in evaluation order (deleted
    areas where they stood, by birth), its neurons down the column by id, spaced R / 4 apart."""
    living = list(graph.areas)
    dead = sorted(graph.dead_areas.values(), key=lambda a: a.born)
    order = living[:-1] + [a.name for a in dead] + living[-1:]  # the output stays the rightmost column
    column = {a: k for k, a in enumerate(order)}
    known = {**graph.dead, **graph.neurons}
    rows: dict[str, dict[int, int]] = {}
    for i in sorted(known):
        by_area = rows.setdefault(known[i].area, {})
        by_area[i] = len(by_area)
    out = np.zeros((len(neurons), 3))
    for row, n in enumerate(neurons):
        count = len(rows.get(n.area, {})) or 1
        out[row, 0] = LAYOUT_RADIUS * column.get(n.area, len(order))
        out[row, 1] = LAYOUT_RADIUS / 4 * (rows.get(n.area, {}).get(n.id, 0) - (count - 1) / 2)
    return out


# ----------------------------------------------------------------- columns
def node_columns(
    graph: Graph, *, reserve: Iterable[int] = (), include_dead: bool = False
) -> NodeColumns:
    """Living neurons (ascending id), then with ``include_dead`` every dead one as ``deleted``.

    ``reserve``: ids of living neurons below the deletion threshold (state
    ``reserve``). A dead neuron has no connections: its ``in_l1``, ``out_l1`` are 0.
    """
    reserve = set(reserve)
    ids = graph.ids()
    in_l1, out_l1 = graph.norms(ids)
    neurons = [graph.neurons[i] for i in ids]
    states = ["reserve" if i in reserve else "alive" for i in ids]
    if include_dead:
        dead = [graph.dead[i] for i in sorted(graph.dead)]
        neurons += dead
        states += ["deleted"] * len(dead)
        in_l1, out_l1 = (np.concatenate([a, np.zeros(len(dead))]) for a in (in_l1, out_l1))
    ints = lambda values: np.array(list(values), dtype=np.int64)  # noqa: E731
    floats = lambda values: np.array(list(values), dtype=np.float64)  # noqa: E731
    position = layout_positions(graph, neurons)
    columns: dict[str, np.ndarray | list] = {
        "neuron_id": ints(n.id for n in neurons),
        "role": [n.role for n in neurons],
        "area": [n.area for n in neurons],
        "state": states,
        "born": ints(n.born for n in neurons),
        "died": ints(_unset(n.died) for n in neurons),
        "age": ints((graph.cycle if n.died is None else n.died) - n.born for n in neurons),
        "generation": ints(n.generation for n in neurons),
        "inherited_from": ints(_unset(n.inherited_from) for n in neurons),
        "lineage": [graph.lineage_label(n.id) for n in neurons],
        "multiplier": floats(n.multiplier for n in neurons),
        "bias": floats(n.bias for n in neurons),
        "in_l1": floats(in_l1),
        "out_l1": floats(out_l1),
        "x": position[:, 0].copy(),
        "y": position[:, 1].copy(),
        "z": position[:, 2].copy(),
        "tags": [",".join(sorted(n.tags)) for n in neurons],
    }
    names = node_attribute_names(graph)
    return NodeColumns([n.label for n in neurons], [n.id for n in neurons], {k: columns[k] for k in names})


def edge_columns(graph: Graph) -> EdgeColumns:
    """Every connection, in :meth:`Graph.connections` order."""
    ids = graph.ids()
    row = {i: k for k, i in enumerate(ids)}
    n = graph.num_connections()
    source, target, born, inherited = (np.empty(n, dtype=np.int64) for _ in range(4))
    weight = np.empty(n, dtype=np.float64)
    for e, c in enumerate(graph.connections()):
        source[e], target[e], weight[e] = row[c.source], row[c.target], c.weight
        born[e], inherited[e] = c.born, _unset(c.inherited_from)
    columns = {"weight": np.abs(weight), "signed_weight": weight, "born": born, "inherited_from": inherited}
    return EdgeColumns(ids, source, target, columns)


def graph_attributes(graph: Graph) -> dict[str, int | str]:
    """The graph-level attributes: :data:`GRAPH_ATTRIBUTES`, then ``meta_<key>`` for other meta."""
    out: dict = {
        "neurograph_version": __version__,
        "format_version": FORMAT_VERSION,
        "model": "",
        "scenario": "",
        "seed": UNSET,
        "cycle": int(graph.cycle),
        "next_id": int(graph.next_id),
        "graveyard_size": int(graph.graveyard.maxlen or 0),
        "positions": "geometry" if has_geometry(graph) else "layout",
    }
    if graph.areas or graph.dead_areas:
        out["areas"] = areas_text(graph)
    for key, value in graph.meta.items():
        value = str(value)
        if key in ("model", "scenario") and value:
            out[key] = value
        elif key == "seed" and value.isascii() and value.isdigit() and str(int(value)) == value:
            out["seed"] = int(value)
        else:
            out[META_PREFIX + key] = value
    return out


def areas_text(graph: Graph) -> str:
    """The graph attribute ``areas``: living areas in order, then dead ones (:func:`parse_areas` reads it)."""
    return ";".join(f"{a.name}:{a.kind}:{a.born}:{_unset(a.died)}:{a.grown_from or ''}"
                    for a in [*graph.areas.values(), *graph.dead_areas.values()])  # fmt: skip


def parse_areas(text: str) -> list[Area]:
    """The :class:`~neurograph.graph.Area` records of :func:`areas_text` (ValueError if malformed)."""
    out = []
    for item in filter(None, text.split(";")):
        name, kind, born, died, grown_from = item.split(":")
        out.append(Area(name=name, kind=kind, born=int(born), died=None if int(died) == UNSET else int(died),
                        grown_from=grown_from or None))  # fmt: skip
    return out


def _unset(value: int | None) -> int:
    return UNSET if value is None else int(value)
