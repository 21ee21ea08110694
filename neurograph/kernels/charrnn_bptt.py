"""The batched BPTT of :mod:`neurograph.charrnn.bptt` as one compiled call, for the CPU.

For the papers' networks (B = 40 members of 30 neurons, T = 40 characters)
the torch kernel is about 200 operations per window, most of them two per
step of each recurrence, and on the CPU their dispatch costs more than their
arithmetic. Here numba compiles the whole window of one member (forward,
readout, softmax, backward, every gradient) into one loop nest, which runs
without the GIL; with more than one thread the members are split between the
calling thread and helper threads (:mod:`neurograph.kernels.threads`; numba's
``prange`` did not run in parallel between training cycles). It reads
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
                threads: int | None = None, n_hidden=None) -> None:  # fmt: skip
    """Fill ``loss`` (B,), the gradient blocks of ``g_weight`` (B, N, N), ``g_bias``
    (B, N) and ``g_mult`` (B, N), and ``h_last`` (B, Hc), for one window per member.

    m: (B, Hc) hidden multipliers (ones when fixed at 1); scope_all: (B,) bool,
    which members' recurrences read through them; inputs, targets: (B, T)
    int64; h0: (B, Hc). The outputs must be contiguous CPU tensors; entries of
    ``g_weight`` outside the three blocks are not written (``g_bias`` and
    ``g_mult`` are, whole). threads: at most how many threads share the members
    (default ``torch.get_num_threads()``): the calling thread takes the first
    range of members, helper threads (:mod:`neurograph.kernels.threads`) the
    others, as many as pay (see :class:`_Balance`). Which thread computes a
    member does not change its numbers. n_hidden: (B,) int64, member b's hidden
    neurons fill slots 0..n_hidden[b]-1 (the rest are empty): it is computed at its
    own size, so its numbers do not depend on the batch's capacity; None: every
    member at the capacity.
    """
    args = tuple(_np(a) for a in (weight, bias, m, scope_all, inputs, targets, h0))
    args += (n_chars,) + tuple(o if isinstance(o, np.ndarray) else o.numpy() for o in (loss, g_weight, g_bias, g_mult, h_last))
    capacity = args[0].shape[1] - 2 * n_chars
    args += (np.full(args[0].shape[0], capacity, dtype=np.int64) if n_hidden is None else _np(n_hidden),)
    b = args[0].shape[0]
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
    """Members split between the calling thread (the first range) and up to n - 1 helpers."""
    balance = _balances.setdefault((b, n), _Balance())
    bounds = balance.bounds(b, n)
    others = [(h, lo, hi) for h, lo, hi in zip(helpers(n - 1), bounds[1:-1], bounds[2:]) if hi > lo]
    for helper, lo, hi in others:
        helper.post(_span, (lo, hi, *args))
    start = time.perf_counter()
    _span(0, bounds[1], *args)
    ran = time.perf_counter()
    for helper, _, _ in others:
        helper.join()
    if others:
        balance.shared(b, n, (ran - start) / bounds[1], time.perf_counter() - ran)
    else:
        balance.alone()


class _Balance:
    """How many members the calling thread takes, for one (B, threads).

    A helper starts its range later than the calling thread (waking it takes
    10 to 30 us on an idle 2-core VM, far longer when another process has its
    core) and may run slower,
    so after each call the calling thread takes one member more if it waited
    for the helpers longer than a member takes, or one fewer if it hardly
    waited. Taking all of them, it runs alone: for a small batch, or when the
    helpers keep being late. It then hands a member back after ``patience``
    calls to see whether they pay again, and doubles ``patience`` (up to
    :data:`_MAX_PATIENCE`) each time it ends up alone again.
    """

    def __init__(self) -> None:
        self.lead = 0  # members the calling thread takes beyond an even share
        self.patience = 1  # calls alone before the helpers are tried again
        self.calls_alone = 0

    def bounds(self, b: int, n: int) -> list[int]:
        """Bounds of n ranges of members: the calling thread's first (all of them
        when it runs alone), the rest split evenly (some may be empty)."""
        first = b // n + self.lead
        return [0] + [first + (b - first) * k // (n - 1) for k in range(n)]

    def shared(self, b: int, n: int, per_member: float, waited: float) -> None:
        """After a call the helpers shared; times in seconds."""
        if waited > per_member:
            self.lead += 1
            if b // n + self.lead == b:  # alone from the next call
                self.patience = min(2 * self.patience, _MAX_PATIENCE)
                self.calls_alone = 0
        elif waited < per_member / 4 and b // n + self.lead > 1:
            self.lead -= 1
            self.patience = max(1, self.patience // 2)

    def alone(self) -> None:
        """After a call the calling thread ran alone."""
        self.calls_alone += 1
        if self.calls_alone >= self.patience:
            self.lead -= 1


_MAX_PATIENCE = 1024  # calls alone between tries of late helpers: a try costs at most one late helper
_balances: dict[tuple[int, int], _Balance] = {}  # (B, threads) -> its balance


def _np(t: torch.Tensor | np.ndarray) -> np.ndarray:
    """C-contiguous numpy view (a copy only if ``t`` is not contiguous): one
    compiled specialization per dtype, and contiguous rows for the vector loops."""
    if isinstance(t, np.ndarray):
        return t if t.flags.c_contiguous else np.ascontiguousarray(t)
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
def _span(lo, hi, weight, bias, m, scope_all, inputs, targets, h0, v, loss, g_w, g_b, g_m, h_last,
          n_hid):  # pragma: no cover - compiled  # fmt: skip
    """Members lo..hi-1, on the calling thread, without the GIL."""
    h = weight.shape[1] - 2 * v
    hp = -(-max(h, 1) // _LANES) * _LANES  # the largest member's Hp
    n_rows = 2 * inputs.shape[1] + 1 + 2 * v + 2  # states, d_out, Why, d Why, m, mu
    # flat buffers shared by the range's members, cut to each member's own Hp
    block_buf = np.empty(3 * hp * hp, dtype=weight.dtype)  # Whh, Whh^T, d Whh
    row_buf = np.empty(n_rows * hp, dtype=weight.dtype)
    for b in range(lo, hi):
        hb = min(n_hid[b], h)
        hpb = -(-max(hb, 1) // _LANES) * _LANES  # hidden vectors and blocks padded with zeros to Hp_b
        blocks = block_buf[: 3 * hpb * hpb].reshape((3, hpb, hpb))
        rows = row_buf[: n_rows * hpb].reshape((n_rows, hpb))
        blocks[:] = 0  # the padding stays zero throughout: tanh(0) = 0, and the weights and factors there are 0
        rows[:] = 0
        _member(b, hb, weight, bias, m, scope_all, inputs, targets, h0, v, loss, g_w, g_b, g_m, h_last, blocks, rows)


@numba.njit(**_JIT)
def _member(b, h, weight, bias, m, scope_all, inputs, targets, h0, v, loss, g_w, g_b, g_m, h_last,
            blocks, rows):  # pragma: no cover - compiled  # fmt: skip
    """Member b's window over its first h hidden slots: forward, readout, backward;
    writes its loss, gradient blocks and last state (zero beyond h). ``blocks`` and
    ``rows``: :func:`_span`'s buffers, zeroed."""
    w, x, y = weight[b], inputs[b], targets[b]  # (N, N), (T,), (T,)
    steps = x.shape[0]
    hid, out, cap = slice(2 * v, 2 * v + h), slice(v, 2 * v), slice(2 * v, w.shape[0])
    whh, whh_t, g_hh = blocks[0], blocks[1], blocks[2]  # (Hp, Hp) each
    states, d_out = rows[: steps + 1], rows[steps + 1 : 2 * steps + 1]  # h_t at row t + 1, h0 at row 0; dloss/dh_t
    why, g_why = rows[2 * steps + 1 : 2 * steps + 1 + v], rows[2 * steps + 1 + v : 2 * steps + 1 + 2 * v]  # (V, Hp)
    m_b, mu = rows[-2], rows[-1]  # readout multipliers, what the recurrence reads through
    whh[:h, :h] = w[hid, hid]
    whh_t[:h, :h] = w[hid, hid].T
    why[:, :h] = w[out, hid]
    m_b[:h] = m[b, :h]
    if scope_all[b]:
        mu[:h] = m[b, :h]
    else:
        mu[:h] = 1.0
    states[0, :h] = h0[b, :h]
    _forward(w[hid, :v], bias[b, hid], x, whh_t, mu, states)
    h_last[b] = 0
    h_last[b, :h] = states[steps, :h]

    g_b[b] = 0
    g_m[b] = 0
    loss[b] = _readout(why, bias[b, out], m_b, y, states, d_out, g_why, g_b[b, out], g_m[b, hid])
    g_w[b, out, cap] = 0
    g_w[b, out, hid] = g_why[:, :h]

    g_w[b, cap, :v] = 0
    g_w[b, cap, cap] = 0
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
