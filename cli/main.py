"""``neurograph`` command line: parse, wire reporters, map errors to exit codes.

Exit codes: 0 success, 1 unexpected failure, 2 bad input (one line on stderr,
naming the file and field), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import NamedTuple

from neurograph import __version__
from neurograph_cli.arguments import seed_list, thread_count

__all__ = ["main"]

EXIT_BAD_INPUT = 2

STEPS = (
    "Runs count steps: a char-RNN trains in cycles (one 40-character window each), a URN in epochs "
    "(passes over its training set); --cycles, the report intervals and the progress lines count the same steps."
)
SET_HELP = (
    "override a scenario field, the value parsed as YAML, e.g. --set structure.p_del=0.1 --set "
    "phases.1.task.length=5; repeatable, applied in order; setting a kind to another drops the old kind's "
    "fields (set the new kind first); default: none (docs/scenarios.md lists every field)"
)
SCENARIO_HELP = "scenario YAML file (every field: docs/scenarios.md or `neurograph schema --markdown`)"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="neurograph", description="Neural networks whose structure evolves while they learn.", epilog=STEPS
    )
    p.add_argument("--version", action="version", version=f"neurograph {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train a scenario into a run folder", epilog=STEPS)
    run.add_argument("scenario", type=Path, help=SCENARIO_HELP)
    run.add_argument("--out", type=Path, help="run folder (default: runs/<name>-seed<seed>; --seeds: runs/<name>-seeds)")
    seeding = run.add_mutually_exclusive_group()
    seeding.add_argument(
        "--seed", type=int, help="the run's seed, 0 to 4,294,967,295 (default: the scenario's seed, itself 0 by default)"
    )
    seeding.add_argument(
        "--seeds",
        type=seed_list,
        help="train several seeds in one batch, e.g. 0-19 or 0,3,7: OUT/seed-<n>/ + OUT/aggregate.json "
        "(char-RNN only; default: one run)",
    )
    run.add_argument(
        "--cycles",
        type=int,
        help="total steps: char-RNN cycles or URN epochs; phases are scaled to keep their proportions "
        "(default: the scenario's phases)",
    )
    run.add_argument(
        "--device",
        choices=["cpu", "cuda", "auto"],
        help="where tensors live; auto: cuda when there is a GPU (default: the scenario's device, itself cpu by default)",
    )
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE", help=SET_HELP)
    run.add_argument("--force", action="store_true", help="overwrite an existing run folder")
    run.add_argument("--no-live", action="store_true", help="plain progress lines instead of the live view")
    run.add_argument(
        "--threads",
        type=thread_count,
        default=None,
        help="torch CPU threads (default: 1 for one char-RNN, all cores for --seeds and the URN); the run folder "
        "records it and resume uses it",
    )

    res = sub.add_parser(
        "resume", help="continue an interrupted run from its last checkpoint (a --seeds folder: as one batch)"
    )
    res.add_argument("run_dir", type=Path, help="run folder, or the OUT of run --seeds (its seed-<n>/ folders)")
    res.add_argument("--no-live", action="store_true", help="plain progress lines instead of the live view")
    res.add_argument(
        "--threads",
        type=thread_count,
        default=None,
        help="torch CPU threads (default: the count the run was trained with, recorded in its checkpoint; "
        "another count continues, with a warning, but no longer bit for bit)",
    )
    res.add_argument(
        "--allow-changed",
        action="store_true",
        help="continue although scenario.yaml changed since the checkpoint (recorded in RUN_DIR/changes.jsonl)",
    )

    val = sub.add_parser("validate", help="check a scenario and print it fully resolved")
    val.add_argument("scenario", type=Path, help=SCENARIO_HELP)
    val.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE", help=SET_HELP)

    sch = sub.add_parser("schema", help="print the scenario JSON Schema (for editors) or its Markdown reference")
    sch.add_argument(
        "--markdown", action="store_true", help="the Markdown reference of every field (docs/scenarios.md) instead"
    )
    sch.add_argument(
        "--model", choices=["charrnn", "urn", "layered"], help="one model's schema only (default: all, as one schema)"
    )

    exp = sub.add_parser(
        "export", help="write a run's graph as GraphML, dynamic GEXF, CSV, SONATA or neuPrint CSV (docs/exports.md)"
    )
    exp.add_argument("run_dir", type=Path, help="run folder")
    exp.add_argument(
        "--format",
        required=True,
        choices=["graphml", "gexf", "csv", "sonata", "neuprint"],
        help="graphml: one graph; gexf: the whole run as a dynamic graph; csv: node and edge tables; "
        "sonata: SONATA nodes.h5 and edges.h5 (needs h5py: neurograph[sonata]) and neuprint: neuPrint-style "
        "neurons.csv and connections.csv, both with deleted neurons and connections and their birth and "
        "death cycles (required)",
    )
    exp.add_argument(
        "--cycle", type=int, help="export the snapshot at this step instead of the final graph (default: final)"
    )
    exp.add_argument(
        "--out", type=Path, help="file (a folder for csv, sonata and neuprint; default: RUN_DIR/export/...)"
    )

    show = sub.add_parser("show", help="print a run's summary (also for an unfinished run)")
    show.add_argument("run_dir", type=Path, help="run folder, or the OUT of run --seeds (median and IQR over seeds)")

    plot = sub.add_parser("plot", help="figure of a run: loss and hidden size against cycles, or its neurons' lineage")
    plot.add_argument("run_dir", type=Path, help="run folder, or the OUT of run --seeds (median and IQR over seeds)")
    plot.add_argument(
        "--kind",
        choices=["curves", "lineage"],
        default="curves",
        help="curves: loss and size (default); lineage: each hidden neuron's life, inheritance as links",
    )
    plot.add_argument("--out", type=Path, help="file, .png, .pdf or .svg (default: RUN_DIR/plot.png or lineage.png)")

    rep = sub.add_parser("report", help="the papers' Figures 1-3 and a table from the multi-seed outputs in DIR")
    rep.add_argument("run_dir", metavar="DIR", type=Path, help="folder of multi-seed outputs (DIR/NAME/seed-*/)")
    rep.add_argument("--out", type=Path, help="report folder (default: DIR/report)")

    from neurograph_cli.sweep import add_arguments as add_sweep_arguments  # light: no torch until it runs

    add_sweep_arguments(sub.add_parser("sweep", help="run a sweep file: a scenario over a grid of settings and seeds"))
    from neurograph_cli.study import add_arguments as add_study_arguments

    add_study_arguments(
        sub.add_parser("study", help="the extension study: scenarios over seeds in parallel, then report.md and .png")
    )
    return p


def _load(args):
    """The scenario of ``args``, with ``--set``, ``--seed``, ``--device`` and ``--cycles`` applied."""
    from neurograph.scenario import load_scenario

    overrides = list(args.overrides)
    if getattr(args, "seed", None) is not None:
        overrides.append(f"seed={args.seed}")
    if getattr(args, "device", None) is not None:
        overrides.append(f"device={args.device}")
    return load_scenario(args.scenario, overrides, cycles=getattr(args, "cycles", None))


def _cmd_validate(args) -> int:
    from neurograph.scenario import scenario_to_yaml

    scenario = _load(args)
    trainer = _engine(scenario).trainer
    check = getattr(trainer, "check", trainer)  # the URN checks data and geometry without its S x S matrix
    check(scenario)  # builds tasks (and the char-RNN's network): catches what the schema cannot
    sys.stdout.write(scenario_to_yaml(scenario))
    return 0


def _train(trainer):
    """``trainer.run()`` (a trainer or a batch) with SIGINT / SIGTERM turned into a
    clean stop after the current cycle; while the run writes its final outputs
    (no cycle left to wait for) they interrupt at once, and ``resume`` redoes them."""
    import signal

    def stop(signum, frame):
        if getattr(trainer, "finishing", False):
            raise KeyboardInterrupt
        trainer.request_stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return trainer.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Engine(NamedTuple):
    """What trains one model, what writes its run folder, and how it uses the cores."""

    trainer: type
    folder: type  # the run-folder reporter
    all_cores: bool  # the URN's S x S matrices gain from threads; one small char-RNN only pays their overhead
    batches_seeds: bool  # ``run --seeds`` trains the seeds as one batch
    threaded_batch: bool = True  # a --seeds batch spreads its members over the cores (the char-RNN kernel)


def _engine(scenario) -> _Engine:
    """The engine of ``scenario.model``: the one place the command line picks code by model."""
    if scenario.model == "urn":
        from neurograph.urn.runfolder import URNRunFolder
        from neurograph.urn.train import URNTrainer

        return _Engine(URNTrainer, URNRunFolder, all_cores=True, batches_seeds=False)
    from neurograph.run.folder import RunFolder

    if scenario.model == "layered":
        from neurograph.layered.trainer import LayeredTrainer

        # members step one after another on small blocks: threads only add overhead (and summation orders)
        return _Engine(LayeredTrainer, RunFolder, all_cores=False, batches_seeds=True, threaded_batch=False)
    from neurograph.charrnn.trainer import Trainer

    return _Engine(Trainer, RunFolder, all_cores=False, batches_seeds=True)


def _threads(args, scenario) -> int:
    """Torch threads: ``--threads``, else the cores this process may use for the URN
    and for a ``--seeds`` batch (whose kernel wakes sleeping helper threads only
    while they pay: neurograph.kernels.charrnn_bptt), 1 for a single char-RNN."""
    from neurograph.kernels.threads import available_cores

    if args.threads is not None:
        return args.threads
    engine = _engine(scenario)
    batch = bool(getattr(args, "seeds", None)) and engine.threaded_batch
    return available_cores() if engine.all_cores or batch else 1


def _cmd_run(args) -> int:
    import torch

    from neurograph.run.reporters import ReporterSet
    from neurograph.run.folder import prepare_run_folder
    from neurograph_cli.display import make_progress

    scenario = _load(args)
    torch.set_num_threads(_threads(args, scenario))
    if args.seeds:
        return _run_seeds(args, scenario)
    engine = _engine(scenario)
    trainer = engine.trainer(scenario)  # builds tasks and network before any folder is written
    out = args.out or Path("runs") / f"{scenario.name}-seed{scenario.seed}"
    folder = prepare_run_folder(out, scenario, force=args.force)
    trainer.reporters = ReporterSet([engine.folder(folder), make_progress(sys.stdout, live=not args.no_live)])
    return _train_into(trainer, folder)


def _train_into(trainer, folder: Path) -> int:
    """Train a single run writing ``folder``; on an interrupt, say how to continue it."""
    try:
        summary = _train(trainer)
    except KeyboardInterrupt:  # a second Ctrl-C, or one while the final outputs were written
        return _interrupted(folder)
    sys.stdout.write(f"run folder: {folder}\n")
    return _interrupted(folder) if summary["status"] == "interrupted" else 0


def _interrupted(folder: Path) -> int:
    """Exit code 130, after the command that continues the run in ``folder``."""
    import shlex

    sys.stderr.write(f"neurograph: interrupted; resume with: neurograph resume {shlex.quote(str(folder))}\n")
    return 130


def _run_seeds(args, scenario) -> int:
    """All seeds in one batched tensor program, shown as one view with a row (or a final line) per seed."""
    from neurograph.studies.seeds import run_seeds

    if not _engine(scenario).batches_seeds:
        raise ValueError("--seeds batches the char-RNN; run URN seeds one by one or with `neurograph sweep`")
    out = args.out or Path("runs") / f"{scenario.name}-seeds"
    progress = _seeds_progress(args)
    try:
        summaries = run_seeds(scenario, args.seeds, out, force=args.force, reporter_for=progress, train=_train)
    except KeyboardInterrupt:
        return _interrupted(out)
    return _seeds_done(out, summaries)


def _seeds_progress(args):
    """``reporter_for`` of a batch: each member's reporter feeds one view of every seed (live or plain lines)."""
    from neurograph_cli.display import make_seeds_progress

    return make_seeds_progress(sys.stdout, live=not args.no_live).reporter_for


def _seeds_done(out: Path, summaries: list[dict]) -> int:
    sys.stdout.write(f"run folders: {out}/seed-*, aggregate: {out}/aggregate.json\n")
    return 0 if all(s["status"] == "finished" for s in summaries) else _interrupted(out)


def _resume_seeds(args) -> int:
    """Every unfinished seed of a ``run --seeds`` folder, continued in one batch."""
    import torch

    from neurograph.studies.seeds import resume_seeds

    from neurograph.kernels.threads import available_cores

    recorded = _recorded_threads(args.run_dir)
    torch.set_num_threads(_resume_threads(args, recorded, available_cores()))  # a batch: as run --seeds
    try:
        summaries = resume_seeds(
            args.run_dir, reporter_for=_seeds_progress(args), train=_train, allow_changed=args.allow_changed
        )
    except KeyboardInterrupt:
        return _interrupted(args.run_dir)
    return _seeds_done(args.run_dir, summaries)


def _recorded_threads(seeds_dir: Path) -> int | None:
    """The thread count a ``--seeds`` batch was trained with: its first checkpoint's (None if none says)."""
    from neurograph.studies.seeds import seed_folders
    from neurograph.run.checkpoint import CheckpointError, load_checkpoint

    for folder in seed_folders(seeds_dir):
        try:
            return load_checkpoint(folder)[0].get("threads")
        except CheckpointError:
            continue
    return None


def _resume_threads(args, recorded, default: int) -> int:
    """``--threads``, else the count the run was trained with (``recorded``, from its checkpoint), else
    ``default``; continuing with another count than the recorded one is said on stderr."""
    if args.threads is None:
        return recorded if isinstance(recorded, int) and recorded >= 1 else default
    if isinstance(recorded, int) and args.threads != recorded:
        sys.stderr.write(
            f"neurograph: warning: {args.run_dir} was trained with --threads {recorded}; continuing with "
            f"{args.threads}, so the result may differ from an uninterrupted run's (omit --threads to keep {recorded})\n"
        )
    return args.threads


def _cmd_resume(args) -> int:
    import torch

    from neurograph.run.reporters import ReporterSet
    from neurograph.run.folder import RunFolderError, open_for_resume
    from neurograph.run.reader import finished
    from neurograph.studies.seeds import is_seeds_dir
    from neurograph_cli.display import make_progress

    if is_seeds_dir(args.run_dir):
        return _resume_seeds(args)
    scenario, state, tensors = open_for_resume(args.run_dir, allow_changed=args.allow_changed)
    engine = _engine(scenario)
    if finished(args.run_dir):
        raise RunFolderError(f"{args.run_dir}: run already finished at cycle {state['cycle']}")
    torch.set_num_threads(_resume_threads(args, (state or {}).get("threads"), _threads(args, scenario)))
    reporters = ReporterSet([engine.folder(args.run_dir), make_progress(sys.stdout, live=not args.no_live)])
    try:
        trainer = engine.trainer(scenario, reporters=reporters, checkpoint=None if state is None else (state, tensors))
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:
        raise RunFolderError(
            f"{args.run_dir}/checkpoint.safetensors: does not fit scenario.yaml ({type(e).__name__}: {e})"
        ) from None
    return _train_into(trainer, args.run_dir)


def _cmd_export(args) -> int:
    from neurograph.run.export import export_run

    out = export_run(args.run_dir, args.format, args.out, cycle=args.cycle)
    sys.stdout.write(f"wrote {out}\n")
    return 0


def _cmd_show(args) -> int:
    from neurograph.studies.seeds import is_seeds_dir
    from neurograph.run.reader import read_jsonl, run_summary

    if is_seeds_dir(args.run_dir):  # a run --seeds folder: median and IQR over its seeds
        from neurograph_cli.seeds_view import show_text

        sys.stdout.write(show_text(args.run_dir))
        return 0
    from neurograph_cli import urn_view

    summary = run_summary(args.run_dir)
    if urn_view.run_model(args.run_dir) == "urn":
        rows = read_jsonl(Path(args.run_dir) / "metrics.jsonl")
        wall = _wall_text(summary.get("wall_s"))
        sys.stdout.write(urn_view.show_text(args.run_dir, summary, rows[-1] if rows else None, wall))
    else:
        sys.stdout.write(_summary_text(args.run_dir, summary))
    return 0


def _summary_text(run_dir: Path, s: dict) -> str:
    """Aligned plain-text table of a run summary (see :func:`neurograph.run.reader.run_summary`)."""
    cycles = f"{s['cycles']:,} / {s['total_cycles']:,}"
    if s["status"] == "incomplete":
        at = s.get("checkpoint_cycle")
        cycles += " (no checkpoint)" if at is None else f" (resumable from cycle {at:,})"
    rate = s.get("cycles_per_s")
    fields = [
        ("run", str(run_dir)),
        ("scenario", f"{s['scenario']} (seed {s['seed']})"),
        ("status", s["status"]),
        ("cycles", cycles),
        ("hidden", "n/a" if s["hidden"] is None else f"{s['hidden']} (reserve {s.get('reserve', 'n/a')})"),
        ("loss", _loss_text(s.get("loss"), s.get("optimum"), s.get("loss_unit", "nats/char"))),
        *_layered_fields(s),
        ("adds / deletes", f"+{s['adds']} / -{s['deletes']}"),
        ("wall time", _wall_text(s.get("wall_s"))),
        ("cycles/s", "n/a" if rate is None else f"{rate:,.0f}"),
    ]
    lines = [f"{name + ':':<16}{value}" for name, value in fields]
    table = [("phase", "task", "at cycle", "hidden", "loss", "optimum")]
    for p in s["phases"]:
        end = f"{p['end_cycle']:,}" + (" (so far)" if p.get("partial") else "")
        optimum = "n/a" if p["optimum"] is None else f"{p['optimum']:.4f}"
        table.append((str(p["phase"] + 1), p["task"], end, str(p["hidden"]), f"{p['loss']:.4f}", optimum))
    widths = [max(len(row[k]) for row in table) for k in range(len(table[0]))]
    lines += [""] + ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
    return "\n".join(lines) + "\n"


def _wall_text(seconds: float | None) -> str:
    from neurograph_cli.progress import format_duration

    return f"{seconds:.1f} s" if seconds is not None and seconds < 60 else format_duration(seconds)


def _loss_text(loss: float | None, optimum: float | None, unit: str = "nats/char") -> str:
    if loss is None:
        return "n/a"
    if optimum is None:
        return f"{loss:.4f} {unit}"
    return f"{loss:.4f} {unit}, optimum {optimum:.4f} (gap {loss - optimum:+.4f})"


def _layered_fields(s: dict) -> list[tuple[str, str]]:
    """A layered run's depth, widths by area, layer changes and accuracies (none for other models)."""
    if s.get("depth") is None:
        return []
    areas = ", ".join(f"{a} {w}" for a, w in zip(s.get("areas") or [], s.get("widths") or []))
    fields = [("depth", f"{s['depth']} ({areas})")]
    if s.get("layer_adds") is not None:
        fields.append(("layers +/-", f"+{s['layer_adds']} / -{s['layer_deletes']}"))
    if s.get("test_accuracy") is not None:
        fields.append(("accuracy", f"train {s['accuracy']:.4f}, test {s['test_accuracy']:.4f}"))
    return fields


def _cmd_plot(args) -> int:
    from neurograph.studies.seeds import is_seeds_dir
    from neurograph.run.reader import read_jsonl, run_folder, run_phases
    from neurograph.run.plots import figure_format, plot_run
    from neurograph_cli.urn_view import run_model

    seeds = is_seeds_dir(args.run_dir)
    run_dir = args.run_dir if seeds else run_folder(args.run_dir)
    out = args.out or run_dir / ("lineage.png" if args.kind == "lineage" else "plot.png")
    figure_format(out)  # .png, .pdf or .svg, before anything is drawn
    try:
        if seeds:
            from neurograph_cli.seeds_view import plot_folder

            plot_folder(run_dir, out)
        elif args.kind == "lineage":
            _plot_lineage(run_dir, out)
        else:
            rows = read_jsonl(run_dir / "metrics.jsonl")
            if not rows:
                raise ValueError("no metrics rows to plot yet")
            plot = plot_run
            if run_model(run_dir) == "urn":
                from neurograph.urn.plots import plot_urn_run as plot  # accuracy and structure, in epochs
            elif run_model(run_dir) == "layered":
                from neurograph.layered.plots import plot_layered_run as plot  # widths by area, depth
            plot(rows, run_phases(run_dir, rows), out)
    except OSError as e:
        raise ValueError(f"cannot write {out}: {e.strerror or e}") from None
    sys.stdout.write(f"wrote {out}\n")
    return 0


def _plot_lineage(run_dir: Path, out: Path) -> None:
    from neurograph.run.lifetime import run_timeline
    from neurograph.run.plots import plot_lineage
    from neurograph.run.reader import read_jsonl, run_phases

    neurons, cycle, unit = run_timeline(run_dir)
    plot_lineage(neurons, run_phases(run_dir, read_jsonl(run_dir / "metrics.jsonl")), cycle, out, unit=unit)


def _cmd_schema(args) -> int:
    import json

    from neurograph.scenario_reference import json_schema, markdown_reference

    if args.markdown and args.model:
        raise ValueError("--markdown documents every model; leave out --model")
    text = markdown_reference() if args.markdown else json.dumps(json_schema(args.model), indent=2) + "\n"
    sys.stdout.write(text)
    return 0


def _cmd_report(args) -> int:
    from neurograph.studies.paper_report import write_paper_report

    sys.stdout.write(f"wrote {write_paper_report(args.run_dir, args.out)}\n")
    return 0


def _cmd_study(args) -> int:
    from neurograph_cli.study import run_command

    return run_command(args)  # prints progress; bad input raises to _dispatch


def _cmd_sweep(args) -> int:
    from neurograph_cli.sweep import run_command

    return run_command(args)  # prints its own errors and progress; exit codes as documented there


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return _dispatch(args)
    except KeyboardInterrupt:
        sys.stderr.write("neurograph: interrupted\n")
        return 130


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line on stderr, as errors are (an old checkpoint resumed without its checks)."""
    sys.stderr.write(f"neurograph: warning: {_one_line(message)}\n")


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def _dispatch(args) -> int:
    from neurograph.run.checkpoint import CheckpointError
    from neurograph.graphml import GraphMLError
    from neurograph.run.folder import RunFolderError
    from neurograph.scenario import ScenarioError

    handlers = {
        "run": _cmd_run,
        "resume": _cmd_resume,
        "validate": _cmd_validate,
        "export": _cmd_export,
        "show": _cmd_show,
        "plot": _cmd_plot,
        "sweep": _cmd_sweep,
        "study": _cmd_study,
        "report": _cmd_report,
        "schema": _cmd_schema,
    }
    try:
        return handlers[args.command](args)
    except (ScenarioError, RunFolderError, GraphMLError, CheckpointError) as e:
        sys.stderr.write(f"neurograph: {_one_line(e)}\n")
        return EXIT_BAD_INPUT
    except ValueError as e:  # bad values found while building (device, alphabet, ...)
        where = getattr(args, "scenario", None) or getattr(args, "run_dir", "")
        sys.stderr.write(f"neurograph: {where}: {_one_line(e)}\n")
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
