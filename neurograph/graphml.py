"""GraphML export and import of a :class:`~neurograph.graph.Graph`.

The attributes are the schema every format shares
(:mod:`neurograph.graph_columns`, ``docs/exports.md``). GraphML holds only
flat, typed scalars, so the file uses sentinels instead of ``None`` (``-1`` for
an unset id or cycle, ``""`` for an empty string), joins tags with ``,`` and
flattens lineage to a label chain such as ``h3>h9>h17``. Every attribute name
has exactly one type wherever it appears (node, edge or graph), and key ids
equal attribute names, so other tools (igraph, Gephi) read it as is.

One node per living neuron, labelled like ``h17``, with state ``alive`` or
``reserve`` (below the deletion threshold); ``include_dead`` adds every dead
neuron as a ``deleted`` node without edges, for timelines. Edge ``weight`` is
``|w|`` because layout tools expect non-negative weights; ``signed_weight`` is the
real one. ``age``, ``in_l1``, ``out_l1`` and ``weight`` are derived: written for
viewers, ignored on import, as are the positions of a graph whose ``positions``
attribute says ``layout``. A file without ``multiplier`` imports multipliers of 1.
Files of format version 1 (node attribute ``id`` for ``neuron_id``) are read too.

Import rebuilds an equal graph: same ids, attributes, exact weights, connection
metadata, cycle, meta and next id. Dead neurons come back from ``deleted`` nodes
when present; otherwise the dead ancestors of living neurons are rebuilt from
the lineage strings, as minimal records (id, role, generation, inherited_from)
whose unknown ``born`` and ``died`` are -1. The event log and graveyard are not
stored: an imported graph starts with both empty.
"""

from __future__ import annotations

import numbers
import os
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import networkx as nx
import numpy as np

from neurograph.atomic import atomic_open
from neurograph.graph import ROLES, Graph, GraphError, Neuron, neuron_label
from neurograph.graph_columns import (
    FORMAT_VERSION,
    META_PREFIX,
    UNSET,
    edge_columns,
    graph_attributes,
    parse_areas,
    node_columns,
)
from neurograph.graphml_writer import write_graphml_columns

__all__ = [
    "FORMAT_VERSION",
    "STATES",
    "GraphMLError",
    "to_networkx",
    "from_networkx",
    "write_graphml",
    "read_graphml",
]

READ_VERSIONS = (1, FORMAT_VERSION)
STATES = ("alive", "reserve", "deleted")
_ROLE_BY_INITIAL = {neuron_label(0, role)[0]: role for role in ROLES}  # "h" -> "hidden"


class GraphMLError(ValueError):
    """A graph that cannot be written to, or a file that cannot be read as, neurograph GraphML."""


@dataclass
class _Node:
    """One node of an imported file, validated."""

    name: str
    neuron: Neuron  # died set for a deleted node
    state: str
    lineage: str
    chain: list[tuple[int, str]]  # (id, role) per lineage label, oldest first


# ------------------------------------------------------------------ export
def to_networkx(
    graph: Graph, *, reserve: Iterable[int] = (), include_dead: bool = False
) -> nx.DiGraph:
    """The graph as a flat-attribute ``nx.DiGraph`` (see module docstring).

    ``reserve``: ids of living neurons below the deletion threshold.
    ``include_dead``: also write every neuron in ``graph.dead`` (no edges).
    """
    nodes, edges = _columns(graph, reserve, include_dead)
    g = nx.DiGraph(**graph_attributes(graph))
    listed = {k: np.asarray(v).tolist() for k, v in nodes.columns.items()}
    for row, label in enumerate(nodes.labels):
        g.add_node(label, **{k: values[row] for k, values in listed.items()})
    listed = {k: v.tolist() for k, v in edges.columns.items()}
    names = [graph.neurons[i].label for i in edges.ids]
    for e, (s, t) in enumerate(zip(edges.source.tolist(), edges.target.tolist())):
        g.add_edge(names[s], names[t], **{k: values[e] for k, values in listed.items()})
    return g


def write_graphml(
    graph: Graph,
    path: str | os.PathLike,
    *,
    reserve: Iterable[int] = (),
    include_dead: bool = False,
) -> None:
    """Write the graph to ``path`` atomically (temp file in the same folder, then replace).

    The file is :func:`to_networkx`'s, streamed from the graph's arrays
    (:mod:`neurograph.graphml_writer`): no object per connection.
    """
    nodes, edges = _columns(graph, reserve, include_dead)  # living nodes first, ascending: edge rows index them
    with atomic_open(Path(path), "wb") as f:
        write_graphml_columns(
            f,
            graph_attributes=graph_attributes(graph),
            node_labels=nodes.labels,
            nodes=nodes.columns,
            edge_sources=edges.source,
            edge_targets=edges.target,
            edges=edges.columns,
        )


def _columns(graph: Graph, reserve: Iterable[int], include_dead: bool):
    """Node and edge columns of the file, after checking what GraphML cannot hold."""
    reserve = set(reserve)
    stray = sorted(reserve - graph.neurons.keys())
    if stray:
        raise GraphMLError(f"reserve id {stray[0]} is not a living neuron")
    for n in [*graph.neurons.values(), *(graph.dead.values() if include_dead else ())]:
        for tag in n.tags:
            if not tag or "," in tag:
                raise GraphMLError(f"neuron {n.label}: tag {tag!r} is empty or contains ','")
    return node_columns(graph, reserve=reserve, include_dead=include_dead), edge_columns(graph)


def _int_or_unset(value: int | None) -> int:
    return UNSET if value is None else int(value)


# ------------------------------------------------------------------ import
def read_graphml(path: str | os.PathLike) -> Graph:
    """Read a file written by :func:`write_graphml` (:class:`GraphMLError` if it is not one)."""
    try:
        return from_networkx(_parse(path))
    except GraphMLError as e:
        raise GraphMLError(f"{os.fspath(path)}: {e}") from None


def from_networkx(g: nx.DiGraph) -> Graph:
    """Rebuild the :class:`Graph` that :func:`to_networkx` exported.

    ``reserve`` neurons come back as ordinary living ones: Graph has no such state.
    """
    if not g.is_directed() or g.is_multigraph():
        raise GraphMLError(_shape_problem(g))
    fields = _graph_fields(g.graph)
    nodes = [_node(g, name, data, fields) for name, data in g.nodes(data=True)]
    _check_unique_ids(nodes)
    dead = _dead_records(nodes)
    by_name = {n.name: n for n in nodes}
    living = {n.neuron.id for n in nodes if n.state != "deleted"}
    next_id = fields["next_id"]
    edges = [_edge(u, v, data, by_name, living, next_id) for u, v, data in g.edges(data=True)]
    try:
        return _build(fields, [n.neuron for n in nodes if n.state != "deleted"], dead, edges)
    except GraphError as e:
        raise GraphMLError(f"inconsistent graph: {e}") from None


def _parse(path: str | os.PathLike) -> nx.DiGraph:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise GraphMLError(f"not XML ({e})") from None
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    if root.tag[len(ns) :] != "graphml":
        raise GraphMLError(f"not GraphML (root element <{root.tag[len(ns):]}>)")
    seen: set[str] = set()
    for node in root.iter(f"{ns}node"):
        name = node.get("id", "")
        if name in seen:
            raise GraphMLError(f"duplicate node {name!r}")
        seen.add(name)
    try:
        return nx.read_graphml(path)
    except (nx.NetworkXError, ValueError, KeyError, TypeError) as e:
        raise GraphMLError("malformed GraphML: " + " ".join(str(e).split())) from None


def _shape_problem(g: nx.Graph) -> str:
    if not g.is_directed():
        return "graph is undirected, expected directed"
    pair = next(((u, v) for u, v in g.edges() if g.number_of_edges(u, v) > 1), None)
    if pair is None:
        return "graph is a multigraph, expected a DiGraph"
    return f"duplicate edge {pair[0]!r} -> {pair[1]!r}"


def _graph_fields(attrs: dict) -> dict:
    if "format_version" not in attrs:
        raise GraphMLError("not a neurograph graph: no 'format_version' graph attribute")
    version = _field(attrs, "format_version", int, "graph")
    if version not in READ_VERSIONS:
        raise GraphMLError(
            f"graph: format_version {version} unsupported, expected one of {', '.join(map(str, READ_VERSIONS))}"
        )
    meta = {k[len(META_PREFIX) :]: str(v) for k, v in attrs.items() if k.startswith(META_PREFIX)}
    for key in ("model", "scenario"):
        value = _field(attrs, key, str, "graph", default="")
        if value:
            meta[key] = value
    seed = _field(attrs, "seed", int, "graph", default=UNSET)
    if seed != UNSET:
        meta["seed"] = str(seed)
    return {
        "version": version,
        "cycle": _field(attrs, "cycle", int, "graph"),
        "next_id": _field(attrs, "next_id", int, "graph"),
        "graveyard_size": _field(attrs, "graveyard_size", int, "graph", default=64),
        "layout": _field(attrs, "positions", str, "graph", default="geometry") == "layout",
        "meta": meta,
        "areas": _areas(_field(attrs, "areas", str, "graph", default="")),
    }


def _areas(text: str) -> list:
    try:
        return parse_areas(text)
    except ValueError:
        raise GraphMLError(f"graph: areas {text!r} is not name:kind:born:died:grown_from;...") from None


def _node(g: nx.DiGraph, name, data: dict, fields: dict) -> _Node:
    where, next_id = f"node {name!r}", fields["next_id"]
    if not data and g.degree(name):
        u, v = next(iter(g.in_edges(name)), None) or next(iter(g.out_edges(name)))
        raise GraphMLError(f"edge {u!r} -> {v!r} refers to unknown node {name!r}")
    i = _field(data, "id" if fields["version"] == 1 else "neuron_id", int, where)
    role = _choice(data, "role", ROLES, where)
    state = _choice(data, "state", STATES, where)
    if name != neuron_label(i, role):
        raise GraphMLError(f"{where}: name does not match id {i} and role {role!r}")
    if not 0 <= i < next_id:
        raise GraphMLError(f"{where}: id {i} is not in [0, next_id {next_id})")
    born, died = _field(data, "born", int, where), _field(data, "died", int, where)
    # a dead neuron rebuilt from a lineage has born = died = -1 (unknown)
    if died < born if state == "deleted" else died != UNSET:
        raise GraphMLError(f"{where}: died {died} does not fit state {state!r} and born {born}")
    inherited = _field(data, "inherited_from", int, where)
    lineage = _field(data, "lineage", str, where)
    tags = _field(data, "tags", str, where)
    neuron = Neuron(
        id=i,
        role=role,
        born=born,
        died=died if state == "deleted" else None,
        generation=_field(data, "generation", int, where),
        inherited_from=None if inherited == UNSET else inherited,
        multiplier=_field(data, "multiplier", float, where, default=1.0),
        bias=_field(data, "bias", float, where),
        position=(0.0, 0.0, 0.0) if fields["layout"] else tuple(_field(data, k, float, where) for k in "xyz"),
        tags=frozenset(tags.split(",")) if tags else frozenset(),
        area=_field(data, "area", str, where, default=""),
    )
    return _Node(name, neuron, state, lineage, _lineage_chain(lineage, where, next_id))


def _lineage_chain(text: str, where: str, next_id: int) -> list[tuple[int, str]]:
    chain = []
    for label in text.split(">"):
        role, digits = _ROLE_BY_INITIAL.get(label[:1]), label[1:]
        numeric = digits.isascii() and digits.isdigit()
        if role is None or not numeric or neuron_label(int(digits), role) != label:
            raise GraphMLError(f"{where}: bad lineage {text!r}, expected labels like 'h3>h9>h17'")
        if int(digits) >= next_id:
            raise GraphMLError(f"{where}: lineage {text!r} names {label}, id >= next_id {next_id}")
        chain.append((int(digits), role))
    return chain


def _check_unique_ids(nodes: list[_Node]) -> None:
    names: dict[int, str] = {}
    for n in nodes:
        other = names.setdefault(n.neuron.id, n.name)
        if other != n.name:
            raise GraphMLError(f"duplicate id {n.neuron.id} (nodes {other!r} and {n.name!r})")


def _dead_records(nodes: list[_Node]) -> dict[int, Neuron]:
    """Dead neurons: ``deleted`` nodes, plus lineage ancestors rebuilt from their labels.

    Checks that all lineages agree with each other and with ``inherited_from``
    and ``generation``; an ancestor must be dead.
    """
    in_file = {n.neuron.id: n for n in nodes}
    parent: dict[int, int | None] = {}
    role: dict[int, str] = {}
    for n in nodes:
        where = f"node {n.name!r}: lineage {n.lineage!r}"
        if n.chain[-1] != (n.neuron.id, n.neuron.role):
            raise GraphMLError(f"{where} does not end with the node's own label")
        for k, (i, r) in enumerate(n.chain):
            up = n.chain[k - 1][0] if k else None
            if role.setdefault(i, r) != r or parent.setdefault(i, up) != up:
                label = neuron_label(i, r)
                raise GraphMLError(f"{where} disagrees with another lineage about {label}")
    dead_ids = {i for i in role if i not in in_file or in_file[i].state == "deleted"}
    for n in nodes:
        _check_ancestry(n, parent, dead_ids)
    records = {i: n.neuron for i, n in in_file.items() if n.state == "deleted"}
    for n in nodes:
        for depth, (i, r) in enumerate(n.chain):
            if i not in in_file:
                records[i] = Neuron(
                    i, r, born=UNSET, died=UNSET, generation=depth, inherited_from=parent[i]
                )
    return records


def _check_ancestry(n: _Node, parent: dict[int, int | None], dead_ids: set[int]) -> None:
    where, lineage = f"node {n.name!r}", repr(n.lineage)
    inherited, generation = n.neuron.inherited_from, n.neuron.generation
    if inherited is not None and inherited not in dead_ids:
        raise GraphMLError(f"{where}: inherited_from {inherited} is not a known dead neuron")
    if parent[n.neuron.id] != inherited:
        shown = _int_or_unset(inherited)
        raise GraphMLError(f"{where}: inherited_from {shown} does not match lineage {lineage}")
    for i, r in n.chain[:-1]:
        if i not in dead_ids:
            label = neuron_label(i, r)
            raise GraphMLError(f"{where}: lineage {lineage} names living {label} as an ancestor")
    if generation != len(n.chain) - 1:
        raise GraphMLError(f"{where}: generation {generation} does not match lineage {lineage}")


def _edge(u, v, data: dict, by_name: dict[str, _Node], living: set[int], next_id: int) -> tuple:
    """(source id, target id, signed weight, born, inherited_from or None)."""
    where = f"edge {u!r} -> {v!r}"
    for end in (u, v):
        if by_name[end].state == "deleted":
            raise GraphMLError(f"{where}: touches deleted neuron {end!r}")
    weight = _field(data, "signed_weight", float, where)
    born = _field(data, "born", int, where)
    inherited = _field(data, "inherited_from", int, where)
    # A connection may come from any dead neuron, not only a known ancestor.
    if inherited != UNSET and (inherited in living or not 0 <= inherited < next_id):
        raise GraphMLError(f"{where}: inherited_from {inherited} is not a dead neuron id")
    inherited = None if inherited == UNSET else inherited
    return by_name[u].neuron.id, by_name[v].neuron.id, weight, born, inherited


def _field(data: dict, key: str, kind: type, where: str, default=None):
    """``data[key]`` as ``kind`` (int, float or str); integral floats pass as int."""
    if key not in data:
        if default is not None:
            return default
        raise GraphMLError(f"{where} lacks attribute {key!r}")
    value = data[key]
    if kind is str and isinstance(value, str):
        return value
    if kind is not str and isinstance(value, numbers.Real) and not isinstance(value, bool):
        if kind is float:
            return float(value)
        if float(value).is_integer():
            return int(value)
    raise GraphMLError(f"{where}: attribute {key!r} must be {kind.__name__}, got {value!r}")


def _choice(data: dict, key: str, accepted: tuple[str, ...], where: str) -> str:
    value = _field(data, key, str, where)
    if value not in accepted:
        raise GraphMLError(f"{where}: {key} {value!r} is not one of {', '.join(accepted)}")
    return value


def _build(
    fields: dict, living: list[Neuron], dead: dict[int, Neuron], edges: list[tuple]
) -> Graph:
    graph = Graph(graveyard_size=fields["graveyard_size"], capacity=max(16, len(living)))
    graph.meta = fields["meta"]
    graph.dead.update(dead)
    for n in sorted(living, key=lambda n: n.id):
        _add_with_id(graph, n)
    graph._next_id = fields["next_id"]
    graph.cycle = 0  # wire at cycle 0: default births; own births are set below
    incoming: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for s, t, w, _, _ in edges:
        incoming[t].append((s, w))
    for t, row in incoming.items():
        graph.wire([t], [s for s, _ in row], np.array([[w for _, w in row]]))
    for s, t, w, born, inherited in edges:  # own born / inherited_from: Graph's side table
        if inherited is not None or born != max(graph.neurons[s].born, graph.neurons[t].born):
            graph.cycle = born
            graph.connect(s, t, w, inherited_from=inherited)
    graph.cycle = fields["cycle"]
    graph.areas = {a.name: a for a in fields["areas"] if a.died is None}
    graph.dead_areas = {a.name: a for a in fields["areas"] if a.died is not None}
    graph.events.clear()  # the file holds no events; an import is not a structural change
    graph.check()
    return graph


def _add_with_id(graph: Graph, n: Neuron) -> None:
    """Add a living neuron keeping its id and birth cycle.

    Graph has no public way to choose either, so set the private id counter and
    the cycle that ``add_neuron`` reads; ``generation`` follows from ``graph.dead``.
    """
    graph._next_id = n.id
    graph.cycle = n.born
    graph.add_neuron(
        n.role,
        bias=n.bias,
        multiplier=n.multiplier,
        position=n.position,
        tags=n.tags,
        inherited_from=n.inherited_from,
        area=n.area,
    )
