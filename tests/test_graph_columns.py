"""Tests for neurograph.graph_columns: the schema, its table in docs/exports.md, what applies, positions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from neurograph.graph import Graph
from neurograph.graph_columns import (
    CONNECTOME_EDGE_ATTRIBUTES,
    CONNECTOME_FORMATS,
    EDGE_ATTRIBUTES,
    GRAPH_ATTRIBUTES,
    LAYOUT_RADIUS,
    NODE_ATTRIBUTES,
    RESERVED,
    edge_columns,
    graph_attributes,
    has_multipliers,
    layout_positions,
    names_in,
    node_attribute_names,
    node_columns,
)

DOC = Path(__file__).parents[1] / "docs" / "exports.md"
TYPE_NAMES = {int: "int", float: "float", str: "string"}


def doc_rows() -> list[list[str]]:
    """The cells of the schema table in docs/exports.md."""
    lines = [line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("| `")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_docs_table_is_the_schema():
    want = []
    edges = (*EDGE_ATTRIBUTES, *CONNECTOME_EDGE_ATTRIBUTES)
    for of, attrs in (("node", NODE_ATTRIBUTES), ("edge", edges), ("graph", GRAPH_ATTRIBUTES)):
        for a in attrs:
            gexf = "spells" if a.dynamic else "meta" if of == "graph" else "static"
            gexf = "-" if a in CONNECTOME_EDGE_ATTRIBUTES else gexf  # a GEXF edge ends instead
            names = [names_in(fmt, [a]).get(a.name) for fmt in CONNECTOME_FORMATS]
            names = [f"`{name}`" if name else "-" for name in names]
            want.append([f"`{a.name}`", of, TYPE_NAMES[a.type], a.meaning, a.sentinel or "-", a.models, gexf, *names])
    assert doc_rows() == want


def test_connectome_names():
    assert names_in("neuprint", NODE_ATTRIBUTES)["neuron_id"] == "bodyId"
    assert names_in("sonata", EDGE_ATTRIBUTES) == {"signed_weight": "syn_weight", "born": "born",
                                                  "inherited_from": "inherited_from"}  # weight: not written
    with pytest.raises(ValueError, match="'gexf' is not one of sonata, neuprint"):
        names_in("gexf", EDGE_ATTRIBUTES)


def test_no_attribute_takes_a_name_igraph_or_gephi_keeps():
    edges = (*EDGE_ATTRIBUTES, *CONNECTOME_EDGE_ATTRIBUTES)
    names = {a.name for a in (*NODE_ATTRIBUTES, *edges, *GRAPH_ATTRIBUTES)}
    assert not names & set(RESERVED)
    for attrs in (NODE_ATTRIBUTES, edges, GRAPH_ATTRIBUTES):
        assert len({a.name for a in attrs}) == len(attrs)
    shared = {a.name: a.type for a in NODE_ATTRIBUTES}
    assert all(shared.get(a.name, a.type) is a.type for a in edges)  # one type per name


def small(**meta) -> Graph:
    g = Graph()
    g.meta.update(meta)
    ins = [g.add_neuron("input").id for _ in range(3)]
    hid = [g.add_neuron("hidden", multiplier=0.5).id for _ in range(4)]
    outs = [g.add_neuron("output").id for _ in range(2)]
    g.wire(hid, ins, np.arange(12.0).reshape(4, 3) - 6)
    g.wire(outs, hid, np.ones((2, 4)))
    g.cycle = 7
    return g


@pytest.mark.parametrize(
    "meta, expected",
    [({"penalty": "multipliers"}, True), ({"penalty": "outgoing_l1"}, False), ({"model": "urn"}, False), ({}, True)],
)
def test_multiplier_applies_only_where_trained(meta, expected):
    g = small(**meta)
    assert has_multipliers(g) is expected
    assert ("multiplier" in node_attribute_names(g)) is expected
    assert ("multiplier" in node_columns(g).columns) is expected


def test_layout_depends_only_on_role_and_id():
    g = small(penalty="outgoing_l1")
    hidden = g.ids("hidden")
    before = layout_positions(g, [g.neurons[i] for i in hidden])
    assert np.allclose(np.hypot(before[:, 0], before[:, 1]), LAYOUT_RADIUS) and not before[:, 2].any()
    angles = np.mod(np.arctan2(before[:, 1], before[:, 0]), 2 * math.pi)
    assert len(set(np.round(angles, 6))) == len(hidden)
    g.delete_neuron(hidden[0])
    g.add_neuron("hidden")
    after = layout_positions(g, [g.neurons[i] for i in hidden[1:]])
    assert np.array_equal(after, before[1:])
    io = layout_positions(g, g.inputs + g.outputs)
    assert list(io[:, 0]) == [-2 * LAYOUT_RADIUS] * 3 + [2 * LAYOUT_RADIUS] * 2
    assert list(io[:3, 1]) == [-LAYOUT_RADIUS, 0.0, LAYOUT_RADIUS]


def test_columns_and_graph_attributes():
    g = small(scenario="s", seed="12", model="charrnn", penalty="outgoing_l1")
    nodes, edges = node_columns(g, reserve=[g.ids("hidden")[0]]), edge_columns(g)
    assert nodes.labels == [g.neurons[i].label for i in g.ids()]
    assert nodes.columns["state"].count("reserve") == 1
    assert nodes.columns["died"].tolist() == [-1] * len(g) and nodes.columns["age"].tolist() == [7] * len(g)
    assert len(edges.source) == g.num_connections() == 4 * 3 + 2 * 4
    assert np.array_equal(edges.columns["weight"], np.abs(edges.columns["signed_weight"]))
    attrs = graph_attributes(g)
    assert (attrs["seed"], attrs["model"], attrs["positions"], attrs["meta_penalty"]) == (12, "charrnn", "layout", "outgoing_l1")
