"""Tests for neurograph.kernels.charrnn_bptt: the compiled batched BPTT against the torch
kernel of neurograph.charrnn.bptt, against autograd of a plain per-member loop,
and its tanh against libm's."""

from __future__ import annotations

import numba
import numpy as np
import pytest
import torch

from neurograph.charrnn.trainer import Trainer
from neurograph.charrnn.bptt import batched_bptt, mixed_scope, pick_kernel
from neurograph.kernels.charrnn_bptt import _tanh

from test_batched import MULT, V, autograd_window, padded_batch, scenario

torch.set_num_threads(1)

F32, F64 = torch.float32, torch.float64
SCOPES = {"readout": ["readout"] * 3, "all": ["all"] * 3, "mixed": ["all", "readout", "all"]}


@numba.njit
def tanh_of(x, out):
    for i in range(x.size):
        out[i] = _tanh(x[i])


def ulps(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """|got - exact| in units of got's dtype's spacing at exact."""
    spacing = np.spacing(np.abs(exact).astype(got.dtype)).astype(np.float64)
    return np.abs(got.astype(np.float64) - exact) / spacing


@pytest.mark.parametrize("dtype, bound", [(np.float64, 6.0), (np.float32, 5.0)])
def test_tanh_is_within_its_ulps_and_exact_where_tanh_is(dtype, bound):
    tiny = np.logspace(-300, 0, 3001)
    xs = np.concatenate([np.linspace(-25.0, 25.0, 400_001), tiny, -tiny]).astype(dtype)
    out = np.empty_like(xs)
    tanh_of(xs, out)
    normal = np.abs(xs) >= 64 * np.finfo(dtype).tiny  # below, the series' terms are subnormal
    assert ulps(out, np.tanh(xs.astype(np.float64)))[normal].max() <= bound
    np.testing.assert_allclose(out[~normal], xs[~normal], rtol=0, atol=64 * np.finfo(dtype).tiny)
    ends = np.array([0.0, -0.0, 40.0, -40.0, np.inf, -np.inf, np.nan], dtype=dtype)
    got = np.empty_like(ends)
    tanh_of(ends, got)
    assert got[:-1].tolist() == [0.0, -0.0, 1.0, -1.0, 1.0, -1.0] and np.signbit(got[1]) and np.isnan(got[-1])


def both_kernels(batch, scopes, multipliers: bool = True, threads=None):
    weight, bias, mult, inputs, targets, h0 = batch
    mult = mult if multipliers else None
    kw = dict(n_chars=V, scope_all=mixed_scope(scopes))
    results = []
    for kernel in ("torch", "numba"):
        r = batched_bptt(weight, bias, mult, inputs, targets, h0, kernel=kernel, threads=threads, **kw)
        results.append({"loss": r.loss, "h_last": r.h_last} | {k: v.clone() for k, v in r.as_dict().items()})
    return results


@pytest.mark.parametrize("dtype, tol", [(F64, 1e-12), (F32, 2e-5)])
@pytest.mark.parametrize("scopes", SCOPES.values(), ids=SCOPES.keys())
@pytest.mark.parametrize("multipliers", [True, False], ids=["multipliers", "unit"])
@pytest.mark.parametrize("b, h, steps", [(3, 5, 7), (1, 2, 1), (2, 17, 40), (3, 33, 12)])
def test_numba_kernel_equals_the_torch_kernel(dtype, tol, scopes, multipliers, b, h, steps):
    weight, *rest = padded_batch(b + h + steps, b=max(b, 3), h=h, steps=steps, dtype=dtype)
    # a contracting recurrence: random nets this wide are chaotic over 40 steps, their
    # rounding differences grow a thousandfold, and float32 results of either kernel are off
    batch = tuple(t[:b] for t in (weight * 0.3, *rest))  # padded_batch empties slots in members 0 and 2
    reference, got = both_kernels(batch, scopes[:b], multipliers)
    keys = {"loss", "h_last", "weight", "bias"} | ({"multiplier"} if multipliers else set())
    assert set(got) == set(reference) == keys
    for key, want in reference.items():
        torch.testing.assert_close(got[key], want, rtol=tol, atol=tol * want.abs().max().item(), msg=key)


@pytest.mark.parametrize("scopes", SCOPES.values(), ids=SCOPES.keys())
def test_numba_kernel_matches_autograd(scopes):
    batch = padded_batch(5, h=9, steps=11)
    result = batched_bptt(*batch, n_chars=V, scope_all=mixed_scope(scopes), kernel="numba")
    loss, g_w, g_b, g_m = autograd_window(*batch, scopes)
    for got, want in ((result.loss, loss), (result.weight, g_w), (result.bias, g_b), (result.multiplier, g_m)):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_padding_stays_zero_and_blocks_outside_are_not_written():
    weight, bias, mult, inputs, targets, h0 = padded_batch(6, h=6, steps=9)
    empty = 2 * V + 1  # member 0's empty slot (padded_batch)
    result = batched_bptt(weight, bias, mult, inputs, targets, h0, n_chars=V, scope_all=mixed_scope(["all"] * 3),
                          kernel="numba")  # fmt: skip
    assert result.h_last[0, 1] == 0
    assert not result.weight[0, empty].any() and not result.weight[0, :, empty].any()
    assert result.bias[0, empty] == 0 and result.multiplier[0, empty] == 0
    outside = torch.ones_like(result.weight, dtype=torch.bool)
    hid, out = slice(2 * V, None), slice(V, 2 * V)
    outside[:, hid, :V] = outside[:, hid, hid] = outside[:, out, hid] = False
    assert not result.weight[outside].any()
    assert not result.bias[:, :V].any()


def test_threads_and_strided_inputs_do_not_change_the_results():
    weight, bias, mult, inputs, targets, h0 = padded_batch(7, b=5, h=12, steps=20)
    chars = torch.cat([inputs, targets[:, -1:]], 1)  # (B, T + 1): the trainer's strided views
    kw = dict(n_chars=V, scope_all=mixed_scope(["all", "readout"] * 2 + ["all"]), kernel="numba")
    one = batched_bptt(weight, bias, mult, inputs, targets, h0, threads=1, **kw)
    one = {"loss": one.loss, "h": one.h_last} | {k: v.clone() for k, v in one.as_dict().items()}
    wide_h0 = torch.cat([h0, h0], 1)[:, : h0.shape[1]]  # a non-contiguous (B, Hc) view
    two = batched_bptt(weight, bias, mult, chars[:, :-1], torch.cat([targets, targets], 1)[:, : inputs.shape[1]],
                       wide_h0, threads=2, **kw)  # fmt: skip
    two = {"loss": two.loss, "h": two.h_last} | two.as_dict()
    for key, value in one.items():
        assert torch.equal(value, two[key]), key  # each member is computed by the same code on one thread


def test_kernel_choice():
    assert pick_kernel(None, torch.device("cpu")) == "numba"
    assert pick_kernel(None, torch.device("cuda")) == "torch"
    assert pick_kernel("torch", torch.device("cpu")) == "torch"
    with pytest.raises(ValueError, match="one of"):
        pick_kernel("numpy", torch.device("cpu"))
    with pytest.raises(ValueError, match="CPU tensors only"):
        pick_kernel("numba", torch.device("cuda"))


def test_trainer_kernels_agree_and_torch_threads_are_restored():
    scenarios = [scenario(MULT | {"scope": s}, {"kind": "adagrad"}, seed=i, cycles=50) for i, s in
                 enumerate(["readout", "all", "readout"])]  # fmt: skip
    fast, reference = Trainer(scenarios, kernel="numba"), Trainer(scenarios, kernel="torch")
    torch.set_num_threads(2)
    try:
        for _ in range(50):
            np.testing.assert_allclose(fast.step(), reference.step(), rtol=1e-10)
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
    events = [[[e.to_dict() for e in m.graph.events] for m in t.members] for t in (fast, reference)]
    assert events[0] == events[1] and any(events[0])
