"""Inheritance of a deleted neuron's wiring: weights, dropped ends, noise, lineage, graveyard."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurograph.charrnn.network import add_hidden, build_char_rnn
from neurograph.graph import Graph
from neurograph.graphml import read_graphml, write_graphml
from neurograph.charrnn.inherit import add_inherited, choose_fossil
from neurograph.run.reporters import Reporter
from neurograph.scenario import Scenario
from neurograph.charrnn.trainer import Trainer

torch.set_num_threads(1)


@pytest.fixture
def graph() -> Graph:
    """Char-RNN over 'abcd' with 5 hidden neurons (ids 8..12), random weights, cycle 10."""
    g = build_char_rnn("abcd", 5, rng=np.random.default_rng(0), std=0.5, graveyard_size=8)
    g.cycle = 10
    return g


def heir_of(graph: Graph, victim: int, **kw) -> tuple[int, object]:
    """Delete ``victim`` and add its heir; (heir id, fossil)."""
    fossil = graph.delete_neuron(victim)
    kw.setdefault("rng", np.random.default_rng(1))
    return add_inherited(graph, fossil, **kw), fossil


# ------------------------------------------------------------------ wiring
def test_weights_to_living_neurons_equal_the_fossils(graph):
    victim = graph.ids("hidden")[1]
    heir, fossil = heir_of(graph, victim)
    expected_in = {s: w for s, w in fossil.incoming.items() if s != victim}
    expected_in[heir] = fossil.incoming[victim]
    assert graph.incoming(heir) == expected_in  # exact: no noise, penalty's rescale not applied
    assert graph.outgoing(heir) == {t: w for t, w in fossil.outgoing.items() if t != victim} | {
        heir: fossil.incoming[victim]
    }
    assert set(graph.outgoing(heir)) >= set(graph.ids("output"))
    graph.check()


def test_self_connection_carries_over(graph):
    victim = graph.ids("hidden")[0]
    heir, fossil = heir_of(graph, victim)
    assert graph.has_connection(heir, heir)
    assert graph.connection(heir, heir).weight == fossil.incoming[victim] == fossil.outgoing[victim]


def test_connections_to_dead_or_newer_neurons_are_dropped(graph):
    first, second = graph.ids("hidden")[:2]
    fossil = graph.delete_neuron(first)
    graph.delete_neuron(second)  # was wired to ``first``; now dead too
    newer = add_hidden(graph, rng=np.random.default_rng(2), std=0.1)  # born after ``first`` died
    heir = add_inherited(graph, fossil, rng=np.random.default_rng(3))
    assert second in fossil.incoming and second in fossil.outgoing
    ends = set(graph.incoming(heir)) | set(graph.outgoing(heir))
    assert second not in ends and first not in ends and newer not in ends
    assert set(graph.incoming(heir)) == (set(fossil.incoming) - {first, second}) | {heir}


def test_noise_zero_is_exact_and_noise_s_gives_ratio_std_s():
    g = build_char_rnn("abcdefghijklmnopqrstuvwxyz", 30, rng=np.random.default_rng(0), std=1.0)
    fossil = g.delete_neuron(g.ids("hidden")[0])
    rng, s, ratios = np.random.default_rng(7), 0.2, []
    for _ in range(20):
        heir = add_inherited(g, fossil, rng=rng, noise=s, consume=False)
        new_in = g.incoming(heir)
        ratios += [new_in[k] / w - 1 for k, w in fossil.incoming.items() if k in new_in]
        ratios += [w_new / fossil.outgoing[t] - 1 for t, w_new in g.outgoing(heir).items() if t in fossil.outgoing]
        g.delete_neuron(heir)
    ratios = np.array(ratios)
    assert ratios.size > 1500
    assert abs(ratios.std() - s) < 0.1 * s  # sampling error of a std over ~1600 draws: ~2%
    assert abs(ratios.mean()) < 0.05
    exact = add_inherited(g, fossil, rng=rng, noise=0.0, consume=False)
    assert all(g.incoming(exact)[k] == w for k, w in fossil.incoming.items() if k in g.neurons)


# ----------------------------------------------------------- lineage, graveyard
def test_lineage_and_generation_are_recorded(graph):
    victim = graph.ids("hidden")[2]
    heir, _ = heir_of(graph, victim)
    n = graph.neuron(heir)
    assert n.inherited_from == victim and n.generation == 1
    assert graph.lineage(heir) == [victim, heir]
    assert graph.lineage_label(heir) == f"h{victim}>h{heir}"
    assert [e for e in graph.events if e.kind == "add"][-1].lineage == f"h{victim}>h{heir}"


@pytest.mark.parametrize("consume", [True, False])
def test_consume_removes_the_fossil(graph, consume):
    heir, fossil = heir_of(graph, graph.ids("hidden")[0], consume=consume)
    assert (fossil in graph.graveyard) is not consume


def test_graveyard_keeps_only_the_most_recent_deletions():
    g = build_char_rnn("ab", 3, rng=np.random.default_rng(0), graveyard_size=5)
    rng, deleted = np.random.default_rng(1), []
    for cycle in range(1, 60):
        g.cycle = cycle
        victim = g.ids("hidden")[0]
        g.delete_neuron(victim)
        deleted.append(victim)
        add_hidden(g, rng=rng, std=0.1)
        assert len(g.graveyard) <= 5
    assert [f.neuron.id for f in g.graveyard] == deleted[-5:]
    assert len(g.dead) == len(deleted)  # metadata of every dead neuron stays
    g.check()


# ------------------------------------------------------------- choose_fossil
@pytest.fixture
def cemetery(graph) -> Graph:
    """Graph with three hidden fossils of distinct outgoing strength, plus an output fossil."""
    hidden = graph.ids("hidden")
    graph.set_weights(graph.ids("output"), [hidden[1]], np.full((4, 1), 9.0))  # the strongest
    for nid in hidden[:3]:
        graph.delete_neuron(nid)
    graph.delete_neuron(graph.ids("output")[0])  # not hidden: never chosen
    return graph


def test_choose_recent_is_the_last_hidden_deletion(cemetery):
    assert choose_fossil(cemetery, "recent", np.random.default_rng(0)).neuron.id == 10


def test_choose_strongest_has_the_largest_outgoing_l1(cemetery):
    assert choose_fossil(cemetery, "strongest", np.random.default_rng(0)).neuron.id == 9


def test_choose_random_is_uniform_over_hidden_fossils(cemetery):
    rng = np.random.default_rng(0)
    picks = [choose_fossil(cemetery, "random", rng).neuron.id for _ in range(600)]
    counts = np.bincount(picks, minlength=11)[8:11]
    assert set(picks) == {8, 9, 10}
    assert counts.min() > 150  # expected 200 each


def test_choose_with_no_hidden_fossil_is_none_and_bad_choice_is_an_error(graph):
    rng = np.random.default_rng(0)
    assert choose_fossil(graph, "recent", rng) is None
    graph.delete_neuron(graph.ids("hidden")[0])
    with pytest.raises(ValueError, match="recent"):
        choose_fossil(graph, "oldest", rng)


# ------------------------------------------------------------------- export
def test_lineage_chain_of_three_survives_graphml(graph, tmp_path):
    rng = np.random.default_rng(0)
    first = graph.ids("hidden")[0]
    second = add_inherited(graph, graph.delete_neuron(first), rng=rng)
    graph.cycle = 20
    third = add_inherited(graph, graph.delete_neuron(second), rng=rng)
    label = f"h{first}>h{second}>h{third}"
    assert graph.lineage_label(third) == label
    write_graphml(graph, tmp_path / "chain.graphml")
    back = read_graphml(tmp_path / "chain.graphml")
    assert back.lineage_label(third) == label
    assert back.neuron(third).generation == 2 and back.neuron(third).inherited_from == second
    assert back.incoming(third) == graph.incoming(third)


# ------------------------------------------------------------------ training
class EventLog(Reporter):
    """Keeps the structural events the trainer reports."""

    def __init__(self) -> None:
        self.seen = []

    def events(self, events):
        self.seen.extend(events)


def test_training_with_inherit_init_records_lineages():
    s = Scenario.model_validate(
        {
            "name": "inherit-churn",
            "loss_smoothing": 0.99,
            "structure": {
                "kind": "multipliers", "k": 1, "l1": 1e-3, "p_add": 0.3, "p_del": 0.3, "p_spontaneous": 0.05,
                "max_hidden": 9, "init": {"kind": "inherit", "choice": "recent"},
            },
            "optimizer": {"kind": "adagrad"},
            "phases": [{"task": {"kind": "easy"}, "cycles": 300}],
            "report": {"every": 100, "graph_every": 0, "checkpoint_every": 0},
        }
    )  # fmt: skip
    log = EventLog()
    trainer = Trainer(s, reporters=log)
    trainer.run()
    inherited = [e for e in log.seen if e.kind == "add" and ">" in e.lineage]
    assert inherited, "no reported add event inherited a wiring"
    for e in inherited:
        parent = int(e.lineage.split(">")[-2][1:])
        assert trainer.graph.lineage(e.neuron)[-2] == parent
        assert parent in trainer.graph.dead
    trainer.graph.check()
