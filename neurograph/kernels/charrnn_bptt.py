"""The batched BPTT of :mod:`neurograph.charrnn.bptt` as one compiled call, for the CPU.

For the papers' networks (B = 40 members of 30 neurons, T = 40 characters)
the torch kernel is about 200 operations per window, most of them two per
step of each recurrence, and on the CPU their dispatch costs more than their
arithmetic. Here numba compiles the whole window of one member (forward,
readout, softmax, backward, every gradient) into one loop nest, which runs
without the GIL; with more than one thread the members are split between the
calling thread and spinning helper threads (:mod:`neurograph.kernels.threads`;
numba's ``prange`` did not run in parallel between training cycles). It reads
the padded tensors in place through numpy views (on the CPU ``tensor.numpy()``
shares memory) and writes the workspace's gradient buffers; shapes, padding
and meaning are the torch kernel's, and the tests compare the two and both
against autograd.

What keeps it fast (each changes results at float rounding only):

- matrix-vector products are ``acc += column * scalar`` over contiguous rows
  padded to a multiple of 16 (no scalar remainder), which LLVM vectorizes;
  the forward product adds four columns per pass. Sums run in another order
  than the torch kernel's BLAS, so results agree to rounding, not bit for bit;
- ``error_model="numpy"`` (no zero-division branches, which stop
  vectorization) and ``fastmath={"contract"}`` (fused multiply-adds); only
  the readout's dot products may also reassociate;
- tanh is :func:`_tanh`, a branch-free series, since libm's scalar tanh is
  not vectorized and took two thirds of the forward walk.

Compiled code is cached in ``__pycache__`` (``cache=True``); the first call in
a fresh checkout compiles for a few seconds per dtype.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import torch
from numba.extending import overload

from neurograph.kernels.jit import numba
from neurograph.kernels.threads import helpers

__all__ = ["bptt_window"]

# error_model numpy: no zero-division branches, so loops vectorize; contract: a * b + c may fuse into one FMA
_JIT = dict(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
_LANES = 16  # rows are padded to a multiple of this, so vector loops need no scalar remainder


def bptt_window(weight, bias, m, scope_all, inputs, targets, h0, n_chars, loss, g_weight, g_bias, g_mult, h_last, *,
                threads: int | None = None) -> None:  # fmt: skip
    """Fill ``loss`` (B,), the gradient blocks of ``g_weight`` (B, N, N), ``g_bias``
    (B, N) and ``g_mult`` (B, N), and ``h_last`` (B, Hc), for one window per member.

    m: (B, Hc) hidden multipliers (ones when fixed at 1); scope_all: (B,) bool,
    which members' recurrences read through them; inputs, targets: (B, T)
    int64; h0: (B, Hc). The outputs must be contiguous CPU tensors; entries of
    ``g_weight`` outside the three blocks are not written (``g_bias`` and
    ``g_mult`` are, whole). threads: how many threads share the members
    (default ``torch.get_num_threads()``): the calling thread takes the first
    range of members, helper threads (:mod:`neurograph.kernels.threads`) the others.
    """
    args = tuple(_np(a) for a in (weight, bias, m, scope_all, inputs, targets, h0))
    args += (n_chars,) + tuple(o.numpy() for o in (loss, g_weight, g_bias, g_mult, h_last))
    b = weight.shape[0]
    n = max(1, min(threads or torch.get_num_threads(), b))
    if n == 1 or not _busy.acquire(blocking=False):  # the helpers serve one caller at a time
        _span(0, b, *args)
        return
    try:
        _shared(b, n, args)
    finally:
        _busy.release()


_busy = threading.Lock()


def _shared(b: int, n: int, args: tuple) -> None:
    """Members split between the calling thread (the first range) and n - 1 helpers."""
    bounds, others = _split(b, n), helpers(n - 1)
    for helper, lo, hi in zip(others, bounds[1:-1], bounds[2:]):
        helper.post(_span, (lo, hi, *args))
    start = time.perf_counter()
    _span(0, bounds[1], *args)
    ran = time.perf_counter()
    for helper in others:
        helper.join()
    _rebalance(b, n, (ran - start) / max(bounds[1], 1), time.perf_counter() - ran)


# (B, threads) -> members the calling thread takes beyond an even share: a helper
# starts its range a little later than the calling thread, and may be slower (its
# caches are colder). Which thread runs a member does not change its numbers.
_lead: dict[tuple[int, int], int] = {}


def _split(b: int, n: int) -> list[int]:
    """Bounds of n ranges of members: the calling thread's first, the rest even."""
    first = b // n + _lead.get((b, n), 0)
    return [0] + [first + (b - first) * k // (n - 1) for k in range(n)]


def _rebalance(b: int, n: int, per_member: float, waited: float) -> None:
    """Move one member to the calling thread if it waited for the helpers longer
    than a member takes, or one back if it hardly waited."""
    lead = _lead.get((b, n), 0)
    if waited > per_member and b // n + lead < b - (n - 1):
        lead += 1
    elif waited < per_member / 4 and b // n + lead > 1:
        lead -= 1
    _lead[(b, n)] = lead


def _np(t: torch.Tensor) -> np.ndarray:
    """C-contiguous numpy view (a copy only if ``t`` is not contiguous): one
    compiled specialization per dtype, and contiguous rows for the vector loops."""
    return t.contiguous().numpy()


def _tanh(x):
    """tanh, compiled as :func:`_tanh32` or :func:`_tanh64` by the argument's type."""
    return math.tanh(x)


# 1 / k!, k = 17..1: expm1(z) = z * sum_k z^(k-1) / k!, to float64 rounding for |z| <= 0.61
_C64 = tuple(1.0 / math.factorial(k) for k in range(17, 0, -1))
# 1 / k!, k = 9..1, as float32: the same to float32 rounding for |z| <= 0.6
_C32 = tuple(np.float32(1.0 / math.factorial(k)) for k in range(9, 0, -1))
_CLAMP32, _SCALE32 = np.float32(9.5), np.float32(-2.0 / 32.0)


def _tanh64(x):
    """tanh(x) within 5 float64 ulps of libm's; branch-free, so that loops over it vectorize.

    tanh|x| = -e / (2 + e) with e = expm1(-2|x|): the series at z = -2|x| / 64
    (written out: a loop over the coefficients is neither unrolled nor
    vectorized), doubled six times by expm1(2z) = e * e + 2e (one fused
    rounding each). |x| is clamped at 19.5, beyond which tanh rounds to 1.
    """
    z = min(abs(x), 19.5) * (-2.0 / 64.0)
    c = _C64
    p = (((((((c[0] * z + c[1]) * z + c[2]) * z + c[3]) * z + c[4]) * z + c[5]) * z + c[6]) * z + c[7]) * z + c[8]
    p = (((((((p * z + c[9]) * z + c[10]) * z + c[11]) * z + c[12]) * z + c[13]) * z + c[14]) * z + c[15]) * z + c[16]
    e = z * p
    for _ in range(6):
        e = e * e + (e + e)
    return math.copysign(-e / (2.0 + e), x)


def _tanh32(x):
    """tanh(x) in float32 arithmetic, 8 vector lanes where float64 has 4: as
    :func:`_tanh64` with z = -2|x| / 32, five doublings written e * e + 2e (one
    fused rounding each) and the clamp at 9.5. Within 5 float32 ulps (torch's:
    1.5). Evaluated in float64 it was correctly rounded and the kernel's float32
    results strayed from float64's 0.9 times as far as the torch kernel's (median
    over random nets), against 1.6 times now, but a cycle took about 4% longer."""
    z = min(abs(x), _CLAMP32) * _SCALE32
    c = _C32
    p = (((((((c[0] * z + c[1]) * z + c[2]) * z + c[3]) * z + c[4]) * z + c[5]) * z + c[6]) * z + c[7]) * z + c[8]
    e = z * p
    for _ in range(5):
        e = e * e + (e + e)
    return math.copysign(-e / (np.float32(2.0) + e), x)


@overload(_tanh, inline="always", jit_options=dict(error_model="numpy", fastmath={"contract"}))
def _tanh_typed(x):  # pragma: no cover - compile time
    return _tanh32 if x == numba.types.float32 else _tanh64


@numba.njit(**_JIT)
def _span(lo, hi, weight, bias, m, scope_all, inputs, targets, h0, v, loss, g_w, g_b, g_m, h_last):  # pragma: no cover
    """Members lo..hi-1, on the calling thread, without the GIL."""
    h = weight.shape[1] - 2 * v
    hp = -(-max(h, 1) // _LANES) * _LANES  # hidden vectors and blocks are padded with zeros to Hp
    steps = inputs.shape[1]
    # buffers shared by the range's members (allocated and zeroed once, not per member); the
    # padding stays zero throughout: tanh(0) = 0, and the weights and factors there are zero
    blocks = np.zeros((3, hp, hp), dtype=weight.dtype)  # Whh, Whh^T, d Whh
    rows = np.zeros((2 * steps + 1 + 2 * v + 2, hp), dtype=weight.dtype)  # states, d_out, Why, d Why, m, mu
    for b in range(lo, hi):
        _member(b, weight, bias, m, scope_all, inputs, targets, h0, v, loss, g_w, g_b, g_m, h_last, blocks, rows)


@numba.njit(**_JIT)
def _member(b, weight, bias, m, scope_all, inputs, targets, h0, v, loss, g_w, g_b, g_m, h_last,
            blocks, rows):  # pragma: no cover - compiled  # fmt: skip
    """Member b's window: forward, readout, backward; writes its loss, gradient
    blocks and last state. ``blocks`` and ``rows``: :func:`_span`'s buffers."""
    w, x, y = weight[b], inputs[b], targets[b]  # (N, N), (T,), (T,)
    steps, h = x.shape[0], w.shape[0] - 2 * v
    hid, out = slice(2 * v, 2 * v + h), slice(v, 2 * v)
    whh, whh_t, g_hh = blocks[0], blocks[1], blocks[2]  # (Hp, Hp) each
    states, d_out = rows[: steps + 1], rows[steps + 1 : 2 * steps + 1]  # h_t at row t + 1, h0 at row 0; dloss/dh_t
    why, g_why = rows[2 * steps + 1 : 2 * steps + 1 + v], rows[2 * steps + 1 + v : 2 * steps + 1 + 2 * v]  # (V, Hp)
    m_b, mu = rows[-2], rows[-1]  # readout multipliers, what the recurrence reads through
    whh[:h, :h] = w[hid, hid]
    whh_t[:h, :h] = w[hid, hid].T
    why[:, :h] = w[out, hid]
    m_b[:h] = m[b]
    if scope_all[b]:
        mu[:h] = m[b]
    else:
        mu[:h] = 1.0
    states[0, :h] = h0[b]
    _forward(w[hid, :v], bias[b, hid], x, whh_t, mu, states)
    h_last[b] = states[steps, :h]

    d_out[:] = 0
    g_why[:] = 0
    g_b[b] = 0
    g_m[b] = 0
    loss[b] = _readout(why, bias[b, out], m_b, y, states, d_out, g_why, g_b[b, out], g_m[b, hid])
    g_w[b, out, hid] = g_why[:, :h]

    g_hh[:] = 0
    g_w[b, hid, :v] = 0
    _backward(x, whh, mu, scope_all[b], states, d_out, g_hh, g_w[b, hid, :v], g_b[b, hid], g_m[b, hid])
    g_w[b, hid, hid] = g_hh[:h, :h]


@numba.njit(**_JIT)
def _forward(wxh, bh, inputs, whh_t, mu, states):  # pragma: no cover - compiled
    """Fill states[1:] (T, Hp): h_t = tanh(Wxh x_t + Whh (mu * h_{t-1}) + bh)."""
    h, hp = wxh.shape[0], whh_t.shape[0]
    for t in range(inputs.shape[0]):
        c = inputs[t]
        for i in range(h):  # input drive: column c of Wxh, gathered not multiplied
            states[t + 1, i] = wxh[i, c] + bh[i]
        for j in range(0, hp, 4):  # += Whh[:, j] u_j, u = mu * h_{t-1}, four sources per pass
            u0, u1 = mu[j] * states[t, j], mu[j + 1] * states[t, j + 1]
            u2, u3 = mu[j + 2] * states[t, j + 2], mu[j + 3] * states[t, j + 3]
            for i in range(hp):
                states[t + 1, i] += (whh_t[j, i] * u0 + whh_t[j + 1, i] * u1) + (
                    whh_t[j + 2, i] * u2 + whh_t[j + 3, i] * u3
                )
        for i in range(hp):
            states[t + 1, i] = _tanh(states[t + 1, i])


@numba.njit(**_JIT)
def _readout(why, by, m, targets, states, d_out, g_why, g_by, g_m):  # pragma: no cover - compiled
    """Summed cross-entropy of the window; fills d_out (T, Hp), dloss/dh_t through
    the readout, and adds the readout's gradients: Why, by and multipliers (Hc,)."""
    steps, hp = d_out.shape
    r = states[1:] * m  # (T, Hp) what the readout sees
    dy, loss = _softmax_grad(why, by, r, targets)  # (T, V) dloss/dlogits
    for t in range(steps):  # d_out = dy Why; d Why = dy^T r
        for o in range(why.shape[0]):
            d = dy[t, o]
            g_by[o] += d
            for i in range(hp):
                g_why[o, i] += d * r[t, i]
                d_out[t, i] += d * why[o, i]
    for t in range(steps):  # through r = m * h
        for i in range(g_m.shape[0]):
            g_m[i] += d_out[t, i] * states[t + 1, i]
        for i in range(hp):
            d_out[t, i] *= m[i]
    return loss


@numba.njit(**(_JIT | {"fastmath": {"contract", "reassoc"}}))
def _softmax_grad(why, by, r, targets):  # pragma: no cover - compiled
    """(T, V) dloss/dlogits, in r's dtype, and the summed loss (float64); logits
    and softmax in float64. The sums are reassociated so that they vectorize."""
    steps, v, hp = targets.shape[0], why.shape[0], why.shape[1]
    logits = np.empty((steps, v))
    for t in range(steps):
        for o in range(v):
            s = 0.0
            for i in range(hp):
                s += why[o, i] * r[t, i]
            logits[t, o] = by[o] + s
    dy = np.empty((steps, v), dtype=r.dtype)
    loss = 0.0
    for t in range(steps):
        top = logits[t, 0]
        for o in range(1, v):
            top = max(top, logits[t, o])
        loss += top - logits[t, targets[t]]
        z = 0.0
        for o in range(v):
            logits[t, o] = math.exp(logits[t, o] - top)
            z += logits[t, o]
        loss += math.log(z)
        for o in range(v):
            dy[t, o] = logits[t, o] / z
        dy[t, targets[t]] -= 1.0
    return dy, loss


@numba.njit(**_JIT)
def _backward(inputs, whh, mu, scope_all, states, d_out, g_hh, g_xh, g_bh, g_m):  # pragma: no cover - compiled
    """Walk the window backwards from d_out, adding the gradients of Whh (Hp, Hp),
    Wxh (H, V) and bh, and the recurrence's multiplier term when the scope is 'all'."""
    h, hp = g_xh.shape[0], whh.shape[0]
    g = d_out[-1].copy()  # (Hp,) dloss/dh_t, all paths
    d = np.zeros(hp, dtype=states.dtype)  # dloss/d pre-activation of step t
    acc = np.empty(hp, dtype=states.dtype)  # Whh^T d
    u = np.empty(hp, dtype=states.dtype)  # what Whh saw at step t, mu * h_{t-1}
    for t in range(inputs.shape[0] - 1, -1, -1):
        c = inputs[t]
        for i in range(h):
            d[i] = (1.0 - states[t + 1, i] * states[t + 1, i]) * g[i]
            g_bh[i] += d[i]
            g_xh[i, c] += d[i]
        for j in range(hp):
            u[j] = mu[j] * states[t, j]
            acc[j] = 0
        for i in range(h):  # one pass over Whh's rows for both products
            di = d[i]
            for j in range(hp):
                g_hh[i, j] += di * u[j]
                acc[j] += whh[i, j] * di
        if scope_all:
            for j in range(h):
                g_m[j] += acc[j] * states[t, j]
        if t:
            for j in range(hp):
                g[j] = d_out[t - 1, j] + acc[j] * mu[j]
