"""Golkar's Unstructured Recursive Network on the typed neuron graph.

S neurons, one dense ``S x S`` matrix W and a bias b, applied I times:

- ``plain`` (eq. 3):            N^(l+1) = phi(W N^(l) + b)
- ``residual_output`` (eq. 6):  output nodes accumulate, N_o^(l+1) = N_o^(l) + phi(...)
- ``residual_input`` (eq. 7):   input nodes are fed again, N_i^(l+1) = x_i + phi(...)

Output nodes apply phi too when ``output_activation`` is ``phi`` (eq. 4 read
literally); the default ``linear`` leaves them without it, because ReLU logits
that die early leave half the classes at tied zero logits (docs/urn.md).

The input is injected as N^(0) = (x, 0, ..., 0) (eq. 2) and the logits are the
output nodes at iteration I (eq. 4). The paper orders neurons
``[inputs | hidden | outputs]``; the compiled order is ``[inputs | outputs |
hidden]``; every term here is permutation-equivariant, so the paper's slices
map onto :class:`~neurograph.compile.Compiled`'s ``inputs`` / ``outputs``.

Loss (eqs. 5 and 9), per batch::

    CE(y, y_hat) + c_W sum|W| + c_N sum_l mean_batch |N^(l)|_1 + c_syn sum_ij |W_ij| d_ij^gamma

(eq. 5 as printed sums the activity term over the batch: that is this with c_N
times B, which the trainer passes for ``loss.activity_reduction: sum``). The
two weight terms are one elementwise coefficient matrix
(:func:`weight_coefficients`). :func:`loss_terms` is differentiable with
autograd and is the reference; training uses the hand-written gradient of
:mod:`neurograph.urn.backprop`, with the weight terms folded into the
optimizer's pass (:func:`neurograph.kernels.adam_l1.adam_l1`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from neurograph.compile import Compiled
from neurograph.graph import Graph
from neurograph.urn.geometry import distance_matrix

__all__ = [
    "UPDATES",
    "ACTIVATIONS",
    "SPARSE_BELOW",
    "Dynamics",
    "active_columns",
    "sparse_product",
    "build_urn_graph",
    "initial_state",
    "forward",
    "loss_terms",
    "weight_coefficients",
    "SYNAPSE_PAIRS",
    "correct",
]

UPDATES = ("plain", "residual_output", "residual_input")
ACTIVATIONS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "softplus": F.softplus,
    "leaky_relu": F.leaky_relu,
}
# An iteration may read only its input's nonzero columns when at most this
# fraction is nonzero: gathering W's columns costs about as much per column as
# the product at B = 32, so below a quarter the gather pays (benchmarks/bench_urn.py).
SPARSE_BELOW = 0.25
SYNAPSE_PAIRS = ("all", "i<j")  # eq. 9's sum: every ordered pair, or the printed i < j


@dataclass(frozen=True)
class Dynamics:
    """How the network iterates: I applications of the update rule with activation phi."""

    iterations: int = 4
    update: str = "plain"
    activation: str = "relu"
    output_activation: str = "linear"  # "phi": eq. 4 literally (ReLU logits can die; see docs/urn.md)

    def __post_init__(self) -> None:
        if self.output_activation not in ("phi", "linear"):
            raise ValueError(f"output_activation must be phi or linear, got {self.output_activation!r}")
        if self.update not in UPDATES:
            raise ValueError(f"update must be one of {UPDATES}, got {self.update!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {self.activation!r}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")


def build_urn_graph(
    positions: dict[str, np.ndarray],
    *,
    generator: torch.Generator,
    gain: float = 1.0,
    graveyard_size: int = 0,
) -> Graph:
    """Dense URN graph: neurons added in the paper's order (inputs, hidden, outputs) at ``positions``.

    ``positions``: ``{"input": (d_in, 3), "hidden": (H, 3), "output": (d_out, 3)}``.
    W is He-normal, ``N(0, gain^2 * 2 / S)`` (fan-in S), drawn from ``generator``
    in the paper's order; biases start at 0. Every connection exists.
    """
    size = sum(len(p) for p in positions.values())
    graph = Graph(graveyard_size=graveyard_size, capacity=max(4, size))
    for role in ("input", "hidden", "output"):
        for p in positions[role].tolist():
            graph.add_neuron(role, position=tuple(p), reason="urn")
    ids = [i for role in ("input", "hidden", "output") for i in graph.ids(role)]
    std = gain * math.sqrt(2.0 / size)
    weights = torch.randn((size, size), generator=generator, dtype=torch.float64) * std
    graph.wire(ids, ids, weights.numpy(), reason="urn he-normal init")
    return graph


def initial_state(x: torch.Tensor, size: int) -> torch.Tensor:
    """N^(0) (eq. 2): (B, S) with x on the first d_in (input) neurons, zero elsewhere."""
    n0 = x.new_zeros((x.shape[0], size))
    n0[:, : x.shape[1]] = x
    return n0


def active_columns(states: torch.Tensor, fraction: float) -> torch.Tensor | None:
    """Indices of the columns of (B, S) ``states`` with a nonzero entry, or None when
    more than ``fraction`` of them have one (the dense product is then cheaper)."""
    cols = torch.nonzero(states.ne(0).any(0)).squeeze(1)
    return cols if len(cols) <= fraction * states.shape[1] else None


def sparse_product(states, weight, bias, cols):
    """bias + states W^T (B, S), reading only the source columns ``cols`` (None: all).

    Equal to the dense product when the other columns of ``states`` are zero
    (the same sum, less its exact zeros)."""
    if cols is None:
        return torch.addmm(bias, states, weight.t())
    return torch.addmm(bias, states.index_select(1, cols), weight.index_select(1, cols).t())


def forward(
    weight: torch.Tensor,
    bias: torch.Tensor,
    x: torch.Tensor,
    *,
    outputs: slice,
    dynamics: Dynamics,
    sparse: float = 0.0,
) -> list[torch.Tensor]:
    """States ``[N^(0), ..., N^(I)]``, each (B, S); logits are ``states[-1][:, outputs]``.

    ``weight`` (S, S) is ``[target, source]`` in compiled order (inputs first),
    ``bias`` (S,), ``x`` (B, d_in). ``sparse``: an iteration whose input has at
    most this fraction of nonzero columns reads only those (0: dense, the reference).
    """
    phi = ACTIVATIONS[dynamics.activation]
    n0 = initial_state(x, weight.shape[0])
    is_output = torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device)
    is_output[outputs] = 1.0
    linear_out = dynamics.output_activation == "linear"
    states = [n0]
    n = n0
    for _ in range(dynamics.iterations):
        pre = sparse_product(n, weight, bias, active_columns(n, sparse) if sparse > 0 else None)
        new = phi(pre)
        if linear_out:  # output nodes skip phi: new = phi(pre) off the outputs, pre on them
            new = new + (pre - new) * is_output
        if dynamics.update == "residual_output":
            new = new + n * is_output
        elif dynamics.update == "residual_input":
            new = new + n0
        states.append(new)
        n = new
    return states


def loss_terms(
    states: list[torch.Tensor],
    y: torch.Tensor,
    weight: torch.Tensor,
    *,
    outputs: slice,
    coefficients: torch.Tensor | float,
    c_n: float,
) -> dict[str, torch.Tensor]:
    """``ce`` (mean nats), ``weight`` (sum coef |W|), ``activity`` (c_N sum_l mean_batch |N^(l)|_1), ``total``."""
    ce = F.cross_entropy(states[-1][:, outputs], y)
    if isinstance(coefficients, torch.Tensor):
        weight_term = (weight.abs() * coefficients).sum()
    else:  # one (S, S) temporary fewer: at S = 5,000 each is 100 MB
        weight_term = weight.abs().sum() * coefficients
    activity = c_n * sum(s.abs().sum(dim=1).mean() for s in states[1:])
    return {"ce": ce, "weight": weight_term, "activity": activity, "total": ce + weight_term + activity}


def weight_coefficients(
    compiled: Compiled,
    graph: Graph,
    *,
    c_w: float,
    c_syn: float,
    gamma: float,
    beta: float,
    pairs: str = "all",
) -> torch.Tensor | float:
    """Per-synapse L1 strength: ``c_W + c_syn d_ij^gamma`` (S, S) in compiled order, or c_W alone.

    ``pairs`` is the synapse term's pair set (see docs/urn.md): ``all`` ordered
    pairs (i, j), or ``i<j`` as eq. 9 is printed: only W_ij whose target i
    comes before its source j in the paper's neuron order (inputs, hidden,
    outputs; graph ids follow it), the others get c_W alone.
    """
    if pairs not in SYNAPSE_PAIRS:
        raise ValueError(f"pairs must be one of {SYNAPSE_PAIRS}, got {pairs!r}")
    if c_syn == 0:
        return float(c_w)
    positions = np.array([graph.neurons[i].position for i in compiled.ids])
    d = distance_matrix(positions, beta)
    coef = torch.as_tensor(d, dtype=compiled.weight.dtype).to(compiled.weight.device)
    coef.pow_(gamma).mul_(c_syn)
    if pairs == "i<j":
        ids = torch.as_tensor(compiled.ids, device=coef.device)
        coef.mul_(ids[:, None] < ids[None, :])  # [target, source]: target id below source id
    return coef.add_(c_w)


def correct(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) bool: the true class's logit is strictly the largest (a tie counts as wrong)."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.scatter(1, y[:, None], float("-inf")).amax(dim=1)
    return true > others
