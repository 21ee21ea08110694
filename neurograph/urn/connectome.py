"""Connectomics of a trained URN: GraphML of the active network and Golkar's figures.

- :func:`connectome_graph` / :func:`write_connectome`: the active network as a
  ``networkx.DiGraph`` with flat scalar attributes, written with
  ``nx.write_graphml(named_key_ids=True)``. Nodes (labelled like ``h17``):
  ``neuron_id``, ``role``, ``layer``, ``x``, ``y``, ``z``, ``bias``, ``activity`` (mean
  |N| over samples and iterations). Edges: ``weight`` (|w|), ``signed_weight``,
  ``direction`` (forward / backward / lateral by layer), ``z_direction`` (the
  same by the z coordinate, as in the paper's Fig. 6), ``layer_diff``, ``length``
  (eq. 8). Only the active network: a dense S = 5,000 graph has 25 million edges.
- :func:`plot_structure`: Figs. 3 and 4, the active neurons' mean activity per
  iteration and their weight matrix, both sorted by layer.
- :func:`plot_connectome`: Fig. 6, the active network projected on a plane;
  forward synapses red, backward green, lateral black.

Figures are drawn on a bare matplotlib ``Figure`` with the Agg canvas (no
pyplot, no backend switch) and written atomically.
"""

from __future__ import annotations

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
from neurograph.urn.analysis import DIRECTIONS, Analysis

__all__ = ["connectome_graph", "write_connectome", "plot_structure", "plot_connectome", "write_figures"]

COLOURS = {"forward": "tab:red", "backward": "tab:green", "lateral": "black"}
_AXES = {"x": 0, "y": 1, "z": 2}


def connectome_graph(graph: Graph, analysis: Analysis) -> nx.DiGraph:
    """The active network of ``analysis`` (made on ``graph``'s network) as a flat-attribute DiGraph."""
    labels = [neuron_label(i, r) for i, r in zip(analysis.ids, analysis.roles)]
    g = nx.DiGraph(
        scenario=str(graph.meta.get("scenario", "")),
        seed=graph_attributes(graph)["seed"],  # an int, -1 for none, as in every export
        cycle=int(graph.cycle),
        iterations=int(analysis.iterations),
        active_hidden=int(analysis.n_active_hidden),
        layers="/".join(str(n) for n in analysis.hidden_layers),
    )
    activity = analysis.mean_activity.mean(axis=0)
    for k in np.flatnonzero(analysis.active).tolist():
        n = graph.neurons[analysis.ids[k]]
        x, y, z = (float(v) for v in n.position)
        g.add_node(
            labels[k],
            neuron_id=int(n.id),  # "id" would clash with igraph's
            role=n.role,
            layer=int(analysis.layer[k]),
            x=x,
            y=y,
            z=z,
            bias=float(n.bias),
            activity=float(activity[k]),
        )
    z = np.array([graph.neurons[i].position[2] for i in analysis.ids])
    for t, s, w, d, length in zip(
        analysis.targets.tolist(),
        analysis.sources.tolist(),
        analysis.weights.tolist(),
        analysis.directions.tolist(),
        analysis.lengths.tolist(),
    ):
        dz = z[t] - z[s]
        g.add_edge(
            labels[s],
            labels[t],
            weight=abs(w),
            signed_weight=float(w),
            direction=DIRECTIONS[d],
            z_direction="forward" if dz > 0 else "backward" if dz < 0 else "lateral",
            layer_diff=int(analysis.layer[t] - analysis.layer[s]),
            length=float(length),
        )
    return g


def write_connectome(path: str | os.PathLike, graph: Graph, analysis: Analysis) -> None:
    """Write :func:`connectome_graph` as GraphML to ``path`` (atomically)."""
    g = connectome_graph(graph, analysis)
    with atomic_open(Path(path), "wb") as f:
        nx.write_graphml(g, f, named_key_ids=True)


def _layer_order(analysis: Analysis) -> np.ndarray:
    """Compiled indices of the active neurons sorted by layer, then role (inputs, hidden, outputs), then id."""
    rank = {"input": 0, "hidden": 1, "output": 2}
    active = np.flatnonzero(analysis.active)
    keys = [(analysis.layer[k], rank[analysis.roles[k]], analysis.ids[k]) for k in active.tolist()]
    return active[sorted(range(len(keys)), key=keys.__getitem__)] if len(keys) else active


def plot_structure(path: str | os.PathLike, graph: Graph, analysis: Analysis) -> None:
    """Figs. 3/4: mean |activity| per iteration (left) and weights W[target, source] (right), sorted by layer."""
    order = _layer_order(analysis)
    ids = [analysis.ids[k] for k in order.tolist()]
    weights = graph.block(ids, ids)[0] if ids else np.zeros((0, 0))
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
    w_ax.set_xlabel("source")
    w_ax.set_ylabel("target")
    w_ax.set_title(f"W of the active network, layers {'/'.join(str(n) for n in analysis.hidden_layers)}")
    fig.colorbar(im, ax=w_ax, shrink=0.8)
    layers = analysis.layer[order]
    for ax, horizontal_only in ((act_ax, True), (w_ax, False)):
        for b in np.flatnonzero(np.diff(layers)).tolist():
            ax.axhline(b + 0.5, color="white", lw=0.6)
            if not horizontal_only:
                ax.axvline(b + 0.5, color="white", lw=0.6)
    with atomic_open(Path(path), "wb") as f:
        fig.savefig(f, format="png", dpi=110)


def plot_connectome(path: str | os.PathLike, graph: Graph, analysis: Analysis, *, projection: str = "xz") -> None:
    """Fig. 6: the active network projected on the ``projection`` plane (``xz``, ``yz`` or ``xy``)."""
    if len(projection) != 2 or any(a not in _AXES for a in projection):
        raise ValueError(f"projection must be two of x, y, z (e.g. xz), got {projection!r}")
    a, b = (_AXES[c] for c in projection)
    positions = np.array([graph.neurons[i].position for i in analysis.ids], dtype=np.float64)
    fig = Figure(figsize=(8, 6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    strength = np.abs(analysis.weights) / (np.abs(analysis.weights).max() if len(analysis.weights) else 1.0)
    for k, name in enumerate(DIRECTIONS):
        pick = analysis.directions == k
        segments = np.stack(
            [positions[analysis.sources[pick]][:, [a, b]], positions[analysis.targets[pick]][:, [a, b]]], axis=1
        )
        colours = np.zeros((pick.sum(), 4))
        colours[:] = to_rgba(COLOURS[name])
        colours[:, 3] = 0.15 + 0.85 * strength[pick]
        ax.add_collection(LineCollection(segments, colors=colours, linewidths=0.6, label=f"{name} ({pick.sum()})"))
    markers = (("input", "s", "tab:blue"), ("hidden", "o", "tab:gray"), ("output", "^", "tab:purple"))
    for role, marker, colour in markers:
        pick = np.array([r == role for r in analysis.roles]) & analysis.active
        ax.scatter(positions[pick, a], positions[pick, b], s=10, marker=marker, color=colour, label=role, zorder=3)
    ax.autoscale()
    ax.set_xlabel(projection[0])
    ax.set_ylabel(projection[1])
    ax.set_title("URN connectome: forward red, backward green, lateral black")
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
