"""Tests for neurograph.optim: update formulas, masking, and memories following neurons."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neurograph.charrnn.network import add_hidden, build_char_rnn
from neurograph.compile import compile_graph, sync, write_back
from neurograph.optim import Adagrad, Adam, RMSProp, build_optimizer
from neurograph.schema import AdagradConfig, AdamConfig, RMSPropConfig

torch.set_num_threads(1)

F64 = torch.float64


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


# ------------------------------------------------------------------ formulas
def test_adagrad_matches_min_char_rnn_by_hand():
    """min-char-rnn: clip to +-5; mem += g*g; p -= lr * g / sqrt(mem + 1e-8)."""
    p0 = [1.0, -2.0, 0.5, 0.0]
    grads = [[0.5, -10.0, 0.0, 7.0], [1.0, 3.0, -2.0, -0.25]]
    p = t(p0)
    opt = Adagrad(lr=0.1, grad_clip=5.0)
    expected, mem = list(p0), [0.0] * 4
    for g in grads:
        opt.step({"bias": p}, {"bias": t(g)}, {})
        for i, gi in enumerate(g):
            gi = max(-5.0, min(5.0, gi))
            mem[i] += gi * gi
            expected[i] -= 0.1 * gi / math.sqrt(mem[i] + 1e-8)
    torch.testing.assert_close(p, t(expected), rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(opt.state["sq"]["bias"], t(mem))
    # first step, by hand: 1 - 0.1*0.5/sqrt(0.25); -2 + 0.1*5/sqrt(25); 0.5; 0 - 0.1*5/5
    first = t(p0)
    Adagrad(lr=0.1, grad_clip=5.0).step({"bias": first}, {"bias": t(grads[0])}, {})
    torch.testing.assert_close(first, t([0.9, -1.9, 0.5, -0.1]), rtol=1e-7, atol=1e-9)


def test_adagrad_without_clip_uses_raw_gradient():
    p = t([0.0])
    Adagrad(lr=1.0, grad_clip=None).step({"bias": p}, {"bias": t([100.0])}, {})
    torch.testing.assert_close(p, t([-100.0 / math.sqrt(1e4 + 1e-8)]))


def test_rmsprop_matches_original_code_by_hand():
    """mem += decay*(g^2 - mem); delta = -lr*g/sqrt(mem+1e-8), clipped to +-update_clip."""
    decay, lr, clip, init = 0.01, 0.01, 0.01, 0.01
    p0 = [0.3, -0.1, 0.0, 2.0]
    grads = [[0.001, 1.0, -0.5, 0.0], [-0.002, 0.5, 0.0004, 3.0], [0.0, -1.0, 0.01, -0.003]]
    p = t(p0)
    opt = RMSProp(lr=lr, decay=decay, update_clip=clip, memory_init=init)
    expected, mem, clipped = list(p0), [init] * 4, 0
    for g in grads:
        opt.step({"weight": p}, {"weight": t(g)}, {})
        for i, gi in enumerate(g):
            mem[i] += decay * (gi * gi - mem[i])
            delta = -lr * gi / math.sqrt(mem[i] + 1e-8)
            clipped += abs(delta) > clip
            expected[i] += max(-clip, min(clip, delta))
    assert clipped >= 2  # both clipped and unclipped updates are exercised
    torch.testing.assert_close(p, t(expected), rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(opt.state["sq"]["weight"], t(mem))


def test_rmsprop_grad_clip_applies_before_memory():
    p = t([0.0])
    opt = RMSProp(lr=0.1, decay=0.5, update_clip=None, grad_clip=1.0, memory_init=0.0)
    opt.step({"bias": p}, {"bias": t([10.0])}, {})
    mem = 0.5 * 1.0
    torch.testing.assert_close(p, t([-0.1 / math.sqrt(mem + 1e-8)]))


def test_adam_matches_torch_adam_over_several_steps():
    rng = np.random.default_rng(0)
    shapes = {"weight": (5, 5), "bias": (5,), "multiplier": (5,)}
    init = {k: t(rng.normal(size=s)) for k, s in shapes.items()}
    ours = {k: v.clone() for k, v in init.items()}
    theirs = {k: v.clone().requires_grad_(True) for k, v in init.items()}
    opt = Adam(lr=0.01, betas=(0.8, 0.95), eps=1e-7)
    ref = torch.optim.Adam(list(theirs.values()), lr=0.01, betas=(0.8, 0.95), eps=1e-7)
    for _ in range(7):
        grads = {k: t(rng.normal(scale=rng.uniform(0.01, 3.0), size=s)) for k, s in shapes.items()}
        opt.step(ours, grads, {})
        for k, p in theirs.items():
            p.grad = grads[k].clone()
        ref.step()
    assert opt.steps == 7
    for k in shapes:
        torch.testing.assert_close(ours[k], theirs[k].detach(), rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------ masking
OPTIMIZERS = {
    "adagrad": lambda: Adagrad(lr=0.1, grad_clip=5.0),
    "rmsprop": lambda: RMSProp(lr=0.01, decay=0.01, update_clip=0.01, memory_init=0.01),
    "adam": lambda: Adam(lr=0.01),
}


@pytest.fixture(params=sorted(OPTIMIZERS))
def make_optimizer(request):
    return OPTIMIZERS[request.param]


def test_masked_entries_never_change(make_optimizer):
    rng = np.random.default_rng(1)
    mask = t(rng.random((6, 6)) < 0.5)
    weight = t(rng.normal(size=(6, 6))) * mask
    bias = t(rng.normal(size=6))
    before_w, before_b = weight.clone(), bias.clone()
    opt = make_optimizer()
    for _ in range(5):
        grads = {"weight": t(rng.normal(size=(6, 6))), "bias": t(rng.normal(size=6))}
        opt.step({"weight": weight, "bias": bias}, grads, {"weight": mask})
    absent = mask == 0
    assert torch.equal(weight[absent], before_w[absent])
    assert (weight[absent] == 0).all()
    assert (weight[~absent] != before_w[~absent]).all()
    assert (bias != before_b).all()  # no mask: every entry moves


# ------------------------------------------------------------------ remap
def _memories(opt, compiled) -> dict:
    """Every memory entry keyed by (memory, parameter, target id[, source id])."""
    ids = compiled.ids
    out = {}
    for name, memories in opt.state.items():
        for key, mem in memories.items():
            if key == "weight":
                for a, ta in enumerate(ids):
                    for b, sb in enumerate(ids):
                        out[(name, key, ta, sb)] = mem[a, b].item()
            else:
                for a, ta in enumerate(ids):
                    out[(name, key, ta)] = mem[a].item()
    return out


def _random_grads(compiled, rng):
    return {k: torch.as_tensor(rng.normal(size=tuple(v.shape)), dtype=v.dtype) for k, v in compiled.params.items()}


@pytest.mark.parametrize("memory_init", [0.0, 0.01])
def test_remap_keeps_survivor_memories_attached_to_neuron_ids(make_optimizer, memory_init):
    rng = np.random.default_rng(2)
    graph = build_char_rnn("ab()", 4, rng=rng, std=0.1)
    c = compile_graph(graph, dtype=F64)
    opt = make_optimizer()
    opt.memory_init = memory_init
    for _ in range(2):
        opt.step(c.params, _random_grads(c, rng), {"weight": c.mask})
    before = _memories(opt, c)

    graph.cycle = 5
    write_back(c, graph)
    victim = c.hidden_ids[1]
    graph.delete_neuron(victim)
    new = add_hidden(graph, rng=rng, std=0.1)
    remap = sync(c, graph)
    assert remap is not None
    opt.remap(remap)

    after = _memories(opt, c)
    assert victim not in c.ids and new in c.ids
    for key, value in after.items():
        ends = key[2:]
        fill = 0.0 if key[0] == "m" else memory_init
        if new in ends:
            assert value == fill, key
        else:
            assert value == before[key], key
    assert len(after) > 0
    for name, memories in opt.state.items():
        for key, mem in memories.items():
            assert mem.shape == c.params[key].shape
    opt.step(c.params, _random_grads(c, rng), {"weight": c.mask})  # still consistent shapes


def test_remap_is_needed_survivor_indices_really_moved():
    """The victim is not last, so survivors' compiled indices shift: a stale memory would misalign."""
    rng = np.random.default_rng(3)
    graph = build_char_rnn("ab", 3, rng=rng)
    c = compile_graph(graph, dtype=F64)
    old_index = c.index
    graph.delete_neuron(c.hidden_ids[0])
    remap = sync(c, graph)
    moved = [i for i in c.ids if c.index[i] != old_index[i]]
    assert moved and remap.old_index.tolist() == [old_index[i] for i in c.ids]


# ------------------------------------------------------------------ builder
def test_build_optimizer_from_configs():
    a = build_optimizer(AdagradConfig())
    assert isinstance(a, Adagrad) and (a.lr, a.grad_clip, a.memory_init) == (0.1, 5.0, 0.0)
    r = build_optimizer(RMSPropConfig())
    assert isinstance(r, RMSProp)
    assert (r.lr, r.decay, r.update_clip, r.grad_clip, r.memory_init) == (0.01, 0.01, 0.01, None, 0.01)
    m = build_optimizer(AdamConfig(lr=1e-3, beta1=0.5, beta2=0.9, grad_clip=2.0))
    assert isinstance(m, Adam) and (m.lr, m.betas, m.grad_clip) == (1e-3, (0.5, 0.9), 2.0)
