"""Padded batch tensors of many networks, and the graph <-> slot copies.

The batched twin of :mod:`neurograph.compile`. B networks that share an
alphabet of V characters live in one set of tensors whose neuron axis is
``[inputs (V) | outputs (V) | hidden slots (Hc)]`` (the layout of
:mod:`neurograph.charrnn.bptt`):

- ``weight``, ``mask`` (B, N, N) ``[b, target, source]``, N = 2V + Hc
- ``bias``, ``multiplier``, ``h`` (B, N) (``h``: the hidden state carried between windows)
- ``alive`` (B, N) 1.0 where a position holds a neuron

A member's hidden neurons hold slots 0..H-1 in id order (positions
``2V + slot``). A free slot is all zero (no connections, zero bias,
multiplier and state, optimizer memories at their initial value), so the
batched step leaves it zero. The optimizer's memories have the parameters'
shapes and follow every copy, reset and reindexing here.
"""

from __future__ import annotations

import numpy as np
import torch

from neurograph.graph import Graph
from neurograph.optim import Optimizer

__all__ = ["PaddedNets"]

# Which axes after the batch axis are indexed by neuron, per parameter (memories alike).
_AXES = {"weight": (1, 2), "bias": (1,), "multiplier": (1,)}


class PaddedNets:
    """Parameters, masks, states and optimizer memories of B networks, padded to Hc hidden slots."""

    def __init__(self, n_members: int, n_chars: int, capacity: int, *, dtype, device, optimizer: Optimizer) -> None:
        self.v = n_chars
        self.optimizer = optimizer
        n = 2 * n_chars + capacity
        zeros = lambda *shape: torch.zeros(shape, dtype=dtype, device=device)  # noqa: E731
        self.weight, self.mask = zeros(n_members, n, n), zeros(n_members, n, n)
        self.bias, self.multiplier, self.h = zeros(n_members, n), zeros(n_members, n), zeros(n_members, n)
        self.alive = zeros(n_members, n)
        self.alive[:, : 2 * n_chars] = 1.0
        self.version = 0  # changes whenever the tensors (or the memories) are replaced, not when written in place

    # ---------------------------------------------------------------- views
    @property
    def capacity(self) -> int:
        return self.weight.shape[1] - 2 * self.v

    @property
    def hidden(self) -> slice:
        return slice(2 * self.v, self.weight.shape[1])

    @property
    def params(self) -> dict[str, torch.Tensor]:
        return {"weight": self.weight, "bias": self.bias, "multiplier": self.multiplier}

    @property
    def masks(self) -> dict[str, torch.Tensor]:
        """Update gates: connections for weights, living neurons for biases and multipliers."""
        return {"weight": self.mask, "bias": self.alive, "multiplier": self.alive}

    def _memories(self):
        """(memory dict, key, fill) of every optimizer memory."""
        for name, memories in self.optimizer.state.items():
            fill = self.optimizer.memory_init if name != "m" else 0.0
            for key in list(memories):
                yield memories, key, fill

    def _like(self, array) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array, dtype=np.float64), dtype=self.weight.dtype).to(self.weight.device)

    def _index(self, positions: list[int]) -> torch.Tensor:
        return torch.tensor(positions, dtype=torch.int64, device=self.weight.device)

    # ------------------------------------------------------- graph <-> slots
    def load(self, b: int, graph: Graph, ids: list[int], positions: list[int]) -> None:
        """Member ``b``'s whole network from its graph (``ids`` in compiled order at ``positions``)."""
        self.clear_member(b)
        pos = self._index(positions)
        weights, present = graph.block(ids, ids)
        ix = (b, pos.unsqueeze(1), pos.unsqueeze(0))
        self.weight[ix], self.mask[ix] = self._like(weights), self._like(present)
        self.bias[b, pos] = self._like([graph.neurons[i].bias for i in ids])
        self.multiplier[b, pos] = self._like([graph.neurons[i].multiplier for i in ids])
        self.alive[b, pos] = 1.0

    def load_trained(self, b: int, positions: list[int], tensors: dict[str, torch.Tensor]) -> None:
        """Member ``b``'s trained tensors from a :meth:`Trainer.state` checkpoint, after :meth:`load`.

        ``tensors``: ``compiled.*`` (N, N) / (N,) and ``h`` in compiled order, placed at
        ``positions``; ``optimizer.<memory>.<param>`` alike (memories missing here are created
        at their initial value for every member).
        """
        pos = self._index(positions)
        on = lambda t: t.to(dtype=self.weight.dtype, device=self.weight.device)  # noqa: E731
        square = (b, pos.unsqueeze(1), pos.unsqueeze(0))
        self.weight[square], self.mask[square] = on(tensors["compiled.weight"]), on(tensors["compiled.mask"])
        self.bias[b, pos], self.multiplier[b, pos] = on(tensors["compiled.bias"]), on(tensors["compiled.multiplier"])
        self.h[b, pos] = on(tensors["h"])
        for name, memories in self.optimizer.state.items():
            fill = self.optimizer.memory_init if name != "m" else 0.0
            for key in _AXES:
                saved = tensors.get(f"optimizer.{name}.{key}")
                if saved is None:
                    continue
                if key not in memories:
                    memories[key] = torch.full_like(self.params[key], fill)
                    self.version += 1
                memories[key][square if key == "weight" else (b, pos)] = on(saved)

    def write_back(
        self, b: int, graph: Graph, ids: list[int], positions: list[int], only: list[int] | None = None
    ) -> None:
        """Copy member ``b``'s trained values into its graph (no events), as
        :func:`compile.write_back`: everything, or with ``only`` just those
        neurons' rows, columns, biases and multipliers."""
        pos = self._index(positions)
        w = self.weight[b].index_select(0, pos).index_select(1, pos).detach().cpu().double().numpy()
        if only is None:
            graph.set_weights(ids, ids, w)
            rows = range(len(ids))
        else:
            index = {i: k for k, i in enumerate(ids)}
            rows = [index[i] for i in only]
            graph.set_weights(only, ids, w[rows])
            graph.set_weights(ids, only, w[:, rows])
        bias = self.bias[b, pos].detach().cpu().tolist()
        mult = self.multiplier[b, pos].detach().cpu().tolist()
        for k in rows:
            neuron = graph.neurons[ids[k]]
            neuron.bias, neuron.multiplier = bias[k], mult[k]

    def load_neuron(self, b: int, graph: Graph, new_id: int, ids: list[int], positions: list[int]) -> None:
        """A new neuron's row and column from the graph into its (free) position.

        ``ids``/``positions``: the member's neurons after the edit, the new one included.
        Its memories start at their initial value, its state at 0.
        """
        pos = self._index(positions)
        p = positions[ids.index(new_id)]
        w_in, p_in = graph.block([new_id], ids)
        w_out, p_out = graph.block(ids, [new_id])
        self.weight[b, p, pos], self.mask[b, p, pos] = self._like(w_in[0]), self._like(p_in[0])
        self.weight[b, pos, p], self.mask[b, pos, p] = self._like(w_out[:, 0]), self._like(p_out[:, 0])
        neuron = graph.neurons[new_id]
        self.bias[b, p], self.multiplier[b, p] = neuron.bias, neuron.multiplier
        self.h[b, p] = 0.0
        self.alive[b, p] = 1.0
        self._reset_memories(b, p)

    def compact(self, b: int, slots: list[int]) -> None:
        """Member ``b``'s hidden neurons move, in place, to slots 0..len(slots)-1: new slot k
        is old slot ``slots[k]``; every other slot is emptied. The tensors keep their memory."""
        v, n = self.v, self.weight.shape[1]
        pos = torch.full((1, n), -1, dtype=torch.int64, device=self.weight.device)
        pos[0, : 2 * v] = torch.arange(2 * v)
        pos[0, 2 * v : 2 * v + len(slots)] = torch.tensor(slots, dtype=torch.int64) + 2 * v
        row = torch.tensor([b], device=self.weight.device)
        for name in ("weight", "mask", "bias", "multiplier", "h", "alive"):
            t = getattr(self, name)
            t[b] = _gather(t, row, pos, t.dim() - 1)[0]
        for memories, key, fill in self._memories():
            mem = memories[key]
            mem[b] = _gather(mem, row, pos, len(_AXES[key]), fill)[0]

    def clear_member(self, b: int) -> None:
        for t in (self.weight, self.mask, self.bias, self.multiplier, self.h):
            t[b] = 0.0
        self.alive[b, 2 * self.v :] = 0.0
        for memories, key, fill in self._memories():
            memories[key][b] = fill

    def _reset_memories(self, b: int, position: int) -> None:
        for memories, key, fill in self._memories():
            mem = memories[key]
            mem[b, position] = fill
            if key == "weight":
                mem[b, :, position] = fill

    # ------------------------------------------------------------ reindexing
    def reindex(self, rows: torch.Tensor, slots: torch.Tensor) -> None:
        """Keep batch rows ``rows`` (B',) and move hidden slots: new slot j of row i is
        old slot ``slots[i, j]`` (-1: empty). Grows, shrinks, repacks or drops members."""
        v = self.v
        rows = rows.to(self.weight.device)
        io = torch.arange(2 * v, device=self.weight.device).expand(rows.numel(), -1)
        hidden = torch.where(slots >= 0, slots + 2 * v, slots).to(self.weight.device)
        pos = torch.cat([io, hidden], 1)  # (B', N') old position or -1
        self.weight, self.mask = _gather(self.weight, rows, pos, 2), _gather(self.mask, rows, pos, 2)
        self.bias, self.multiplier = _gather(self.bias, rows, pos, 1), _gather(self.multiplier, rows, pos, 1)
        self.h, self.alive = _gather(self.h, rows, pos, 1), _gather(self.alive, rows, pos, 1)
        for memories, key, fill in self._memories():
            memories[key] = _gather(memories[key], rows, pos, len(_AXES[key]), fill)
        self.version += 1


def _gather(t: torch.Tensor, rows: torch.Tensor, pos: torch.Tensor, n_axes: int, fill: float = 0.0) -> torch.Tensor:
    """``out[i, j(, k)] = t[rows[i], pos[i, j](, pos[i, k])]``, ``fill`` where a position is -1."""
    valid = pos >= 0
    p = pos.clamp(min=0)
    if n_axes == 1:
        out, keep = t[rows.unsqueeze(1), p], valid
    else:
        out = t[rows.view(-1, 1, 1), p.unsqueeze(2), p.unsqueeze(1)]
        keep = valid.unsqueeze(2) & valid.unsqueeze(1)
    return torch.where(keep, out, torch.full_like(out, fill))
