"""Tests for neurograph.studies.paper_report and ``neurograph report``: tiny multi-seed outputs, numbers checked
against the seeds' own summary.json files, figures, missing experiments, bad folders."""

from __future__ import annotations

import json
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from neurograph.studies.seeds import run_seeds
from neurograph.studies.paper_report import PaperReportError, find_outputs, write_paper_report
from neurograph.scenario import load_scenario
from neurograph_cli.main import main

torch.set_num_threads(1)

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios" / "outgoing-l1"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CYCLES = 400
# folder -> (scenario file, seeds); folder names say nothing of the scenario, one is nested
OUTPUTS = {
    "batch/first": ("easy.yaml", [0, 1, 2]),
    "second": ("hard.yaml", [0, 1, 2]),
    "third": ("switch.yaml", [3, 5]),
    "fourth": ("fixed-10-hard.yaml", [0, 1]),
}
EXPERIMENTS = {"batch/first": "easy", "second": "hard", "third": "switch (easy -> hard -> easy)",
               "fourth": "fixed 10, hard"}  # fmt: skip
PAPER = {"batch/first": "14 at 100,000 cycles", "second": "37 at 100,000 cycles", "third": "-", "fourth": "-"}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("paper") / "results"
    for folder, (file, seeds) in OUTPUTS.items():
        scenario = load_scenario(SCENARIOS / file, ["report.every=20"], cycles=CYCLES)
        run_seeds(scenario, seeds, root / folder)
    return root


@pytest.fixture(scope="module")
def report(results) -> Path:
    return write_paper_report(results)


def table_rows(markdown: str) -> dict[str, list[str]]:
    """The outputs table: output folder -> its cells."""
    rows = {}
    for line in markdown.split("\n## ")[0].splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0].strip("`")] = cells
    return rows


def quartile_cell(cell: str) -> tuple[float, float, float]:
    """``median [q25, q75]`` -> (q25, median, q75)."""
    m = re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", cell)
    assert m, cell
    median, q25, q75 = map(float, m.groups())
    return q25, median, q75


def seed_summaries(output: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(output.glob("seed-*/summary.json"))]


def expected(values: list[float]) -> tuple[float, float, float]:
    q25, median, q75 = np.percentile(values, [25, 50, 75])
    return q25, median, q75


def test_writes_report_and_figures_by_default_under_the_folder(results, report):
    assert report == results / "report" / "report.md"
    names = sorted(p.name for p in report.parent.iterdir())
    assert names == ["figure1-outgoing-l1.png", "figure2-outgoing-l1.png", "figure3-outgoing-l1.png", "report.md"]


def test_table_numbers_are_the_seeds_medians(results, report):
    rows = table_rows(report.read_text())
    assert sorted(rows) == sorted(OUTPUTS)
    for folder, (_, seeds) in OUTPUTS.items():
        summaries = seed_summaries(results / folder)
        cells = rows[folder]
        assert cells[2] == EXPERIMENTS[folder]  # told from scenario.yaml, not the folder's name
        assert cells[3] == f"{CYCLES}" and cells[4] == str(len(seeds)) and cells[6] == PAPER[folder]
        assert quartile_cell(cells[5]) == expected([s["hidden"] for s in summaries])
        loss = quartile_cell(cells[7])
        assert loss == pytest.approx(expected([s["loss"] for s in summaries]), abs=5e-5)
        assert float(cells[8]) == pytest.approx(summaries[0]["optimum"], abs=5e-5)
        assert "outgoing-L1 revision" in cells[1]
    assert "(`fixed`, penalty `outgoing_l1`)" in rows["fourth"][1]


def test_switch_phase_ends_are_the_seeds_medians(results, report):
    text = report.read_text()
    section = text.split("## Figure 3")[1].split("## ")[0]
    summaries = seed_summaries(results / "third")
    phase_rows = [line for line in section.splitlines() if re.match(r"\| \d \|", line)]
    assert len(phase_rows) == 3
    for i, line in enumerate(phase_rows):
        cells = [c.strip() for c in line.strip("|").split("|")]
        ends = [s["phases"][i] for s in summaries]
        assert cells[1] == ends[0]["task"] and int(cells[2].replace(",", "")) == ends[0]["end_cycle"]
        assert quartile_cell(cells[3]) == expected([p["hidden"] for p in ends])
        assert quartile_cell(cells[4]) == pytest.approx(expected([p["loss"] for p in ends]), abs=5e-5)


def test_figures_are_valid_pngs_linked_from_the_report(report):
    text = report.read_text()
    for n in (1, 2, 3):
        name = f"figure{n}-outgoing-l1.png"
        data = (report.parent / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and data[12:16] == b"IHDR"
        width, height = struct.unpack(">II", data[16:24])
        assert width > 300 and height > 300 and data.endswith(b"IEND\xaeB`\x82")
        assert f"]({name})" in text


def test_missing_experiments_are_listed(results, report):
    missing = report.read_text().split("## Missing")[1]
    assert "multiplier revision: no outputs; Figures 1-3 not drawn" in missing
    line = next(x for x in missing.splitlines() if "outgoing-L1 revision: fixed sizes" in x)
    listed = [int(n) for n in re.findall(r"(?:missing: |, )(\d+)", line)]
    variable = int(np.floor(np.median([s["hidden"] for s in seed_summaries(results / "second")]) + 0.5))
    assert listed == sorted({20, 50, 100, variable} - {10})  # 10 is present
    if variable != 10:
        assert f"{variable} (the variable network's median final size here)" in line


def test_partial_folder_draws_only_what_it_can(results, tmp_path):
    shutil.copytree(results / "second", tmp_path / "only-hard")
    write_paper_report(tmp_path, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["figure1-outgoing-l1.png"]
    missing = (tmp_path / "out" / "report.md").read_text().split("## Missing")[1]
    assert "outgoing-L1 revision: no easy output; Figure 1 shows the other task only" in missing
    assert "outgoing-L1 revision: Figure 2 not drawn (no fixed-size output)" in missing
    assert "outgoing-L1 revision: no switch output; Figure 3 not drawn" in missing


def test_aggregate_is_rebuilt_from_metrics_when_absent(results, tmp_path):
    shutil.copytree(results / "second", tmp_path / "hard")
    (tmp_path / "hard" / "aggregate.json").unlink()
    rebuilt = find_outputs(tmp_path)[0].aggregate
    written = json.loads((results / "second" / "aggregate.json").read_text())
    assert rebuilt["cycles"] == written["cycles"]
    for field in ("loss", "hidden"):
        assert rebuilt[field]["median"] == pytest.approx(written[field]["median"], rel=1e-12)


def test_two_outputs_of_one_experiment_are_refused(results, tmp_path):
    for name in ("a", "b"):
        shutil.copytree(results / "second", tmp_path / name)
    with pytest.raises(PaperReportError, match=r"a and .*b are both the outgoing-L1 revision's hard"):
        write_paper_report(tmp_path)


def test_library_does_not_print(results, tmp_path, capsys):
    write_paper_report(results, tmp_path / "quiet")
    assert capsys.readouterr() == ("", "")


def test_cli_writes_the_report(results, tmp_path, capsys):
    assert main(["report", str(results), "--out", str(tmp_path / "cli")]) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 'cli' / 'report.md'}\n"
    assert (tmp_path / "cli" / "figure3-outgoing-l1.png").is_file()


@pytest.mark.parametrize("content", ["empty", "single-run", "absent"])
def test_cli_exits_2_for_a_folder_without_multi_seed_outputs(tmp_path, capsys, content):
    folder = tmp_path / "dir"
    if content != "absent":
        folder.mkdir()
    if content == "single-run":  # one run folder is not a multi-seed output
        (folder / "run").mkdir()
        (folder / "run" / "scenario.yaml").write_text("name: x\n")
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert ("not a folder" if content == "absent" else "no multi-seed outputs") in err
