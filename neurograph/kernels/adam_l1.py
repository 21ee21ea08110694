"""One-pass CPU kernels for optimizer updates of large parameter matrices.

At S = 5,000 a URN's W holds 25 million weights; an Adam step written as
torch operations walks them a dozen times (the L1 subgradient, both moments,
their bias corrections, the square root, the quotient, the mask) and each
walk is a 100 MB temporary. :func:`adam_l1` does the whole update in one
pass over flat numpy views of the tensors, compiled by numba (parallel for
large tensors, on the calling thread for small ones, such as a layered
network's blocks):

    g  = grad + coef * sign(w)                     (L1 subgradient, sign(0) = 0)
    m  = b1 m + (1 - b1) g
    v  = b2 v + (1 - b2) g^2
    w -= mask * (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)

and returns ``sum coef |w|`` of the weights it read, which is
:class:`neurograph.optim.Adam`'s update to rounding (the bias
corrections are applied to the step size, as in Kingma and Ba's Algorithm 1,
instead of to the moments). Memories are updated where the mask is off too,
as the torch path does. The kernel uses as many threads as torch is allowed
(``torch.get_num_threads()``; :mod:`neurograph.kernels.jit`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from neurograph.kernels.jit import numba, use_torch_threads

__all__ = ["fused_available", "adam_l1"]


def fused_available(*tensors: torch.Tensor | None) -> bool:
    """True when every tensor given is a contiguous CPU float32/float64 tensor of one dtype."""
    given = [t for t in tensors if t is not None]
    dtype = given[0].dtype
    return all(
        t.device.type == "cpu" and t.is_contiguous() and t.dtype == dtype and t.dtype in (torch.float32, torch.float64)
        for t in given
    )


PARALLEL_MIN = 1 << 16  # entries below which waking helper threads costs more than the pass (~100 us)


def _adam_l1_pass(w, g, m, v, coef, per_entry, coef_scalar, mask, masked, lr1, b1, b2, eps, inv_sqrt_bc2):  # pragma: no cover
    one = w.dtype.type(1.0)
    penalty = 0.0
    for i in numba.prange(w.size):
        wi = w[i]
        c = coef[i] if per_entry else coef_scalar
        penalty += c * abs(wi)
        gi = g[i] + c * ((wi > 0) - (wi < 0))
        mi = b1 * m[i] + (one - b1) * gi
        vi = b2 * v[i] + (one - b2) * gi * gi
        m[i] = mi
        v[i] = vi
        if masked and mask[i] == 0:
            continue
        w[i] = wi - lr1 * mi / (math.sqrt(vi) * inv_sqrt_bc2 + eps)
    return penalty


# one pass, compiled twice: across threads for large matrices, on the calling thread for small ones;
# numpy's error model: a division by zero gives inf or NaN, as torch's, rather than raising
_adam_l1 = numba.njit(parallel=True, fastmath=True, nogil=True, cache=True, error_model="numpy")(_adam_l1_pass)
_adam_l1_serial = numba.njit(fastmath=True, nogil=True, cache=True, error_model="numpy")(_adam_l1_pass)


def adam_l1(
    param: torch.Tensor,
    grad: torch.Tensor,
    m: torch.Tensor,
    v: torch.Tensor,
    *,
    coef: torch.Tensor | float,
    mask: torch.Tensor | None,
    lr: float,
    betas: tuple[float, float],
    eps: float,
    step: int,
) -> float:
    """Adam step with an L1 subgradient, in place on ``param``, ``m``, ``v`` (CPU, contiguous).

    Returns the L1 penalty ``sum coef |param|`` of the parameter before the step
    (read in the same pass).

    ``coef``: one L1 strength, or a tensor shaped like ``param``; ``mask``: tensor
    shaped like ``param`` (0 = frozen) or None; ``step``: the step count t >= 1.
    """
    kernel = _adam_l1 if param.numel() >= PARALLEL_MIN else _adam_l1_serial
    if kernel is _adam_l1:
        use_torch_threads()
    dt = param.numpy().dtype.type
    b1, b2 = betas
    flat = lambda t: t.detach().numpy().reshape(-1)  # noqa: E731  (views, no copies)
    per_entry = isinstance(coef, torch.Tensor)
    coef_arr = flat(coef.to(param.dtype)) if per_entry else np.zeros(1, dtype=dt)
    mask_arr = flat(mask.to(param.dtype)) if mask is not None else np.ones(1, dtype=dt)
    return kernel(
        flat(param), flat(grad), flat(m), flat(v), coef_arr, per_entry,
        dt(0.0 if per_entry else coef), mask_arr, mask is not None,
        dt(lr / (1 - b1**step)), dt(b1), dt(b2), dt(eps), dt(1 / math.sqrt(1 - b2**step)),
    )  # fmt: skip
