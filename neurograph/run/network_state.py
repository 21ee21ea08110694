"""Checkpoint part shared by every trainer: graph, compiled tensors, optimizer memories.

:func:`network_state` returns the JSON-able and tensor halves; a trainer adds
its own (RNG and task states, counters) and hands both to its reporters.
:func:`restore_network` rebuilds the graph (:func:`graph_from_state`),
recompiles it, puts the saved compiled tensors back (they may be ahead of the
graph's stored weights) and reloads the optimizer, so training continues bit
for bit.
"""

from __future__ import annotations

import torch

from neurograph.compile import Compiled, compile_graph
from neurograph.graph import Graph
from neurograph.optim import Optimizer

__all__ = ["network_state", "restore_network", "graph_from_state", "trained_graph"]


def network_state(graph: Graph, compiled: Compiled, optimizer: Optimizer) -> tuple[dict, dict[str, torch.Tensor]]:
    """(JSON-able dict, tensors) of a network under training."""
    graph_state, graph_arrays = graph.to_state()
    tensors = {
        "graph.weights": torch.from_numpy(graph_arrays["weights"]),
        "graph.present": torch.from_numpy(graph_arrays["present"]),
        "compiled.weight": compiled.weight,
        "compiled.mask": compiled.mask,
        "compiled.bias": compiled.bias,
        "compiled.multiplier": compiled.multiplier,
    }
    for name, memories in optimizer.state.items():
        for key, mem in memories.items():
            tensors[f"optimizer.{name}.{key}"] = mem
    state = {"graph": graph_state, "compiled_ids": compiled.ids, "optimizer_steps": optimizer.steps}
    return state, tensors


def restore_network(
    state: dict, tensors: dict[str, torch.Tensor], optimizer: Optimizer, *, device, dtype
) -> tuple[Graph, Compiled]:
    """Graph and compiled tensors of :func:`network_state`; ``optimizer`` is reloaded in place."""
    graph = graph_from_state(state, tensors)
    c = compile_graph(graph, device=device, dtype=dtype)
    if c.ids != state["compiled_ids"]:
        raise ValueError("checkpoint's compiled order does not match its graph")
    on = lambda t: t.to(device=c.weight.device, dtype=c.weight.dtype)  # noqa: E731
    c.weight, c.mask = on(tensors["compiled.weight"]), on(tensors["compiled.mask"])
    c.bias, c.multiplier = on(tensors["compiled.bias"]), on(tensors["compiled.multiplier"])
    optimizer.steps = state["optimizer_steps"]
    for name in optimizer.state:
        prefix = f"optimizer.{name}."
        optimizer.state[name] = {k[len(prefix) :]: on(v) for k, v in tensors.items() if k.startswith(prefix)}
    return graph, c


def graph_from_state(state: dict, tensors: dict[str, torch.Tensor]) -> Graph:
    """The graph saved by :func:`network_state` (its stored weights, which the compiled tensors may be ahead of)."""
    arrays = {"weights": tensors["graph.weights"].numpy(), "present": tensors["graph.present"].numpy()}
    return Graph.from_state(state["graph"], arrays)


def trained_graph(state: dict, tensors: dict[str, torch.Tensor]) -> Graph:
    """The graph of :func:`network_state` with the compiled tensors' trained values written in:
    what a snapshot taken at the checkpoint holds."""
    graph = graph_from_state(state, tensors)
    ids = state["compiled_ids"]
    graph.set_weights(ids, ids, tensors["compiled.weight"].detach().cpu().double().numpy())
    biases = tensors["compiled.bias"].detach().cpu().double().tolist()
    multipliers = tensors["compiled.multiplier"].detach().cpu().double().tolist()
    for i, bias, multiplier in zip(ids, biases, multipliers):
        graph.neurons[i].bias, graph.neurons[i].multiplier = bias, multiplier
    return graph
