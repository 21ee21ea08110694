"""``neurograph`` command line: parse, wire reporters, map errors to exit codes.

Exit codes: 0 success, 1 unexpected failure, 2 bad input (one line on stderr,
naming the file and field), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]

EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="neurograph", description="Neural networks whose structure evolves while they learn.")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train a scenario into a run folder")
    run.add_argument("scenario", type=Path)
    run.add_argument("--out", type=Path, help="run folder (default: runs/<name>-seed<seed>)")
    run.add_argument("--seed", type=int)
    run.add_argument("--cycles", type=int, help="total cycles; phases are scaled to keep their proportions")
    run.add_argument("--device", choices=["cpu", "cuda", "auto"])
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE")
    run.add_argument("--force", action="store_true", help="overwrite an existing run folder")
    run.add_argument("--no-live", action="store_true", help="plain progress lines instead of the live view")
    run.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (default 1: small networks only lose from more)"
    )

    res = sub.add_parser("resume", help="continue an interrupted run from its last checkpoint")
    res.add_argument("run_dir", type=Path)
    res.add_argument("--no-live", action="store_true")
    res.add_argument("--threads", type=int, default=1)

    val = sub.add_parser("validate", help="check a scenario and print it fully resolved")
    val.add_argument("scenario", type=Path)
    val.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE")
    return p


def _load(args):
    from neurograph.scenario import load_scenario

    overrides = list(args.overrides)
    if getattr(args, "seed", None) is not None:
        overrides.append(f"seed={args.seed}")
    if getattr(args, "device", None) is not None:
        overrides.append(f"device={args.device}")
    scenario = load_scenario(args.scenario, overrides)
    if getattr(args, "cycles", None) is not None:
        scenario = scenario.with_cycles(args.cycles)
    return scenario


def _cmd_validate(args) -> int:
    from neurograph.scenario import scenario_to_yaml
    from neurograph.train import Trainer

    scenario = _load(args)
    Trainer(scenario)  # builds tasks and network: catches what the schema cannot
    sys.stdout.write(scenario_to_yaml(scenario))
    return 0


def _train(trainer) -> dict:
    """Run with SIGINT / SIGTERM turned into a clean stop after the current cycle."""
    import signal

    def stop(signum, frame):
        trainer.request_stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return trainer.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _cmd_run(args) -> int:
    import torch

    from neurograph.reporters import ReporterSet
    from neurograph.runfolder import RunFolder, prepare_run_folder
    from neurograph.train import Trainer
    from neurograph_cli.progress import Progress

    scenario = _load(args)
    torch.set_num_threads(max(1, args.threads))
    trainer = Trainer(scenario)
    out = args.out or Path("runs") / f"{scenario.name}-seed{scenario.seed}"
    folder = prepare_run_folder(out, scenario, force=args.force)
    trainer.reporters = ReporterSet([RunFolder(folder), Progress(sys.stdout, live=not args.no_live)])
    summary = _train(trainer)
    sys.stdout.write(f"run folder: {folder}\n")
    return 130 if summary["status"] == "interrupted" else 0


def _cmd_resume(args) -> int:
    import torch

    from neurograph.reporters import ReporterSet
    from neurograph.runfolder import RunFolder, open_for_resume
    from neurograph.train import Trainer
    from neurograph_cli.progress import Progress

    scenario, state, tensors = open_for_resume(args.run_dir)
    torch.set_num_threads(max(1, args.threads))
    trainer = Trainer(scenario)
    trainer.restore(state, tensors)
    trainer.reporters = ReporterSet([RunFolder(args.run_dir), Progress(sys.stdout, live=not args.no_live)])
    summary = _train(trainer)
    sys.stdout.write(f"run folder: {args.run_dir}\n")
    return 130 if summary["status"] == "interrupted" else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        sys.stderr.write("neurograph: interrupted\n")
        return 130


def _dispatch(args) -> int:
    from neurograph.checkpoint import CheckpointError
    from neurograph.graphml import GraphMLError
    from neurograph.runfolder import RunFolderError
    from neurograph.scenario import ScenarioError

    handlers = {"run": _cmd_run, "resume": _cmd_resume, "validate": _cmd_validate}
    try:
        return handlers[args.command](args)
    except (ScenarioError, RunFolderError, GraphMLError, CheckpointError) as e:
        sys.stderr.write(f"neurograph: {e}\n")
        return EXIT_BAD_INPUT
    except ValueError as e:  # bad values found while building (device, alphabet, ...)
        where = getattr(args, "scenario", None) or getattr(args, "run_dir", "")
        sys.stderr.write(f"neurograph: {where}: {e}\n")
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
