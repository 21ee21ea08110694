"""Tests for neurograph.layered.scenario: each validator's message, ``parse_projection``,
and the defaults (the outgoing-L1 revision's rule in every area, Adam lr 1e-3 with the
penalty in the gradient)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from neurograph.charrnn.scenario import OutgoingL1Rule
from neurograph.layered.scenario import (
    MAX_AREAS,
    MAX_WIDTH,
    STATIC_TASKS,
    DepthRule,
    LayeredScenario,
    NetworkConfig,
    StackConfig,
    WidthRule,
    parse_projection,
)
from neurograph.scenario import ScenarioError, load_scenario

PARITY = [{"task": {"kind": "parity"}, "cycles": 10}]
EASY = [{"task": {"kind": "easy"}, "cycles": 10}]
CHAIN = {"areas": [{"name": "v1"}, {"name": "v2"}], "projections": ["input -> v1", "v1 -> v2", "v2 -> output"]}
FEEDBACK = {**CHAIN, "projections": [*CHAIN["projections"], "v2 -> v1"]}  # v1 reads v2's previous step


def layered(phases=PARITY, **sections) -> LayeredScenario:
    return LayeredScenario.model_validate({"model": "layered", "name": "t", "phases": phases, **sections})


def network_error(**network) -> str:
    with pytest.raises(ValidationError) as info:
        NetworkConfig.model_validate(network)
    return str(info.value)


def scenario_error(phases=PARITY, **sections) -> str:
    with pytest.raises(ValidationError) as info:
        layered(phases, **sections)
    return str(info.value)


# ------------------------------------------------------------ parse_projection
@pytest.mark.parametrize(
    "text, pair",
    [
        ("a -> b", ("a", "b")),
        ("a->b", ("a", "b")),
        ("  input  ->  v1  ", ("input", "v1")),
        ("v1 -> v1", ("v1", "v1")),
        ("Area_2 -> output", ("Area_2", "output")),
    ],
)
def test_parse_projection_reads_source_and_target(text, pair):
    assert parse_projection(text) == pair


@pytest.mark.parametrize("text", ["", "a", "a -> ", "-> b", "a -> b -> c", "a => b", "a - > b", "1a -> b", "a, b",
                                  "a -> b!", "a \u2192 b"])  # fmt: skip
def test_parse_projection_refuses_anything_else_and_says_what_it_accepts(text):
    with pytest.raises(ValueError) as info:
        parse_projection(text)
    assert str(info.value) == f"network.projections: {text!r} is not 'source -> target'"


# ------------------------------------------------------------ NetworkConfig
def test_a_network_defaults_to_a_stack_of_one_neuron_in_one_layer():
    net = NetworkConfig()
    assert net.stack is None and net.areas is None and net.projections is None
    assert net.stack_or_default() == StackConfig(layers=1, size=1, skips="all", recurrent=False)
    assert net.activation == "tanh" and net.init_std == 0.1


def test_an_explicit_area_graph_is_accepted():
    net = NetworkConfig.model_validate({**CHAIN, "projections": [*CHAIN["projections"], "v2 -> v1", "input -> v2"]})
    assert [a.name for a in net.areas] == ["v1", "v2"] and len(net.projections) == 5
    assert net.areas[0].size == 1 and net.areas[0].grow


@pytest.mark.parametrize(
    "network, message",
    [
        ({"projections": ["input -> output"]}, "network.projections needs network.areas"),
        ({**CHAIN, "stack": {"layers": 2}}, "network: give either a stack or areas with projections, not both"),
        ({"areas": CHAIN["areas"]}, "network.areas needs network.projections"),
        (
            {"areas": [{"name": "v1"}, {"name": "v1"}], "projections": ["input -> v1", "v1 -> output"]},
            "network.areas: area names must be distinct",
        ),
        (
            {**CHAIN, "projections": ["input -> v1", "v1 -> v2", "v2 -> output", "v2 -> input"]},
            "network.projections: 'v2 -> input': nothing projects to input or from output",
        ),
        (
            {**CHAIN, "projections": ["input -> v1", "v1 -> v2", "v2 -> output", "output -> v1"]},
            "network.projections: 'output -> v1': nothing projects to input or from output",
        ),
        (
            {**CHAIN, "projections": ["input -> v1", "v1 -> v2", "v2 -> output", "v1 -> v2"]},
            "network.projections: a projection is listed twice",
        ),
        (
            {**CHAIN, "projections": ["input -> v1", "v1 -> output", "v1 -> v2"]},
            "network.projections: area 'v2' is not on a path from input to output",
        ),
        (
            {**CHAIN, "projections": ["input -> v1", "v2 -> v1", "v2 -> output", "v1 -> output"]},
            "network.projections: area 'v2' is not on a path from input to output",
        ),
        ({**CHAIN, "projections": ["input -> v1", "v1 to v2", "v2 -> output"]}, "'v1 to v2' is not 'source -> target'"),
    ],
    ids=["projections-without-areas", "stack-and-areas", "areas-without-projections", "duplicate-area",
         "into-input", "from-output", "listed-twice", "dead-end", "unreachable", "unparsable"],
)  # fmt: skip
def test_network_validators_say_what_is_wrong(network, message):
    assert message in network_error(**network)


def test_a_projection_naming_an_unknown_area_lists_the_known_ones():
    message = network_error(**{**CHAIN, "projections": [*CHAIN["projections"], "v1 -> v3"]})
    assert "network.projections: 'v1 -> v3' names an unknown area; known: " in message
    known = message.split("known: ")[1].split("[")[0].strip()
    assert sorted(known.split(", ")) == ["input", "output", "v1", "v2"]


UNKNOWN_AREA = """
from neurograph.layered.scenario import NetworkConfig
try:
    NetworkConfig.model_validate({"areas": [{"name": "v1"}, {"name": "v2"}],
                                  "projections": ["input -> v1", "v1 -> v2", "v2 -> output", "v1 -> v3"]})
except ValueError as e:
    print(str(e).split("known: ")[1].split(" [")[0])
"""


def test_the_unknown_area_message_lists_the_known_areas_in_evaluation_order_in_every_process():
    lists = set()
    for hash_seed in ("0", "1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run([sys.executable, "-c", UNKNOWN_AREA], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        lists.add(done.stdout.strip())
    assert lists == {"input, v1, v2, output"}


@pytest.mark.parametrize("name", ["input", "output", "1v", "v-1", "v 1", "_v", "\u00e9t\u00e9"])
def test_an_area_name_must_be_a_letter_then_letters_digits_or_underscore_and_not_reserved(name):
    message = network_error(areas=[{"name": name}], projections=[f"input -> {name}", f"{name} -> output"])
    expected = f"network.areas: area name {name!r} must be a letter then letters, digits or _, and not input or output"
    assert expected in message


def test_area_names_are_bounded_at_forty_characters():
    ok = "v" + "x" * 39
    NetworkConfig.model_validate({"areas": [{"name": ok}], "projections": [f"input -> {ok}", f"{ok} -> output"]})
    assert "at most 40 characters" in network_error(areas=[{"name": ok + "x"}], projections=["input -> output"])


@pytest.mark.parametrize(
    "section, field, value, bound",
    [
        (StackConfig, "layers", MAX_AREAS + 1, f"less than or equal to {MAX_AREAS}"),
        (StackConfig, "layers", 0, "greater than or equal to 1"),
        (StackConfig, "size", MAX_WIDTH + 1, f"less than or equal to {MAX_WIDTH}"),
        (StackConfig, "skips", "some", "'all', 'output' or 'none'"),
        (WidthRule, "p_add", 1.5, "less than or equal to 1"),
        (WidthRule, "p_del", -0.1, "greater than or equal to 0"),
        (WidthRule, "threshold", 0.0, "greater than 0"),
        (WidthRule, "kind", "outgoing_l2", "'reserve' or 'fixed'"),
        (DepthRule, "max_layers", MAX_AREAS + 1, f"less than or equal to {MAX_AREAS}"),
        (DepthRule, "k", -1, "greater than or equal to 0"),
        (WidthRule, "p_dell", 0.1, "Extra inputs are not permitted"),
    ],
)
def test_rule_and_stack_fields_are_bounded(section, field, value, bound):
    with pytest.raises(ValidationError) as info:
        section.model_validate({field: value})
    assert field in str(info.value) and bound in str(info.value)


# ------------------------------------------------------------ LayeredScenario
@pytest.mark.parametrize(
    "phases, sections, message",
    [
        (
            [*PARITY, *EASY],
            {"network": {"stack": {"recurrent": True}}},
            "phases: static and character tasks cannot share one network",
        ),
        (
            [*PARITY, {"task": {"kind": "digits"}, "cycles": 10}],
            {},
            "phases: static tasks must share inputs and classes (one kind, one bits)",
        ),
        (
            [*PARITY, {"task": {"kind": "parity", "bits": 5}, "cycles": 10}],
            {},
            "phases: static tasks must share inputs and classes (one kind, one bits)",
        ),
        (EASY, {}, "network: character tasks need a recurrent projection (stack.recurrent: true, or a projection "
                   "into an area evaluated before its source)"),
        (EASY, {"network": CHAIN}, "network: character tasks need a recurrent projection"),
        (PARITY, {"network": {"stack": {"recurrent": True}}}, "network: static tasks need a feed-forward area graph"),
        (
            PARITY,
            {"network": FEEDBACK},
            "network: static tasks need a feed-forward area graph",
        ),
        (
            PARITY,
            {"network": {**CHAIN, "projections": [*CHAIN["projections"], "v1 -> v1"]}},
            "network: static tasks need a feed-forward area graph",
        ),
        (
            PARITY,
            {"network": {"stack": {"layers": 2, "skips": "none"}}, "depth": {"enabled": True}},
            "depth.enabled: needs network.stack with skips all or output (a layer must be removable without "
            "cutting the path from input to output)",
        ),
        (PARITY, {"network": CHAIN, "depth": {"enabled": True}}, "depth.enabled: needs network.stack with skips"),
        (
            PARITY,
            {"network": {"stack": {"layers": 4}}, "depth": {"enabled": True, "max_layers": 3}},
            "network.stack.layers: 4 exceeds depth.max_layers (3)",
        ),
    ],
    ids=["static-and-character", "digits-and-parity", "parity-bits", "character-without-recurrence",
         "character-feed-forward-areas", "static-recurrent-stack", "static-feedback", "static-self-projection",
         "depth-skips-none", "depth-with-areas", "stack-above-max-layers"],
)  # fmt: skip
def test_scenario_validators_say_what_is_wrong(phases, sections, message):
    assert message in scenario_error(phases, **sections)


@pytest.mark.parametrize(
    "phases, network, sequence",
    [
        (PARITY, {"stack": {"layers": 3, "skips": "none"}}, False),
        ([{"task": {"kind": "digits"}, "cycles": 5}] * 2, CHAIN, False),
        (EASY, {"stack": {"recurrent": True}}, True),
        ([*EASY, {"task": {"kind": "hard"}, "cycles": 5}], FEEDBACK, True),
        (EASY, {**CHAIN, "projections": [*CHAIN["projections"], "v2 -> v2"]}, True),
    ],
    ids=["static-chain", "digits-twice-areas", "character-stack", "character-feedback", "character-self"],
)  # fmt: skip
def test_valid_pairings_of_task_and_network_and_which_are_sequences(phases, network, sequence):
    s = layered(phases, network=network)
    assert s.sequence is sequence
    assert (s.phases[0].task.kind not in STATIC_TASKS) is sequence


def test_depth_bounds_the_starting_stack_only_when_enabled():
    layered(network={"stack": {"layers": 9}})  # depth off: max_layers (8) does not apply
    layered(network={"stack": {"layers": 8, "skips": "output"}}, depth={"enabled": True})


def test_phases_are_bounded_in_number_and_total_cycles():
    assert "at least 1" in scenario_error([])
    assert "more than the 100,000,000 allowed" in scenario_error([{"task": {"kind": "parity"}, "cycles": 10**8}] * 2)


def test_model_must_be_layered():
    with pytest.raises(ValidationError, match="'layered'"):
        LayeredScenario.model_validate({"model": "charrnn", "name": "t", "phases": PARITY})


# ------------------------------------------------------------------ defaults
def test_defaults_are_the_outgoing_l1_revision_per_area_with_adam_and_the_penalty_in_the_gradient():
    s = layered()
    assert s.penalty.placement == "gradient" and s.penalty.l1 == 1e-4
    assert s.optimizer.kind == "adam" and s.optimizer.lr == 1e-3
    assert (s.optimizer.beta1, s.optimizer.beta2, s.optimizer.grad_clip) == (0.9, 0.999, None)
    w = s.width
    assert (w.kind, w.k, w.threshold, w.p_add, w.p_del, w.new_norm) == ("reserve", 1, 0.05, 0.01, 0.05, 0.5)
    assert w.p_spontaneous == 0.0  # the text's rule: additions only while fewer than k are below T_D
    assert (w.max_size, w.selector.kind, w.init.kind, w.init.std) == (256, "uniform", "random", 0.1)
    d = s.depth
    assert (d.enabled, d.k, d.threshold, d.p_add, d.p_del) == (False, 1, 0.05, 0.002, 0.01)
    assert (d.max_layers, d.new_size, d.new_norm, d.selector.kind) == (8, 1, 0.5, "uniform")
    assert s.network.stack_or_default() == StackConfig()
    assert (s.training.batch_size, s.training.window, s.training.loss_smoothing) == (32, 40, 0.99)
    assert (s.report.every, s.report.graph_every, s.report.checkpoint_every) == (100, 0, 5000)
    assert (s.seed, s.device, s.dtype, s.graveyard, s.description) == (0, "cpu", "float32", 64, "")


def test_the_width_rule_is_miconis_outgoing_l1_rule():
    """k, T_D, P_add, P_del, lambda and the new neurons' norm as the char-RNN's outgoing-L1 rule has them."""
    miconi, s = OutgoingL1Rule(), layered()
    assert (s.width.k, s.width.threshold, s.width.p_add, s.width.p_del) == (1, 0.05, 0.01, 0.05)
    assert (s.width.k, s.width.threshold, s.width.p_add, s.width.p_del) == (
        miconi.k, miconi.threshold, miconi.p_add, miconi.p_del)  # fmt: skip
    assert (s.penalty.l1, s.width.new_norm) == (miconi.l1, miconi.new_norm)


def test_scenario_sections_are_frozen_and_refuse_unknown_keys():
    s = layered()
    with pytest.raises(ValidationError):
        s.width.k = 3
    assert "width.p_dell" in scenario_error(width={"p_dell": 0.1})
    assert "Extra inputs are not permitted" in scenario_error(colour="red")


# --------------------------------------------------------- loading from files
def test_a_scenario_file_error_names_the_file_and_the_field(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: layered\nname: t\nwidth: {p_dell: 0.1}\nphases: [{task: {kind: parity}, cycles: 10}]\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert "bad.yaml" in message and "width.p_dell" in message and "\n" not in message.strip()


def test_text_task_paths_are_resolved_against_the_scenario_file(tmp_path: Path):
    (tmp_path / "corpus.txt").write_text("abcabc" * 50)
    path = tmp_path / "text.yaml"
    path.write_text("model: layered\nname: t\nnetwork: {stack: {recurrent: true}}\n"
                    "phases: [{task: {kind: text, path: corpus.txt}, cycles: 10}]\n")  # fmt: skip
    s = load_scenario(path)
    assert s.sequence and Path(s.phases[0].task.path) == tmp_path / "corpus.txt"


def test_the_shipped_digits_scenario_is_valid_and_scales_with_cycles():
    path = Path(__file__).parents[1] / "scenarios" / "layered" / "digits.yaml"
    s = load_scenario(path, cycles=200)
    assert s.model == "layered" and s.depth.enabled and not s.sequence
    assert s.total_cycles == 200 and s.report.checkpoint_every == 50
    assert s.name == "layered-digits"


@pytest.mark.parametrize(
    "sections, message",
    [
        ({"width": {"k": 5, "max_size": 4}}, "width.k: 5 reserve neurons cannot exceed width.max_size (4)"),
        ({"depth": {"enabled": True, "k": 3, "max_layers": 2}},
         "depth.k: 3 reserve layers cannot exceed depth.max_layers (2)"),
        ({"network": {"stack": {"size": 9}}, "width": {"max_size": 8}},
         "network: a starting area of 9 neurons exceeds width.max_size (8)"),
    ],
    ids=["width-k", "depth-k", "start-above-cap"],
)
def test_reserves_and_starting_sizes_must_fit_their_caps(sections, message):
    assert message in scenario_error([{"task": {"kind": "parity"}, "cycles": 10}], **sections)
