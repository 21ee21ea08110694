"""Graph -> torch tensors, incremental updates, and write-back.

Compiled order is by role, then by id: ``[inputs | outputs | hidden]``. Hidden
neurons come last because they are the ones that come and go; ids only grow, so
a new hidden neuron is appended at the end and every block stays a contiguous
slice (``compiled.hidden`` etc.), which models use as cheap views.

Tensors (N living neurons):
- ``weight``     (N, N) ``weight[target, source]``, zero where no connection
- ``mask``       (N, N) 1.0 where a connection exists (gradients are multiplied by it)
- ``bias``       (N,)
- ``multiplier`` (N,)

:func:`sync` brings a compiled copy up to date after structural edits by
inserting and removing rows and columns (no per-connection Python work) and
returns the :class:`Remap` that optimizers apply to their per-parameter state,
so the memories of surviving neurons follow them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from neurograph.device import resolve_device
from neurograph.graph import Graph

__all__ = [
    "AXES",
    "Compiled",
    "Remap",
    "compile_graph",
    "compile_order",
    "sync",
    "write_back",
]

_ORDER = ("input", "output", "hidden")
# Which axes of each parameter are indexed by neuron (for remapping state).
AXES: dict[str, tuple[int, ...]] = {"weight": (0, 1), "bias": (0,), "multiplier": (0,)}


def compile_order(graph: Graph) -> list[int]:
    """Neuron ids in compiled order: inputs, outputs, hidden, each by id."""
    return [i for role in _ORDER for i in graph.ids(role)]


@dataclass
class Compiled:
    """Working copy of a graph as tensors, plus the id <-> index maps."""

    ids: list[int]
    n_input: int
    n_output: int
    weight: torch.Tensor
    mask: torch.Tensor
    bias: torch.Tensor
    multiplier: torch.Tensor
    synced_events: int  # length of graph.events already reflected here

    @property
    def index(self) -> dict[int, int]:
        return {i: k for k, i in enumerate(self.ids)}

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def n_hidden(self) -> int:
        return self.n - self.n_input - self.n_output

    @property
    def inputs(self) -> slice:
        return slice(0, self.n_input)

    @property
    def outputs(self) -> slice:
        return slice(self.n_input, self.n_input + self.n_output)

    @property
    def hidden(self) -> slice:
        return slice(self.n_input + self.n_output, self.n)

    @property
    def hidden_ids(self) -> list[int]:
        return self.ids[self.hidden]

    @property
    def params(self) -> dict[str, torch.Tensor]:
        return {"weight": self.weight, "bias": self.bias, "multiplier": self.multiplier}


@dataclass(frozen=True)
class Remap:
    """How indices moved in a structural edit: ``old_index[new]``, -1 for new."""

    old_index: torch.Tensor  # (N_new,) int64

    @property
    def kept_new(self) -> torch.Tensor:
        return torch.nonzero(self.old_index >= 0).squeeze(1)

    @property
    def kept_old(self) -> torch.Tensor:
        return self.old_index[self.kept_new]

    def apply(self, tensor: torch.Tensor, axes: tuple[int, ...], fill: float = 0.0) -> torch.Tensor:
        """Tensor re-indexed along ``axes``: survivors keep values, new entries get ``fill``."""
        n_new = self.old_index.numel()
        shape = list(tensor.shape)
        for a in axes:
            shape[a] = n_new
        out = torch.full(shape, fill, dtype=tensor.dtype, device=tensor.device)
        new_idx, old_idx = self.kept_new.to(tensor.device), self.kept_old.to(tensor.device)
        src, dst = tensor, out
        if axes == (0,):
            dst[new_idx] = src[old_idx]
        elif axes == (0, 1):
            dst[new_idx.unsqueeze(1), new_idx.unsqueeze(0)] = src[old_idx.unsqueeze(1), old_idx.unsqueeze(0)]
        else:
            raise ValueError(f"unsupported neuron axes {axes}")
        return out


def compile_graph(graph: Graph, *, device: str | torch.device = "cpu", dtype=torch.float32) -> Compiled:
    """Compile every living neuron and connection of ``graph`` to tensors."""
    device = resolve_device(device) if isinstance(device, str) else device
    ids = compile_order(graph)
    weights, present = graph.block(ids, ids)
    neurons = [graph.neurons[i] for i in ids]
    as_tensor = lambda a: torch.as_tensor(a, dtype=dtype).to(device)  # noqa: E731
    return Compiled(
        ids=ids,
        n_input=len(graph.ids("input")),
        n_output=len(graph.ids("output")),
        weight=as_tensor(weights),
        mask=as_tensor(present),
        bias=as_tensor(np.array([n.bias for n in neurons])),
        multiplier=as_tensor(np.array([n.multiplier for n in neurons])),
        synced_events=len(graph.events),
    )


def write_back(compiled: Compiled, graph: Graph, ids: list[int] | None = None) -> None:
    """Copy trained weights, biases and multipliers into the graph (no events).

    With ``ids``, only those neurons' rows, columns, biases and multipliers
    (what a deletion needs before the graveyard takes its wiring). The
    compiled copy must be in sync with the graph's structure (call
    :func:`sync` after structural edits first), or edits would be overwritten.
    """
    if compiled.synced_events != len(graph.events):
        raise ValueError("compiled tensors are behind the graph's structure: sync() before write_back()")
    weight = compiled.weight.detach()
    if ids is None:
        graph.set_weights(compiled.ids, compiled.ids, weight.cpu().double().numpy())
        rows = range(len(compiled.ids))
    else:
        index = compiled.index
        rows = [index[i] for i in ids]
        sel = torch.tensor(rows, dtype=torch.int64, device=weight.device)
        graph.set_weights(ids, compiled.ids, weight[sel].cpu().double().numpy())
        graph.set_weights(compiled.ids, ids, weight[:, sel].cpu().double().numpy())
    bias = compiled.bias.detach().cpu().tolist()
    mult = compiled.multiplier.detach().cpu().tolist()
    for k in rows:
        neuron = graph.neurons[compiled.ids[k]]
        neuron.bias, neuron.multiplier = bias[k], mult[k]


def sync(compiled: Compiled, graph: Graph) -> Remap | None:
    """Update ``compiled`` in place to the graph's current structure.

    Surviving neurons keep their *compiled* values (which may be ahead of the
    graph); new neurons and changed connections are read from the graph. Returns
    the :class:`Remap` for optimizer state, or None if no neuron came or went.
    """
    new_events = graph.events[compiled.synced_events :]
    if not new_events:
        return None
    ids = compile_order(graph)
    remap = None
    if ids != compiled.ids:
        remap = _reindex(compiled, graph, ids)
    _apply_connection_events(compiled, graph, new_events)
    compiled.synced_events = len(graph.events)  # only once everything is applied
    return remap


def _reindex(compiled: Compiled, graph: Graph, ids: list[int]) -> Remap:
    old = compiled.index
    old_index = torch.tensor([old.get(i, -1) for i in ids], dtype=torch.int64)
    remap = Remap(old_index)
    added = [k for k, i in enumerate(ids) if i not in old]
    weight = remap.apply(compiled.weight, (0, 1))
    mask = remap.apply(compiled.mask, (0, 1))
    bias = remap.apply(compiled.bias, (0,))
    mult = remap.apply(compiled.multiplier, (0,))
    if added:
        rows = torch.tensor(added, dtype=torch.int64, device=weight.device)
        new_ids = [ids[k] for k in added]
        w_in, p_in = graph.block(new_ids, ids)  # rows of the new neurons
        w_out, p_out = graph.block(ids, new_ids)  # columns of the new neurons
        like = lambda a: torch.as_tensor(a, dtype=weight.dtype).to(weight.device)  # noqa: E731
        weight[rows, :], mask[rows, :] = like(w_in), like(p_in)
        weight[:, rows], mask[:, rows] = like(w_out), like(p_out)
        bias[rows] = like(np.array([graph.neurons[i].bias for i in new_ids]))
        mult[rows] = like(np.array([graph.neurons[i].multiplier for i in new_ids]))
    compiled.ids = ids
    compiled.n_input = len(graph.ids("input"))
    compiled.n_output = len(graph.ids("output"))
    compiled.weight, compiled.mask, compiled.bias, compiled.multiplier = weight, mask, bias, mult
    return remap


def _apply_connection_events(compiled: Compiled, graph: Graph, events) -> None:
    """Re-read from the graph the entries that connection events touched.

    Entries of kept neurons are read from the graph, so edits of existing
    connections must follow a :func:`write_back` (the training loop does so).
    """
    index = compiled.index
    rows, cols, everything = set(), set(), False
    entries: list[tuple[int, int]] = []
    for e in events:
        if e.kind in ("connect", "disconnect"):
            if e.neuron in index and e.other in index:
                entries.append((e.neuron, e.other))
        elif e.kind == "rewire":
            if e.neuron >= 0 and e.other >= 0:
                if e.neuron in index and e.other in index:
                    entries.append((e.neuron, e.other))
            elif e.neuron >= 0:
                rows.add(e.neuron)
            elif e.other >= 0:
                cols.add(e.other)
            else:
                everything = True
    if everything:
        rows = set(compiled.ids)
    ids = compiled.ids
    rows, cols = [i for i in rows if i in index], [i for i in cols if i in index]
    if rows:
        _refresh(compiled, graph, rows, ids)
    if cols:
        _refresh(compiled, graph, ids, cols)
    for t, s in entries:
        _refresh(compiled, graph, [t], [s])


def _refresh(compiled: Compiled, graph: Graph, targets: list[int], sources: list[int]) -> None:
    w, p = graph.block(targets, sources)
    index = compiled.index
    t = torch.tensor([index[i] for i in targets], device=compiled.weight.device)
    s = torch.tensor([index[i] for i in sources], device=compiled.weight.device)
    like = lambda a: torch.as_tensor(a, dtype=compiled.weight.dtype).to(compiled.weight.device)  # noqa: E731
    compiled.weight[t.unsqueeze(1), s.unsqueeze(0)] = like(w)
    compiled.mask[t.unsqueeze(1), s.unsqueeze(0)] = like(p)
