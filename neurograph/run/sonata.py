"""SONATA network files (the Allen Institute's and Blue Brain's circuit format) of everything that lived.

A folder of five files, after the SONATA developer guide (format version 0.1):

- ``nodes.h5``: one node population, :data:`NODE_POPULATION`, one row per
  neuron that lived (:mod:`neurograph.run.lived`), ascending id:
  ``node_id`` (the row: 0..N-1), ``node_type_id`` (the role, see
  ``node_types.csv``), ``node_group_id`` (0) and ``node_group_index`` (the
  row); group ``0/`` holds the node attributes of
  :mod:`neurograph.graph_columns` under their own names (``neuron_id`` is
  the neurograph id, ``x``, ``y``, ``z`` SONATA's reserved position), and the
  population group's HDF5 attributes are the graph attributes;
- ``edges.h5``: one edge population, :data:`EDGE_POPULATION`:
  ``source_node_id`` and ``target_node_id`` (node rows, each with the
  ``node_population`` attribute), ``edge_type_id`` (the roles of its ends),
  ``edge_group_id``, ``edge_group_index``; group ``0/`` holds ``syn_weight``
  (the signed weight ``w``), ``born``, ``inherited_from`` and ``died``; and
  the ``indices`` readers use to find a node's connections
  (``source_to_target``, ``target_to_source``: ``node_id_to_ranges``,
  ``range_to_edge_id``, as ``libsonata.EdgePopulation.write_indices`` writes them);
- ``node_types.csv``, ``edge_types.csv``: the types, space-separated;
- ``circuit_config.json``: the two files and their populations, for
  ``libsonata.CircuitConfig`` and simulators' loaders.

Inputs are ``virtual`` nodes (they carry the task, nothing computes them),
hidden and output neurons ``point_neuron`` with ``model_template``
``neurograph:<model>``: no simulator has our update rules, the files are for
analysis and viewers. Integers are int64 and floats float64 (exact); ids and
indices follow the guide's types. Needs h5py (``pip install 'neurograph[sonata]'``).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from neurograph.atomic import atomic_open, write_text_atomic
from neurograph.graph import ROLES
from neurograph.graph_columns import CONNECTOME_EDGE_ATTRIBUTES, EDGE_ATTRIBUTES, NODE_ATTRIBUTES, names_in
from neurograph.run.lived import Lived
from neurograph.run.reader import ExportError

__all__ = ["NODE_POPULATION", "EDGE_POPULATION", "SPEC_VERSION", "edge_index", "write_sonata"]

NODE_POPULATION = "neurons"
EDGE_POPULATION = "connections"
SPEC_VERSION = (0, 1)  # the developer guide's version, in every file's "version" attribute
_MAGIC = 0x0A7A  # every SONATA HDF5 file's "magic" attribute
_MODEL_TYPE = {"input": "virtual", "hidden": "point_neuron", "output": "point_neuron"}


def write_sonata(lived: Lived, folder: str | os.PathLike) -> None:
    """``nodes.h5``, ``edges.h5``, ``node_types.csv``, ``edge_types.csv`` and ``circuit_config.json`` in ``folder``."""
    h5py = _h5py()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_open(folder / "nodes.h5", "w+b") as f, h5py.File(f, "w") as h5:
        _write_nodes(h5py, h5, lived)
    with atomic_open(folder / "edges.h5", "w+b") as f, h5py.File(f, "w") as h5:
        _write_edges(h5py, h5, lived)
    model = lived.graph.get("model") or "unknown"
    node_types = [["node_type_id", "model_type", "model_template", "role", "population"]]
    for k, role in enumerate(ROLES):
        template = "NULL" if _MODEL_TYPE[role] == "virtual" else f"neurograph:{model}"
        node_types.append([k, _MODEL_TYPE[role], template, role, NODE_POPULATION])
    edge_types = [["edge_type_id", "source_role", "target_role", "population"]]
    edge_types += [[_edge_type(s, t), source, target, EDGE_POPULATION]
                   for s, source in enumerate(ROLES) for t, target in enumerate(ROLES)]  # fmt: skip
    for name, rows in (("node_types.csv", node_types), ("edge_types.csv", edge_types)):
        with atomic_open(folder / name, "w") as f:
            csv.writer(f, delimiter=" ", lineterminator="\n").writerows(rows)
    write_text_atomic(folder / "circuit_config.json", json.dumps(_circuit_config(), indent=2) + "\n")


def edge_index(node_ids: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """SONATA's index of edges by one end: ``node_id_to_ranges`` (n_nodes, 2) and ``range_to_edge_id`` (R, 2).

    ``node_ids`` (E,): each edge's source (or target) node. A range is a run of
    consecutive edge ids with the same node, ``[start, end)``; a node's ranges
    are rows ``[first, last)`` of ``range_to_edge_id``, an empty slice for a
    node without edges. uint64, as libsonata writes them.
    """
    node_ids = np.asarray(node_ids, dtype=np.int64)
    order = np.argsort(node_ids, kind="stable")  # by node, edge ids ascending within one
    node = node_ids[order]
    starts = np.flatnonzero(np.r_[True, (node[1:] != node[:-1]) | (order[1:] != order[:-1] + 1)])
    ends = np.r_[starts[1:], len(order)]
    ranges = np.column_stack([order[starts], order[ends - 1] + 1]) if len(order) else np.zeros((0, 2))
    nodes = np.arange(n_nodes)
    first, last = np.searchsorted(node[starts], nodes, "left"), np.searchsorted(node[starts], nodes, "right")
    return np.column_stack([first, last]).astype(np.uint64), ranges.astype(np.uint64)


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ExportError("the sonata format needs h5py: pip install 'neurograph[sonata]'") from None
    return h5py


def _stamp(h5) -> None:
    h5.attrs["magic"] = np.uint32(_MAGIC)
    h5.attrs["version"] = np.array(SPEC_VERSION, dtype=np.uint32)


def _write_nodes(h5py, h5, lived: Lived) -> None:
    _stamp(h5)
    nodes, n = lived.nodes, len(lived.nodes.ids)
    population = h5.create_group(f"nodes/{NODE_POPULATION}")
    population.attrs.update(lived.graph)
    role = {r: k for k, r in enumerate(ROLES)}
    population["node_type_id"] = np.array([role[r] for r in nodes.columns["role"]], dtype=np.int64)
    population["node_id"] = np.arange(n, dtype=np.uint64)
    population["node_group_id"] = np.zeros(n, dtype=np.uint32)
    population["node_group_index"] = np.arange(n, dtype=np.uint64)
    group = population.create_group("0")
    for name, alias in names_in("sonata", NODE_ATTRIBUTES).items():
        if name in nodes.columns:
            group[alias] = _dataset(h5py, nodes.columns[name])


def _write_edges(h5py, h5, lived: Lived) -> None:
    _stamp(h5)
    edges, n_nodes, n = lived.edges, len(lived.nodes.ids), len(lived.edges.source)
    population = h5.create_group(f"edges/{EDGE_POPULATION}")
    for end, rows in (("source_node_id", edges.source), ("target_node_id", edges.target)):
        population[end] = rows.astype(np.uint64)
        population[end].attrs["node_population"] = NODE_POPULATION
    role = np.array([ROLES.index(r) for r in lived.nodes.columns["role"]], dtype=np.int64)
    population["edge_type_id"] = _edge_type(role[edges.source], role[edges.target]).astype(np.int64)
    population["edge_group_id"] = np.zeros(n, dtype=np.uint32)
    population["edge_group_index"] = np.arange(n, dtype=np.uint64)
    group = population.create_group("0")
    for name, alias in names_in("sonata", (*EDGE_ATTRIBUTES, *CONNECTOME_EDGE_ATTRIBUTES)).items():
        group[alias] = _dataset(h5py, edges.columns[name])
    for index, ends in (("source_to_target", edges.source), ("target_to_source", edges.target)):
        node_ranges, ranges = edge_index(ends, n_nodes)
        population[f"indices/{index}/node_id_to_ranges"] = node_ranges
        population[f"indices/{index}/range_to_edge_id"] = ranges


def _dataset(h5py, values) -> np.ndarray:
    """A column as HDF5 data: text as variable-length UTF-8 strings, numbers as they are."""
    values = np.asarray(values)
    if values.dtype.kind in "UO":
        return np.array(values.tolist(), dtype=h5py.string_dtype("utf-8"))
    return values


def _edge_type(source_role, target_role):
    """An edge type per (source role, target role): 3 * source + target, roles in ``ROLES`` order."""
    return len(ROLES) * source_role + target_role


def _circuit_config() -> dict:
    return {
        "manifest": {"$BASE_DIR": "."},
        "components": {},
        "networks": {
            "nodes": [{"nodes_file": "$BASE_DIR/nodes.h5", "node_types_file": "$BASE_DIR/node_types.csv",
                       "populations": {NODE_POPULATION: {"type": "point_neuron"}}}],
            "edges": [{"edges_file": "$BASE_DIR/edges.h5", "edge_types_file": "$BASE_DIR/edge_types.csv",
                       "populations": {EDGE_POPULATION: {}}}],
        },
    }  # fmt: skip
