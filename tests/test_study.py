"""Studies: measures on known curves, aggregation, a tiny real study, skip and resume, report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from neurograph.studies.extension_report import write_report
from neurograph.studies.extensions import StudyError, aggregate, measures, recovery_cycles, run_study
from neurograph_cli.main import main

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios" / "extensions"
PATHS = [SCENARIOS / "ext-uniform.yaml", SCENARIOS / "ext-uniform-inherit.yaml"]
CYCLES = 300

PHASES = [
    {"task": "easy", "end_cycle": 300, "optimum": 0.2404},
    {"task": "hard", "end_cycle": 900, "optimum": 0.2240},
    {"task": "easy", "end_cycle": 1500, "optimum": 0.2404},
]


def rows(start: int, losses: list[float], hidden: list[int], step: int = 100) -> list[dict]:
    return [{"cycle": start + step * (i + 1), "loss": l, "hidden": h} for i, (l, h) in enumerate(zip(losses, hidden))]


@pytest.fixture
def switch_rows() -> list[dict]:
    """An easy -> hard -> easy run whose answers are worked out by hand below."""
    return (
        rows(0, [0.60, 0.30, 0.25], [1, 2, 3])
        # hard: still under the band at 400 (EMA lag), above, dips in at 700, back above at 800
        + rows(300, [0.25, 0.50, 0.40, 0.33, 0.36, 0.34], [3, 5, 8, 9, 9, 10])
        # easy: reference max(0.2404, 0.241) = 0.241, band 0.25305: settled from 1300
        + rows(900, [0.30, 0.27, 0.26, 0.245, 0.242, 0.241], [10, 10, 9, 9, 9, 9])
    )


# ------------------------------------------------------------------ measures
def test_measures_of_a_known_switch(switch_rows):
    m = measures(switch_rows, PHASES)
    assert m["final_hidden"] == 9 and m["final_loss"] == 0.241
    assert m["hard_hidden"] == 10 and m["hard_loss"] == 0.34
    assert m["recover_easy_to_hard"] == 900 - 300  # reference 0.34, band 0.357: last above at 800
    assert m["recover_hard_to_easy"] == 1300 - 900


def test_measures_ignore_row_order(switch_rows):
    assert measures(switch_rows[::-1], PHASES) == measures(switch_rows, PHASES)


def test_reference_is_the_optimum_when_the_phase_ends_below_it():
    r = rows(0, [0.5, 0.26, 0.251, 0.239], [1] * 4)
    assert recovery_cycles(r, 0, 0.24) == 300  # band 1.05 * 0.24 = 0.252: 0.251 is in
    assert recovery_cycles(r, 0, None) == 400  # band 1.05 * 0.239 = 0.25095: 0.251 is out


def test_a_switch_not_felt_recovers_at_the_first_row():
    assert recovery_cycles(rows(500, [0.24, 0.241, 0.24], [1] * 3), 500, 0.2404) == 100


def test_missing_phases_give_none():
    m = measures(rows(0, [0.5, 0.4], [1, 2]), [{"task": "easy", "end_cycle": 200, "optimum": 0.24}])
    assert m == {"final_hidden": 2, "hard_hidden": None, "hard_loss": None, "final_loss": 0.4}
    cut = measures(rows(0, [0.5, 0.4], [1, 2]), PHASES)  # a run stopped in its first phase
    assert cut["recover_easy_to_hard"] is None and cut["hard_loss"] is None


def test_repeated_switches_get_numbered_names():
    tasks = ["easy", "hard", "easy", "hard"]
    phases = [{"task": t, "end_cycle": 100 * (i + 1), "optimum": None} for i, t in enumerate(tasks)]
    m = measures(rows(0, [0.5, 0.4, 0.3, 0.2], [1] * 4), phases)
    assert {"recover_easy_to_hard", "recover_hard_to_easy", "recover_easy_to_hard_3"} <= set(m)


def test_aggregate_matches_numpy_percentiles():
    rng = np.random.default_rng(0)
    records = [
        {"scenario": name, "seed": s, "folder": "x", "cycles": 9, "hard_loss": float(rng.normal()), "final_hidden": s}
        for name in ("a", "b")
        for s in range(7)
    ]
    records[3]["hard_loss"] = None  # undefined in one run: left out
    stats = aggregate(records)
    assert list(stats) == ["a", "b"] and stats["a"]["n"] == 7
    assert "seed" not in stats["a"] and "cycles" not in stats["a"]
    for name in ("a", "b"):
        values = [r["hard_loss"] for r in records if r["scenario"] == name and r["hard_loss"] is not None]
        q25, median, q75 = np.percentile(values, [25, 50, 75])
        assert stats[name]["hard_loss"] == {"median": median, "q25": q25, "q75": q75, "n": len(values)}
    assert stats["a"]["hard_loss"]["n"] == 6
    assert stats["b"]["final_hidden"]["median"] == 3.0


def test_aggregate_of_a_measure_never_defined_is_nan():
    stats = aggregate([{"scenario": "a", "seed": 0, "hard_loss": None}])
    assert np.isnan(stats["a"]["hard_loss"]["median"]) and stats["a"]["hard_loss"]["n"] == 0


# ---------------------------------------------------------------- real study
@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """2 scenarios x 2 seeds x 300 cycles in a 2-process pool: (out_dir, records, progress calls)."""
    out = tmp_path_factory.mktemp("study")
    calls = []
    records = run_study(PATHS, [0, 1], cycles=CYCLES, workers=2, out_dir=out, progress=lambda *a: calls.append(a))
    return out, records, calls


def test_study_writes_one_run_folder_per_scenario_and_seed(study):
    out, records, calls = study
    assert sorted(calls) == sorted((n, s, "done") for n in ("ext-uniform", "ext-uniform-inherit") for s in (0, 1))
    assert [(r["scenario"], r["seed"]) for r in records] == [
        ("ext-uniform", 0), ("ext-uniform", 1), ("ext-uniform-inherit", 0), ("ext-uniform-inherit", 1)
    ]  # fmt: skip
    for r in records:
        folder = out / r["scenario"] / f"seed-{r['seed']}"
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["status"] == "finished" and summary["cycles"] == CYCLES
        assert r["folder"] == str(folder) and r["cycles"] == CYCLES
        assert r["final_hidden"] == summary["hidden"]
        assert r["hard_loss"] > 0 and r["recover_easy_to_hard"] > 0 and r["recover_hard_to_easy"] > 0


def test_second_call_skips_finished_runs(study):
    out, records, _ = study
    summaries = sorted(out.glob("*/seed-*/summary.json"))
    before = [p.stat().st_mtime_ns for p in summaries]
    calls = []
    again = run_study(PATHS, [0, 1], cycles=CYCLES, workers=2, out_dir=out, progress=lambda *a: calls.append(a))
    assert {c[2] for c in calls} == {"skipped"}
    assert [p.stat().st_mtime_ns for p in summaries] == before
    assert again == records


def test_other_settings_in_the_same_folder_are_refused(study):
    out, _, _ = study
    with pytest.raises(StudyError, match="different run"):
        run_study(PATHS[:1], [0], cycles=2 * CYCLES, workers=1, out_dir=out)


def test_an_unfinished_run_continues_from_its_checkpoint(study, tmp_path):
    out, records, _ = study
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "ext-uniform" / "seed-1" / "summary.json").unlink()
    calls = []
    again = run_study(PATHS, [0, 1], cycles=CYCLES, workers=1, out_dir=copy, progress=lambda *a: calls.append(a))
    assert ("ext-uniform", 1, "done") in calls and sum(c[2] == "skipped" for c in calls) == 3
    strip = lambda r: {k: v for k, v in r.items() if k not in ("folder", "wall_s", "cycles_per_s")}  # noqa: E731
    assert [strip(r) for r in again] == [strip(r) for r in records]


def test_report_has_a_table_row_per_scenario_and_a_figure(study, tmp_path):
    _, records, _ = study
    md = write_report(records, tmp_path)
    text = md.read_text()
    assert md == tmp_path / "report.md"
    assert "| ext-uniform | 2 |" in text and "| ext-uniform-inherit | 2 |" in text
    assert "recover_hard_to_easy" in text and "[" in text
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_command_line_reports_a_finished_study(study, capsys):
    out, _, _ = study
    argv = ["study", *map(str, PATHS), "--seeds", "2", "--cycles", str(CYCLES), "--workers", "1", "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"report: {out / 'report.md'}"
    assert "skipped  ext-uniform seed-1" in captured.err  # the fixture's runs are finished: none reruns
    with pytest.raises(SystemExit) as exit_info:
        main(["study", str(PATHS[0]), "--seeds", "0"])
    assert exit_info.value.code == 2 and "expected an integer from 1 to 10,000" in capsys.readouterr().err


def test_command_line_refuses_a_bad_scenario_before_running(tmp_path, capsys):
    out = tmp_path / "out"
    bad = Path(__file__).parent / "fixtures" / "bad" / "lr_inf.yaml"
    assert main(["study", str(PATHS[0]), str(bad), "--seeds", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lr_inf.yaml: optimizer.lr" in err
    assert not out.exists()


def test_command_line_refuses_urn_scenarios(tmp_path, capsys):
    urn = Path(__file__).resolve().parents[1] / "scenarios" / "urn_spheres_cpu.yaml"
    assert main(["study", str(urn), "--seeds", "1", "--out", str(tmp_path / "out")]) == 2
    assert "model: a study trains char-RNN scenarios" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_two_scenarios_with_one_name_are_refused(tmp_path):
    other = tmp_path / "clash.yaml"
    other.write_text(PATHS[1].read_text().replace("name: ext-uniform-inherit", "name: ext-uniform"))
    with pytest.raises(StudyError, match="named 'ext-uniform'"):
        run_study([PATHS[0], other], [0], cycles=CYCLES, workers=1, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_batched_study_equals_the_single_run_study(tmp_path):
    """One batch of every (scenario, seed) gives the same records as separate runs."""
    paths = sorted((Path(__file__).resolve().parents[1] / "scenarios" / "extensions").glob("*.yaml"))[:2]
    single = run_study(paths, [0, 1], cycles=300, workers=1, out_dir=tmp_path / "single")
    batched = run_study(paths, [0, 1], cycles=300, workers=1, out_dir=tmp_path / "batched", batched=True)
    keys = ("scenario", "seed", "cycles", "final_hidden", "hard_hidden")
    assert [{k: r[k] for k in keys} for r in single] == [{k: r[k] for k in keys} for r in batched]
    for a, b in zip(single, batched):
        assert abs(a["final_loss"] - b["final_loss"]) < 1e-4
