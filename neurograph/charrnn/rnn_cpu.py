"""The char-RNN's BPTT on the CPU, run through numpy views of the torch tensors.

For the papers' networks (tens of neurons) a window is hundreds of tiny
operations, so the cost is per-call overhead, and numpy's is a fraction of
torch's. On the CPU a torch tensor and ``tensor.numpy()`` share memory: this
kernel reads the compiled tensors in place and returns torch tensors that wrap
its numpy results, with no copies. Same formulas, shapes and results as
:func:`neurograph.charrnn.rnn.bptt_torch` (tests compare them and autograd).
"""

from __future__ import annotations

import numpy as np
import torch

from neurograph.charrnn.window import Gradients, WindowResult
from neurograph.compile import Compiled

__all__ = ["bptt_cpu"]


def bptt_cpu(c: Compiled, inputs: torch.Tensor, targets: torch.Tensor, h0: torch.Tensor, scope: str):
    """Loss, gradients and last state of one window; see :func:`neurograph.charrnn.rnn.bptt`."""
    w, bias, mult = c.weight.numpy(), c.bias.numpy(), c.multiplier.numpy()
    hid, inp, out = c.hidden, c.inputs, c.outputs
    wxh, whh, why = w[hid, inp], w[hid, hid], w[out, hid]  # views
    m = mult[hid]
    x, y, h0 = inputs.numpy(), targets.numpy(), h0.numpy()
    steps = x.shape[0]

    hs, seen = _run_hidden(wxh.T[x] + bias[hid], whh, m, h0, scope)
    r = hs * m  # (T, H) what the readout sees
    logits = r @ why.T + bias[out]  # (T, V)
    logits -= logits.max(axis=1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    rows = np.arange(steps)
    loss = -logp[rows, y].sum()

    dy = np.exp(logp)
    dy[rows, y] -= 1.0  # (T, V) dloss/dlogits
    dr = dy @ why  # (T, H)
    d_m = (dr * hs).sum(axis=0)
    draw = _backprop_recurrence(dr * m, 1.0 - hs * hs, whh, m, scope)
    if scope == "all":
        d_m += ((draw @ whh) * np.concatenate([h0[None], hs[:-1]])).sum(axis=0)

    g_w = np.zeros_like(w)
    g_w[hid, inp] = draw.T @ np.eye(wxh.shape[1], dtype=w.dtype)[x]  # one-hot inputs
    g_w[hid, hid] = draw.T @ seen
    g_w[out, hid] = dy.T @ r
    g_b = np.zeros_like(bias)
    g_b[hid], g_b[out] = draw.sum(axis=0), dy.sum(axis=0)
    g_m = np.zeros_like(mult)
    g_m[hid] = d_m
    grads = Gradients(torch.from_numpy(g_w), torch.from_numpy(g_b), torch.from_numpy(g_m))
    return WindowResult(torch.tensor(loss, dtype=c.weight.dtype), grads, torch.from_numpy(hs[-1].copy()))


def _run_hidden(xproj: np.ndarray, whh: np.ndarray, m: np.ndarray, h0: np.ndarray, scope: str):
    """Hidden states (T, H) and the recurrence's inputs (T, H)."""
    hs = np.empty_like(xproj)
    seen = np.empty_like(xproj)  # u_{t-1}: h_{t-1} (readout scope) or m * h_{t-1}
    h = h0
    for t in range(xproj.shape[0]):
        u = h if scope == "readout" else h * m
        seen[t] = u
        a = whh @ u
        a += xproj[t]
        h = np.tanh(a, out=hs[t])
    return hs, seen


def _backprop_recurrence(d_out: np.ndarray, dtanh: np.ndarray, whh: np.ndarray, m: np.ndarray, scope: str):
    """Gradients at the pre-activations (T, H), walking the window backwards."""
    draw = np.empty_like(d_out)
    whh_t = whh.T
    g = d_out[-1]
    for t in range(d_out.shape[0] - 1, -1, -1):
        np.multiply(dtanh[t], g, out=draw[t])
        if t:
            back = whh_t @ draw[t]
            if scope == "all":
                back *= m
            back += d_out[t - 1]
            g = back
    return draw
