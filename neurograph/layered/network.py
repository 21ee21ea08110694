"""The area graph of a layered or multi-area network, and its structural edits on the graph.

Areas are the graph's :class:`~neurograph.graph.Area` records, in evaluation
order: ``input``, the hidden areas, ``output``. Projections are whole
blocks: every neuron of the source connects to every neuron of the target.
A stack's projections follow from its layers (:func:`stack_projections`), an
explicit area graph's are the scenario's. Every edit here is a graph
operation, so it lands in the event log with age and lineage:

- :func:`add_neuron`: a neuron in an area, wired to every area its area
  exchanges projections with; random incoming weights (or a deleted neuron's
  of the same area, inherited), outgoing weights scaled to a norm just below
  the deletion threshold (the outgoing-L1 revision's new neurons);
- :func:`add_layer`: a new top layer of ``new_size`` such neurons, its
  outgoing norm a fraction of the layer threshold: a "reserve" layer whose
  contribution is small until training makes it useful;
- :func:`delete_layer`: its neurons, then the area; projections the stack
  needs without it (a chain's bridge over the gap) start at zero, so the
  network's function changes only by what the layer contributed.
"""

from __future__ import annotations

import numpy as np

from neurograph.charrnn.inherit import choose_fossil
from neurograph.graph import Fossil, Graph
from neurograph.layered.blocks import target_weight

__all__ = [
    "stack_projections",
    "projections_of",
    "build_graph",
    "check_graph",
    "add_neuron",
    "add_layer",
    "delete_layer",
    "layer_names",
    "LAYER_PREFIX",
]

LAYER_PREFIX = "layer"


def stack_projections(layers: list[str], skips: str, recurrent: bool) -> list[tuple[str, str]]:
    """Projections of a stack input -> layers -> output (see :class:`~neurograph.layered.scenario.StackConfig`)."""
    chain = ["input", *layers, "output"]
    pairs = [(a, b) for a, b in zip(chain, chain[1:])]
    if skips == "all":
        pairs = [(a, b) for i, b in enumerate(chain) for a in chain[:i]]
        pairs = [(a, b) for a, b in pairs if not (a == "input" and b == "output")]
    elif skips == "output":
        pairs += [(a, "output") for a in layers[:-1]]
    if recurrent:
        pairs += [(a, a) for a in layers]
    return sorted(set(pairs), key=lambda p: (chain.index(p[1]), chain.index(p[0])))


def layer_names(graph: Graph) -> list[str]:
    """The hidden areas, in order."""
    return [a for a in graph.areas if a not in ("input", "output")]


def projections_of(network, graph: Graph) -> list[tuple[str, str]]:
    """The projections of ``network`` (a scenario's section) over the graph's areas now."""
    from neurograph.layered.scenario import parse_projection

    if network.areas is not None:
        return [parse_projection(p) for p in network.projections]
    stack = network.stack_or_default()
    return stack_projections(layer_names(graph), stack.skips, stack.recurrent)


def build_graph(scenario, n_input: int, n_output: int, rng: np.random.Generator, *, tags_in=(), tags_out=()) -> Graph:
    """The scenario's starting network: areas, their neurons, every projection wired.

    Incoming weights ~ N(0, init_std^2); each hidden neuron's outgoing weights
    scaled to ``width.new_norm * T_D`` (the first neurons start as new ones do).
    """
    net, width = scenario.network, scenario.width
    graph = Graph(graveyard_size=scenario.graveyard, capacity=max(16, n_input + n_output + 16))
    graph.meta.update(scenario=scenario.name, seed=str(scenario.seed), model="layered", penalty="outgoing_l1")
    graph.add_area("input", kind="input")
    if net.areas is not None:
        for a in net.areas:
            graph.add_area(a.name)
        sizes = {a.name: a.size for a in net.areas}
    else:
        stack = net.stack_or_default()
        names = [f"{LAYER_PREFIX}{k + 1}" for k in range(stack.layers)]
        for name in names:
            graph.add_area(name, kind="layer")
        sizes = dict.fromkeys(names, stack.size)
    graph.add_area("output", kind="output")
    for k in range(n_input):
        graph.add_neuron("input", area="input", tags=[tags_in[k]] if tags_in else ())
    for k in range(n_output):
        graph.add_neuron("output", area="output", tags=[tags_out[k]] if tags_out else ())
    for area, n in sizes.items():
        for _ in range(n):
            graph.add_neuron("hidden", area=area)
    projections = projections_of(net, graph)
    for src, dst in projections:
        targets, sources = graph.area_ids(dst), graph.area_ids(src)
        graph.wire(targets, sources, rng.normal(0.0, net.init_std, (len(targets), len(sources))), reason="build")
    for area in sizes:
        for i in graph.area_ids(area):
            _scale_outgoing(graph, i, width.new_norm * width.threshold, rng, width.norm)
    return graph


def check_graph(graph: Graph, scenario, n_input: int, n_output: int) -> None:
    """ValueError (one line) unless ``graph`` can train under ``scenario``: areas ``input`` first and
    ``output`` last, the scenario's hidden areas in its order (any layers for a stack), none empty,
    ``n_input`` inputs and ``n_output`` outputs in their areas, every projection wired in full (a
    projection connects every source neuron to every target neuron) and nothing else, cycle 0."""
    areas = list(graph.areas)
    if len(areas) < 3 or areas[0] != "input" or areas[-1] != "output":
        raise ValueError(f"graph: areas must run input, the hidden areas, output; it has {areas or 'none'}")
    net = scenario.network
    if net.areas is not None and areas[1:-1] != [a.name for a in net.areas]:
        raise ValueError(f"graph: hidden areas {areas[1:-1]} are not the scenario's {[a.name for a in net.areas]}")
    for role, area, n in (("input", "input", n_input), ("output", "output", n_output)):
        ids = graph.ids(role)
        if len(ids) != n or any(graph.neurons[i].area != area for i in ids):
            raise ValueError(f"graph: the task needs {n} {role} neurons in area {area}; it has {len(ids)}")
    for area in areas[1:-1]:
        if not graph.area_ids(area) or any(graph.neurons[i].role != "hidden" for i in graph.area_ids(area)):
            raise ValueError(f"graph: area {area} must hold hidden neurons only, at least one")
    if graph.cycle != 0:
        raise ValueError(f"graph: its cycle is {graph.cycle}; a trainer starts from a graph at cycle 0")
    expected = 0
    for src, dst in projections_of(net, graph):
        _, present = graph.block(graph.area_ids(dst), graph.area_ids(src))
        if not present.all():
            raise ValueError(f"graph: projection {src} -> {dst} lacks {int((~present).sum())} of its "
                             f"{present.size} connections (every source neuron connects to every target)")  # fmt: skip
        expected += present.size
    if graph.num_connections() != expected:
        raise ValueError(f"graph: {graph.num_connections() - expected} connections lie outside the scenario's "
                         "projections")  # fmt: skip


def add_neuron(graph: Graph, area: str, projections, scenario, rng: np.random.Generator, *, norm: float,
               reason: str = "") -> int:  # fmt: skip
    """A new hidden neuron in ``area`` wired along ``projections``; its outgoing L1 norm is ``norm``.

    With ``width.init.kind == "inherit"`` it takes the wiring of a deleted
    neuron of the same area where the other end still lives (zero elsewhere).
    """
    init = scenario.width.init
    fossil = choose_fossil(graph, init.choice, rng, area=area) if init.kind == "inherit" else None
    if fossil is None:
        nid = graph.add_neuron("hidden", area=area, reason=reason).id
        _wire_random(graph, nid, area, projections, init.std, rng)
    else:
        nid = graph.add_neuron("hidden", area=area, bias=fossil.neuron.bias, inherited_from=fossil.neuron.id,
                               reason=reason).id  # fmt: skip
        _wire_inherited(graph, nid, area, projections, fossil, init.noise, rng)
        if init.consume:
            graph.graveyard.remove(fossil)
    _scale_outgoing(graph, nid, norm, rng, scenario.width.norm)
    return nid


def add_layer(graph: Graph, scenario, rng: np.random.Generator, *, reason: str = "") -> str:
    """A new top layer (just below the output) of ``depth.new_size`` neurons; returns its name.

    Its outgoing norm is ``depth.new_norm * T_L`` in all, shared by its neurons.
    """
    depth = scenario.depth
    layers = layer_names(graph)
    used = [*graph.areas, *graph.dead_areas]
    number = 1 + max((int(a[len(LAYER_PREFIX):]) for a in used if a.startswith(LAYER_PREFIX)
                      and a[len(LAYER_PREFIX):].isdigit()), default=0)  # fmt: skip
    name = f"{LAYER_PREFIX}{number}"
    graph.add_area(name, before="output", kind="layer", grown_from=layers[-1] if layers else None, reason=reason)
    projections = projections_of(scenario.network, graph)
    per_neuron = depth.new_norm * depth.threshold / depth.new_size
    new = [graph.add_neuron("hidden", area=name, reason=reason).id for _ in range(depth.new_size)]
    std = scenario.network.init_std
    for src, dst in projections:
        if name not in (src, dst):
            continue
        targets, sources = graph.area_ids(dst), graph.area_ids(src)
        graph.wire(targets, sources, rng.normal(0.0, std, (len(targets), len(sources))), reason=reason)
    for nid in new:
        _scale_outgoing(graph, nid, per_neuron, rng, scenario.width.norm)
    return name


def delete_layer(graph: Graph, name: str, scenario, *, reason: str = "") -> list[Fossil]:
    """Delete layer ``name`` (its neurons, then the area); new bridging projections start at zero."""
    before = set(projections_of(scenario.network, graph))
    fossils = [graph.delete_neuron(i, reason=reason) for i in graph.area_ids(name)]
    graph.delete_area(name, reason=reason)
    for src, dst in projections_of(scenario.network, graph):
        if (src, dst) not in before:
            targets, sources = graph.area_ids(dst), graph.area_ids(src)
            graph.wire(targets, sources, np.zeros((len(targets), len(sources))), reason=reason)
    return fossils


# -------------------------------------------------------------- helpers
def _wire_random(graph: Graph, nid: int, area: str, projections, std: float, rng) -> None:
    for src, dst in projections:
        if dst == area:
            sources = graph.area_ids(src)
            graph.wire([nid], sources, rng.normal(0.0, std, (1, len(sources))))
        if src == area:
            targets = [t for t in graph.area_ids(dst) if not (dst == area and t == nid)]
            if targets:
                graph.wire(targets, [nid], rng.normal(0.0, std, (len(targets), 1)))


def _wire_inherited(graph: Graph, nid: int, area: str, projections, fossil: Fossil, noise: float, rng) -> None:
    """The fossil's weights where the other end lives (its self-connection becomes the heir's), else 0."""
    dead = fossil.neuron.id
    incoming = dict(fossil.incoming)
    if dead in incoming:
        incoming[nid] = incoming.pop(dead)
    outgoing = {t: w for t, w in fossil.outgoing.items() if t != dead}

    def jitter(w: np.ndarray) -> np.ndarray:
        return w * (1.0 + noise * rng.standard_normal(w.shape)) if noise else w

    for src, dst in projections:
        if dst == area:
            sources = graph.area_ids(src)
            w = np.array([[incoming.get(s, 0.0) for s in sources]])
            graph.wire([nid], sources, jitter(w), inherited_from=dead, reason="inherit")
        if src == area:
            targets = [t for t in graph.area_ids(dst) if t != nid]
            if targets:
                w = np.array([[outgoing.get(t, 0.0)] for t in targets])
                graph.wire(targets, [nid], jitter(w), inherited_from=dead, reason="inherit")


def _scale_outgoing(graph: Graph, nid: int, norm: float, rng, kind: str = "text") -> None:
    """Scale ``nid``'s outgoing weights to outgoing norm ``norm`` of ``kind``
    (:func:`~neurograph.layered.blocks.target_weight`; random signs if they are all zero)."""
    out = graph.outgoing(nid)
    if not out:
        return
    targets = sorted(out)  # id order: the same sum whatever the graph's storage slots (a resumed run's differ)
    w = np.array([out[t] for t in targets])
    sizes: dict[str, int] = {}
    areas = [graph.neurons[t].area for t in targets]
    factor = np.array([target_weight(a, sizes.setdefault(a, len(graph.area_ids(a))), kind) for a in areas])
    total = (factor * np.abs(w)).sum()
    if total == 0.0:
        w = rng.choice([-1.0, 1.0], size=len(w))
        total = float((factor * np.abs(w)).sum())
    graph.set_weights(targets, [nid], (w * (norm / total))[:, None])
