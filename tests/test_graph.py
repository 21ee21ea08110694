"""Tests for neurograph.graph: structure edits, ids, ages, lineage, graveyard, events, errors."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest

import neurograph.graph as graph_module
from neurograph.graph import ROLES, Event, Graph, GraphError, neuron_label


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def graph() -> Graph:
    """Two inputs, three hidden, one output, created interleaved; no connections."""
    g = Graph()
    for role in ("input", "hidden", "output", "hidden", "input", "hidden"):
        g.add_neuron(role)
    return g


def edges(g: Graph) -> dict[tuple[int, int], float]:
    """(source, target) -> weight of every connection, read through the public views."""
    return {(c.source, c.target): c.weight for c in g.connections()}


# ------------------------------------------------------------------ add / delete
def test_add_gives_fresh_ascending_ids_and_roles(graph: Graph) -> None:
    assert graph.ids() == [0, 1, 2, 3, 4, 5]
    assert [graph.neuron(i).role for i in graph.ids()] == [
        "input", "hidden", "output", "hidden", "input", "hidden",
    ]
    assert graph.next_id == 6
    assert len(graph) == 6 and 3 in graph and 6 not in graph


def test_add_stores_parameters(graph: Graph) -> None:
    n = graph.add_neuron("hidden", bias=0.5, multiplier=2, position=(1, 2, 3), tags=["a", "b"])
    assert (n.bias, n.multiplier, n.position, n.tags) == (0.5, 2.0, (1.0, 2.0, 3.0), {"a", "b"})
    assert isinstance(n.multiplier, float) and n.born == graph.cycle and n.died is None
    assert n.label == f"h{n.id}" and graph.neuron(n.id) is n


def test_ids_are_never_reused(graph: Graph) -> None:
    seen = set(graph.ids())
    for step in range(30):
        graph.delete_neuron(max(graph.ids()) if step % 2 else min(graph.ids()))
        for _ in range(2):
            new = graph.add_neuron("hidden").id
            assert new not in seen
            seen.add(new)
    assert seen == set(graph.ids()) | set(graph.dead)
    assert graph.next_id == len(seen)
    graph.check()


def test_delete_removes_neuron_and_all_its_connections(graph: Graph) -> None:
    graph.connect(0, 1, 1.0)
    graph.connect(1, 2, 2.0)
    graph.connect(1, 1, 3.0)
    graph.connect(4, 3, 4.0)
    graph.delete_neuron(1)
    assert 1 not in graph and 1 in graph.dead
    assert edges(graph) == {(4, 3): 4.0}
    assert graph.num_connections() == 1
    graph.check()


def test_slot_of_deleted_neuron_is_clean_when_reused(graph: Graph) -> None:
    graph.wire(graph.ids(), graph.ids(), np.ones((6, 6)))
    graph.delete_neuron(3)
    new = graph.add_neuron("hidden").id
    assert graph.incoming(new) == {} and graph.outgoing(new) == {}
    assert graph.num_connections() == 25
    graph.check()


def test_block_storage_grows_past_capacity() -> None:
    g = Graph(capacity=2)
    ids = [g.add_neuron("hidden").id for _ in range(9)]
    g.wire(ids, ids, np.arange(81.0).reshape(9, 9))
    more = [g.add_neuron("hidden").id for _ in range(20)]
    weights, present = g.block(ids, ids)
    assert np.array_equal(weights, np.arange(81.0).reshape(9, 9)) and present.all()
    assert g.num_connections() == 81 and g.incoming(more[-1]) == {}
    g.check()


# -------------------------------------------------------------- connections
def test_connect_creates_and_overwrites(graph: Graph) -> None:
    graph.connect(0, 1, 0.5)
    graph.connect(1, 1, -1.0)
    assert graph.has_connection(0, 1) and not graph.has_connection(1, 0)
    graph.connect(0, 1, 0.25)
    assert edges(graph) == {(0, 1): 0.25, (1, 1): -1.0}
    assert graph.incoming(1) == {0: 0.25, 1: -1.0}
    assert graph.outgoing(0) == {1: 0.25}
    assert graph.num_connections() == 2


def test_zero_weight_connection_exists(graph: Graph) -> None:
    graph.connect(0, 1, 0.0)
    assert graph.has_connection(0, 1) and graph.incoming(1) == {0: 0.0}


def test_disconnect_removes_only_that_connection(graph: Graph) -> None:
    graph.connect(0, 1, 0.5)
    graph.connect(4, 1, 0.7)
    graph.disconnect(0, 1)
    assert edges(graph) == {(4, 1): 0.7}
    with pytest.raises(GraphError, match="no connection 0 -> 1"):
        graph.disconnect(0, 1)


def test_connection_view_records_birth_and_inheritance(graph: Graph) -> None:
    graph.connect(0, 1, 1.0)
    graph.cycle = 5
    graph.connect(4, 1, 2.0)
    graph.delete_neuron(3)
    graph.connect(0, 5, 3.0, inherited_from=3)
    assert graph.connection(0, 1).born == 0
    assert graph.connection(4, 1).born == 5
    assert graph.connection(0, 5).born == 5 and graph.connection(0, 5).inherited_from == 3
    late = graph.add_neuron("hidden", inherited_from=3).id
    graph.cycle = 7
    graph.connect(late, 1, 4.0)
    assert graph.connection(late, 1).born == 7
    graph.disconnect(4, 1)
    graph.cycle = 8
    graph.connect(4, 1, 2.0)
    assert graph.connection(4, 1).born == 8
    with pytest.raises(GraphError, match="no connection"):
        graph.connection(1, 0)


def test_wire_sets_block_with_presence(graph: Graph, rng: np.random.Generator) -> None:
    targets, sources = [1, 3, 5], [0, 4, 1]
    weights = rng.standard_normal((3, 3))
    present = rng.random((3, 3)) < 0.5
    graph.wire(targets, sources, weights, present=present)
    expected = {
        (s, t): weights[a, b]
        for a, t in enumerate(targets)
        for b, s in enumerate(sources)
        if present[a, b]
    }
    assert edges(graph) == expected
    got_w, got_p = graph.block(targets, sources)
    assert np.array_equal(got_p, present)
    assert np.array_equal(got_w, np.where(present, weights, 0.0))


def test_wire_replaces_existing_connections_in_block(graph: Graph) -> None:
    graph.connect(0, 1, 9.0)
    graph.connect(0, 2, 9.0)
    graph.wire([1], [0, 4], np.array([[1.0, 2.0]]), present=np.array([[False, True]]))
    assert edges(graph) == {(4, 1): 2.0, (0, 2): 9.0}


def test_wire_rejects_wrong_shape(graph: Graph) -> None:
    with pytest.raises(GraphError, match="targets x sources"):
        graph.wire([1, 3], [0], np.ones((1, 2)))


def test_set_weights_changes_values_not_structure(graph: Graph) -> None:
    graph.connect(0, 1, 1.0)
    n_events = len(graph.events)
    graph.set_weights([1, 3], [0, 4], np.array([[5.0, 6.0], [7.0, 8.0]]))
    assert edges(graph) == {(0, 1): 5.0}
    assert len(graph.events) == n_events


def test_norms_are_l1_of_incoming_and_outgoing(graph: Graph) -> None:
    graph.connect(0, 1, -2.0)
    graph.connect(4, 1, 3.0)
    graph.connect(1, 2, -0.5)
    incoming, outgoing = graph.norms([0, 1, 2])
    assert incoming.tolist() == [0.0, 5.0, 0.5]
    assert outgoing.tolist() == [2.0, 0.5, 0.0]


# ----------------------------------------------------------------------- ages
def test_ages_follow_cycle_and_freeze_at_death(graph: Graph) -> None:
    graph.cycle = 10
    young = graph.add_neuron("hidden").id
    assert graph.age(0) == 10 and graph.age(young) == 0
    graph.cycle = 25
    assert graph.age(0) == 25 and graph.age(young) == 15
    graph.delete_neuron(young)
    graph.cycle = 100
    assert graph.age(young) == 15
    assert graph.dead[young].died == 25
    assert graph.age(0) == 100
    assert graph.ages().tolist() == [100] * len(graph)
    assert graph.ages([0]).dtype == np.int64


def test_ages_of_chosen_neurons(graph: Graph) -> None:
    graph.cycle = 3
    new = graph.add_neuron("output").id
    graph.cycle = 7
    assert graph.ages([new, 2]).tolist() == [4, 7]


# -------------------------------------------------------------------- lineage
def test_lineage_chains_through_inherited_from(graph: Graph) -> None:
    graph.delete_neuron(1)
    child = graph.add_neuron("hidden", inherited_from=1).id
    graph.cycle = 4
    graph.delete_neuron(child)
    grandchild = graph.add_neuron("hidden", inherited_from=child).id
    assert graph.lineage(grandchild) == [1, child, grandchild]
    assert graph.lineage_label(grandchild) == f"h1>h{child}>h{grandchild}"
    assert graph.lineage(child) == [1, child]
    assert graph.lineage(3) == [3]
    assert [graph.dead[1].generation, graph.dead[child].generation, graph.neuron(grandchild).generation] == [0, 1, 2]
    assert graph.neuron(grandchild).inherited_from == child
    graph.check()


def test_siblings_share_an_ancestor(graph: Graph) -> None:
    graph.delete_neuron(3)
    a = graph.add_neuron("hidden", inherited_from=3)
    b = graph.add_neuron("hidden", inherited_from=3)
    assert graph.lineage(a.id)[0] == graph.lineage(b.id)[0] == 3
    assert a.generation == b.generation == 1


def test_neurons_are_taken_wherever_ids_are(graph: Graph) -> None:
    """What a view returns (a Neuron) is accepted where an id is: ``lineage(g.hidden[0])``."""
    h = graph.hidden
    graph.connect(graph.inputs[0], h[0], 0.5)
    graph.wire([h[1]], [h[0], h[2]], np.array([[1.0, 2.0]]))
    assert [graph.lineage(n) for n in h] == [[n.id] for n in h]
    assert graph.lineage_label(h[0]) == h[0].label and graph.age(h[0]) == 0
    assert graph.incoming(h[1]) == {h[0].id: 1.0, h[2].id: 2.0} and graph.outgoing(h[0]) == {h[1].id: 1.0}
    assert graph.has_connection(h[0], h[1]) and graph.connection(h[0], h[1]).weight == 1.0
    graph.disconnect(h[2], h[1])
    dead = graph.delete_neuron(h[2])
    child = graph.add_neuron("hidden", inherited_from=dead.neuron)
    assert graph.lineage(child) == [h[2].id, child.id] and h[0] in graph
    graph.check()


# ------------------------------------------------------------------ graveyard
def test_graveyard_keeps_last_wiring(graph: Graph) -> None:
    graph.connect(0, 3, 0.5)
    graph.connect(3, 2, -1.5)
    graph.connect(3, 3, 2.0)
    graph.connect(0, 3, 0.75)  # overwritten: the last weight is what is kept
    graph.cycle = 6
    fossil = graph.delete_neuron(3)
    assert graph.graveyard[-1] is fossil
    assert fossil.incoming == {0: 0.75, 3: 2.0}
    assert fossil.outgoing == {2: -1.5, 3: 2.0}
    assert fossil.neuron.id == 3 and fossil.neuron.died == 6 and fossil.neuron.slot == -1
    assert graph.dead[3] == fossil.neuron


def test_graveyard_is_bounded_but_dead_metadata_is_not() -> None:
    g = Graph(graveyard_size=3)
    ids = [g.add_neuron("hidden").id for _ in range(6)]
    for i in ids:
        g.delete_neuron(i)
    assert [f.neuron.id for f in g.graveyard] == ids[-3:]
    assert sorted(g.dead) == ids
    child = g.add_neuron("hidden", inherited_from=ids[0])
    assert child.generation == 1


def test_graveyard_size_zero_keeps_nothing() -> None:
    g = Graph(graveyard_size=0)
    g.delete_neuron(g.add_neuron("input").id)
    assert len(g.graveyard) == 0 and 0 in g.dead


# --------------------------------------------------------------------- events
def test_event_log_records_every_structural_change(graph: Graph) -> None:
    graph.events.clear()
    graph.cycle = 2
    graph.connect(0, 1, 1.0, reason="grow")
    graph.cycle = 5
    graph.disconnect(0, 1, reason="prune")
    graph.delete_neuron(1, reason="weak")
    child = graph.add_neuron("hidden", inherited_from=1, reason="replace").id
    graph.wire([child], [0, 4], np.ones((1, 2)))
    assert [e.to_dict() for e in graph.events] == [
        Event(2, "connect", 1, "grow", other=0, age=2, lineage="h1").to_dict(),
        Event(5, "disconnect", 1, "prune", other=0, age=5, lineage="h1").to_dict(),
        Event(5, "delete", 1, "weak", age=5, lineage="h1").to_dict(),
        Event(5, "add", child, "replace", age=0, lineage=f"h1>h{child}").to_dict(),
        Event(5, "rewire", child, age=0, lineage=f"h1>h{child}").to_dict(),
    ]


def test_initial_adds_are_logged(graph: Graph) -> None:
    assert [(e.kind, e.neuron, e.cycle, e.age) for e in graph.events] == [
        ("add", i, 0, 0) for i in range(6)
    ]


def test_set_weights_and_views_log_nothing(graph: Graph) -> None:
    graph.connect(0, 1, 1.0)
    before = list(graph.events)
    graph.set_weights([1], [0], np.array([[2.0]]))
    list(graph.connections())
    graph.incoming(1), graph.outgoing(0), graph.block([1], [0]), graph.norms()
    assert graph.events == before


@pytest.mark.parametrize(
    "targets, sources, neuron, other",
    [([1], [0], 1, 0), ([1], [0, 4], 1, -1), ([1, 3], [0], -1, 0), ([1, 3], [0, 4], -1, -1)],
)
def test_rewire_event_names_single_ends(graph: Graph, targets, sources, neuron, other) -> None:
    graph.wire(targets, sources, np.ones((len(targets), len(sources))))
    event = graph.events[-1]
    assert (event.kind, event.neuron, event.other) == ("rewire", neuron, other)


# ---------------------------------------------------------------------- views
@pytest.mark.parametrize("role", ROLES)
def test_views_by_role(graph: Graph, role: str) -> None:
    expected = {"input": [0, 4], "hidden": [1, 3, 5], "output": [2]}[role]
    assert graph.ids(role) == expected
    assert [n.id for n in graph.by_role(role)] == expected
    assert [n.id for n in getattr(graph, role if role == "hidden" else role + "s")] == expected
    assert all(n.label == neuron_label(n.id, role) for n in graph.by_role(role))


def test_views_skip_dead_neurons(graph: Graph) -> None:
    graph.delete_neuron(3)
    assert graph.ids("hidden") == [1, 5]
    assert [n.id for n in graph.hidden] == [1, 5]


@pytest.mark.parametrize("role, label", [("input", "i7"), ("hidden", "h7"), ("output", "o7")])
def test_neuron_label(role: str, label: str) -> None:
    assert neuron_label(7, role) == label


# --------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "call",
    [
        lambda g: g.neuron(99),
        lambda g: g.age(99),
        lambda g: g.lineage(99),
        lambda g: g.delete_neuron(99),
        lambda g: g.connect(0, 99, 1.0),
        lambda g: g.connect(99, 0, 1.0),
        lambda g: g.disconnect(99, 0),
        lambda g: g.has_connection(0, 99),
        lambda g: g.incoming(99),
        lambda g: g.outgoing(99),
        lambda g: g.block([0], [99]),
        lambda g: g.wire([99], [0], np.ones((1, 1))),
        lambda g: g.set_weights([0], [99], np.ones((1, 1))),
        lambda g: g.norms([99]),
    ],
)
def test_unknown_ids_raise_graph_error(graph: Graph, call) -> None:
    with pytest.raises(GraphError, match="99"):
        call(graph)


def test_dead_ids_are_not_living(graph: Graph) -> None:
    graph.delete_neuron(1)
    for call in (lambda: graph.neuron(1), lambda: graph.delete_neuron(1), lambda: graph.connect(0, 1, 1.0)):
        with pytest.raises(GraphError, match="no living neuron with id 1"):
            call()


@pytest.mark.parametrize("role", ["Hidden", "bias", "", None])
def test_bad_role_raises(graph: Graph, role) -> None:
    with pytest.raises(GraphError, match="role must be one of"):
        graph.add_neuron(role)
    assert graph.next_id == 6 and len(graph.events) == 6


@pytest.mark.parametrize("parent", [1, 99])
def test_inheriting_from_a_non_dead_neuron_raises(graph: Graph, parent: int) -> None:
    with pytest.raises(GraphError, match="can only inherit from a dead neuron"):
        graph.add_neuron("hidden", inherited_from=parent)
    assert graph.next_id == 6


def test_negative_graveyard_size_raises() -> None:
    with pytest.raises(GraphError, match="graveyard_size"):
        Graph(graveyard_size=-1)


def test_graph_error_is_a_value_error() -> None:
    assert issubclass(GraphError, ValueError)


def test_check_detects_corruption(graph: Graph) -> None:
    graph.check()
    graph.neurons[3].slot = graph.neurons[1].slot
    with pytest.raises(GraphError, match="share a storage slot"):
        graph.check()


def test_check_detects_living_ancestor(graph: Graph) -> None:
    graph.delete_neuron(1)
    child = graph.add_neuron("hidden", inherited_from=1).id
    graph.neurons[1] = graph.dead.pop(1)  # resurrect behind the graph's back
    graph.neurons[1].slot = graph._take_slot()
    with pytest.raises(GraphError, match=f"ancestor 1 of {child}"):
        graph.check()


# ----------------------------------------------------------------------- scale
N_LARGE = 5_000


def test_large_dense_graph_without_connection_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    """25M connections from one ``wire`` call: no per-connection objects, bounded memory."""

    def no_connection_objects(*args, **kwargs):
        raise AssertionError("a Connection object was created")

    monkeypatch.setattr(graph_module, "Connection", no_connection_objects)
    # A weight is a function of its (target, source) position, so any entry can be checked.
    weights = np.add.outer(np.arange(N_LARGE) * 1e-4, np.arange(N_LARGE, dtype=np.float64))
    tracemalloc.start()
    try:
        g = Graph(capacity=N_LARGE)
        ids = [g.add_neuron("hidden").id for _ in range(N_LARGE)]
        g.wire(ids, ids, weights)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del weights
    assert g.num_connections() == N_LARGE * N_LARGE
    targets, sources = [ids[0], ids[1234], ids[-1]], [ids[-1], ids[7], ids[4321]]
    block_w, block_p = g.block(targets, sources)
    expected = np.add.outer(np.array([0, 1234, N_LARGE - 1]) * 1e-4, np.array([N_LARGE - 1, 7, 4321.0]))
    assert np.array_equal(block_w, expected) and block_p.all()
    assert g.incoming(ids[9])[ids[10]] == 9e-4 + 10
    # float64 + bool storage is 9 bytes per potential connection (~225 MB here); wire's
    # temporaries may double that, a per-connection object would cost ~100x.
    assert peak < 3 * 9 * N_LARGE * N_LARGE, f"peak {peak / 1e6:.0f} MB"
    # ~1 s on an idle laptop core; a per-connection Python path would take minutes, so
    # the bound is loose enough not to flake on a loaded machine.


# ------------------------------------------------------------ wire metadata
def test_wire_records_birth_of_late_connections(graph: Graph) -> None:
    graph.cycle = 5
    graph.wire([1, 3], [0], np.ones((2, 1)))
    assert graph.connection(0, 1).born == graph.connection(0, 3).born == 5
    assert graph.connection(0, 1).inherited_from is None


def test_wire_at_birth_keeps_default_birth(graph: Graph) -> None:
    graph.cycle = 5
    new = graph.add_neuron("hidden").id
    graph.wire([new], [0, 4], np.ones((1, 2)))
    assert graph.connection(0, new).born == 5


def test_wire_forgets_metadata_of_removed_connections(graph: Graph) -> None:
    graph.cycle = 5
    graph.connect(0, 1, 1.0)
    graph.wire([1], [0], np.ones((1, 1)), present=np.zeros((1, 1), dtype=bool))
    graph.cycle = 12
    graph.wire([1], [0], np.ones((1, 1)))
    assert graph.connection(0, 1).born == 12


# ---------------------------------------------------------------- persistence
def test_state_round_trip_through_json(graph: Graph, rng: np.random.Generator) -> None:
    graph.wire(graph.ids(), graph.ids(), rng.standard_normal((6, 6)), present=rng.random((6, 6)) < 0.5)
    graph.cycle = 4
    graph.connect(0, 5, 0.25, reason="late")
    graph.delete_neuron(3)
    child = graph.add_neuron("hidden", inherited_from=3, bias=0.5, tags=["x"]).id
    graph.connect(0, child, 0.5, inherited_from=3)
    graph.meta["seed"] = "0"
    state, arrays = graph.to_state()
    restored = Graph.from_state(json.loads(json.dumps(state)), arrays)
    view = lambda g: sorted((c.source, c.target, c.weight, c.born, c.inherited_from) for c in g.connections())  # noqa: E731
    assert view(restored) == view(graph)
    assert restored.neurons == graph.neurons and restored.dead == graph.dead
    assert restored.events == graph.events and restored.graveyard == graph.graveyard
    assert (restored.cycle, restored.next_id, restored.meta) == (graph.cycle, graph.next_id, graph.meta)
    assert restored.lineage(child) == [3, child]
    restored.check()
    assert restored.add_neuron("hidden").id == graph.add_neuron("hidden").id
    assert restored.incoming(child) == graph.incoming(child)


# ------------------------------------------------------- regression tests
def test_wire_keeps_metadata_of_connections_it_keeps(graph: Graph) -> None:
    graph.delete_neuron(3)
    graph.cycle = 5
    graph.connect(0, 1, 1.0)
    graph.connect(4, 1, 1.0, inherited_from=3)
    graph.cycle = 9
    graph.wire([1], [0, 4], np.full((1, 2), 2.0))
    assert (graph.connection(0, 1).born, graph.connection(4, 1).inherited_from) == (5, 3)


def test_wire_rejects_present_of_wrong_shape(graph: Graph) -> None:
    with pytest.raises(GraphError, match="present"):
        graph.wire([1, 3, 5], [0, 4, 2], np.ones((3, 3)), present=np.array([True, False, True]))


@pytest.mark.parametrize("dead", [False, True])
def test_ages_of_unknown_or_dead_id_raise_graph_error(graph: Graph, dead: bool) -> None:
    if dead:
        graph.delete_neuron(1)
    with pytest.raises(GraphError):
        graph.ages([1 if dead else 99])
