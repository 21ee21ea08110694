"""Tests for neurograph.layered.trainer and its member (neurograph.layered.member), through the
API and the command line: the width and depth rules' frequencies read off the graph's event
log, reproducibility, resume after a SIGKILL, ``run --seeds``, a character task on a
recurrent stack, and the commands on layered run folders and bad layered scenarios."""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

import neurograph
from neurograph.graph import Graph
from neurograph.graphml import write_graphml
from neurograph.layered.member import LayeredRun
from neurograph.layered.scenario import LayeredScenario
from neurograph.layered.trainer import LayeredTrainer
from neurograph.run.checkpoint import load_checkpoint
from neurograph.run.reporters import Reporter
from neurograph.scenario import load_scenario, scenario_to_yaml
from neurograph_cli.main import main

torch.set_num_threads(1)

DIGITS = Path(__file__).parents[1] / "scenarios" / "layered" / "digits.yaml"
BAD = Path(__file__).parent / "fixtures" / "bad"
SIGMAS = 4  # counts of random events must fall within this many standard deviations of their mean

# resume: 300 cycles, a checkpoint at 150, a SIGKILL after the metrics row of cycle 250
CYCLES, CHECKPOINT_AT, KILL_AT = 300, 150, 250
REPORT = ["report.every=25", "report.graph_every=100", f"report.checkpoint_every={CHECKPOINT_AT}"]
# small thresholds and P values, k=2 and a strong penalty: neurons and layers are added and deleted all along
CHURN = ["width.k=2", "width.threshold=0.1", "width.p_add=0.1", "width.p_del=0.1", "depth.threshold=0.1",
         "depth.p_add=0.02", "depth.p_del=0.05", "penalty.l1=0.01"]  # fmt: skip
PARITY_CHURN = {  # 4-bit parity from two layers of three, churning as CHURN does on the digits
    "phases": [{"task": {"kind": "parity", "bits": 4}, "cycles": CYCLES}],
    "network": {"stack": {"layers": 2, "size": 3}},
    "optimizer": {"kind": "adam", "lr": 1e-2},
    "width": {"k": 2, "threshold": 0.1, "p_add": 0.1, "p_del": 0.1},
    "depth": {"enabled": True, "threshold": 0.1, "p_add": 0.02, "p_del": 0.05},
    "penalty": {"l1": 3e-3},
}


# ---------------------------------------------------------------- helpers
def parity(cycles: int = 300, **sections) -> LayeredScenario:
    """A 3-bit parity scenario (fast: 8 samples) with ``sections`` replaced."""
    data = {"model": "layered", "name": "parity", "phases": [{"task": {"kind": "parity", "bits": 3}, "cycles": cycles}]}
    return LayeredScenario.model_validate({**data, **sections})


def stepped(scenario: LayeredScenario, cycles: int) -> LayeredRun:
    run = LayeredRun(scenario)
    for _ in range(cycles):
        run.step()
    return run


def area_of(graph: Graph, neuron: int) -> str:
    return (graph.neurons.get(neuron) or graph.dead[neuron]).area


def structural(graph: Graph, kind: str) -> list:
    """The rules' events of ``kind`` (those at cycle 0 build the starting network)."""
    return [e for e in graph.events if e.kind == kind and e.cycle > 0]


def per_area(graph: Graph, kind: str) -> Counter:
    return Counter(area_of(graph, e.neuron) for e in structural(graph, kind))


def within(count: float, mean: float, sd: float) -> bool:
    return abs(count - mean) <= SIGMAS * sd


def metrics(folder: Path) -> list[dict]:
    """Metrics rows without the wall-clock rate."""
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "cycles_per_s"} for line in lines]


def outputs(folder: Path) -> dict:
    """What must be the same in two runs of one (scenario, seed): metrics, events and every graph file."""
    graphs = {p.name: p.read_bytes() for p in sorted((folder / "graphs").glob("*.graphml"))}
    return {"metrics": metrics(folder), "events": (folder / "events.jsonl").read_bytes(),
            "graph": (folder / "graph.graphml").read_bytes(), "snapshots": graphs}  # fmt: skip


# ------------------------------------------------ 1. the width rule per area
WIDTH_CYCLES = 300


@pytest.mark.parametrize("p", [0.05, 0.2])
def test_each_area_adds_at_p_add_per_cycle_while_every_neuron_is_above_threshold(p):
    """T_D = 1e-9: a neuron starts at T_D/2 and is far above it after its first update, so every
    area wants a neuron every cycle and adds one with P_add: Binomial(cycles, P_add) adds per area."""
    s = parity(WIDTH_CYCLES, network={"stack": {"layers": 3, "size": 1}},
               width={"threshold": 1e-9, "k": 1, "p_add": p, "max_size": 2048})  # fmt: skip
    run = stepped(s, WIDTH_CYCLES)
    adds = per_area(run.graph, "add")
    mean, sd = WIDTH_CYCLES * p, math.sqrt(WIDTH_CYCLES * p * (1 - p))
    assert set(adds) == {"layer1", "layer2", "layer3"}
    for area, count in adds.items():
        assert within(count, mean, sd), (area, count, mean, sd)
        assert run.widths()[area] == 1 + count
    assert run.adds == sum(adds.values()) and run.deletes == 0 and not structural(run.graph, "delete")


def test_each_area_deletes_its_sub_threshold_neurons_at_p_del_down_to_one():
    """T_D huge, k = 0: every neuron is below, all but one are at risk each cycle, each deleted with P_del."""
    p, size, cycles = 0.1, 6, 200
    s = parity(cycles, network={"stack": {"layers": 3, "size": size}},
               width={"threshold": 1000.0, "new_norm": 1e-6, "k": 0, "p_del": p})  # fmt: skip
    run = stepped(s, cycles)
    deletes = structural(run.graph, "delete")
    assert per_area(run.graph, "delete") == dict.fromkeys(("layer1", "layer2", "layer3"), size - 1)
    assert run.widths() == dict.fromkeys(("layer1", "layer2", "layer3"), 1)
    assert run.deletes == 3 * (size - 1) and run.adds == 0 and not structural(run.graph, "add")
    at_risk = 0  # neuron-cycles at risk: n - 1 per area and cycle while n > 1
    for area in run.widths():
        cycles_of = Counter(e.cycle for e in deletes if area_of(run.graph, e.neuron) == area)
        n = size
        for cycle in range(1, cycles + 1):
            at_risk += n - 1
            n -= cycles_of[cycle]
        assert n == 1
    assert within(len(deletes), at_risk * p, math.sqrt(at_risk * p * (1 - p))), (len(deletes), at_risk)


# -------------------------------------------------------- 2. the depth rule
def test_layers_are_added_at_p_add_until_max_layers_one_add_area_event_each():
    p, max_layers, cycles = 0.25, 16, 200
    s = parity(cycles, network={"stack": {"layers": 1, "size": 1}}, width={"kind": "fixed"},
               depth={"enabled": True, "threshold": 1e-9, "p_add": p, "max_layers": max_layers})  # fmt: skip
    run = stepped(s, cycles)
    added = structural(run.graph, "add_area")
    assert run.layer_adds == len(added) == max_layers - 1 and run.layer_deletes == 0
    assert list(run.graph.areas) == ["input", *(f"layer{k}" for k in range(1, max_layers + 1)), "output"]
    assert [e.area for e in added] == [f"layer{k}" for k in range(2, max_layers + 1)]
    for e in added:  # each new layer's neuron enters with it
        assert [area_of(run.graph, a.neuron) for a in structural(run.graph, "add") if a.cycle == e.cycle] == [e.area]
    # the cycle of the last addition: a sum of max_layers - 1 geometric waits of mean 1/p
    m, last = max_layers - 1, added[-1].cycle
    assert within(last, m / p, math.sqrt(m * (1 - p)) / p), last
    assert last < cycles  # the cap held for the remaining cycles


def test_layer_names_are_never_reused_when_layers_come_and_go():
    """Layers start above T_L and the penalty pulls them below: with k = 2 some are added, some
    deleted, the top one among them; every new layer takes a number above all earlier ones."""
    s = parity(300, network={"stack": {"layers": 1, "size": 1}},
               width={"kind": "fixed", "threshold": 1.0, "new_norm": 2.0},
               depth={"enabled": True, "k": 2, "threshold": 1.0, "new_norm": 2.0, "p_add": 0.3, "p_del": 0.3,
                      "max_layers": 64},
               penalty={"l1": 0.01, "placement": "after_update"}, optimizer={"kind": "adam", "lr": 1e-6})  # fmt: skip
    run = stepped(s, 300)
    living, seen, top_deleted_then_added = ["layer1"], {"layer1"}, False
    for e in run.graph.events:
        if e.kind == "delete_area":
            top_deleted_then_added |= e.area == living[-1]
            living.remove(e.area)
        elif e.kind == "add_area" and e.cycle > 0:
            assert e.area not in seen
            assert int(e.area[len("layer"):]) > max(int(a[len("layer"):]) for a in seen)
            seen.add(e.area)
            living.append(e.area)
    assert living == list(run.widths())
    assert run.layer_adds >= 5 and run.layer_deletes >= 5, (run.layer_adds, run.layer_deletes)
    assert top_deleted_then_added, "the settings should delete the top layer at least once"
    assert len(structural(run.graph, "delete_area")) == run.layer_deletes
    assert set(run.graph.dead_areas) == seen - set(living)
    # the counters add up to the graph: every neuron added (with a layer or alone) and deleted
    assert len(run.graph.hidden) == 1 + run.adds - run.deletes
    assert run.adds == len(structural(run.graph, "add")) and run.deletes == len(structural(run.graph, "delete"))


# ---------------------------------------------------- 3. reproducibility
@pytest.fixture(scope="module")
def churn_file(tmp_path_factory) -> Path:
    """PARITY_CHURN as a scenario file, reporting as REPORT says."""
    report = {"every": 25, "graph_every": 100, "checkpoint_every": CHECKPOINT_AT}
    s = parity(name="parity-churn", report=report, **PARITY_CHURN)
    path = tmp_path_factory.mktemp("scenario") / "parity-churn.yaml"
    path.write_text(scenario_to_yaml(s))
    return path


RUNS = {  # name -> (scenario file, overrides, how the run is cut short after cycle KILL_AT)
    "parity": (None, [], "SIGKILL"),
    "digits": (DIGITS, [*CHURN, *REPORT], "KeyboardInterrupt"),
}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, churn_file) -> dict[str, Path]:
    """Each resume scenario trained from start to end in one go."""
    out = {}
    for name, (path, overrides, _) in RUNS.items():
        out[name] = tmp_path_factory.mktemp(name) / "run"
        neurograph.train(path or churn_file, out[name], overrides=overrides, cycles=CYCLES)
    return out


def test_the_same_scenario_and_seed_give_the_same_run_and_another_seed_another(tmp_path, churn_file, uninterrupted):
    first = uninterrupted["parity"]
    again, other = tmp_path / "again", tmp_path / "other"
    neurograph.train(churn_file, again)
    neurograph.train(churn_file, other, overrides=["seed=1"])
    assert outputs(again) == outputs(first)
    assert metrics(other) != metrics(first)
    assert (other / "graph.graphml").read_bytes() != (first / "graph.graphml").read_bytes()


# ------------------------------------------------------------- 4. resume
KILL = """
import json, os, signal, sys
import torch
torch.set_num_threads(1)
import neurograph
from neurograph.run.reporters import Reporter

path, out, overrides, cycles, stop = json.loads(sys.argv[1])

class Kill(Reporter):
    def metrics(self, row):
        if row["cycle"] >= stop:
            os.kill(os.getpid(), signal.SIGKILL)

neurograph.train(path, out, overrides=overrides, cycles=cycles, reporters=[Kill()])
"""


class Interrupt(Reporter):
    """A Ctrl-C in the middle of the cycle after KILL_AT (the loop lets it through, as the CLI's second one)."""

    def metrics(self, row):
        if row["cycle"] >= KILL_AT:
            raise KeyboardInterrupt


def cut_short(path: Path, overrides: list[str], how: str, folder: Path) -> Path:
    """A run folder whose run stopped (SIGKILL to its process, or an interrupt) after the metrics row of KILL_AT."""
    if how == "SIGKILL":
        args = json.dumps([str(path), str(folder), overrides, CYCLES, KILL_AT])
        done = subprocess.run([sys.executable, "-c", KILL, args], capture_output=True, text=True, timeout=300)
        assert done.returncode == -signal.SIGKILL, done.stderr
        assert not (folder / "summary.json").exists()
    else:
        with pytest.raises(KeyboardInterrupt):
            neurograph.train(path, folder, overrides=overrides, cycles=CYCLES, reporters=[Interrupt()])
        assert json.loads((folder / "summary.json").read_text())["status"] == "interrupted"
    assert metrics(folder)[-1]["cycle"] == KILL_AT  # rows past the checkpoint, for the resume to cut
    return folder


@pytest.mark.parametrize("name", list(RUNS))
def test_a_stopped_run_resumes_to_exactly_the_uninterrupted_one(name, tmp_path, churn_file, uninterrupted, capsys):
    path, overrides, how = RUNS[name]
    whole = uninterrupted[name]
    events = map(json.loads, (whole / "events.jsonl").read_text().splitlines())
    late = {e["kind"] for e in events if e["cycle"] > CHECKPOINT_AT}
    assert {"add", "delete"} <= late, "structural edits should follow the checkpoint"

    folder = cut_short(path or churn_file, overrides, how, tmp_path / "run")
    copy = shutil.copytree(folder, tmp_path / "copy")
    assert main(["resume", str(folder), "--no-live"]) == 0, capsys.readouterr().err
    assert outputs(folder) == outputs(whole)
    summary, expected = (json.loads((f / "summary.json").read_text()) for f in (folder, whole))
    for key in ("wall_s", "cycles_per_s"):
        summary.pop(key), expected.pop(key)
    assert summary == expected

    # the same through the API: a trainer built from the checkpoint the kill left
    state, tensors = load_checkpoint(copy)
    assert state["cycle"] == CHECKPOINT_AT
    trainer = LayeredTrainer(load_scenario(copy / "scenario.yaml"), checkpoint=(state, tensors))
    assert trainer.run()["cycles"] == CYCLES
    write_graphml(trainer.graph, tmp_path / "api.graphml", reserve=trainer.run_state.reserve_ids())
    assert (tmp_path / "api.graphml").read_bytes() == (whole / "graph.graphml").read_bytes()


@pytest.fixture(scope="module")
def float64_run() -> LayeredRun:
    """PARITY_CHURN in float64, trained to its end in one go."""
    return stepped(parity(dtype="float64", **PARITY_CHURN), CYCLES)


def test_a_float64_run_resumed_from_its_checkpoint_continues_bit_for_bit(float64_run):
    s = float64_run.scenario
    state, tensors = stepped(s, CHECKPOINT_AT).state()
    resumed = LayeredRun(s, checkpoint=(json.loads(json.dumps(state)), tensors))  # JSON: as a checkpoint keeps it
    for _ in range(CYCLES - CHECKPOINT_AT):
        resumed.step()
    assert [e.to_dict() for e in resumed.graph.events] == [e.to_dict() for e in float64_run.graph.events]
    assert resumed.loss_ema == float64_run.loss_ema
    assert all(torch.equal(resumed.blocks.params[k], p) for k, p in float64_run.blocks.params.items())


def test_a_float64_graphs_norms_survive_a_checkpoint_round_trip(float64_run):
    float64_run.write_back()
    graph = float64_run.graph
    copy = Graph.from_state(*graph.to_state())
    for before, after in zip(graph.norms(), copy.norms()):
        assert before.tolist() == after.tolist()


# ------------------------------------------------------------- 5. --seeds
def test_run_seeds_gives_the_single_runs_of_its_seeds_and_show_reads_it(tmp_path, capsys):
    """One torch thread, as a single run has: a layered batch trains its members one after the
    other, and more threads would change float32 summation order (not the decisions)."""
    common = [str(DIGITS), "--cycles", "300", "--no-live", "--threads", "1"]
    assert main(["run", *common, "--seeds", "0-1", "--out", str(tmp_path / "seeds")]) == 0
    for seed in (0, 1):
        single = tmp_path / f"single-{seed}"
        assert main(["run", *common, "--seed", str(seed), "--out", str(single)]) == 0
        assert outputs(tmp_path / "seeds" / f"seed-{seed}") == outputs(single)
    capsys.readouterr()
    assert main(["show", str(tmp_path / "seeds")]) == 0
    shown = capsys.readouterr().out
    assert "layered-digits (2 seeds: 0,1)" in shown and "depth:" in shown and "test accuracy:" in shown


# ---------------------------------------- 6. a character task, recurrent stack
@pytest.mark.parametrize("seed", [0, 1])
def test_a_recurrent_stack_learns_the_easy_task_below_the_uniform_guess(seed):
    """From one neuron grown by the width rule; ln 4 nats/char is the guess over ab()."""
    s = LayeredScenario.model_validate({
        "model": "layered", "name": "easy", "seed": seed, "phases": [{"task": {"kind": "easy"}, "cycles": 200}],
        "network": {"stack": {"layers": 1, "size": 1, "recurrent": True}},
        "optimizer": {"kind": "adam", "lr": 1e-2}, "training": {"window": 20},
    })  # fmt: skip
    summary = LayeredTrainer(s).run()
    assert summary["loss_unit"] == "nats/char" and summary["test_accuracy"] is None
    assert summary["loss"] < math.log(4) - 0.2, summary["loss"]
    assert summary["optimum"] < summary["loss"]


# ---------------------------------------------------------- 7. the commands
@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli") / "run"
    assert main(["run", str(DIGITS), "--cycles", "200", "--no-live", "--out", str(folder)]) == 0
    return folder


def test_run_writes_depth_widths_and_test_accuracy(digits_run):
    summary = json.loads((digits_run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["cycles"] == 200 and summary["model"] == "layered"
    rows = [json.loads(line) for line in (digits_run / "metrics.jsonl").read_text().splitlines()]
    for record in [*rows, summary]:
        assert record["depth"] == len(record["widths"]) == len(record["areas"]) >= 1
        assert sum(record["widths"]) == record["hidden"]
        assert 0.0 <= record["test_accuracy"] <= 1.0
    assert rows[-1]["cycle"] == 200


def test_export_graphml_gives_every_node_its_area(digits_run, tmp_path):
    out = tmp_path / "graph.graphml"
    assert main(["export", str(digits_run), "--format", "graphml", "--out", str(out)]) == 0
    ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
    root = ET.parse(out).getroot()
    keys = {k.get("attr.name"): k.get("id") for k in root.findall("g:key", ns) if k.get("for") == "node"}
    nodes = root.findall("g:graph/g:node", ns)
    data = [{d.get("key"): d.text for d in n.findall("g:data", ns)} for n in nodes]
    areas = json.loads((digits_run / "summary.json").read_text())["areas"]
    assert len(nodes) >= 64 + 10 + 1
    for d in data:
        role, area = d[keys["role"]], d[keys["area"]]
        assert area == role if role in ("input", "output") else area in areas
    assert Counter(d[keys["area"]] for d in data)["input"] == 64


def test_show_prints_a_layered_runs_depth_and_accuracy(digits_run, capsys):
    capsys.readouterr()
    assert main(["show", str(digits_run)]) == 0
    shown = capsys.readouterr().out
    assert "depth:" in shown and "layer1" in shown and "accuracy:" in shown and "nats/sample" in shown


def test_validate_prints_a_layered_scenario_fully_resolved(capsys):
    assert main(["validate", str(DIGITS)]) == 0
    resolved = capsys.readouterr().out
    assert "model: layered" in resolved and "placement: gradient" in resolved and "max_layers: 8" in resolved


@pytest.mark.parametrize(
    "name, field, expect",
    [
        ("layered_unknown_area.yaml", "network.projections", "'v1 -> v3' names an unknown area"),
        ("layered_static_recurrent.yaml", "network", "static tasks need a feed-forward area graph"),
        ("layered_depth_skips_none.yaml", "depth.enabled", "skips all or output"),
        ("layered_character_not_recurrent.yaml", "network", "character tasks need a recurrent projection"),
        ("layered_duplicate_area.yaml", "network.areas", "area names must be distinct"),
    ],
)
def test_validate_refuses_a_bad_layered_scenario_in_one_line(name, field, expect, capsys):
    capsys.readouterr()
    assert main(["validate", str(BAD / name)]) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith(f"neurograph: {BAD / name}: ") and err.count("\n") == 1, err
    assert field in err and expect in err and "Traceback" not in err and captured.out == ""


# ------------------------------------------------- a graph given by hand
def test_a_run_trains_a_graph_read_back_from_graphml(tmp_path):
    """A network written to GraphML and read back trains as the original does: same areas,
    same compiled weights, and the same run (metrics) as from the original graph."""
    import torch

    from neurograph.graphml import read_graphml, write_graphml
    from neurograph.layered.trainer import LayeredTrainer

    s = parity(150, network={"stack": {"layers": 2, "size": 2}}, depth={"enabled": True}, dtype="float64")
    graph = stepped(s, 0).graph
    rng = np.random.default_rng(3)
    for i in graph.ids("hidden") + graph.ids("output"):  # weights of its own, not the scenario's start
        sources = list(graph.incoming(i))
        graph.set_weights([i], sources, rng.normal(0.0, 0.3, (1, len(sources))))
    write_graphml(graph, tmp_path / "g.graphml")
    back = read_graphml(tmp_path / "g.graphml")
    assert list(back.areas) == list(graph.areas)
    original, imported = LayeredTrainer(s, graph=graph), LayeredTrainer(s, graph=back)
    assert imported.graph is back
    for key, p in original.run_state.blocks.params.items():
        torch.testing.assert_close(imported.run_state.blocks.params[key], p, rtol=0, atol=0)
    rows = []
    for trainer in (original, imported):
        trainer.run()
        rows.append((trainer.run_state.loss_ema, [len(trainer.graph.area_ids(a)) for a in trainer.graph.areas]))
    assert rows[0] == rows[1]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda g: g.disconnect(g.area_ids("input")[0], g.area_ids("layer1")[0]), "projection input -> layer1 lacks 1"),
        (lambda g: setattr(g, "cycle", 5), "its cycle is 5"),
        (lambda g: g.connect(g.area_ids("output")[0], g.area_ids("layer1")[0], 0.1), "outside the scenario's"),
    ],
    ids=["partial-projection", "not-at-cycle-0", "stray-connection"],
)
def test_a_graph_that_does_not_fit_is_refused_in_one_line(edit, message):
    from neurograph.layered.trainer import LayeredTrainer

    s = parity(10, network={"stack": {"layers": 2, "size": 2}})
    graph = stepped(s, 0).graph
    edit(graph)
    with pytest.raises(ValueError, match=message):
        LayeredTrainer(s, graph=graph)
