"""Hand-written BPTT of many char-RNNs at once, in padded batch tensors.

Each network is a min-char-rnn: it reads one-hot characters, updates a tanh
hidden layer fully connected to itself, and predicts the next character with a
softmax readout. B networks that share an alphabet of V characters, each with
up to ``Hc`` hidden neurons, live in padded tensors whose neuron axis is laid
out ``[inputs (V) | outputs (V) | hidden slots (Hc)]`` (a single run is B = 1):

- ``weight``     (B, N, N) ``weight[b, target, source]``, N = 2V + Hc, zero where absent
- ``bias``       (B, N)
- ``multiplier`` (B, N), or None when every multiplier is 1 and untrained
  (the outgoing-L1 revision): the torch kernel skips the products with it,
  which changes no number since ``x * 1 == x``.

A slot that holds no neuron has an all-zero row and column and zero bias, so
its state stays 0 and it changes nothing (that is what padding means here).
Each hidden neuron's multiplier scales its output. Scope ``readout`` (the
multiplier revision's original code) scales only what the readout sees; scope
``all`` (a literal reading of that paper's text) also scales what the
recurrence sees; with multipliers at 1 both are the plain min-char-rnn. Every
member may use its own scope: ``scope_all`` (B,) says which use ``all``.

Two kernels compute the same window (tests compare them with a naive
neuron-by-neuron walk of the graph, finite differences and autograd):

- on CPU tensors, :mod:`neurograph.kernels.charrnn_bptt`: the whole window of each
  member in one numba-compiled loop nest, members in parallel on
  ``torch.get_num_threads()`` threads. For the papers' networks the torch
  kernel below is about 200 tiny operations per window, whose dispatch costs
  more than their arithmetic;
- on other devices, and on request (``kernel="torch"``, the reference), torch:
  the 40-step recurrences run one batched matrix product per step, with the
  states as rows, ``(B, 1, H) @ (B, H, H)`` (MKL's fast layout); everything
  else is one batched operation over B and T.

Both round differently (sums in another order), so their results agree to
float rounding, not bit for bit. A :class:`Workspace` keeps the gradient
buffers, and the torch kernel's per-step buffers and their views, between calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from neurograph.kernels.charrnn_bptt import bptt_window

__all__ = [
    "BatchedWindow", "KERNELS", "Workspace", "batched_bptt", "batched_logits", "mixed_scope", "numba_window_in_place",
    "pick_kernel",
]  # fmt: skip


@dataclass
class BatchedWindow:
    """Result of one batched window. The gradients live in the workspace: they
    are valid until the next call that uses the same workspace."""

    loss: torch.Tensor  # (B,) summed cross-entropy of each member's window, nats
    weight: torch.Tensor  # (B, N, N) gradients, zero outside the three blocks
    bias: torch.Tensor  # (B, N)
    multiplier: torch.Tensor | None  # (B, N); None when multipliers are fixed at 1
    h_last: torch.Tensor  # (B, Hc) hidden state after the last character (a new tensor)

    def as_dict(self) -> dict[str, torch.Tensor]:
        grads = {"weight": self.weight, "bias": self.bias}
        if self.multiplier is not None:
            grads["multiplier"] = self.multiplier
        return grads


def mixed_scope(scopes: list[str], device=None) -> torch.Tensor | None:
    """``scope_all`` argument for members' scopes: None when all read ``readout``."""
    for s in scopes:
        if s not in ("readout", "all"):
            raise ValueError(f"scope must be 'readout' or 'all', got {s!r}")
    if all(s == "readout" for s in scopes):
        return None
    return torch.tensor([s == "all" for s in scopes], device=device)


class Workspace:
    """Buffers of one batch shape, and their per-step views, kept across calls.

    Unbinding the (T, B, 1, H) buffers into per-step views and allocating the
    (B, N, N) gradient costs about a fifth of a cycle; a trainer keeps one
    workspace, rebuilt only when B or Hc change. Gradient entries outside the
    three blocks are zeroed once and never written.
    """

    _STEPS = ("hs", "prev", "d_out", "dtanh", "draw")  # (T, B, 1, H) each

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._views: dict[int, tuple[torch.Tensor, object]] = {}

    def view(self, t: torch.Tensor):
        """``t.numpy()`` (a CPU tensor's memory as a numpy array), cached per tensor object:
        the padded tensors change only when the batch is resized, not every cycle."""
        hit = self._views.get(id(t))
        if hit is not None and hit[0] is t:
            return hit[1]
        if len(self._views) > 64:  # drop views of tensors a resize replaced
            self._views.clear()
        array = t.numpy()
        self._views[id(t)] = (t, array)
        return array

    def ready(self, steps: int, weight: torch.Tensor, n_chars: int) -> "Workspace":
        b, n = weight.shape[0], weight.shape[1]
        key = (steps, b, n, n_chars, weight.dtype, weight.device)
        if key == self._key:
            return self
        h, like = n - 2 * n_chars, dict(dtype=weight.dtype, device=weight.device)
        for name in self._STEPS:
            buf = torch.empty((steps, b, 1, h), **like)
            setattr(self, name, buf)
            setattr(self, name + "_t", buf.unbind(0))
        self.g_weight = torch.zeros((b, n, n), **like)
        self.g_bias = torch.zeros((b, n), **like)
        self.g_mult = torch.zeros((b, n), **like)
        self.dr = torch.empty((b, steps, h), **like)
        self.d_table = torch.empty((b * n_chars, h), **like)  # d Wxh^T rows, (B*V, H)
        self.minus_one = torch.full((b, 1, steps), -1.0, **like)
        self.offsets = torch.arange(b, device=weight.device) * n_chars  # row of member b's table
        self.unit_m = torch.ones((b, h), **like)  # the numba kernel's multipliers when they are fixed at 1
        self.readout_only = torch.zeros(b, dtype=torch.bool, device=weight.device)  # its scope_all when None
        if weight.device.type == "cpu":  # numba_window_in_place's outputs
            self.loss_np = np.empty(b, dtype=self.g_weight.numpy().dtype)
            self.h_last_np = np.empty((b, h), dtype=self.loss_np.dtype)
        self._key = key
        return self


def _blocks(weight, bias, n_chars: int):
    v, hid = n_chars, slice(2 * n_chars, None)
    return weight[:, hid, :v], weight[:, hid, hid], weight[:, v : 2 * v, hid], bias[:, hid], bias[:, v : 2 * v]


def _recurrence_factor(m: torch.Tensor | None, scope_all: torch.Tensor | None) -> torch.Tensor | None:
    """(B, 1, H) what scales the state the recurrence sees: m for scope 'all', 1 for 'readout'."""
    if scope_all is None or m is None:
        return None
    return torch.where(scope_all.view(-1, 1, 1), m.unsqueeze(1), torch.ones_like(m).unsqueeze(1))


def _run_hidden(wxh, whh, bh, mu, flat, h0, ws: Workspace) -> None:
    """Fill ``ws.hs`` with the states and ``ws.prev`` with what Whh saw at each
    step (h_{t-1}, or mu * h_{t-1}); ``flat`` (T*B,) rows of the input table."""
    b, h, v = wxh.shape
    steps = flat.numel() // b
    # input drive: row inputs[b, t] of member b's Wxh^T, gathered not multiplied
    table = wxh.transpose(1, 2).reshape(b * v, h)  # (B*V, H)
    torch.index_select(table, 0, flat, out=ws.hs.view(steps * b, h))
    ws.hs.add_(bh.unsqueeze(1))  # the drive becomes the states in place
    whh_t = whh.transpose(1, 2).contiguous()  # (B, H, H) [source, target]: row @ whh_t = (Whh h)^T
    state = h0.reshape(b, 1, h)
    if mu is None:
        for h_t in ws.hs_t:
            state = h_t.baddbmm_(state, whh_t).tanh_()
        ws.prev[0].copy_(h0.reshape(b, 1, h))
        ws.prev[1:].copy_(ws.hs[:-1])
        return
    for h_t, u_t in zip(ws.hs_t, ws.prev_t):
        torch.mul(state, mu, out=u_t)
        state = h_t.baddbmm_(u_t, whh_t).tanh_()


def _flat_inputs(inputs: torch.Tensor, ws: Workspace) -> torch.Tensor:
    """(T*B,) time-major row of each (member, step)'s character in the stacked tables."""
    return (inputs.t() + ws.offsets).reshape(-1)


def batched_logits(weight, bias, multiplier, inputs, h0, *, n_chars: int, scope_all=None):
    """Logits (B, V, T) and last states (B, Hc) of a batch of windows (no gradients)."""
    wxh, whh, why, bh, by = _blocks(weight, bias, n_chars)
    ws = Workspace().ready(inputs.shape[1], weight, n_chars)
    m = None if multiplier is None else multiplier[:, 2 * n_chars :]
    _run_hidden(wxh, whh, bh, _recurrence_factor(m, scope_all), _flat_inputs(inputs, ws), h0, ws)
    b, steps = inputs.shape
    r = ws.hs.view(steps, b, -1).transpose(0, 1)
    r = r if m is None else r * m.unsqueeze(1)
    return torch.baddbmm(by.unsqueeze(2), why, r.transpose(1, 2)), ws.hs[-1].view(b, -1).clone()


def batched_bptt(
    weight: torch.Tensor,
    bias: torch.Tensor,
    multiplier: torch.Tensor | None,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    h0: torch.Tensor,
    *,
    n_chars: int,
    scope_all: torch.Tensor | None = None,
    workspace: Workspace | None = None,
    kernel: str | None = None,
    threads: int | None = None,
    n_hidden: torch.Tensor | None = None,
) -> BatchedWindow:
    """Loss, gradients and last states of B windows (BPTT, no truncation inside).

    inputs, targets: (B, T) int64 character indices; h0: (B, Hc) initial states;
    scope_all: None (every member ``readout``) or (B,) bool; workspace: buffers
    to reuse across calls (a fresh one when None); kernel: see
    :func:`pick_kernel`; threads: the numba kernel's thread count (default
    ``torch.get_num_threads()``); n_hidden: (B,) int64 when member b's hidden
    neurons fill slots 0..n_hidden[b]-1, so the numba kernel computes each member
    at its own size and its numbers do not depend on the batch's capacity
    (None: every slot may hold a neuron).
    """
    b, steps = inputs.shape
    v = n_chars
    ws = (workspace or Workspace()).ready(steps, weight, v)
    if pick_kernel(kernel, weight.device) == "numba":
        return _numba_window(weight, bias, multiplier, inputs, targets, h0, v, scope_all, ws, threads, n_hidden)
    wxh, whh, why, bh, by = _blocks(weight, bias, v)
    h = whh.shape[1]
    m = None if multiplier is None else multiplier[:, 2 * v :]
    mu = _recurrence_factor(m, scope_all)
    flat = _flat_inputs(inputs, ws)
    _run_hidden(wxh, whh, bh, mu, flat, h0, ws)
    hs_b = ws.hs.view(steps, b, h).transpose(0, 1)  # (B, T, H) view
    r = hs_b if m is None else hs_b * m.unsqueeze(1)  # (B, T, H) what the readout sees
    # characters along the middle axis: softmax over V is fast on (B, V, T), slow on (B, T, V)
    logits = torch.baddbmm(by.unsqueeze(2), why, r.transpose(1, 2))  # (B, V, T)
    logp = torch.log_softmax(logits, dim=1)
    tgt = targets.unsqueeze(1)  # (B, 1, T)
    loss = -logp.gather(1, tgt).squeeze(1).sum(1)

    dy = logp.exp_().scatter_add_(1, tgt, ws.minus_one)  # (B, V, T) dloss/dlogits
    dr = torch.bmm(dy.transpose(1, 2), why, out=ws.dr)  # (B, T, H) dloss/dr
    g_w, g_b = ws.g_weight, ws.g_bias
    hid, out = slice(2 * v, None), slice(v, 2 * v)
    g_w[:, out, hid] = torch.bmm(dy, r)  # d Why (B, V, H)
    g_b[:, out] = dy.sum(2)
    g_m = None
    d_out = ws.d_out.view(steps, b, h)  # time-major: what reaches h_t from the readout
    if m is None:
        d_out.copy_(dr.transpose(0, 1))
    else:
        g_m = ws.g_mult
        g_m[:, hid] = (dr * hs_b).sum(1)
        torch.mul(dr.transpose(0, 1), m, out=d_out)
    torch.addcmul(_one(weight), ws.hs, ws.hs, value=-1.0, out=ws.dtanh)  # tanh' = 1 - h^2
    _backprop_recurrence(ws, whh, mu)
    draw_b = ws.draw.view(steps, b, h).transpose(0, 1)  # (B, T, H) view
    g_w[:, hid, hid] = torch.bmm(draw_b.transpose(1, 2), ws.prev.view(steps, b, h).transpose(0, 1))
    if scope_all is not None and m is not None:
        prev = torch.cat([h0.reshape(1, b, 1, h), ws.hs[:-1]]).view(steps, b, h).transpose(0, 1)
        g_m[:, hid] += (torch.bmm(draw_b, whh) * prev).sum(1) * scope_all.view(-1, 1)
    ws.d_table.zero_().index_add_(0, flat, ws.draw.view(steps * b, h))
    g_w[:, hid, :v] = ws.d_table.view(b, v, h).transpose(1, 2)  # d Wxh (B, H, V)
    g_b[:, hid] = ws.draw.sum(0).view(b, h)
    return BatchedWindow(loss, g_w, g_b, g_m, ws.hs[-1].view(b, h).clone())


KERNELS = ("numba", "torch")


def pick_kernel(kernel: str | None, device: torch.device) -> str:
    """The kernel that runs: ``"numba"`` (CPU tensors only), ``"torch"``, or for
    None, numba on the CPU and torch elsewhere."""
    if kernel is None:
        return "numba" if device.type == "cpu" else "torch"
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS} or None, got {kernel!r}")
    if kernel == "numba" and device.type != "cpu":
        raise ValueError(f"the numba kernel runs on CPU tensors only, got device {device}")
    return kernel


def _numba_window(weight, bias, multiplier, inputs, targets, h0, v, scope_all, ws: Workspace, threads,
                  n_hidden) -> BatchedWindow:  # fmt: skip
    """:func:`batched_bptt` through :func:`neurograph.kernels.charrnn_bptt.bptt_window`."""
    b = weight.shape[0]
    m = ws.unit_m if multiplier is None else multiplier[:, 2 * v :].contiguous()  # (B, Hc)
    scope = ws.readout_only if scope_all is None else scope_all
    loss, h_last = torch.empty(b, dtype=weight.dtype), torch.empty((b, h0.shape[1]), dtype=weight.dtype)
    g_w, g_b, g_m = ws.g_weight, ws.g_bias, ws.g_mult
    arrays = [ws.view(t) for t in (weight, bias, m, scope)] + [t.contiguous().numpy() for t in (inputs, targets, h0)]
    outputs = [loss.numpy()] + [ws.view(t) for t in (g_w, g_b, g_m)] + [h_last.numpy()]
    bptt_window(*arrays, v, *outputs, threads=threads, n_hidden=None if n_hidden is None else ws.view(n_hidden))
    return BatchedWindow(loss, g_w, g_b, None if multiplier is None else g_m, h_last)


def numba_window_in_place(weight, bias, multiplier, h, chars: np.ndarray, v: int, scope_all, ws: Workspace,
                          threads, n_hidden) -> np.ndarray:  # fmt: skip
    """A trainer's window through the numba kernel: like :func:`batched_bptt`, but
    ``chars`` (B, T + 1) is numpy (inputs ``[:, :-1]``, targets ``[:, 1:]``), the
    carried state ``h`` (B, N) is read and replaced in place, and the gradients stay in
    ``ws`` (``g_weight``, ``g_bias``, ``g_mult``). Returns the (B,) window losses.
    Everything is passed as numpy views: no torch operation runs, since for one
    small network their dispatch costs as much as the window."""
    steps = chars.shape[1] - 1
    ws.ready(steps, weight, v)
    view = ws.view
    hv = view(h)
    m = view(ws.unit_m) if multiplier is None else np.ascontiguousarray(view(multiplier)[:, 2 * v :])
    scope = view(ws.readout_only if scope_all is None else scope_all)
    loss, h_last = ws.loss_np, ws.h_last_np
    bptt_window(view(weight), view(bias), m, scope, chars[:, :-1], chars[:, 1:], np.ascontiguousarray(hv[:, 2 * v :]),
                v, loss, view(ws.g_weight), view(ws.g_bias), view(ws.g_mult), h_last, threads=threads,
                n_hidden=None if n_hidden is None else view(n_hidden))  # fmt: skip
    hv[:, 2 * v :] = h_last
    return loss


def _one(like: torch.Tensor) -> torch.Tensor:
    return torch.ones((), dtype=like.dtype, device=like.device)


def _backprop_recurrence(ws: Workspace, whh, mu) -> None:
    """Fill ``ws.draw`` with the gradients at the pre-activations (T, B, 1, H),
    walking the window backwards. ``ws.d_out`` is consumed: step t-1's slice
    accumulates what flows back from step t."""
    whh_c = whh.contiguous()  # (B, H, H) [target, source]: row @ whh_c = (Whh^T g)^T
    d_outs, dtanhs, draws = ws.d_out_t, ws.dtanh_t, ws.draw_t
    g = d_outs[-1]
    for t in range(len(draws) - 1, -1, -1):
        torch.mul(dtanhs[t], g, out=draws[t])
        if t and mu is None:
            g = d_outs[t - 1].baddbmm_(draws[t], whh_c)
        elif t:  # through u_{t-1} = mu * h_{t-1}
            g = d_outs[t - 1].addcmul_(torch.bmm(draws[t], whh_c), mu)
