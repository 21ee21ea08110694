"""Hand-written BPTT of many char-RNNs at once, in padded batch tensors.

The batched twin of :mod:`neurograph.rnn`: B networks that share an alphabet
of V characters, each with up to ``Hc`` hidden neurons, live in padded tensors
whose neuron axis is laid out ``[inputs (V) | outputs (V) | hidden slots (Hc)]``:

- ``weight``     (B, N, N) ``weight[b, target, source]``, N = 2V + Hc, zero where absent
- ``bias``       (B, N)
- ``multiplier`` (B, N)

A slot that holds no neuron has an all-zero row and column and zero bias, so
its state stays 0 and it changes nothing (that is what padding means here).
Every member may use its own multiplier scope: ``scope_all`` (B,) says which
read the recurrence through the multipliers (see :mod:`neurograph.rnn`).

The 40-step recurrences run one batched matrix product per step (rows of the
batch as ``(B, 1, H) @ (B, H, H)``, MKL's fast layout); everything else is one
batched operation over B and T.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["BatchedWindow", "batched_bptt", "batched_logits", "mixed_scope"]


@dataclass
class BatchedWindow:
    loss: torch.Tensor  # (B,) summed cross-entropy of each member's window, nats
    weight: torch.Tensor  # (B, N, N) gradients, zero outside the three blocks
    bias: torch.Tensor  # (B, N)
    multiplier: torch.Tensor  # (B, N)
    h_last: torch.Tensor  # (B, Hc) hidden state after the last character

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {"weight": self.weight, "bias": self.bias, "multiplier": self.multiplier}


def mixed_scope(scopes: list[str], device=None) -> torch.Tensor | None:
    """``scope_all`` argument for members' scopes: None when all read ``readout``."""
    for s in scopes:
        if s not in ("readout", "all"):
            raise ValueError(f"scope must be 'readout' or 'all', got {s!r}")
    if all(s == "readout" for s in scopes):
        return None
    return torch.tensor([s == "all" for s in scopes], device=device)


def _blocks(weight, bias, multiplier, n_chars: int):
    v, hid = n_chars, slice(2 * n_chars, None)
    inp, out = slice(0, v), slice(v, 2 * v)
    return weight[:, hid, inp], weight[:, hid, hid], weight[:, out, hid], bias[:, hid], bias[:, out], multiplier[:, hid]


def _recurrence_factor(m: torch.Tensor, scope_all: torch.Tensor | None) -> torch.Tensor | None:
    """(B, 1, H) what scales the state the recurrence sees: m for scope 'all', 1 for 'readout'."""
    if scope_all is None:
        return None
    return torch.where(scope_all.view(-1, 1, 1), m.unsqueeze(1), torch.ones_like(m).unsqueeze(1))


def _run_hidden(wxh, whh, bh, mu, inputs, h0):
    """States (T, B, 1, H) and what the recurrence saw at each step (T, B, 1, H)."""
    b, h, v = wxh.shape
    steps = inputs.shape[1]
    # input drive: row inputs[b, t] of member b's Wxh^T, gathered not multiplied
    table = wxh.transpose(1, 2).reshape(b * v, h)  # (B*V, H)
    flat = (inputs.t() + torch.arange(b, device=inputs.device) * v).reshape(-1)  # (T*B,) time-major
    hs = table.index_select(0, flat).view(steps, b, 1, h).add_(bh.unsqueeze(1))  # becomes the states in place
    whh_t = whh.transpose(1, 2).contiguous()  # (B, H, H) [source, target]: row @ whh_t = (Whh h)^T
    state = h0.reshape(b, 1, h)
    if mu is None:
        for h_t in hs.unbind(0):
            state = h_t.baddbmm_(state, whh_t).tanh_()
        return hs, torch.cat([h0.reshape(1, b, 1, h), hs[:-1]])
    seen = torch.empty_like(hs)  # u_{t-1} = mu * h_{t-1}, the input of Whh at step t
    for h_t, u_t in zip(hs.unbind(0), seen.unbind(0)):
        torch.mul(state, mu, out=u_t)
        state = h_t.baddbmm_(u_t, whh_t).tanh_()
    return hs, seen


def batched_logits(weight, bias, multiplier, inputs, h0, *, n_chars: int, scope_all=None):
    """Logits (B, T, V) and last states (B, Hc) of a batch of windows (no gradients)."""
    wxh, whh, why, bh, by, m = _blocks(weight, bias, multiplier, n_chars)
    hs, _ = _run_hidden(wxh, whh, bh, _recurrence_factor(m, scope_all), inputs, h0)
    steps, b = inputs.shape[1], inputs.shape[0]
    hs_b = hs.view(steps, b, -1).transpose(0, 1)
    return torch.baddbmm(by.unsqueeze(1), hs_b * m.unsqueeze(1), why.transpose(1, 2)), hs[-1].view(b, -1).clone()


def batched_bptt(
    weight: torch.Tensor,
    bias: torch.Tensor,
    multiplier: torch.Tensor,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    h0: torch.Tensor,
    *,
    n_chars: int,
    scope_all: torch.Tensor | None = None,
) -> BatchedWindow:
    """Loss, gradients and last states of B windows (BPTT, no truncation inside).

    inputs, targets: (B, T) int64 character indices; h0: (B, Hc) initial states;
    scope_all: None (every member ``readout``) or (B,) bool.
    """
    wxh, whh, why, bh, by, m = _blocks(weight, bias, multiplier, n_chars)
    b, steps = inputs.shape
    mu = _recurrence_factor(m, scope_all)
    hs, seen = _run_hidden(wxh, whh, bh, mu, inputs, h0)
    h = hs.shape[-1]
    hs_b = hs.view(steps, b, h).transpose(0, 1)  # (B, T, H) view
    m_row = m.unsqueeze(1)  # (B, 1, H)
    r = hs_b * m_row  # (B, T, H) what the readout sees
    # characters along the last axis: softmax over V is fast on (B, V, T), slow on (B, T, V)
    logits = torch.baddbmm(by.unsqueeze(2), why, r.transpose(1, 2))  # (B, V, T)
    logp = torch.log_softmax(logits, dim=1)
    tgt = targets.unsqueeze(1)  # (B, 1, T)
    loss = -logp.gather(1, tgt).squeeze(1).sum(1)

    dy = logp.exp()
    dy.scatter_add_(1, tgt, torch.full(tgt.shape, -1.0, dtype=dy.dtype, device=dy.device))  # dloss/dlogits
    d_why = torch.bmm(dy, r)  # (B, V, H)
    dr = torch.bmm(dy.transpose(1, 2), why)  # (B, T, H)
    d_m = (dr * hs_b).sum(1)  # (B, H)
    d_out = (dr * m_row).transpose(0, 1).contiguous().view(steps, b, 1, h)  # reaching h_t from the readout
    draw = _backprop_recurrence(d_out, torch.addcmul(_one(hs), hs, hs, value=-1.0), whh, mu)  # (T, B, 1, H)
    draw_b = draw.view(steps, b, h).transpose(0, 1)  # (B, T, H) view
    seen_b = seen.view(steps, b, h).transpose(0, 1)
    d_whh = torch.bmm(draw_b.transpose(1, 2), seen_b)  # (B, H, H)
    if scope_all is not None:
        prev = torch.cat([h0.reshape(1, b, 1, h), hs[:-1]]).view(steps, b, h).transpose(0, 1)
        d_m += (torch.bmm(draw_b, whh) * prev).sum(1) * scope_all.view(-1, 1)
    v = n_chars
    onehot = torch.nn.functional.one_hot(inputs, v).to(draw.dtype)  # (B, T, V)
    d_wxh = torch.bmm(draw_b.transpose(1, 2), onehot)  # (B, H, V)

    n = weight.shape[1]
    g_w = torch.zeros_like(weight)
    hid, inp, out = slice(2 * v, n), slice(0, v), slice(v, 2 * v)
    g_w[:, hid, inp] = d_wxh
    g_w[:, hid, hid] = d_whh
    g_w[:, out, hid] = d_why
    g_b = torch.zeros_like(bias)
    g_b[:, hid] = draw.sum(0).view(b, h)
    g_b[:, out] = dy.sum(2)
    g_m = torch.zeros_like(multiplier)
    g_m[:, hid] = d_m
    return BatchedWindow(loss, g_w, g_b, g_m, hs[-1].view(b, h).clone())


def _one(like: torch.Tensor) -> torch.Tensor:
    return torch.ones((), dtype=like.dtype, device=like.device)


def _backprop_recurrence(d_out, dtanh, whh, mu):
    """Gradients at the pre-activations (T, B, 1, H), walking the window backwards.

    ``d_out`` is consumed: step t-1's slice accumulates what flows back from t.
    """
    draw = torch.empty_like(d_out)
    whh_c = whh.contiguous()  # (B, H, H) [target, source]: row @ whh_c = (Whh^T g)^T
    d_outs, dtanhs, draws = d_out.unbind(0), dtanh.unbind(0), draw.unbind(0)
    g = d_outs[-1]
    for t in range(d_out.shape[0] - 1, -1, -1):
        torch.mul(dtanhs[t], g, out=draws[t])
        if t and mu is None:
            g = d_outs[t - 1].baddbmm_(draws[t], whh_c)
        elif t:  # through u_{t-1} = mu * h_{t-1}
            g = d_outs[t - 1].addcmul_(torch.bmm(draws[t], whh_c), mu)
    return draw
