"""What follows a char-RNN batch's BPTT, as one compiled pass over its padded tensors.

After the gradients, every cycle does, for each of B members (layout
``[inputs V | outputs V | hidden slots]`` of :mod:`neurograph.charrnn.bptt`):

1. the penalty's gradient term, ``g += scale_b * sign(p)`` on its targets
   (the outgoing weights ``weight[:, V:, 2V:]`` or the hidden multipliers);
2. the optimizer's update of weights, biases and (when trained) multipliers,
   gated by the connection mask or the living neurons (Adagrad with its
   gradient clip, RMSProp with its update clip, Adam with bias correction);
3. the post-update L1 step ``p -= l1_b * sign(p)`` and the multipliers' floor;
4. each hidden slot's threshold score (its multiplier, or its outgoing L1 norm).

Written as torch operations (:class:`neurograph.charrnn.penalties.BatchedPenalty`
and :mod:`neurograph.optim`, the reference, and the path on other devices)
that is about 40 small operations per cycle, whose dispatch cost more than a
single run's whole BPTT. Here it is one call on numpy views of the tensors.
Every formula is the torch path's, element by element and in the tensors'
dtype (constants are cast to it first, as torch casts Python scalars); only
the scores' sums run in another order, so scores agree to rounding.
"""

from __future__ import annotations

import numpy as np

from neurograph.kernels.jit import numba

__all__ = ["OPTIMIZERS", "PENALTIES", "CompiledUpdate", "update_batch"]

OPTIMIZERS = {"adagrad": 0, "rmsprop": 1, "adam": 2}
PENALTIES = {"none": 0, "multipliers": 1, "outgoing_l1": 2}
_JIT = dict(cache=True, nogil=True, error_model="numpy")  # no fastmath: the torch path's roundings
_EMPTY = {}


def update_batch(params: dict, grads: dict, masks: dict, memories: dict, optimizer: dict, penalty: dict,
                 scores: np.ndarray) -> None:  # fmt: skip
    """One cycle's update of a batch, in place; fills ``scores`` (B, Hc) float64.

    params / grads / masks: ``weight`` (B, N, N), ``bias`` (B, N), ``multiplier``
    (B, N) numpy arrays (grads["multiplier"] present only when multipliers train).
    memories: ``{param: (first, second)}`` optimizer memories shaped like the
    parameter (Adagrad/RMSProp: ``sq``, and an unused second; Adam: ``m``, ``v``).
    optimizer: ``kind`` (a key of :data:`OPTIMIZERS`), ``lr``, ``decay``,
    ``update_clip``, ``grad_clip`` (None: off), ``beta1``, ``beta2``, ``eps``,
    ``step`` (Adam's t, counted from 1). penalty: ``kind`` (a key of
    :data:`PENALTIES`), (B,) arrays ``grad_scale``, ``after_l1``, ``m_min``,
    ``text_norm`` (bool) and ``n_hidden``.
    """
    CompiledUpdate(params, grads, masks, memories, optimizer, penalty, scores)(optimizer.get("step", 1))


class CompiledUpdate:
    """:func:`update_batch`'s arguments bound once, for the cycles until the arrays change.

    A trainer keeps one while its padded tensors keep their memory: binding the
    arguments (dictionaries, views, casts) costs several times the update itself
    for a single small network. The (B,) penalty arrays are read when called, so
    changes made to them in place (sizes after a structural edit) are seen.
    """

    def __init__(self, params: dict, grads: dict, masks: dict, memories: dict, optimizer: dict, penalty: dict,
                 scores: np.ndarray) -> None:  # fmt: skip
        w = params["weight"]
        self.kind = OPTIMIZERS[optimizer["kind"]]
        self.b1, self.b2 = optimizer.get("beta1", 0.9), optimizer.get("beta2", 0.999)
        clip, uclip = optimizer.get("grad_clip"), optimizer.get("update_clip")
        self.consts = np.array(
            [
                optimizer["lr"], optimizer.get("decay", 0.0), np.inf if uclip is None else uclip,
                np.inf if clip is None else clip, self.b1, self.b2, optimizer.get("eps", 1e-8),
                1.0, 1.0, 1e-8, 0.5, 2.0, 1 - self.b1, 1 - self.b2,
            ],
            dtype=w.dtype,
        )  # fmt: skip
        train_m = "multiplier" in grads
        gm = grads["multiplier"] if train_m else params["multiplier"]
        mems = [memories.get(k, (None, None)) for k in ("weight", "bias", "multiplier")]
        mems = [(_or(a, p), _or(b, p)) for (a, b), p in zip(mems, (w, params["bias"], params["multiplier"]))]
        for key in ("grad_scale", "after_l1", "m_min", "n_hidden"):
            if penalty[key].dtype != w.dtype:
                raise ValueError(f"penalty {key}: dtype {penalty[key].dtype} differs from the weights' {w.dtype}")
        self.args = (
            w, params["bias"], params["multiplier"], grads["weight"], grads["bias"], gm,
            masks["weight"], masks["bias"], mems[0][0], mems[0][1], mems[1][0], mems[1][1], mems[2][0], mems[2][1],
            self.kind, clip is not None, uclip is not None, train_m, PENALTIES[penalty["kind"]], self.consts,
            penalty["grad_scale"], penalty["after_l1"], penalty["m_min"], penalty["n_hidden"],
            penalty["text_norm"].astype(np.bool_, copy=False), scores, w.dtype.type(0),
        )  # fmt: skip

    def __call__(self, step: int) -> None:
        """One update; ``step`` is the optimizer's step count after this one (Adam's t)."""
        if self.kind == OPTIMIZERS["adam"]:
            t = max(1, step)
            self.consts[7], self.consts[8] = 1 - self.b1**t, 1 - self.b2**t
        _update(*self.args)


def _or(a, like):
    return like[:0] if a is None else a  # an empty stand-in the kernel never reads


@numba.njit(**_JIT)
def _step(kind, g, s1, s2, c, has_uclip):  # pragma: no cover - compiled
    """(delta, new first memory, new second memory) for one element."""
    lr, decay, uclip, b1, b2, eps, bc1, bc2, tiny = c[0], c[1], c[2], c[4], c[5], c[6], c[7], c[8], c[9]
    if kind == 0:  # Adagrad: mem += g^2
        s1 = s1 + g * g
        return (-lr * g) / np.sqrt(s1 + tiny), s1, s2
    if kind == 1:  # RMSProp: mem += decay (g^2 - mem), update clipped
        s1 = s1 + (g * g - s1) * decay
        d = (-lr * g) / np.sqrt(s1 + tiny)
        if has_uclip:
            d = min(max(d, -uclip), uclip)
        return d, s1, s2
    s1 = s1 * b1 + c[12] * g  # Adam: first and second moments, bias-corrected
    s2 = s2 * b2 + c[13] * g * g
    return (-lr * (s1 / bc1)) / (np.sqrt(s2 / bc2) + eps), s1, s2


@numba.njit(**_JIT)
def _element(kind, p, g, s1, s2, gate, target, gs, al, c, has_clip, has_uclip):  # pragma: no cover - compiled
    """One parameter's update: (new value, new first memory, new second memory). ``target``:
    the penalty applies (``g += gs sign(p)`` before, ``p -= al sign(p)`` after); ``gate``:
    the mask or the living neuron, 0 keeps the value."""
    if target:
        g = g + np.sign(p) * gs
    if has_clip:
        g = min(max(g, -c[3]), c[3])
    d, s1, s2 = _step(kind, g, s1, s2, c, has_uclip)
    p = p + d * gate
    if target:
        p = p - np.sign(p) * al
    return p, s1, s2


@numba.njit(**_JIT)
def _update(w, bias, mult, gw, gb, gm, mask, alive, mw1, mw2, mb1, mb2, mm1, mm2, kind, has_clip, has_uclip,
            train_m, pen, c, grad_scale, after_l1, m_min, n_hidden, text_norm, scores, zero):  # pragma: no cover
    n_members, n = w.shape[0], w.shape[1]
    hc = scores.shape[1]
    v = (n - hc) // 2
    for b in range(n_members):
        gs, al = grad_scale[b], after_l1[b]
        for r in range(n):
            for col in range(n):
                target = pen == 2 and r >= v and col >= 2 * v  # outgoing weights of hidden neurons
                s2 = mw2[b, r, col] if kind == 2 else zero
                w[b, r, col], mw1[b, r, col], s2 = _element(
                    kind, w[b, r, col], gw[b, r, col], mw1[b, r, col], s2, mask[b, r, col], target, gs, al, c,
                    has_clip, has_uclip,
                )  # fmt: skip
                if kind == 2:
                    mw2[b, r, col] = s2
        for r in range(n):
            s2 = mb2[b, r] if kind == 2 else zero
            bias[b, r], mb1[b, r], s2 = _element(
                kind, bias[b, r], gb[b, r], mb1[b, r], s2, alive[b, r], False, gs, al, c, has_clip, has_uclip
            )
            if kind == 2:
                mb2[b, r] = s2
        if train_m:
            for r in range(n):
                target = pen == 1 and r >= 2 * v  # hidden multipliers
                s2 = mm2[b, r] if kind == 2 else zero
                mult[b, r], mm1[b, r], s2 = _element(
                    kind, mult[b, r], gm[b, r], mm1[b, r], s2, alive[b, r], target, gs, al, c, has_clip, has_uclip
                )
                if kind == 2:
                    mm2[b, r] = s2
        if pen == 1:  # the multipliers' floor, on living hidden neurons
            for j in range(2 * v, n):
                if alive[b, j] > 0:
                    mult[b, j] = max(mult[b, j], m_min[b])
        _scores(b, w, mult, v, pen, c, n_hidden[b], text_norm[b], scores, zero)


@numba.njit(**_JIT)
def _scores(b, w, mult, v, pen, c, n_hidden, text, scores, zero):  # pragma: no cover - compiled
    hc = scores.shape[1]
    for j in range(hc):
        col = 2 * v + j
        if pen == 1:
            scores[b, j] = mult[b, col]
        elif pen == 2:
            out = zero
            for r in range(v, 2 * v):
                out += abs(w[b, r, col])
            rec = zero
            for r in range(2 * v, 2 * v + hc):
                rec += abs(w[b, r, col])
            scores[b, j] = out + rec if text else c[10] * out + c[11] * rec / n_hidden
        else:
            scores[b, j] = np.inf
