"""Tests for neurograph.charrnn.bptt on graphs: both kernels, a batch of one and a padded
batch, against a naive neuron-by-neuron walk of each graph, finite differences and
plain autograd (tests/reference.py).

A batch of several members puts each member's hidden neurons in every other slot
(the slots between stay empty, as after deletions), gives members different sizes
and mixes the multiplier scopes: member 1 reads the other scope than members 0 and 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from neurograph.charrnn.bptt import KERNELS, batched_bptt, batched_logits, mixed_scope
from neurograph.compile import Compiled, compile_graph, write_back
from neurograph.graph import Graph
from neurograph.optim import Adagrad
from reference import autograd_window, char_graph, naive_loss, naive_run, plain_logits

torch.set_num_threads(1)

F64 = torch.float64
SCOPES = ("readout", "all")
SIZES = (1, 3)


@dataclass
class Batch:
    """Graphs compiled into padded batch tensors, with a window and start states for each."""

    graphs: list[Graph]
    compiled: list[Compiled]
    positions: list[torch.Tensor]  # member b's compiled order -> its positions in the padded tensors
    scopes: list[str]
    weight: torch.Tensor  # (B, N, N)
    mask: torch.Tensor  # (B, N, N)
    bias: torch.Tensor  # (B, N)
    mult: torch.Tensor  # (B, N)
    inputs: torch.Tensor  # (B, T)
    targets: torch.Tensor  # (B, T)
    h0: torch.Tensor  # (B, Hc), zero in empty slots
    n_chars: int

    @property
    def scope_all(self) -> torch.Tensor | None:
        return mixed_scope(self.scopes)

    def slots(self, b: int) -> torch.Tensor:
        """Member b's hidden slots, its hidden neurons in id order."""
        return self.positions[b][2 * self.n_chars :] - 2 * self.n_chars

    def empty(self, b: int) -> torch.Tensor:
        """(Hc,) True at member b's empty slots."""
        free = torch.ones(self.h0.shape[1], dtype=torch.bool)
        free[self.slots(b)] = False
        return free

    def naive(self, b: int, inputs: torch.Tensor | None = None, h0: torch.Tensor | None = None):
        """:func:`naive_run` of member b's graph over its window (or ``inputs`` from ``h0``)."""
        inputs = self.inputs[b] if inputs is None else inputs
        h0 = self.h0[b] if h0 is None else h0
        start = dict(zip(self.compiled[b].hidden_ids, h0[self.slots(b)].tolist()))
        return naive_run(self.graphs[b], inputs.tolist(), start, self.scopes[b])

    def bptt(self, kernel: str, **kw):
        return batched_bptt(self.weight, self.bias, self.mult, self.inputs, self.targets, self.h0,
                            n_chars=self.n_chars, scope_all=self.scope_all, kernel=kernel, **kw)  # fmt: skip

    def write_back(self) -> None:
        """Copy the padded tensors' values into the graphs."""
        for b, (g, c, pos) in enumerate(zip(self.graphs, self.compiled, self.positions)):
            c.weight.copy_(self.weight[b][pos][:, pos])
            c.bias.copy_(self.bias[b, pos])
            c.multiplier.copy_(self.mult[b, pos])
            write_back(c, g)


def make_batch(
    seed: int, size: int, scope: str, *, vocab: int = 3, hidden: int = 4, steps: int = 9, density: float = 0.7,
    std: float = 0.6, dtype=F64,
) -> Batch:  # fmt: skip
    """``size`` graphs of ``hidden``, ``hidden + 1``, ... neurons; spread over every other slot when size > 1."""
    other = {"readout": "all", "all": "readout"}[scope]
    scopes = [scope if b % 2 == 0 else other for b in range(size)]
    graphs = [char_graph(seed + 10 * b, vocab=vocab, hidden=hidden + b, density=density, std=std) for b in range(size)]
    compiled = [compile_graph(g, dtype=dtype) for g in graphs]
    spread = 1 if size == 1 else 2
    v, capacity = vocab, spread * (hidden + size - 1)
    n = 2 * v + capacity
    weight, mask = torch.zeros(size, n, n, dtype=dtype), torch.zeros(size, n, n, dtype=dtype)
    bias, mult, h0 = (torch.zeros(size, n, dtype=dtype) for _ in range(3))
    rng = np.random.default_rng(seed + 1000)
    positions = []
    for b, c in enumerate(compiled):
        pos = torch.tensor(list(range(2 * v)) + [2 * v + spread * k for k in range(c.n_hidden)])
        square = (b, pos.unsqueeze(1), pos.unsqueeze(0))
        weight[square], mask[square] = c.weight, c.mask
        bias[b, pos], mult[b, pos] = c.bias, c.multiplier
        h0[b, pos[2 * v :]] = torch.from_numpy(rng.uniform(-0.8, 0.8, size=c.n_hidden)).to(dtype)
        positions.append(pos)
    chars = torch.from_numpy(rng.integers(0, vocab, size=(size, steps + 1)))
    return Batch(graphs, compiled, positions, scopes, weight, mask, bias, mult, chars[:, :-1], chars[:, 1:],
                 h0[:, 2 * v :].clone(), vocab)  # fmt: skip


@pytest.fixture(params=[0, 1])
def seed(request) -> int:
    return request.param


@pytest.fixture(params=SCOPES)
def scope(request) -> str:
    return request.param


@pytest.fixture(params=SIZES, ids=[f"B{b}" for b in SIZES])
def size(request) -> int:
    return request.param


@pytest.fixture(params=KERNELS)
def kernel(request) -> str:
    return request.param


# ------------------------------------------------------------- naive graph walk
def test_logits_equal_naive_walk_over_incoming(seed, scope, size):
    batch = make_batch(seed, size, scope)
    logits, h_last = batched_logits(batch.weight, batch.bias, batch.mult, batch.inputs, batch.h0,
                                    n_chars=batch.n_chars, scope_all=batch.scope_all)  # fmt: skip
    assert logits.shape == (size, batch.n_chars, batch.inputs.shape[1])
    for b in range(size):
        states, expected = batch.naive(b)
        torch.testing.assert_close(logits[b].t(), torch.tensor(expected, dtype=F64), rtol=1e-12, atol=1e-12)
        last = torch.tensor([states[-1][i] for i in batch.compiled[b].hidden_ids], dtype=F64)
        torch.testing.assert_close(h_last[b, batch.slots(b)], last)
        assert not h_last[b, batch.empty(b)].any()


def test_bptt_loss_and_h_last_equal_naive_walk(seed, scope, size, kernel):
    batch = make_batch(seed, size, scope)
    result = batch.bptt(kernel)
    for b in range(size):
        states, logits = batch.naive(b)
        assert result.loss[b].item() == pytest.approx(naive_loss(logits, batch.targets[b].tolist()), rel=1e-12)
        last = torch.tensor([states[-1][i] for i in batch.compiled[b].hidden_ids], dtype=F64)
        torch.testing.assert_close(result.h_last[b, batch.slots(b)], last)
        assert not result.h_last[b, batch.empty(b)].any()


def test_scopes_differ_with_non_unit_multipliers(seed):
    batch = make_batch(seed, 1, "readout", steps=6)
    args = (batch.weight, batch.bias, batch.mult, batch.inputs, batch.h0)
    readout, _ = batched_logits(*args, n_chars=batch.n_chars, scope_all=mixed_scope(["readout"]))
    every, _ = batched_logits(*args, n_chars=batch.n_chars, scope_all=mixed_scope(["all"]))
    assert not torch.allclose(readout, every)


# ------------------------------------------------------------ finite differences
def fd_entries(batch: Batch, b: int) -> list[tuple[str, tuple]]:
    """(tensor, index) of every parameter member b's loss depends on: present weights
    of the three blocks, output and hidden biases, hidden multipliers."""
    v, pos = batch.n_chars, batch.positions[b]
    hid, out = pos[2 * v :].tolist(), list(range(v, 2 * v))
    rows_sources = [(t, s) for t in hid for s in list(range(v)) + hid] + [(o, s) for o in out for s in hid]
    entries = [("weight", (b, t, s)) for t, s in rows_sources if batch.mask[b, t, s] > 0]
    entries += [("bias", (b, k)) for k in out + hid]
    return entries + [("mult", (b, k)) for k in hid]


def member_loss(batch: Batch, b: int) -> float:
    """Member b's summed window loss from :func:`plain_logits` (not from the kernels)."""
    logits, _ = plain_logits(batch.weight[b], batch.bias[b], batch.mult[b], batch.inputs[b], batch.h0[b],
                             n_chars=batch.n_chars, scope=batch.scopes[b])  # fmt: skip
    return torch.nn.functional.cross_entropy(logits, batch.targets[b], reduction="sum").item()


def test_bptt_matches_central_finite_differences(seed, scope, size, kernel):
    batch = make_batch(seed, size, scope, steps=7)
    result = batch.bptt(kernel)
    grads = {"weight": result.weight, "bias": result.bias, "mult": result.multiplier}
    eps = 1e-5
    for b in range(size):
        entries = fd_entries(batch, b)
        hid = batch.positions[b][2 * batch.n_chars :]
        assert len(entries) > 20 and (batch.mask[b][hid][:, hid] == 0).any()  # partially masked
        numeric, analytic = [], []
        for name, ix in entries:
            p = getattr(batch, name)
            old = p[ix].item()
            p[ix] = old + eps
            up = member_loss(batch, b)
            p[ix] = old - eps
            down = member_loss(batch, b)
            p[ix] = old
            numeric.append((up - down) / (2 * eps))
            analytic.append(grads[name][ix].item())
        numeric, analytic = torch.tensor(numeric, dtype=F64), torch.tensor(analytic, dtype=F64)
        assert analytic.abs().max() > 1e-2  # the check is not vacuous
        torch.testing.assert_close(analytic, numeric, rtol=1e-6, atol=1e-9)


def test_bptt_gradient_is_zero_where_the_loss_does_not_depend(seed, scope, size, kernel):
    batch = make_batch(seed, size, scope, steps=7)
    result = batch.bptt(kernel)
    v = batch.n_chars
    for b in range(size):
        hid, out = batch.positions[b][2 * v :], torch.arange(v, 2 * v)
        used = torch.zeros_like(batch.weight[b], dtype=torch.bool)
        used[hid.unsqueeze(1), torch.cat([torch.arange(v), hid]).unsqueeze(0)] = True
        used[out.unsqueeze(1), hid.unsqueeze(0)] = True
        assert (result.weight[b][~used] == 0).all()
        depends = torch.zeros(batch.bias.shape[1], dtype=torch.bool)
        depends[torch.cat([out, hid])] = True
        assert (result.bias[b][~depends] == 0).all()
        depends[out] = False
        assert (result.multiplier[b][~depends] == 0).all()


def test_absent_connections_stay_absent_through_masked_updates(seed, scope, size, kernel):
    """The gradient at an absent connection may be nonzero; the optimizer's mask discards it."""
    batch = make_batch(seed, size, scope, steps=8)
    absent = batch.mask == 0
    opt = Adagrad(lr=0.1, grad_clip=5.0)
    params = {"weight": batch.weight, "bias": batch.bias, "multiplier": batch.mult}
    saw_nonzero = False
    for _ in range(3):
        grads = {k: t.clone() for k, t in batch.bptt(kernel).as_dict().items()}
        saw_nonzero |= bool((grads["weight"][absent] != 0).any())
        opt.step(params, grads, {"weight": batch.mask})
    assert saw_nonzero
    assert (batch.weight[absent] == 0).all()
    batch.write_back()  # the trained networks are still the graphs' networks
    logits, _ = batched_logits(batch.weight, batch.bias, batch.mult, batch.inputs, batch.h0,
                               n_chars=batch.n_chars, scope_all=batch.scope_all)  # fmt: skip
    for b in range(size):
        _, expected = batch.naive(b)
        torch.testing.assert_close(logits[b].t(), torch.tensor(expected, dtype=F64), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ autograd
@pytest.mark.parametrize(
    "vocab, hidden, steps, density",
    [(2, 1, 1, 1.0), (3, 5, 10, 0.6), (4, 12, 40, 0.8), (6, 30, 25, 0.3)],
)
def test_bptt_matches_autograd(vocab, hidden, steps, density, scope, size, kernel):
    batch = make_batch(vocab * 100 + hidden, size, scope, vocab=vocab, hidden=hidden, steps=steps, density=density,
                       std=0.4)  # fmt: skip
    result = batch.bptt(kernel)
    loss, gw, gb, gm = autograd_window(batch.weight, batch.bias, batch.mult, batch.inputs, batch.targets, batch.h0,
                                       batch.scopes, n_chars=vocab)  # fmt: skip
    torch.testing.assert_close(result.loss, loss, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(result.weight, gw, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(result.bias, gb, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(result.multiplier, gm, rtol=1e-10, atol=1e-12)


def test_bptt_float32_close_to_float64(scope, size, kernel):
    b64 = make_batch(7, size, scope, vocab=4, hidden=8, steps=40)
    b32 = make_batch(7, size, scope, vocab=4, hidden=8, steps=40, dtype=torch.float32)
    r64, r32 = b64.bptt(kernel), b32.bptt(kernel)
    assert r32.loss.dtype == torch.float32 and r32.weight.dtype == torch.float32
    torch.testing.assert_close(r32.weight.double(), r64.weight, rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(r32.loss.double(), r64.loss, rtol=1e-5, atol=1e-5)


def test_unknown_scope_is_refused():
    with pytest.raises(ValueError, match="scope"):
        mixed_scope(["readout", "everything"])


# ------------------------------------------------------------ carried state
def test_carrying_h_across_windows_equals_one_long_window(seed, scope, size, kernel):
    batch = make_batch(seed, size, scope, vocab=4, hidden=6, steps=30)
    x, y, h0 = batch.inputs, batch.targets, batch.h0
    kw = dict(n_chars=batch.n_chars, scope_all=batch.scope_all)
    tensors = (batch.weight, batch.bias, batch.mult)
    whole = batched_bptt(*tensors, x, y, h0, kernel=kernel, **kw)
    first = batched_bptt(*tensors, x[:, :13], y[:, :13], h0, kernel=kernel, **kw)
    second = batched_bptt(*tensors, x[:, 13:], y[:, 13:], first.h_last, kernel=kernel, **kw)
    torch.testing.assert_close(first.loss + second.loss, whole.loss)
    torch.testing.assert_close(second.h_last, whole.h_last)
    logits_whole, _ = batched_logits(*tensors, x, h0, **kw)
    logits_a, h_a = batched_logits(*tensors, x[:, :13], h0, **kw)
    logits_b, h_b = batched_logits(*tensors, x[:, 13:], h_a, **kw)
    torch.testing.assert_close(torch.cat([logits_a, logits_b], 2), logits_whole)
    torch.testing.assert_close(h_b, whole.h_last)


def test_h_last_is_a_copy_not_a_view(scope, kernel):
    batch = make_batch(3, 2, scope, steps=5)
    result = batch.bptt(kernel)
    before = result.h_last.clone()
    again = batched_bptt(batch.weight, batch.bias, batch.mult, batch.inputs, batch.targets, result.h_last,
                         n_chars=batch.n_chars, scope_all=batch.scope_all, kernel=kernel)  # fmt: skip
    torch.testing.assert_close(result.h_last, before)
    assert again.h_last.data_ptr() != result.h_last.data_ptr()
