"""Tests for the ``export``, ``show`` and ``plot`` subcommands: output and exit codes."""

from __future__ import annotations

import json
import shutil
import sys
import xml.etree.ElementTree as ET

import pytest
import torch

from neurograph.graphml import read_graphml
from neurograph.run.reporters import ReporterSet
from neurograph.run.folder import RunFolder, prepare_run_folder
from neurograph.scenario import Scenario
from neurograph.charrnn.trainer import Trainer
from neurograph_cli.main import main

torch.set_num_threads(1)

SCENARIO = {
    "name": "tiny-cli",
    "seed": 1,
    "loss_smoothing": 0.99,
    "structure": {"kind": "outgoing_l1", "threshold": 0.5, "l1": 1e-3, "p_add": 0.3, "p_del": 0.3, "max_hidden": 6},
    "optimizer": {"kind": "rmsprop"},
    "phases": [{"task": {"kind": "easy"}, "cycles": 100}, {"task": {"kind": "hard", "length": 4}, "cycles": 100}],
    "report": {"every": 20, "graph_every": 50, "checkpoint_every": 0},
}


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    scenario = Scenario.model_validate(SCENARIO)
    folder = prepare_run_folder(tmp_path_factory.mktemp("cli") / "run", scenario)
    Trainer(scenario, reporters=ReporterSet([RunFolder(folder)])).run()
    return folder


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize(
    "argv",
    [["show"], ["plot"], ["export", "--format", "gexf"], ["export", "--format", "csv", "--cycle", "50"]],
)
def test_not_a_run_folder_exits_2(tmp_path, capsys, argv):
    assert main([argv[0], str(tmp_path), *argv[1:]]) == 2
    assert "not a run folder" in one_line_error(capsys)


def test_missing_cycle_exits_2_listing_cycles(run_dir, tmp_path, capsys):
    assert main(["export", str(run_dir), "--format", "graphml", "--cycle", "75", "--out", str(tmp_path / "g")]) == 2
    assert "no snapshot at cycle 75; snapshot cycles: 50, 100, 150" in one_line_error(capsys)


@pytest.mark.parametrize("fmt", ["graphml", "gexf", "csv", "sonata", "neuprint"])
def test_export_formats(run_dir, tmp_path, capsys, fmt):
    out = tmp_path / f"out.{fmt}"
    assert main(["export", str(run_dir), "--format", fmt, "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    if fmt == "graphml":
        assert read_graphml(out).ids() == read_graphml(run_dir / "graph.graphml").ids()
    elif fmt == "gexf":
        assert ET.parse(out).getroot().find("{http://www.gexf.net/1.2draft}graph").get("mode") == "dynamic"
    elif fmt == "sonata":
        names = ["circuit_config.json", "edge_types.csv", "edges.h5", "node_types.csv", "nodes.h5"]
        assert sorted(p.name for p in out.iterdir()) == names
    else:
        assert sorted(p.name for p in out.iterdir()) == ["connections.csv", "graph.csv", "neurons.csv"]


def test_sonata_export_without_h5py_exits_2_naming_the_extra(run_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py raises ImportError
    assert main(["export", str(run_dir), "--format", "sonata", "--out", str(tmp_path / "s")]) == 2
    assert "pip install 'neurograph[sonata]'" in one_line_error(capsys)
    assert not (tmp_path / "s").exists()


def test_show_prints_the_summary(run_dir, capsys):
    s = json.loads((run_dir / "summary.json").read_text())
    assert main(["show", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "tiny-cli (seed 1)" in out
    assert "status:         finished" in out
    assert "cycles:         200 / 200" in out
    assert f"hidden:         {s['hidden']} (reserve {s['reserve']})" in out
    assert f"{s['loss']:.4f} nats/char, optimum {s['optimum']:.4f} (gap {s['loss'] - s['optimum']:+.4f})" in out
    assert f"+{s['adds']} / -{s['deletes']}" in out
    assert f"{s['cycles_per_s']:,.0f}" in out
    lines = out.splitlines()
    for p in s["phases"]:
        want = [str(p["phase"] + 1), p["task"], str(p["end_cycle"]), str(p["hidden"]), f"{p['loss']:.4f}"]
        assert any(line.split()[:5] == want for line in lines), want


def test_show_incomplete_run(run_dir, tmp_path, capsys):
    copy = shutil.copytree(run_dir, tmp_path / "run")
    (copy / "summary.json").unlink()
    (copy / "checkpoint.safetensors").unlink()
    assert main(["show", str(copy)]) == 0
    out = capsys.readouterr().out
    assert "status:         incomplete" in out
    assert "200 / 200 (no checkpoint)" in out


def test_plot_writes_png_next_to_the_run(run_dir, tmp_path, capsys):
    copy = shutil.copytree(run_dir, tmp_path / "run")
    assert main(["plot", str(copy)]) == 0
    assert (copy / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out == f"wrote {copy / 'plot.png'}\n"


def test_plot_unwritable_out_exits_2(run_dir, tmp_path, capsys):
    assert main(["plot", str(run_dir), "--out", str(tmp_path / "missing" / "p.png")]) == 2
    assert "cannot write" in one_line_error(capsys)


MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-", "svg": b"<?xml"}


@pytest.mark.parametrize("fmt", ["png", "pdf", "svg"])
@pytest.mark.parametrize("kind", ["curves", "lineage"])
def test_plot_writes_the_format_its_file_name_asks_for(run_dir, tmp_path, capsys, fmt, kind):
    out = tmp_path / f"fig.{fmt}"
    assert main(["plot", str(run_dir), "--kind", kind, "--out", str(out)]) == 0
    data = out.read_bytes()
    assert data.startswith(MAGIC[fmt]) and (fmt != "svg" or b"<svg" in data[:2000])


def test_plot_refuses_a_format_it_cannot_write(run_dir, tmp_path, capsys):
    assert main(["plot", str(run_dir), "--out", str(tmp_path / "fig.jpg")]) == 2
    assert "'.jpg' is not one of .png, .pdf, .svg" in one_line_error(capsys)
    assert not (tmp_path / "fig.jpg").exists()


def test_plot_lineage_next_to_the_run(run_dir, tmp_path, capsys):
    copy = shutil.copytree(run_dir, tmp_path / "run")
    (copy / "graph.graphml").unlink()  # as while it runs: from the checkpoint
    (copy / "summary.json").unlink()
    assert main(["plot", str(copy), "--kind", "lineage"]) == 0
    assert (copy / "lineage.png").read_bytes().startswith(MAGIC["png"])


@pytest.fixture(scope="session")
def seeds_dir(tmp_path_factory):
    from neurograph.studies.seeds import run_seeds

    out = tmp_path_factory.mktemp("cli") / "seeds"
    run_seeds(Scenario.model_validate(SCENARIO), [1, 2, 5], out)
    return out


def test_show_a_seeds_folder(seeds_dir, capsys):
    import numpy as np

    assert main(["show", str(seeds_dir)]) == 0
    out = capsys.readouterr().out
    summaries = [json.loads((seeds_dir / f"seed-{s}" / "summary.json").read_text()) for s in (1, 2, 5)]
    q25, median, q75 = np.percentile([s["loss"] for s in summaries], [25, 50, 75])
    assert "tiny-cli (3 seeds: 1,2,5)" in out and "status:         3 finished" in out
    assert f"loss:           {median:.4f} [{q25:.4f}-{q75:.4f}] nats/char" in out
    lines = out.splitlines()
    for seed, s in zip((1, 2, 5), summaries):
        assert any(line.split()[:2] == [str(seed), "finished"] and f"{s['loss']:.4f}" in line for line in lines)


def test_plot_a_seeds_folder(seeds_dir, tmp_path, capsys):
    assert main(["plot", str(seeds_dir), "--out", str(tmp_path / "seeds.svg")]) == 0
    assert b"<svg" in (tmp_path / "seeds.svg").read_bytes()[:2000]
    assert main(["plot", str(seeds_dir)]) == 0
    assert (seeds_dir / "plot.png").read_bytes().startswith(MAGIC["png"])
