"""A multi-area graph compiled to per-projection weight blocks.

The graph is the structural truth; :class:`Blocks` is the working copy that
trains. Each area's neurons sit in id order; every non-input area has one
weight tensor ``w:area`` of shape ``(n_area, sum of its sources' sizes)``,
its incoming projections side by side (every connection of a projection
exists in the graph), and a ``(n_area,)`` bias ``b:area``: one matrix product
per area and step, as a plain layer stack has. The optimizer keeps its
memories under the same names.

A structural edit is made on the graph; :meth:`Blocks.resync` then rebuilds
only what changed: the tensors of areas that gained or lost neurons,
sources or projections. Surviving entries keep their trained values (which are ahead of
the graph's), new ones are read from the graph, and the returned
:class:`Moves` carry the optimizer's memories the same way.

:func:`forward` evaluates the areas in order; a projection whose target comes
before its source in that order (a feedback or recurrent one) reads the
source's previous step, so a feed-forward graph needs one pass and a
recurrent one a pass per time step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from neurograph.graph import Graph

__all__ = ["Blocks", "Moves", "weight_key", "bias_key", "forward", "target_weight", "ACTIVATIONS"]

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}


def weight_key(area: str) -> str:
    return f"w:{area}"


def bias_key(area: str) -> str:
    return f"b:{area}"


@dataclass
class Moves:
    """Where each surviving entry of every parameter went in an edit: per key, the old
    row index of each new row (-1: new), and for weights the old column of each new column."""

    rows: dict[str, np.ndarray]
    cols: dict[str, np.ndarray | None]

    def apply(self, key: str, old: torch.Tensor, fill: float) -> torch.Tensor:
        """``old`` (a parameter's tensor or memory before the edit) after it."""
        rows, cols = self.rows[key], self.cols[key]
        shape = (len(rows),) if cols is None else (len(rows), len(cols))
        out = torch.full(shape, fill, dtype=old.dtype, device=old.device)
        kr = np.flatnonzero(rows >= 0)
        if cols is None:
            out[kr] = old[rows[kr]]
            return out
        kc = np.flatnonzero(cols >= 0)
        out[np.ix_(kr, kc)] = old[np.ix_(rows[kr], cols[kc])]
        return out


class Blocks:
    """Per-area weight blocks and biases of a graph's areas (see module docstring).

    ``order``: every area, ``input`` first and ``output`` last; ``projections``:
    ``(src, dst)`` pairs; ``ids[area]``: the area's neuron ids ascending;
    ``segments[area]``: ``(src, start, stop)`` columns of ``w:area`` per source.
    """

    def __init__(self, graph: Graph, projections: list[tuple[str, str]], *, dtype, device) -> None:
        self.dtype, self.device = dtype, device
        self.order: list[str] = []
        self.projections: list[tuple[str, str]] = []
        self.ids: dict[str, list[int]] = {}
        self.born: dict[str, np.ndarray] = {}
        self.segments: dict[str, list[tuple[str, int, int]]] = {}
        self.params: dict[str, torch.Tensor] = {}
        self.resync(graph, projections)

    # ----------------------------------------------------------- structure
    def delayed(self, src: str, dst: str) -> bool:
        """Whether projection ``src -> dst`` reads ``src``'s previous step (``dst`` is evaluated first, or is ``src``)."""
        return next(late for name, _, late in self.sources[dst] if name == src)

    def resync(self, graph: Graph, projections: list[tuple[str, str]]) -> Moves:
        """Bring the blocks to the graph's structure and ``projections``; returns the :class:`Moves`."""
        order = list(graph.areas)
        ids = {a: graph.area_ids(a) for a in order}
        old_pos = {a: {i: k for k, i in enumerate(v)} for a, v in self.ids.items()}
        rank = {a: k for k, a in enumerate(order)}
        projections = sorted(projections, key=lambda p: (rank[p[1]], rank[p[0]]))
        segments = {a: [] for a in order[1:]}
        for src, dst in projections:
            start = segments[dst][-1][2] if segments[dst] else 0
            segments[dst].append((src, start, start + len(ids[src])))
        moves = Moves({}, {})
        params: dict[str, torch.Tensor] = {}
        as_tensor = lambda a: torch.as_tensor(a, dtype=self.dtype).to(self.device)  # noqa: E731

        def index(area: str) -> np.ndarray:
            pos = old_pos.get(area, {})
            return np.array([pos.get(i, -1) for i in ids[area]], dtype=np.int64)

        for area in order[1:]:
            rows = index(area)
            old_segments = {src: (a, b) for src, a, b in self.segments.get(area, [])}
            cols = np.concatenate([np.where(index(src) >= 0, index(src) + old_segments[src][0], -1)
                                   if src in old_segments else np.full(len(ids[src]), -1, dtype=np.int64)
                                   for src, _, _ in segments[area]] or [np.zeros(0, dtype=np.int64)])  # fmt: skip
            for key, key_cols in ((weight_key(area), cols), (bias_key(area), None)):
                moves.rows[key], moves.cols[key] = rows, key_cols
                old = self.params.get(key)
                if old is not None and _unchanged(rows, key_cols, old):
                    params[key] = old
                    continue
                fresh = as_tensor(self._from_graph(graph, area, ids, segments, key_cols is None))
                if old is not None:
                    moved = moves.apply(key, old.detach(), 0.0)
                    kr = np.flatnonzero(rows >= 0)
                    if key_cols is None:
                        fresh[kr] = moved[kr]
                    else:
                        kc = np.flatnonzero(key_cols >= 0)
                        fresh[np.ix_(kr, kc)] = moved[np.ix_(kr, kc)]
                params[key] = fresh
        for p in params.values():
            p.requires_grad_(True)
        self.order, self.projections, self.ids, self.params = order, projections, ids, params
        self.segments = segments
        # per area, its sources as (name, columns, delayed): what forward reads at every step
        self.sources = {a: [(src, b - lo, rank[src] >= rank[a]) for src, lo, b in segments[a]] for a in order[1:]}
        self.born = {a: np.array([graph.neurons[i].born for i in ids[a]], dtype=np.int64) for a in order}
        return moves

    @staticmethod
    def _from_graph(graph: Graph, area: str, ids, segments, bias: bool) -> np.ndarray:
        if bias:
            return np.array([graph.neurons[i].bias for i in ids[area]], dtype=np.float64)
        parts = [graph.block(ids[area], ids[src])[0] for src, _, _ in segments[area]]
        return np.concatenate(parts, axis=1) if parts else np.zeros((len(ids[area]), 0))

    def l1_mask(self) -> dict[str, torch.Tensor]:
        """Per weight key, 1.0 on the columns of hidden sources (the penalised outgoing weights), else 0."""
        out = {}
        for area in self.order[1:]:
            w = self.params[weight_key(area)]
            mask = torch.zeros(w.shape[1], dtype=w.dtype, device=w.device)
            for src, a, b in self.segments[area]:
                if src != "input":
                    mask[a:b] = 1.0
            out[weight_key(area)] = mask.expand_as(w).contiguous()
        return out

    # ---------------------------------------------------------- graph side
    def write_back(self, graph: Graph, areas: list[str] | None = None) -> None:
        """Copy trained weights and biases into the graph (of ``areas``' neurons only, if given)."""
        touch = set(self.order if areas is None else areas)
        for area in self.order[1:]:
            w = None
            for src, a, b in self.segments[area]:
                if src in touch or area in touch:
                    w = self.params[weight_key(area)].detach().cpu().double().numpy() if w is None else w
                    graph.set_weights(self.ids[area], self.ids[src], w[:, a:b])
            if area in touch:
                values = self.params[bias_key(area)].detach().cpu().double().tolist()
                for i, b in zip(self.ids[area], values):
                    graph.neurons[i].bias = b

    # ------------------------------------------------------------- scores
    def outgoing_norms(self, norm: str = "text") -> dict[str, np.ndarray]:
        """Per hidden area, (n,) each neuron's outgoing norm, float64 (see :func:`target_weights`):
        ``text``, the sum of |w| over all its outgoing weights; ``original``, the char-RNN code's."""
        norms = {a: np.zeros(len(self.ids[a])) for a in self.order[1:-1]}
        for area in self.order[1:]:
            column_sums = self.params[weight_key(area)].detach().abs().sum(dim=0).double().cpu().numpy()
            factor = target_weight(area, len(self.ids[area]), norm)
            for src, a, b in self.segments[area]:
                if src in norms:
                    norms[src] += factor * column_sums[a:b]
        return norms


def target_weight(area: str, size: int, norm: str) -> float:
    """What each |w| into a neuron of ``area`` (of ``size`` neurons) counts in its source's outgoing norm.

    ``text`` (the paper's text): 1. ``original`` (the outgoing-L1 revision's code,
    ``0.5 * (sum|W_out| + 4 * sum|W_hh| / H)``) generalised to areas: 0.5 into
    the output, ``0.5 * 4 / size`` into a hidden area, so that a neuron's norm
    does not grow with the width of the areas it feeds.
    """
    if norm == "text":
        return 1.0
    return 0.5 if area == "output" else 2.0 / size


def _unchanged(rows: np.ndarray, cols: np.ndarray | None, old: torch.Tensor) -> bool:
    """Whether an edit left a parameter exactly as it was (same entries in the same places)."""
    same = lambda idx, n: len(idx) == n and bool((idx == np.arange(n)).all())  # noqa: E731
    return same(rows, old.shape[0]) and (cols is None or same(cols, old.shape[1]))


def forward(
    blocks: Blocks,
    x: torch.Tensor,
    activation: str,
    previous: dict[str, torch.Tensor] | None = None,
    *,
    areas: list[str] | None = None,
    given: dict[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Every area's activity for inputs ``x`` (B, n_input): one step in area order.

    ``previous``: each area's activity at the previous step (B, n_area), read by
    delayed projections (None: zeros). Hidden areas apply ``activation``;
    ``output`` is linear (logits). Each area is one matrix product over the
    concatenated activity of its sources. ``areas``: evaluate only these (in
    order; default all), e.g. the hidden ones of every time step first and the
    output once for a whole window, from the activities ``given`` (area -> (B, n)).
    """
    act = ACTIVATIONS[activation]
    h = {"input": x, **(given or {})}
    for area in blocks.order[1:] if areas is None else areas:
        sources = []
        for src, width, delayed in blocks.sources[area]:
            if not delayed:
                sources.append(h[src])
            elif previous is not None and src in previous:
                sources.append(previous[src])
            else:
                sources.append(x.new_zeros((len(x), width)))
        joined = sources[0] if len(sources) == 1 else torch.cat(sources, dim=1)
        pre = F.linear(joined, blocks.params[weight_key(area)], blocks.params[bias_key(area)])
        h[area] = pre if area == "output" else act(pre)
    return h
