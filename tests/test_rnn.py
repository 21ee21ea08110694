"""Tests for neurograph.charrnn.rnn: hand-written BPTT against a naive graph walk, finite differences and autograd."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neurograph.compile import compile_graph, write_back
from neurograph.graph import Graph
from neurograph.optim import Adagrad
from neurograph.charrnn.rnn import bptt, bptt_torch, forward_logits
from neurograph.charrnn.rnn_cpu import bptt_cpu

torch.set_num_threads(1)

F64 = torch.float64
SCOPES = ("readout", "all")


def char_graph(seed: int, *, vocab: int = 3, hidden: int = 4, density: float = 0.7, std: float = 0.6) -> Graph:
    """A char-RNN-shaped graph with roles interleaved by id and some connections absent.

    Only the three blocks the RNN reads exist (input->hidden, hidden->hidden,
    hidden->output); each connection is present with probability ``density``.
    Biases and multipliers are non-trivial.
    """
    rng = np.random.default_rng(seed)
    g = Graph(capacity=4)
    roles = ["input"] * vocab + ["output"] * vocab + ["hidden"] * hidden
    for role in rng.permutation(roles).tolist():
        g.add_neuron(role, bias=rng.normal(scale=0.5), multiplier=rng.uniform(0.3, 1.7))
    inputs, hid, outputs = g.ids("input"), g.ids("hidden"), g.ids("output")
    for targets, sources in ((hid, inputs + hid), (outputs, hid)):
        shape = (len(targets), len(sources))
        present = rng.random(shape) < density
        g.wire(targets, sources, rng.normal(scale=std, size=shape), present=present)
    return g


def window(seed: int, vocab: int, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed + 1000)
    chars = torch.from_numpy(rng.integers(0, vocab, size=steps + 1))
    return chars[:-1], chars[1:]


def random_h0(seed: int, hidden: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed + 2000).uniform(-0.8, 0.8, size=hidden))


def naive_run(g: Graph, inputs: list[int], h0: dict[int, float], scope: str):
    """Hidden states and logits, one neuron and one ``graph.incoming`` connection at a time.

    Returns (list of {hidden id: state} per step, list of [logit per output id] per step).
    """
    in_ids, hid_ids, out_ids = g.ids("input"), g.ids("hidden"), g.ids("output")
    mult = {i: g.neurons[i].multiplier for i in hid_ids}
    h, states, logits = dict(h0), [], []
    for x in inputs:
        value = {j: float(k == x) for k, j in enumerate(in_ids)}
        value.update({j: h[j] * (mult[j] if scope == "all" else 1.0) for j in hid_ids})
        h = {
            i: math.tanh(g.neurons[i].bias + sum(w * value[j] for j, w in g.incoming(i).items()))
            for i in hid_ids
        }
        states.append(h)
        logits.append(
            [g.neurons[o].bias + sum(w * mult[j] * h[j] for j, w in g.incoming(o).items()) for o in out_ids]
        )
    return states, logits


def window_loss(c, inputs, targets, h0, scope) -> float:
    """Summed cross-entropy of the window from ``forward_logits`` (not from ``bptt``)."""
    logits, _ = forward_logits(c, inputs, h0, scope=scope)
    return torch.nn.functional.cross_entropy(logits, targets, reduction="sum").item()


def autograd_grads(c, inputs, targets, h0, scope):
    """Loss and gradients of a dense, independently written forward pass via torch autograd."""
    w = c.weight.clone().requires_grad_(True)
    b = c.bias.clone().requires_grad_(True)
    m = c.multiplier.clone().requires_grad_(True)
    hid, inp, out = c.hidden, c.inputs, c.outputs
    onehot = torch.nn.functional.one_hot(inputs, c.n_input).to(w.dtype)
    h, loss = h0, 0.0
    for t in range(inputs.shape[0]):
        recurrent = h * m[hid] if scope == "all" else h
        h = torch.tanh(w[hid, inp] @ onehot[t] + w[hid, hid] @ recurrent + b[hid])
        y = w[out, hid] @ (h * m[hid]) + b[out]
        loss = loss - torch.log_softmax(y, dim=0)[targets[t]]
    loss.backward()
    return loss.detach(), w.grad, b.grad, m.grad


@pytest.fixture(params=[0, 1])
def seed(request) -> int:
    return request.param


@pytest.fixture(params=SCOPES)
def scope(request) -> str:
    return request.param


# ------------------------------------------------------------- naive graph walk
def test_forward_logits_equal_naive_walk_over_incoming(seed, scope):
    g = char_graph(seed)
    c = compile_graph(g, dtype=F64)
    inputs, _ = window(seed, 3, 9)
    h0 = random_h0(seed, c.n_hidden)
    states, logits = naive_run(g, inputs.tolist(), dict(zip(c.hidden_ids, h0.tolist())), scope)
    got, h_last = forward_logits(c, inputs, h0, scope=scope)
    torch.testing.assert_close(got, torch.tensor(logits, dtype=F64), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h_last, torch.tensor([states[-1][i] for i in c.hidden_ids], dtype=F64))


def test_bptt_loss_and_h_last_equal_naive_walk(seed, scope):
    g = char_graph(seed)
    c = compile_graph(g, dtype=F64)
    inputs, targets = window(seed, 3, 9)
    h0 = random_h0(seed, c.n_hidden)
    states, logits = naive_run(g, inputs.tolist(), dict(zip(c.hidden_ids, h0.tolist())), scope)
    expected = sum(
        -(row[t] - math.log(sum(math.exp(v) for v in row))) for row, t in zip(logits, targets.tolist())
    )
    result = bptt(c, inputs, targets, h0, scope=scope)
    assert result.loss.item() == pytest.approx(expected, rel=1e-12)
    torch.testing.assert_close(result.h_last, torch.tensor([states[-1][i] for i in c.hidden_ids], dtype=F64))


def test_scopes_differ_with_non_unit_multipliers(seed):
    c = compile_graph(char_graph(seed), dtype=F64)
    inputs, _ = window(seed, 3, 6)
    h0 = random_h0(seed, c.n_hidden)
    a, _ = forward_logits(c, inputs, h0, scope="readout")
    b, _ = forward_logits(c, inputs, h0, scope="all")
    assert not torch.allclose(a, b)


# ------------------------------------------------------------ finite differences
def _fd_entries(c):
    """(name, index) of every parameter the loss depends on: present weights, hidden+output biases, hidden multipliers."""
    mask = c.mask.clone()
    keep = torch.zeros_like(mask, dtype=torch.bool)
    keep[c.hidden, c.inputs] = True
    keep[c.hidden, c.hidden] = True
    keep[c.outputs, c.hidden] = True
    entries = [("weight", tuple(ix)) for ix in torch.nonzero((mask > 0) & keep).tolist()]
    entries += [("bias", (k,)) for k in range(c.n_input, c.n)]
    entries += [("multiplier", (k,)) for k in range(c.hidden.start, c.n)]
    return entries


def test_bptt_matches_central_finite_differences(seed, scope):
    g = char_graph(seed, vocab=3, hidden=4)
    c = compile_graph(g, dtype=F64)
    inputs, targets = window(seed, 3, 7)
    h0 = random_h0(seed, c.n_hidden)
    grads = bptt(c, inputs, targets, h0, scope=scope).grads.as_dict()
    entries = _fd_entries(c)
    assert len(entries) > 20 and (c.mask[c.hidden, c.hidden] == 0).any()  # partially masked
    eps = 1e-5
    numeric, analytic = [], []
    for name, ix in entries:
        p = c.params[name]
        old = p[ix].item()
        p[ix] = old + eps
        up = window_loss(c, inputs, targets, h0, scope)
        p[ix] = old - eps
        down = window_loss(c, inputs, targets, h0, scope)
        p[ix] = old
        numeric.append((up - down) / (2 * eps))
        analytic.append(grads[name][ix].item())
    numeric, analytic = torch.tensor(numeric, dtype=F64), torch.tensor(analytic, dtype=F64)
    assert analytic.abs().max() > 1e-2  # the check is not vacuous
    torch.testing.assert_close(analytic, numeric, rtol=1e-6, atol=1e-9)


def test_bptt_gradient_is_zero_where_the_loss_does_not_depend(seed, scope):
    c = compile_graph(char_graph(seed), dtype=F64)
    inputs, targets = window(seed, 3, 7)
    grads = bptt(c, inputs, targets, random_h0(seed, c.n_hidden), scope=scope).grads
    used = torch.zeros_like(c.weight, dtype=torch.bool)
    used[c.hidden, c.inputs] = used[c.hidden, c.hidden] = used[c.outputs, c.hidden] = True
    assert (grads.weight[~used] == 0).all()
    assert (grads.bias[c.inputs] == 0).all()
    assert (grads.multiplier[: c.hidden.start] == 0).all()


def test_absent_connections_stay_absent_through_masked_updates(seed, scope):
    """bptt's gradient at an absent connection may be nonzero; the optimizer's mask discards it."""
    g = char_graph(seed)
    c = compile_graph(g, dtype=F64)
    absent = c.mask == 0
    inputs, targets = window(seed, 3, 8)
    h0 = random_h0(seed, c.n_hidden)
    opt = Adagrad(lr=0.1, grad_clip=5.0)
    saw_nonzero = False
    for _ in range(3):
        grads = bptt(c, inputs, targets, h0, scope=scope).grads.as_dict()
        saw_nonzero |= bool((grads["weight"][absent] != 0).any())
        opt.step(c.params, grads, {"weight": c.mask})
    assert saw_nonzero
    assert (c.weight[absent] == 0).all()
    write_back(c, g)  # the trained network is still the graph's network
    states, logits = naive_run(g, inputs.tolist(), dict(zip(c.hidden_ids, h0.tolist())), scope)
    got, _ = forward_logits(c, inputs, h0, scope=scope)
    torch.testing.assert_close(got, torch.tensor(logits, dtype=F64), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ autograd
@pytest.mark.parametrize(
    "vocab, hidden, steps, density",
    [(2, 1, 1, 1.0), (3, 5, 10, 0.6), (4, 12, 40, 0.8), (6, 30, 25, 0.3)],
)
def test_bptt_matches_autograd(vocab, hidden, steps, density, scope):
    seed = vocab * 100 + hidden
    c = compile_graph(char_graph(seed, vocab=vocab, hidden=hidden, density=density, std=0.4), dtype=F64)
    inputs, targets = window(seed, vocab, steps)
    h0 = random_h0(seed, hidden)
    result = bptt(c, inputs, targets, h0, scope=scope)
    loss, gw, gb, gm = autograd_grads(c, inputs, targets, h0, scope)
    torch.testing.assert_close(result.loss, loss)
    torch.testing.assert_close(result.grads.weight, gw, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(result.grads.bias, gb, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(result.grads.multiplier, gm, rtol=1e-10, atol=1e-12)


def test_bptt_float32_close_to_float64(scope):
    g = char_graph(7, vocab=4, hidden=8)
    c64, c32 = compile_graph(g, dtype=F64), compile_graph(g, dtype=torch.float32)
    inputs, targets = window(7, 4, 40)
    h0 = random_h0(7, 8)
    r64 = bptt(c64, inputs, targets, h0, scope=scope)
    r32 = bptt(c32, inputs, targets, h0.float(), scope=scope)
    assert r32.loss.dtype == torch.float32 and r32.grads.weight.dtype == torch.float32
    torch.testing.assert_close(r32.grads.weight.double(), r64.grads.weight, rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(r32.loss.double(), r64.loss, rtol=1e-5, atol=1e-5)


def test_bptt_rejects_unknown_scope():
    c = compile_graph(char_graph(0), dtype=F64)
    inputs, targets = window(0, 3, 4)
    with pytest.raises(ValueError, match="scope"):
        bptt(c, inputs, targets, torch.zeros(c.n_hidden, dtype=F64), scope="everything")


# ------------------------------------------------------------ carried state
def test_carrying_h_across_windows_equals_one_long_window(seed, scope):
    c = compile_graph(char_graph(seed, vocab=4, hidden=6), dtype=F64)
    inputs, targets = window(seed, 4, 30)
    h0 = random_h0(seed, 6)
    whole = bptt(c, inputs, targets, h0, scope=scope)
    first = bptt(c, inputs[:13], targets[:13], h0, scope=scope)
    second = bptt(c, inputs[13:], targets[13:], first.h_last, scope=scope)
    torch.testing.assert_close(first.loss + second.loss, whole.loss)
    torch.testing.assert_close(second.h_last, whole.h_last)
    logits_whole, _ = forward_logits(c, inputs, h0, scope=scope)
    logits_a, h_a = forward_logits(c, inputs[:13], h0, scope=scope)
    logits_b, h_b = forward_logits(c, inputs[13:], h_a, scope=scope)
    torch.testing.assert_close(torch.cat([logits_a, logits_b]), logits_whole)
    torch.testing.assert_close(h_b, whole.h_last)


def test_h_last_is_a_copy_not_a_view(scope):
    c = compile_graph(char_graph(3), dtype=F64)
    inputs, targets = window(3, 3, 5)
    h0 = random_h0(3, c.n_hidden)
    result = bptt(c, inputs, targets, h0, scope=scope)
    before = result.h_last.clone()
    again = bptt(c, inputs, targets, result.h_last, scope=scope)  # reuse as h0
    torch.testing.assert_close(result.h_last, before)
    assert again.h_last.data_ptr() != result.h_last.data_ptr()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cpu_kernel_equals_torch_kernel(seed, scope, dtype):
    """The numpy CPU kernel and the torch kernel compute the same window."""
    c = compile_graph(char_graph(seed, vocab=4, hidden=6), dtype=dtype)
    inputs, targets = window(seed, 4, 25)
    h0 = random_h0(seed, 6).to(dtype)
    cpu, ref = bptt_cpu(c, inputs, targets, h0, scope), bptt_torch(c, inputs, targets, h0, scope=scope)
    tol = 1e-12 if dtype == torch.float64 else 1e-4
    assert abs(cpu.loss.item() - ref.loss.item()) <= tol * max(1.0, abs(ref.loss.item()))
    for name, g in ref.grads.as_dict().items():
        assert torch.allclose(cpu.grads.as_dict()[name], g, rtol=tol, atol=tol), name
    assert torch.allclose(cpu.h_last, ref.h_last, rtol=tol, atol=tol)
