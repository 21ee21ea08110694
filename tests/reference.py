"""Independent references for the char-RNN's BPTT kernels, written for clarity, not speed.

- :func:`naive_run` evaluates a graph one neuron and one ``graph.incoming``
  connection at a time, in Python floats: the definition of the network;
- :func:`autograd_window` is a plain torch forward of each member, step by
  step, differentiated by ``loss.backward()``: the definition of the gradients.

Nothing here calls :mod:`neurograph.charrnn.bptt` or the kernels it runs.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from neurograph.graph import Graph

__all__ = ["autograd_window", "char_graph", "naive_loss", "naive_run", "plain_logits"]


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


def naive_run(g: Graph, inputs: list[int], h0: dict[int, float], scope: str):
    """Hidden states and logits, one neuron and one ``graph.incoming`` connection at a time.

    Character k is the k-th input neuron by id, logit k the k-th output neuron.
    ``scope="all"``: the recurrence sees each hidden neuron's state times its
    multiplier; ``"readout"``: only the readout does. Returns (list of
    {hidden id: state} per step, list of [logit per output id] per step).
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


def naive_loss(logits: list[list[float]], targets: list[int]) -> float:
    """Summed cross-entropy (nats) of :func:`naive_run`'s logits."""
    return sum(-(row[t] - math.log(sum(math.exp(v) for v in row))) for row, t in zip(logits, targets))


def plain_logits(weight, bias, mult, inputs, h0, *, n_chars: int, scope: str):
    """Logits (T, V) and last state (Hc,) of one padded network, one step at a time.

    weight (N, N) ``[target, source]``, bias and mult (N,), laid out
    ``[inputs (V) | outputs (V) | hidden (Hc)]``; inputs (T,) character indices.
    """
    v, hid = n_chars, slice(2 * n_chars, weight.shape[0])
    m = mult[hid]
    h, rows = h0, []
    for t in range(inputs.shape[0]):
        seen = h * m if scope == "all" else h
        h = torch.tanh(weight[hid, inputs[t]] + weight[hid, hid] @ seen + bias[hid])
        rows.append(weight[v : 2 * v, hid] @ (h * m) + bias[v : 2 * v])
    return torch.stack(rows), h


def autograd_window(weight, bias, mult, inputs, targets, h0, scopes, *, n_chars: int = 4):
    """Summed losses (B,) and gradients of :func:`plain_logits` per member, by autograd.

    weight (B, N, N), bias and mult (B, N), inputs and targets (B, T), h0 (B, Hc);
    ``scopes``: one per member. ``n_chars`` defaults to the paper tasks' alphabet "ab()".
    """
    w, bi, m = (t.clone().requires_grad_() for t in (weight, bias, mult))
    losses = []
    for b, scope in enumerate(scopes):
        logits, _ = plain_logits(w[b], bi[b], m[b], inputs[b], h0[b], n_chars=n_chars, scope=scope)
        losses.append(-torch.log_softmax(logits, 1).gather(1, targets[b].unsqueeze(1)).sum())
    losses = torch.stack(losses)
    losses.sum().backward()
    return losses.detach(), w.grad, bi.grad, m.grad
