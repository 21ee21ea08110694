"""What structure a trained URN chose: active neurons, layers, edge directions, locality, ablations.

Definitions (thresholds configurable, defaults in docs/urn.md):

- a neuron *fires at iteration l* when its largest |N^(l)| over the analysed
  samples exceeds ``activity_threshold``; it is *active* when it fires at any
  iteration 0..I (inputs fire at 0 through the data). ``active_per_iteration``
  counts each hidden neuron at every iteration it fires, not only its first;
  in an emergent MLP each fires at one iteration only (``multi_iteration`` 0);
- its *layer* is the first iteration at which it fires (-1: never), except
  that an active output node's layer is I, the iteration it is read at
  (residual output nodes accumulate from iteration 1 on, which would otherwise
  make every synapse into them lateral);
- the *active network* is the active neurons and the synapses between them
  with |W_ij| > ``weight_threshold``;
- by layer, a synapse is *forward* when its target's layer is above its
  source's, *backward* when below, *lateral* when equal; *adjacent* when it is
  forward by exactly one layer, or forward into an output node that
  accumulates (eq. 6: such a node adds every iteration's input to the logit);
- by z (the paper's Fig. 6), a synapse is forward when it goes towards larger
  z, backward towards smaller, lateral within a plane;
- its length is the eq. 8 distance between the neurons' positions; locality
  compares the active synapses' mean length with the mean distance between
  two distinct active neurons drawn at random (``random_pair_length``);
- ``depth`` counts the non-empty hidden layers; ``path_depth`` is the number
  of hidden neurons on the longest chain of forward synapses of the active
  network from an input to an output: the number of hidden layers the
  emergent MLP actually computes through (a lone neuron in a layer that
  reaches no output does not count).

The ablations (Golkar Sec. 2 and the emergent-MLP test) keep a subset of the
weights, zero the rest, and report the largest change of any logit and the
accuracy before and after: ``neurons`` keeps every synapse between active
neurons (the paper's check), ``synapses`` the active network, ``forward`` only
its forward synapses, ``adjacent`` only its adjacent-layer forward synapses.
An emergent MLP passes the last one.

Edges are found a block of target rows at a time and kept in compact arrays
(int32 indices, int8 directions), so a dense network's analysis costs about
18 bytes per active synapse on top of W and no (S, S) temporaries but bools.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from neurograph.compile import Compiled
from neurograph.graph import Graph
from neurograph.urn.geometry import mean_pair_distance, synapse_lengths
from neurograph.urn.model import SPARSE_BELOW, Dynamics, correct, forward

__all__ = [
    "DIRECTIONS",
    "ABLATIONS",
    "Analysis",
    "activity_profile",
    "first_active_layer",
    "edge_directions",
    "analyse",
    "active_synapses",
    "ablation_masks",
    "ablation_check",
    "ablations",
]

DIRECTIONS = ("forward", "backward", "lateral")
ABLATIONS = ("neurons", "synapses", "forward", "adjacent")
ROW_BLOCK_VALUES = 1 << 22  # (rows x S) entries of W looked at at once while finding edges: 4 M


@dataclass
class Analysis:
    """Structure of the network at one moment; arrays are in compiled order (``ids``)."""

    ids: list[int]
    roles: list[str]
    layer: np.ndarray  # (S,) int64, first active iteration, -1 inactive
    mean_activity: np.ndarray  # (I+1, S) mean |N^(l)| over samples
    fires: np.ndarray  # (I+1, S) bool, max |N^(l)| over samples above the activity threshold
    positions: np.ndarray  # (S, 3) float64 lattice coordinates
    targets: np.ndarray  # (E,) int32 compiled index of each active synapse's target
    sources: np.ndarray  # (E,) int32 and source
    weights: np.ndarray  # (E,) signed weights (the compiled dtype)
    lengths: np.ndarray  # (E,) float32 eq. 8 lengths
    directions: np.ndarray  # (E,) int8 index into DIRECTIONS, by layer
    z_directions: np.ndarray  # (E,) int8 index into DIRECTIONS, by z
    iterations: int
    accumulating_outputs: bool = False  # eq. 6: output nodes add every iteration's input
    beta: float = 1.0

    @property
    def active(self) -> np.ndarray:
        return self.layer >= 0

    def active_ids(self, role: str | None = None) -> list[int]:
        return [i for i, r, a in zip(self.ids, self.roles, self.active.tolist()) if a and role in (None, r)]

    @property
    def hidden(self) -> np.ndarray:
        """(S,) bool: hidden neurons."""
        return np.array([r == "hidden" for r in self.roles], dtype=bool)

    @property
    def n_active_hidden(self) -> int:
        return int((self.active & self.hidden).sum())

    @property
    def hidden_layers(self) -> list[int]:
        """Active hidden neurons per layer 1..I (each counted at its first iteration)."""
        hidden = self.hidden
        return [int(((self.layer == k) & hidden).sum()) for k in range(1, self.iterations + 1)]

    @property
    def active_per_iteration(self) -> list[int]:
        """Hidden neurons firing at each iteration 1..I (each counted at every iteration it fires)."""
        return self.fires[1:, self.hidden].sum(axis=1).astype(int).tolist()

    @property
    def multi_iteration(self) -> int:
        """Hidden neurons that fire at more than one iteration (0 in an emergent MLP)."""
        return int((self.fires[1:, self.hidden].sum(axis=0) > 1).sum())

    @property
    def depth(self) -> int:
        """Number of non-empty hidden layers."""
        return sum(1 for n in self.hidden_layers if n)

    @property
    def path_depth(self) -> int:
        """Hidden neurons on the longest forward chain input -> ... -> output (-1: no output reached)."""
        hidden = self.hidden.astype(np.int64)
        reach = np.full(len(self.ids), -1, dtype=np.int64)  # hidden neurons on the best chain ending here
        reach[[k for k, r in enumerate(self.roles) if r == "input" and self.layer[k] >= 0]] = 0
        forward = self.directions == 0
        t, s = self.targets[forward].astype(np.int64), self.sources[forward].astype(np.int64)
        for level in range(1, self.iterations + 1):  # forward synapses raise the layer: one sweep per layer
            pick = (self.layer[t] == level) & (reach[s] >= 0)
            np.maximum.at(reach, t[pick], reach[s[pick]] + hidden[t[pick]])
        outputs = [k for k, r in enumerate(self.roles) if r == "output"]
        return int(reach[outputs].max()) if outputs else -1

    @property
    def adjacent(self) -> np.ndarray:
        """(E,) bool: forward by exactly one layer, or forward into an accumulating output node."""
        diff = self.layer[self.targets] - self.layer[self.sources]
        into_output = np.array([r == "output" for r in self.roles], dtype=bool)[self.targets]
        return (diff == 1) | ((diff > 0) & into_output & self.accumulating_outputs)

    @property
    def edge_counts(self) -> dict[str, int]:
        """Active synapses forward / backward / lateral by layer."""
        return _counts(self.directions)

    @property
    def z_edge_counts(self) -> dict[str, int]:
        """Active synapses forward / backward / lateral by z (Fig. 6)."""
        return _counts(self.z_directions)

    @property
    def forward_fraction(self) -> float:
        return float((self.directions == 0).mean()) if len(self.directions) else 0.0

    @property
    def fractions(self) -> dict[str, dict[str, float]]:
        """Fractions of the active synapses in each direction, ``{"layer": {...}, "z": {...}}``."""
        n = max(len(self.directions), 1)
        return {
            by: {name: count / n for name, count in counts.items()}
            for by, counts in (("layer", self.edge_counts), ("z", self.z_edge_counts))
        }

    @property
    def mean_synapse_length(self) -> float:
        return float(self.lengths.mean(dtype=np.float64)) if len(self.lengths) else 0.0

    @property
    def random_pair_length(self) -> float:
        """Mean eq. 8 distance between two distinct active neurons: the length a synapse placed at random has."""
        return mean_pair_distance(self.positions[self.active], self.beta)

    def summary(self) -> dict:
        """Flat, JSON-able figures for metrics rows and summaries."""
        baseline = self.random_pair_length
        length = self.mean_synapse_length
        return {
            "active": self.n_active_hidden,
            "active_total": int(self.active.sum()),
            "layers": self.hidden_layers,
            "active_per_iteration": self.active_per_iteration,
            "multi_iteration": self.multi_iteration,
            "depth": self.depth,
            "path_depth": self.path_depth,
            "synapses": int(len(self.directions)),
            "edges": self.edge_counts,
            "edges_z": self.z_edge_counts,
            "fractions": self.fractions,
            "forward_fraction": self.forward_fraction,
            "forward_fraction_z": self.fractions["z"]["forward"],
            "adjacent_fraction": float(self.adjacent.mean()) if len(self.directions) else 0.0,
            "mean_synapse_length": length,
            "random_pair_length": baseline,
            "length_ratio": length / baseline if baseline > 0 else None,
        }


def _counts(directions: np.ndarray) -> dict[str, int]:
    found = np.bincount(directions.astype(np.int64), minlength=len(DIRECTIONS))
    return {name: int(found[k]) for k, name in enumerate(DIRECTIONS)}


@torch.no_grad()
def activity_profile(
    compiled: Compiled, x: torch.Tensor, dynamics: Dynamics, *, batch_size: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and max |N^(l)| over the samples ``x`` (n, d_in): two (I+1, S) float64 arrays."""
    total = peak = None
    c = compiled
    for start in range(0, len(x), batch_size):
        states = forward(
            c.weight, c.bias, x[start : start + batch_size], outputs=c.outputs, dynamics=dynamics, sparse=SPARSE_BELOW
        )
        a = torch.stack(states).abs()  # (I+1, B, S)
        s, m = a.sum(dim=1).double(), a.amax(dim=1).double()
        total = s if total is None else total + s
        peak = m if peak is None else torch.maximum(peak, m)
    return (total / len(x)).cpu().numpy(), peak.cpu().numpy()


def first_active_layer(peak: np.ndarray, threshold: float) -> np.ndarray:
    """(S,) first iteration whose ``peak`` (I+1, S) exceeds ``threshold``; -1 where none does."""
    on = peak > threshold
    return np.where(on.any(axis=0), on.argmax(axis=0), -1).astype(np.int64)


def edge_directions(layer: np.ndarray, targets: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """(E,) 0 forward (target ``layer`` above source), 1 backward, 2 lateral (equal).

    ``layer`` may be any per-neuron level: the layer, or the z coordinate (Fig. 6).
    """
    diff = layer[targets] - layer[sources]
    return np.where(diff > 0, 0, np.where(diff < 0, 1, 2)).astype(np.int8)


def analyse(
    compiled: Compiled,
    graph: Graph,
    x: torch.Tensor,
    dynamics: Dynamics,
    *,
    activity_threshold: float,
    weight_threshold: float,
    beta: float = 1.0,
) -> Analysis:
    """Active neurons, layers and active synapses of ``compiled`` on samples ``x``; positions from ``graph``."""
    mean, peak = activity_profile(compiled, x, dynamics)
    fires = peak > activity_threshold
    layer = first_active_layer(peak, activity_threshold)
    outputs = layer[compiled.outputs]
    layer[compiled.outputs] = np.where(outputs >= 0, dynamics.iterations, -1)  # read out at I
    targets, sources, weights = _active_edges(compiled, layer >= 0, weight_threshold)
    positions = np.array([graph.neurons[i].position for i in compiled.ids], dtype=np.float64).reshape(-1, 3)
    roles = ["input"] * compiled.n_input + ["output"] * compiled.n_output + ["hidden"] * compiled.n_hidden
    return Analysis(
        ids=list(compiled.ids),
        roles=roles,
        layer=layer,
        mean_activity=mean,
        fires=fires,
        positions=positions,
        targets=targets,
        sources=sources,
        weights=weights,
        lengths=synapse_lengths(positions, targets, sources, beta).astype(np.float32),
        directions=edge_directions(layer, targets, sources),
        z_directions=edge_directions(positions[:, 2], targets, sources),
        iterations=dynamics.iterations,
        accumulating_outputs=dynamics.update == "residual_output",
        beta=beta,
    )


def _active_edges(compiled: Compiled, active: np.ndarray, weight_threshold: float):
    """(targets int32, sources int32, signed weights) of the active network, a block of target rows at a time."""
    on = torch.as_tensor(active, device=compiled.weight.device)
    n = compiled.n
    rows = max(1, ROW_BLOCK_VALUES // max(n, 1))
    parts = []
    for start in range(0, n, rows):
        block = slice(start, min(start + rows, n))
        w = compiled.weight[block]
        keep = (w.abs() > weight_threshold) & (compiled.mask[block] > 0) & on[block, None] & on[None, :]
        t, s = torch.nonzero(keep, as_tuple=True)
        targets, sources = (t + start).to(torch.int32).cpu().numpy(), s.to(torch.int32).cpu().numpy()
        parts.append((targets, sources, w[t, s].cpu().numpy()))
    if not parts:
        empty = np.zeros(0, dtype=np.int32)
        return empty, empty, np.zeros(0, dtype=np.float32)
    return tuple(np.concatenate(column) for column in zip(*parts))


def active_synapses(compiled: Compiled, active: np.ndarray, weight_threshold: float) -> torch.Tensor:
    """(S, S) bool: |W| > threshold between two active neurons (an existing connection)."""
    on = torch.as_tensor(active, device=compiled.weight.device)
    return (compiled.weight.abs() > weight_threshold) & (compiled.mask > 0) & on[:, None] & on[None, :]


def ablation_masks(compiled: Compiled, analysis: Analysis, weight_threshold: float) -> dict[str, torch.Tensor]:
    """The weights each ablation keeps, (S, S) bool ``[target, source]``, by name (:data:`ABLATIONS`).

    ``neurons``: every synapse between active neurons; ``synapses``: the active
    network; ``forward``: its forward synapses (by layer); ``adjacent``: its
    adjacent-layer forward synapses (see :attr:`Analysis.adjacent`).
    """
    device = compiled.weight.device
    layer = torch.as_tensor(analysis.layer, device=device)
    network = active_synapses(compiled, analysis.active, weight_threshold)
    forward = network & (layer[:, None] > layer[None, :])  # target layer above source layer; bools only
    adjacent = network & (layer[:, None] == layer[None, :] + 1)
    if analysis.accumulating_outputs:
        adjacent[compiled.outputs] |= forward[compiled.outputs]
    return {
        "neurons": active_synapses(compiled, analysis.active, 0.0),
        "synapses": network,
        "forward": forward,
        "adjacent": adjacent,
    }


@torch.no_grad()
def _logits(compiled: Compiled, weight: torch.Tensor, x: torch.Tensor, dynamics: Dynamics, batch: int = 1000):
    c = compiled
    parts = [
        forward(weight, c.bias, x[i : i + batch], outputs=c.outputs, dynamics=dynamics)[-1][:, c.outputs]
        for i in range(0, len(x), batch)
    ]
    return torch.cat(parts) if parts else x.new_zeros((0, c.n_output))


@torch.no_grad()
def ablation_check(
    compiled: Compiled,
    keep: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    dynamics: Dynamics,
    *,
    before: torch.Tensor | None = None,
) -> dict:
    """Zero every weight outside ``keep`` (S, S bool): largest logit change and accuracy before/after.

    ``before``: the full network's logits on ``x``, when already computed.
    """
    c = compiled
    before = _logits(c, c.weight, x, dynamics) if before is None else before
    after = _logits(c, c.weight * keep.to(c.weight.dtype), x, dynamics)
    accuracy = lambda logits: float(correct(logits, y).float().mean()) if len(x) else 0.0  # noqa: E731
    return {
        "max_output_change": float((after - before).abs().max()) if len(x) else 0.0,
        "accuracy_before": accuracy(before),
        "accuracy_after": accuracy(after),
        "kept_synapses": int(keep.sum()),
        "zeroed_synapses": int((c.mask > 0).sum() - keep.sum()),
    }


def ablations(
    compiled: Compiled,
    analysis: Analysis,
    x: torch.Tensor,
    y: torch.Tensor,
    dynamics: Dynamics,
    *,
    weight_threshold: float,
) -> dict[str, dict]:
    """Every ablation of :func:`ablation_masks` on ``x``, ``y`` (the test set), by name."""
    before = _logits(compiled, compiled.weight, x, dynamics)
    masks = ablation_masks(compiled, analysis, weight_threshold)
    return {name: ablation_check(compiled, keep, x, y, dynamics, before=before) for name, keep in masks.items()}
