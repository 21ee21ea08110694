"""Hand-written gradient of the URN's data and activity terms (eqs. 3-7, 9).

The training step's cost at S = 5,000 is a handful of (B, S) x (S, S)
products plus whatever touches all S^2 weights. Autograd spends most of a
step on the second kind (``|W|``, its sign, the coefficient product, each a
100 MB temporary); here the weight terms are left to the optimizer, which
folds their subgradient ``coef * sign(W)`` into its own pass
(:meth:`neurograph.optim.Optimizer.step`, ``l1=``), and the products are
arranged so that:

- iteration 1 reads only the d_in input columns of W, because N^(0) is zero
  everywhere else (eq. 2), and needs no gradient with respect to N^(0);
- an iteration whose input N^(l-1) is nonzero in few columns over the
  minibatch (silent neurons, or neurons of other layers: the emergent MLP is
  active a layer per iteration) reads only those columns of W, and its
  backward pass only the rows whose gradient is nonzero; the result is the
  dense one, summed over fewer exact zeros;
- the weight gradient of dense iterations 2..I is one product,
  ``[dZ_2; ...; dZ_I]^T [N^(1); ...; N^(I-1)]`` (S, S), written into a buffer
  kept between steps (a fresh 100 MB tensor costs page faults every step).

Equal to autograd of :func:`neurograph.urn.model.loss_terms` without its
weight term (tests/test_urn_backprop.py). The activity term uses
``d|n|/dn = sign(n)`` (0 at 0), as autograd does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from neurograph.urn.model import ACTIVATIONS, SPARSE_BELOW, Dynamics, active_columns, sparse_product

__all__ = ["StepResult", "Workspace", "loss_and_gradients"]


@dataclass
class StepResult:
    """One minibatch: loss terms (0-d tensors), gradients (views of the workspace) and states."""

    ce: torch.Tensor  # mean cross-entropy, nats
    activity: torch.Tensor  # c_N sum_l mean_batch |N^(l)|_1
    grad_weight: torch.Tensor  # (S, S) d(ce + activity)/dW; valid until the next call
    grad_bias: torch.Tensor  # (S,)
    states: list[torch.Tensor]  # [N^(0), ..., N^(I)], each (B, S)


class Workspace:
    """The (S, S) gradient buffer, reallocated only when S, dtype or device change."""

    def __init__(self) -> None:
        self.grad_weight: torch.Tensor | None = None

    def buffer(self, weight: torch.Tensor) -> torch.Tensor:
        g = self.grad_weight
        if g is None or g.shape != weight.shape or g.dtype != weight.dtype or g.device != weight.device:
            g = self.grad_weight = torch.empty_like(weight)
        return g


def _derivative(activation: str, pre: torch.Tensor, post: torch.Tensor) -> torch.Tensor:
    """phi'(pre), given post = phi(pre)."""
    if activation == "relu":
        return (pre > 0).to(pre.dtype)
    if activation == "tanh":
        return 1 - post * post
    if activation == "softplus":
        return torch.sigmoid(pre)
    if activation == "leaky_relu":
        return torch.where(pre > 0, 1.0, 0.01 * torch.ones_like(pre))  # F.leaky_relu's slope
    raise ValueError(f"no derivative for activation {activation!r}")


def _forward(weight, bias, x, *, outputs: slice, dynamics: Dynamics, sparse: float = SPARSE_BELOW):
    """States [N^(0..I)], each iteration's phi'(pre) (B, S) (outputs' columns set for
    eq. 4) and the source columns each iteration read (None: all, for iteration 1: the inputs)."""
    phi = ACTIVATIONS[dynamics.activation]
    b, s, d_in = x.shape[0], weight.shape[0], x.shape[1]
    n0 = x.new_zeros((b, s))
    n0[:, :d_in] = x
    states, slopes, sources = [n0], [], []
    for level in range(dynamics.iterations):
        if level == 0:  # N^(0) is x on the input columns, zero elsewhere
            cols = None
            pre = torch.addmm(bias, x, weight[:, :d_in].t())
        else:
            cols = active_columns(states[-1], sparse)
            pre = sparse_product(states[-1], weight, bias, cols)
        new = phi(pre)
        slope = _derivative(dynamics.activation, pre, new)
        if dynamics.output_activation == "linear":
            new[:, outputs] = pre[:, outputs]
            slope[:, outputs] = 1.0
        if dynamics.update == "residual_output":
            new[:, outputs] += states[-1][:, outputs]
        elif dynamics.update == "residual_input":
            new += n0
        states.append(new)
        slopes.append(slope)
        sources.append(cols)
    return states, slopes, sources


def loss_and_gradients(
    weight: torch.Tensor,
    bias: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    outputs: slice,
    dynamics: Dynamics,
    c_n: float,
    workspace: Workspace | None = None,
    sparse: float = SPARSE_BELOW,
) -> StepResult:
    """Cross-entropy, activity term and their gradients for a minibatch.

    ``weight`` (S, S) ``[target, source]`` in compiled order (inputs first),
    ``bias`` (S,), ``x`` (B, d_in), ``y`` (B,) class indices; ``sparse``: an
    iteration whose input has at most this fraction of nonzero columns reads
    only those (0: always dense).
    """
    with torch.no_grad():
        states, slopes, sources = _forward(weight, bias, x, outputs=outputs, dynamics=dynamics, sparse=sparse)
        b, levels = x.shape[0], dynamics.iterations
        logits = states[-1][:, outputs]
        ce = F.cross_entropy(logits, y)
        activity = c_n * sum(s.abs().sum() for s in states[1:]) / b
        d_state = torch.zeros_like(states[-1])
        d_state[:, outputs] = (torch.softmax(logits, 1) - F.one_hot(y, logits.shape[1]).to(logits.dtype)) / b
        d_pres, rows = [None] * levels, [None] * levels
        for level in range(levels, 0, -1):  # d_state is dLoss/dN^(level) from the levels above
            d_state.add_(torch.sign(states[level]), alpha=c_n / b)
            d_pre = d_state * slopes[level - 1]
            d_pres[level - 1] = d_pre
            if level > 1:
                carry = d_state[:, outputs] if dynamics.update == "residual_output" else None
                rows[level - 1] = active_columns(d_pre, sparse) if sparse > 0 else None
                if rows[level - 1] is None:
                    d_state = d_pre @ weight
                else:
                    d_state = _sparse_back(d_pre, weight, rows[level - 1], slopes[level - 2], outputs, sparse)
                if carry is not None:
                    d_state[:, outputs] += carry
        grad_w = (workspace or Workspace()).buffer(weight)
        _weight_gradient(grad_w, d_pres, states, x, sources, rows)
        grad_b = torch.stack(d_pres).sum(dim=(0, 1))
    return StepResult(ce, activity, grad_w, grad_b, states)


def _sparse_back(d_pre, weight, rows, slope_below, outputs: slice, sparse: float):
    """dLoss/dN^(l-1) = dZ_l W (B, S) from the ``rows`` of W whose dZ_l is nonzero,
    and, when few, only in the columns where it can matter: phi' of iteration
    l-1 nonzero, or an output node (a residual output carries its gradient on).
    Elsewhere 0, which is what the dense product gives once multiplied by phi'."""
    need = slope_below.ne(0).any(0)
    need[outputs] = True
    cols = torch.nonzero(need).squeeze(1)
    picked = weight.index_select(0, rows)  # (R, S)
    if len(cols) > sparse * weight.shape[1]:
        return d_pre.index_select(1, rows) @ picked
    d_state = torch.zeros_like(d_pre)
    d_state[:, cols] = d_pre.index_select(1, rows) @ picked.index_select(1, cols)
    return d_state


def _weight_gradient(out: torch.Tensor, d_pres: list, states: list, x: torch.Tensor, sources: list, rows: list) -> None:
    """out = sum_l dZ_l^T N^(l-1), l = 1..I: iteration 1 only touches the input
    columns; a sparse iteration only its block (``rows``: targets whose dZ_l is
    nonzero, ``sources``: columns of N^(l-1) that are; None: all)."""
    d_in = x.shape[1]
    if any(c is not None for c in sources) or any(r is not None for r in rows):
        out.zero_()
        for level in range(1, len(d_pres)):
            _add_block(out, d_pres[level], states[level], rows[level], sources[level])
        out[:, :d_in].addmm_(d_pres[0].t(), x)
    elif len(d_pres) > 1:
        torch.mm(torch.cat(d_pres[1:]).t(), torch.cat(states[1:-1]), out=out)
        out[:, :d_in].addmm_(d_pres[0].t(), x)
    else:
        out.zero_()
        out[:, :d_in] = d_pres[0].t() @ x


def _add_block(out, d_pre, n_prev, rows, cols) -> None:
    """out[rows, cols] += dZ[:, rows]^T N[:, cols] (None: every row / column)."""
    if rows is None and cols is None:
        out.addmm_(d_pre.t(), n_prev)
        return
    left = d_pre if rows is None else d_pre.index_select(1, rows)
    right = n_prev if cols is None else n_prev.index_select(1, cols)
    block = left.t() @ right
    if cols is None:
        out.index_add_(0, rows, block)
    elif rows is None:
        out.index_add_(1, cols, block)
    else:
        out.index_put_((rows[:, None], cols[None, :]), block, accumulate=True)
