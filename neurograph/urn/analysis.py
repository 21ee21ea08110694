"""What structure a trained URN chose: active neurons, layers, edge directions, ablation.

Definitions (thresholds configurable, defaults in docs/urn.md):

- a neuron is *active at iteration l* when its largest |N^(l)| over the
  analysed samples exceeds ``activity_threshold``; *active* when active at any
  iteration 0..I (inputs are active at 0 through the data);
- its *layer* is the first iteration at which it is active (-1: never), except
  that an active output node's layer is I, the iteration it is read at
  (residual output nodes accumulate from iteration 1 on, which would otherwise
  make every synapse into them lateral);
- the *active network* is the active neurons and the synapses between them
  with |W_ij| > ``weight_threshold``;
- a synapse is *forward* when its target's layer is above its source's,
  *backward* when below, *lateral* when equal; its length is the eq. 8
  distance between the neurons' positions;
- ``depth`` counts the non-empty hidden layers; ``path_depth`` is the number
  of hidden neurons on the longest chain of forward synapses of the active
  network from an input to an output: the number of hidden layers the
  emergent MLP actually computes through (a lone neuron in a layer that
  reaches no output does not count).

The ablation check (Golkar Sec. 2) zeroes every weight outside the active
network and reports the largest change of any logit and the accuracy before
and after.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from neurograph.compile import Compiled
from neurograph.graph import Graph
from neurograph.urn.geometry import synapse_lengths
from neurograph.urn.model import SPARSE_BELOW, Dynamics, correct, forward

__all__ = [
    "DIRECTIONS",
    "Analysis",
    "activity_profile",
    "first_active_layer",
    "edge_directions",
    "analyse",
    "ablation_check",
]

DIRECTIONS = ("forward", "backward", "lateral")


@dataclass
class Analysis:
    """Structure of the network at one moment; arrays are in compiled order (``ids``)."""

    ids: list[int]
    roles: list[str]
    layer: np.ndarray  # (S,) int64, first active iteration, -1 inactive
    mean_activity: np.ndarray  # (I+1, S) mean |N^(l)| over samples
    targets: np.ndarray  # (E,) compiled index of each active synapse's target
    sources: np.ndarray  # (E,) and source
    weights: np.ndarray  # (E,) signed weights
    lengths: np.ndarray  # (E,) eq. 8 lengths
    directions: np.ndarray  # (E,) index into DIRECTIONS
    iterations: int

    @property
    def active(self) -> np.ndarray:
        return self.layer >= 0

    def active_ids(self, role: str | None = None) -> list[int]:
        return [i for i, r, a in zip(self.ids, self.roles, self.active.tolist()) if a and role in (None, r)]

    @property
    def n_active_hidden(self) -> int:
        return len(self.active_ids("hidden"))

    @property
    def hidden_layers(self) -> list[int]:
        """Active hidden neurons per layer 1..I."""
        hidden = np.array([r == "hidden" for r in self.roles], dtype=bool)
        return [int(((self.layer == k) & hidden).sum()) for k in range(1, self.iterations + 1)]

    @property
    def depth(self) -> int:
        """Number of non-empty hidden layers."""
        return sum(1 for n in self.hidden_layers if n)

    @property
    def path_depth(self) -> int:
        """Hidden neurons on the longest forward chain input -> ... -> output (-1: no output reached)."""
        hidden = np.array([r == "hidden" for r in self.roles], dtype=np.int64)
        reach = np.full(len(self.ids), -1, dtype=np.int64)  # hidden neurons on the best chain ending here
        reach[[k for k, r in enumerate(self.roles) if r == "input" and self.layer[k] >= 0]] = 0
        forward = self.directions == 0
        t, s = self.targets[forward], self.sources[forward]
        for level in range(1, self.iterations + 1):  # forward synapses raise the layer: one sweep per layer
            pick = (self.layer[t] == level) & (reach[s] >= 0)
            np.maximum.at(reach, t[pick], reach[s[pick]] + hidden[t[pick]])
        outputs = [k for k, r in enumerate(self.roles) if r == "output"]
        return int(reach[outputs].max()) if outputs else -1

    @property
    def edge_counts(self) -> dict[str, int]:
        return {name: int((self.directions == k).sum()) for k, name in enumerate(DIRECTIONS)}

    @property
    def forward_fraction(self) -> float:
        return float((self.directions == 0).mean()) if len(self.directions) else 0.0

    @property
    def mean_synapse_length(self) -> float:
        return float(self.lengths.mean()) if len(self.lengths) else 0.0

    def summary(self) -> dict:
        """Flat, JSON-able figures for metrics rows and summaries."""
        return {
            "active": self.n_active_hidden,
            "active_total": int(self.active.sum()),
            "layers": self.hidden_layers,
            "depth": self.depth,
            "path_depth": self.path_depth,
            "edges": self.edge_counts,
            "forward_fraction": self.forward_fraction,
            "mean_synapse_length": self.mean_synapse_length,
        }


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
    """(E,) 0 forward (target layer above source), 1 backward, 2 lateral (same layer)."""
    diff = layer[targets] - layer[sources]
    return np.where(diff > 0, 0, np.where(diff < 0, 1, 2)).astype(np.int64)


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
    layer = first_active_layer(peak, activity_threshold)
    outputs = layer[compiled.outputs]
    layer[compiled.outputs] = np.where(outputs >= 0, dynamics.iterations, -1)  # read out at I
    keep = active_synapses(compiled, layer >= 0, weight_threshold)
    targets, sources = (a.cpu().numpy() for a in torch.nonzero(keep, as_tuple=True))
    weights = compiled.weight[keep].double().cpu().numpy()
    positions = np.array([graph.neurons[i].position for i in compiled.ids], dtype=np.float64)
    roles = ["input"] * compiled.n_input + ["output"] * compiled.n_output + ["hidden"] * compiled.n_hidden
    return Analysis(
        ids=list(compiled.ids),
        roles=roles,
        layer=layer,
        mean_activity=mean,
        targets=targets,
        sources=sources,
        weights=weights,
        lengths=synapse_lengths(positions, targets, sources, beta),
        directions=edge_directions(layer, targets, sources),
        iterations=dynamics.iterations,
    )


def active_synapses(compiled: Compiled, active: np.ndarray, weight_threshold: float) -> torch.Tensor:
    """(S, S) bool: |W| > threshold between two active neurons (an existing connection)."""
    on = torch.as_tensor(active, device=compiled.weight.device)
    return (compiled.weight.abs() > weight_threshold) & (compiled.mask > 0) & on[:, None] & on[None, :]


@torch.no_grad()
def ablation_check(
    compiled: Compiled,
    keep: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    dynamics: Dynamics,
) -> dict:
    """Zero every weight outside ``keep`` (S, S bool): largest logit change and accuracy before/after."""
    c = compiled
    logits = lambda w: forward(w, c.bias, x, outputs=c.outputs, dynamics=dynamics)[-1][:, c.outputs]  # noqa: E731
    before = logits(c.weight)
    after = logits(c.weight * keep.to(c.weight.dtype))
    return {
        "max_output_change": float((after - before).abs().max()) if len(x) else 0.0,
        "accuracy_before": float(correct(before, y).float().mean()),
        "accuracy_after": float(correct(after, y).float().mean()),
        "kept_synapses": int(keep.sum()),
        "zeroed_synapses": int((compiled.mask > 0).sum() - keep.sum()),
    }
