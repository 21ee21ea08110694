"""Char-level recurrent network (min-char-rnn) with hand-written BPTT.

The network reads one-hot characters, updates a tanh hidden layer that is fully
connected to itself, and predicts the next character with a softmax readout.
All weights come from a :class:`~neurograph.compile.Compiled` graph whose
order is ``[inputs | outputs | hidden]``, so the blocks are views:

- ``Wxh = weight[hidden, inputs]``  (H, V) input -> hidden
- ``Whh = weight[hidden, hidden]``  (H, H) hidden -> hidden
- ``Why = weight[outputs, hidden]`` (V, H) hidden -> readout

Each hidden neuron's multiplier ``m`` scales its output. ``scope="readout"``
(the multiplier revision's original code) scales only what the readout sees;
``scope="all"`` (a literal reading of that paper's text) also scales what the
recurrence sees. With multipliers fixed at 1 (outgoing-L1 revision) both
scopes are the plain min-char-rnn.

Backpropagation through time is written by hand: the recurrences run one
matrix-vector product per step, everything else is batched over the window.
Tests check it against autograd and finite differences.
"""

from __future__ import annotations

import torch

from neurograph.compile import Compiled
from neurograph.charrnn.rnn_cpu import bptt_cpu
from neurograph.charrnn.window import Gradients, WindowResult

__all__ = ["Gradients", "WindowResult", "bptt", "bptt_torch", "forward_logits"]

SCOPES = ("readout", "all")


def _check_scope(scope: str) -> None:
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")


def _blocks(c: Compiled):
    hid, inp, out = c.hidden, c.inputs, c.outputs
    w = c.weight
    return w[hid, inp], w[hid, hid], w[out, hid], c.bias[hid], c.bias[out], c.multiplier[hid]


def _run_hidden(wxh, whh, bh, m, inputs, h0, scope):
    """Hidden states (T, H) and what the recurrence saw (T, H) at each step."""
    xproj = wxh.t()[inputs] + bh  # (T, H) input drive, gathered not multiplied
    hs = torch.empty_like(xproj)
    h = h0
    if scope == "readout":
        # per-step views made once: indexing inside the loop costs more than the math
        for x_t, h_t in zip(xproj.unbind(0), hs.unbind(0)):
            h = torch.tanh(torch.addmv(x_t, whh, h), out=h_t)
        return hs, torch.cat([h0.unsqueeze(0), hs[:-1]])
    seen = torch.empty_like(xproj)  # u_{t-1} = m * h_{t-1}, input of Whh at step t
    for x_t, h_t, u_t in zip(xproj.unbind(0), hs.unbind(0), seen.unbind(0)):
        u = torch.mul(h, m, out=u_t)
        h = torch.tanh(torch.addmv(x_t, whh, u), out=h_t)
    return hs, seen


def forward_logits(c: Compiled, inputs: torch.Tensor, h0: torch.Tensor, *, scope: str = "readout"):
    """Logits (T, V) and last hidden state for a window of character indices."""
    _check_scope(scope)
    wxh, whh, why, bh, by, m = _blocks(c)
    hs, _ = _run_hidden(wxh, whh, bh, m, inputs, h0, scope)
    return (hs * m) @ why.t() + by, hs[-1].clone()


def bptt(
    c: Compiled, inputs: torch.Tensor, targets: torch.Tensor, h0: torch.Tensor, *, scope: str = "readout"
) -> WindowResult:
    """Loss, gradients and last state of one window (BPTT, no truncation inside).

    inputs, targets: (T,) int64 character indices; h0: (H,) initial state.
    On the CPU the numpy kernel of :mod:`neurograph.charrnn.rnn_cpu` runs (same
    results, a fraction of the per-call overhead); elsewhere :func:`bptt_torch`.
    """
    _check_scope(scope)
    if c.weight.device.type == "cpu":
        return bptt_cpu(c, inputs, targets, h0, scope)
    return bptt_torch(c, inputs, targets, h0, scope=scope)


def bptt_torch(
    c: Compiled, inputs: torch.Tensor, targets: torch.Tensor, h0: torch.Tensor, *, scope: str = "readout"
) -> WindowResult:
    """:func:`bptt` in torch operations, for any device."""
    _check_scope(scope)
    wxh, whh, why, bh, by, m = _blocks(c)
    steps = inputs.shape[0]
    hs, seen = _run_hidden(wxh, whh, bh, m, inputs, h0, scope)
    r = hs * m  # (T, H) what the readout sees
    logits = r @ why.t() + by  # (T, V)
    logp = torch.log_softmax(logits, dim=1)
    rows = torch.arange(steps, device=logits.device)
    loss = -logp[rows, targets].sum()

    dy = logp.exp()
    dy[rows, targets] -= 1.0  # (T, V) dloss/dlogits
    d_why = dy.t() @ r  # (V, H)
    dr = dy @ why  # (T, H)
    d_m = (dr * hs).sum(0)
    d_out = dr * m  # (T, H) gradient reaching h_t from the readout
    draw = _backprop_recurrence(d_out, 1.0 - hs * hs, whh, m, scope)
    d_whh = draw.t() @ seen  # (H, H)
    if scope == "all":
        d_m += ((draw @ whh) * torch.cat([h0.unsqueeze(0), hs[:-1]])).sum(0)
    d_wxh = torch.zeros_like(wxh).index_add_(1, inputs, draw.t())

    grads = Gradients(torch.zeros_like(c.weight), torch.zeros_like(c.bias), torch.zeros_like(c.multiplier))
    hid, inp, out = c.hidden, c.inputs, c.outputs
    grads.weight[hid, inp] = d_wxh
    grads.weight[hid, hid] = d_whh
    grads.weight[out, hid] = d_why
    grads.bias[hid] = draw.sum(0)
    grads.bias[out] = dy.sum(0)
    grads.multiplier[hid] = d_m
    return WindowResult(loss, grads, hs[-1].clone())


def _backprop_recurrence(d_out, dtanh, whh, m, scope):
    """Gradients at the pre-activations (T, H), walking the window backwards."""
    draw = torch.empty_like(d_out)
    whh_t = whh.t()
    d_outs, dtanhs, draws = d_out.unbind(0), dtanh.unbind(0), draw.unbind(0)
    g = d_outs[-1]
    for t in range(d_out.shape[0] - 1, -1, -1):
        torch.mul(dtanhs[t], g, out=draws[t])
        if t and scope == "readout":
            g = torch.addmv(d_outs[t - 1], whh_t, draws[t])
        elif t:  # through u_{t-1} = m * h_{t-1}
            g = torch.addcmul(d_outs[t - 1], whh_t @ draws[t], m)
    return draw
