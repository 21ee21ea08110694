"""Tests for neurograph.charrnn.network: character tags, and which hand-built graphs a
char-RNN trainer accepts (``Trainer(scenario, graph=g)``)."""

from __future__ import annotations

import numpy as np
import pytest

from neurograph.charrnn.network import build_char_rnn, char_tag, check_char_rnn
from neurograph.charrnn.scenario import EasyTask, OutgoingL1Rule, Phase, Scenario
from neurograph.charrnn.trainer import Trainer
from neurograph.graph import Graph
from neurograph.graphml import read_graphml, write_graphml

ABC = "ab()"


def scenario(cycles: int = 60) -> Scenario:
    return Scenario(name="hand", structure=OutgoingL1Rule(), phases=[Phase(task=EasyTask(), cycles=cycles)])


def hand_built(alphabet: str = ABC, hidden: int = 2, tags: bool = True) -> Graph:
    g = Graph()
    ins = [g.add_neuron("input", tags=[char_tag(c)] if tags else []) for c in alphabet]
    outs = [g.add_neuron("output", tags=[char_tag(c)] if tags else []) for c in alphabet]
    hs = [g.add_neuron("hidden") for _ in range(hidden)]
    g.wire(hs, ins + hs, np.full((hidden, len(ins) + hidden), 0.1))
    g.wire(outs, hs, np.full((len(outs), hidden), 0.1))
    return g


@pytest.mark.parametrize("ch, tag", [("a", "char:a"), (" ", "char: "), (",", "char:U+002C"), ("\n", "char:U+000A")])
def test_characters_that_cannot_be_tags_are_named_by_code_point(ch, tag):
    assert char_tag(ch) == tag


def test_a_text_alphabet_with_commas_and_newlines_round_trips_through_graphml(tmp_path):
    g = build_char_rnn("\n ,.ab", 2, rng=np.random.default_rng(0))
    write_graphml(g, tmp_path / "g.graphml")
    again = read_graphml(tmp_path / "g.graphml")
    assert [sorted(n.tags) for n in again.inputs] == [sorted(n.tags) for n in g.inputs]


@pytest.mark.parametrize("tags", [True, False])
def test_a_hand_built_graph_trains_in_place(tags):
    g = hand_built(tags=tags)
    trainer = Trainer(scenario(), graph=g)
    summary = trainer.run()
    assert summary["status"] == "finished" and trainer.graph is g and g.cycle == 60
    assert g.ids("hidden")[:2] == [8, 9]  # the hand-built neurons are still there (nothing was deleted yet)


def change(g: Graph, how: str) -> Graph:
    if how == "input to output":
        g.connect(g.inputs[0], g.outputs[0], 0.1)
    elif how == "output to hidden":
        g.connect(g.outputs[0], g.hidden[0], 0.1)
    elif how == "cycle":
        g.cycle = 5
    return g


@pytest.mark.parametrize(
    "graph, message",
    [
        (hand_built("ab"), r"the alphabet 'ab\(\)' has 4 characters, so the graph needs 4 input and 4 output neurons"),
        (hand_built(hidden=0), "needs at least one hidden neuron"),
        (hand_built("ba()"), r"input i0 is tagged char:b but stands for 'a' in the alphabet"),
        (change(hand_built(), "input to output"), "connection i0 -> o4 is input -> output; a char-RNN has only"),
        (change(hand_built(), "output to hidden"), "connection o4 -> h8 is output -> hidden"),
        (change(hand_built(), "cycle"), "its cycle is 5; a trainer starts from a graph at cycle 0"),
    ],
    ids=["alphabet", "no hidden", "tags", "input to output", "output to hidden", "cycle"],
)
def test_graphs_a_char_rnn_cannot_train_are_refused(graph, message):
    with pytest.raises(ValueError, match=message):
        check_char_rnn(graph, ABC)
    with pytest.raises(ValueError, match=message):
        Trainer(scenario(), graph=graph)


def test_graph_is_for_a_single_run():
    with pytest.raises(ValueError, match="graph= are for a single scenario"):
        Trainer([scenario()], graph=hand_built())
    with pytest.raises(TypeError, match="a URN scenario trains with"):
        Trainer("scenarios/switch.yaml")
