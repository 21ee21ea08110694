"""Connectomics of a trained URN: GraphML of the active network and Golkar's figures.

- :func:`write_connectome`: the active network as GraphML with flat scalar
  attributes, streamed from the analysis' arrays
  (:mod:`neurograph.graphml_writer`), as ``nx.write_graphml(named_key_ids=True)``
  would write it. Nodes (labelled like ``h17``): ``neuron_id``, ``role``, ``layer``,
  ``x``, ``y``, ``z``, ``bias``, ``activity`` (mean |N| over samples and
  iterations). Edges: ``weight`` (|w|), ``signed_weight``, ``direction``
  (forward / backward / lateral by layer), ``z_direction`` (the same by the z
  coordinate, as in the paper's Fig. 6), ``layer_diff``, ``length`` (eq. 8).
  Only the active network, and at most ``max_edges`` synapses of it (the
  strongest): before it sparsifies, a paper-size URN's active network has
  millions. The graph attributes ``synapses`` and ``synapses_written`` say
  whether the file holds all of them. :func:`connectome_graph` is the same
  as a ``networkx.DiGraph``, for small networks.
- :func:`plot_structure`: Figs. 3 and 4, the active neurons' mean activity per
  iteration and their weight matrix, both sorted by layer (a matrix of more
  than ``MATRIX_PIXELS`` neurons is pooled: each pixel shows the largest
  weight of its block).
- :func:`plot_connectome`: Fig. 6, the active network projected on a plane;
  forward synapses red, backward green, lateral black (by z, as the paper
  draws it); at most ``MAX_DRAWN`` synapses, the strongest.

Figures are drawn on a bare matplotlib ``Figure`` with the Agg canvas (no
pyplot, no backend switch) and written atomically.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import networkx as nx
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from neurograph.atomic import atomic_open
from neurograph.graph import Graph, neuron_label
from neurograph.graph_columns import graph_attributes
from neurograph.graphml_writer import write_graphml_columns
from neurograph.urn.analysis import DIRECTIONS, Analysis

__all__ = [
    "MAX_EDGES",
    "MAX_DRAWN",
    "MATRIX_PIXELS",
    "connectome_graph",
    "write_connectome",
    "plot_structure",
    "plot_connectome",
    "write_figures",
]

MAX_EDGES = 250_000  # synapses a connectome file holds: ~40 MB of GraphML, about a second to write
MAX_DRAWN = 20_000  # synapses Fig. 6 draws: more is a solid smear and slow to render
MATRIX_PIXELS = 1_000  # neurons per side of the weight matrix image before it is pooled
ROW_BLOCK_VALUES = 1 << 22  # weights read from the graph at once while pooling the matrix
COLOURS = {"forward": "tab:red", "backward": "tab:green", "lateral": "black"}
_AXES = {"x": 0, "y": 1, "z": 2}


def strongest(weights: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the ``limit`` largest ``|weights|`` in their original order (all when there are no more)."""
    if len(weights) <= limit:
        return np.arange(len(weights))
    return np.sort(np.argpartition(np.abs(weights), len(weights) - limit)[len(weights) - limit :])


def _columns(graph: Graph, analysis: Analysis, max_edges: int) -> dict:
    """Everything the connectome file holds, as columns (see :func:`write_connectome`)."""
    active = np.flatnonzero(analysis.active)
    row = np.full(len(analysis.ids), -1, dtype=np.int64)
    row[active] = np.arange(len(active))
    neurons = [graph.neurons[analysis.ids[k]] for k in active.tolist()]
    position = analysis.positions[active]
    nodes = {
        "neuron_id": np.array([n.id for n in neurons], dtype=np.int64),  # "id" would clash with igraph's
        "role": [n.role for n in neurons],
        "layer": analysis.layer[active].astype(np.int64),
        "x": position[:, 0],
        "y": position[:, 1],
        "z": position[:, 2],
        "bias": np.array([n.bias for n in neurons], dtype=np.float64),
        "activity": analysis.mean_activity.mean(axis=0)[active],
    }
    keep = strongest(analysis.weights, max_edges)
    t, s = analysis.targets[keep].astype(np.int64), analysis.sources[keep].astype(np.int64)
    w = analysis.weights[keep].astype(np.float64)
    names = np.array(DIRECTIONS, dtype=object)
    edges = {
        "weight": np.abs(w),
        "signed_weight": w,
        "direction": names[analysis.directions[keep]],
        "z_direction": names[analysis.z_directions[keep]],
        "layer_diff": analysis.layer[t] - analysis.layer[s],
        "length": analysis.lengths[keep].astype(np.float64),
    }
    attributes = {
        "scenario": str(graph.meta.get("scenario", "")),
        "seed": graph_attributes(graph)["seed"],  # an int, -1 for none, as in every export
        "cycle": int(graph.cycle),
        "iterations": int(analysis.iterations),
        "active_hidden": int(analysis.n_active_hidden),
        "layers": "/".join(str(n) for n in analysis.hidden_layers),
        "synapses": int(len(analysis.weights)),
        "synapses_written": int(len(keep)),
    }
    labels = [neuron_label(n.id, n.role) for n in neurons]
    return {
        "attributes": attributes,
        "labels": labels,
        "nodes": nodes,
        "sources": row[s],
        "targets": row[t],
        "edges": edges,
    }


def write_connectome(
    path: str | os.PathLike, graph: Graph, analysis: Analysis, *, max_edges: int = MAX_EDGES
) -> dict[str, int]:
    """Write the active network as GraphML to ``path`` (atomically); returns ``synapses`` and ``synapses_written``."""
    c = _columns(graph, analysis, max_edges)
    with atomic_open(Path(path), "wb") as f:
        write_graphml_columns(
            f,
            graph_attributes=c["attributes"],
            node_labels=c["labels"],
            nodes=c["nodes"],
            edge_sources=c["sources"],
            edge_targets=c["targets"],
            edges=c["edges"],
        )
    return {k: c["attributes"][k] for k in ("synapses", "synapses_written")}


def connectome_graph(graph: Graph, analysis: Analysis, *, max_edges: int = MAX_EDGES) -> nx.DiGraph:
    """What :func:`write_connectome` writes, as a flat-attribute ``networkx.DiGraph``."""
    c = _columns(graph, analysis, max_edges)
    g = nx.DiGraph(**c["attributes"])
    listed = lambda columns: {k: np.asarray(v).tolist() for k, v in columns.items()}  # noqa: E731
    nodes, edges = listed(c["nodes"]), listed(c["edges"])
    for k, label in enumerate(c["labels"]):
        g.add_node(label, **{name: values[k] for name, values in nodes.items()})
    for e, (s, t) in enumerate(zip(c["sources"].tolist(), c["targets"].tolist())):
        g.add_edge(c["labels"][s], c["labels"][t], **{name: values[e] for name, values in edges.items()})
    return g


def _layer_order(analysis: Analysis) -> np.ndarray:
    """Compiled indices of the active neurons sorted by layer, then role (inputs, hidden, outputs), then id."""
    rank = {"input": 0, "hidden": 1, "output": 2}
    active = np.flatnonzero(analysis.active)
    keys = [(analysis.layer[k], rank[analysis.roles[k]], analysis.ids[k]) for k in active.tolist()]
    return active[sorted(range(len(keys)), key=keys.__getitem__)] if len(keys) else active


def weight_image(graph: Graph, ids: list[int], pixels: int = MATRIX_PIXELS) -> tuple[np.ndarray, int]:
    """W[ids, ids] (target rows, source columns), pooled to at most ``pixels`` a side; and the pool size.

    A pooled pixel holds the weight of largest magnitude in its block (sign
    kept). The graph is read a block of rows at a time, so a dense network of
    thousands of neurons never needs a full float64 copy.
    """
    n = len(ids)
    k = max(1, math.ceil(n / pixels))
    if k == 1:
        return (graph.block(ids, ids)[0] if n else np.zeros((0, 0))), 1
    m = math.ceil(n / k)
    out = np.zeros((m, m))
    rows = max(k, ROW_BLOCK_VALUES // n // k * k)  # a multiple of the pool size
    for start in range(0, n, rows):
        w = graph.block(ids[start : start + rows], ids)[0]
        r = math.ceil(len(w) / k)
        padded = np.zeros((r * k, m * k))
        padded[: len(w), :n] = w
        cells = padded.reshape(r, k, m, k).transpose(0, 2, 1, 3).reshape(r, m, k * k)
        pick = np.abs(cells).argmax(axis=2)[..., None]
        out[start // k : start // k + r] = np.take_along_axis(cells, pick, axis=2)[..., 0]
    return out, k


def plot_structure(path: str | os.PathLike, graph: Graph, analysis: Analysis) -> None:
    """Figs. 3/4: mean |activity| per iteration (left) and weights W[target, source] (right), sorted by layer."""
    order = _layer_order(analysis)
    ids = [analysis.ids[k] for k in order.tolist()]
    weights, pool = weight_image(graph, ids)
    fig = Figure(figsize=(12, 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    act_ax, w_ax = fig.subplots(1, 2, width_ratios=[1, 2.2])
    act = analysis.mean_activity[:, order].T if len(order) else np.zeros((0, analysis.iterations + 1))
    act = act / np.maximum(act.max(axis=1, keepdims=True), 1e-12)  # each neuron relative to its own peak
    im = act_ax.imshow(act, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=1)
    act_ax.set_xlabel("iteration l")
    act_ax.set_ylabel("active neuron (sorted by layer)")
    act_ax.set_title("mean |N^(l)| / neuron's peak")
    fig.colorbar(im, ax=act_ax, shrink=0.8)
    # clip at the 99th percentile of |w| over the synapses kept: a few large readout weights would wash out the rest
    limit = float(np.percentile(np.abs(analysis.weights), 99)) if len(analysis.weights) else 1.0
    im = w_ax.imshow(weights, interpolation="nearest", cmap="RdBu_r", vmin=-limit, vmax=limit)
    pooled = f" ({pool}x{pool} blocks: largest |w|)" if pool > 1 else ""
    w_ax.set_xlabel("source" + pooled)
    w_ax.set_ylabel("target")
    w_ax.set_title(f"W of the active network, layers {'/'.join(str(n) for n in analysis.hidden_layers)}")
    fig.colorbar(im, ax=w_ax, shrink=0.8)
    layers = analysis.layer[order]
    for ax, scale in ((act_ax, 1), (w_ax, pool)):  # layer boundaries
        for b in np.flatnonzero(np.diff(layers)).tolist():
            edge = (b + 1) / scale - 0.5  # between neurons b and b + 1, in pixels
            ax.axhline(edge, color="white", lw=0.6)
            if ax is w_ax:
                ax.axvline(edge, color="white", lw=0.6)
    with atomic_open(Path(path), "wb") as f:
        fig.savefig(f, format="png", dpi=110)


def plot_connectome(
    path: str | os.PathLike,
    graph: Graph,
    analysis: Analysis,
    *,
    projection: str = "xz",
    by: str = "z",
    max_drawn: int = MAX_DRAWN,
) -> None:
    """Fig. 6: the active network projected on the ``projection`` plane (``xz``, ``yz`` or ``xy``).

    ``by``: colour synapses by their direction in ``z`` (the paper's Fig. 6) or by ``layer``.
    """
    if len(projection) != 2 or any(a not in _AXES for a in projection):
        raise ValueError(f"projection must be two of x, y, z (e.g. xz), got {projection!r}")
    if by not in ("z", "layer"):
        raise ValueError(f"by must be z or layer, got {by!r}")
    a, b = (_AXES[c] for c in projection)
    positions = analysis.positions
    directions = analysis.z_directions if by == "z" else analysis.directions
    drawn = strongest(analysis.weights, max_drawn)
    weights = np.abs(analysis.weights[drawn]).astype(np.float64)
    strength = weights / (weights.max() if len(weights) else 1.0)
    fig = Figure(figsize=(8, 6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for k, name in enumerate(DIRECTIONS):
        pick = directions[drawn] == k
        t, s = analysis.targets[drawn][pick], analysis.sources[drawn][pick]
        segments = np.stack([positions[s][:, [a, b]], positions[t][:, [a, b]]], axis=1)
        colours = np.zeros((pick.sum(), 4))
        colours[:] = to_rgba(COLOURS[name])
        colours[:, 3] = 0.15 + 0.85 * strength[pick]
        total = int((directions == k).sum())
        colours = colours if len(colours) else [to_rgba(COLOURS[name])]  # the legend needs a colour
        ax.add_collection(LineCollection(segments, colors=colours, linewidths=0.6, label=f"{name} ({total:,})"))
    markers = (("input", "s", "tab:blue"), ("hidden", "o", "tab:gray"), ("output", "^", "tab:purple"))
    for role, marker, colour in markers:
        pick = np.array([r == role for r in analysis.roles], dtype=bool) & analysis.active
        ax.scatter(positions[pick, a], positions[pick, b], s=10, marker=marker, color=colour, label=role, zorder=3)
    ax.autoscale()
    ax.set_xlabel(projection[0])
    ax.set_ylabel(projection[1])
    total = len(analysis.weights)
    shown = f"; the strongest {len(drawn):,} of {total:,} drawn" if len(drawn) < total else ""
    ax.set_title(f"URN connectome by {by}: forward red, backward green, lateral black{shown}", fontsize=9)
    ax.legend(loc="upper right", fontsize=7)
    with atomic_open(Path(path), "wb") as f:
        fig.savefig(f, format="png", dpi=110)


def write_figures(folder: str | os.PathLike, graph: Graph, analysis: Analysis) -> list[Path]:
    """``structure.png`` (Figs. 3/4) and ``connectome.png`` (Fig. 6) in ``folder``; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "structure.png", folder / "connectome.png"]
    plot_structure(paths[0], graph, analysis)
    plot_connectome(paths[1], graph, analysis)
    return paths
