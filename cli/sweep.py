"""``neurograph sweep SWEEP.yaml``: run a sweep file, showing progress as plain text.

The library side is split by idea: :mod:`neurograph.studies.sweep_file` (the file and
its cases), :mod:`neurograph.studies.sweep_run` (running, resuming, progress hooks),
:mod:`neurograph.studies.sweep_report` (table and figures),
:mod:`neurograph_cli.sweep_progress` (the text display) and
:mod:`neurograph.studies.executors` (local pool, in-process, Dask). This module is the
command: it parses, wires the display and maps errors to exit codes: 0 every
run finished, 1 some run did not finish or the executor could not start, 2 bad
sweep file, 130 interrupted. Only the command prints.

Imports of the library happen inside :func:`run_command`, so the CLI can call
:func:`add_arguments` while building its parser without importing torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

__all__ = ["add_arguments", "run_command", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The sweep command's arguments; options given here replace the sweep file's fields."""
    parser.add_argument("sweep", type=Path, help="sweep file (see docs/sweeps.md)")
    parser.add_argument(
        "--executor",
        choices=["local", "inprocess", "dask"],
        help="where runs execute: a local process pool, this process, or dask (default: the file's, else local)",
    )
    parser.add_argument(
        "--workers", type=int, help="parallel runs (local pool, dask LocalCluster; default: the file's, else 2)"
    )
    parser.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="existing dask scheduler (implies --executor dask; default: the file's, else a local cluster)",
    )
    parser.add_argument("--out", type=Path, help="sweep folder (default: the file's out, or runs/sweeps/<name>)")
    parser.add_argument("--no-live", action="store_true", help="plain lines even on a terminal")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m neurograph_cli.sweep SWEEP.yaml [options]``, the same as ``neurograph sweep``."""
    parser = argparse.ArgumentParser(prog="neurograph sweep", description="Run a sweep file (docs/sweeps.md).")
    return run_command(add_arguments(parser).parse_args(argv))


def run_command(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run the sweep ``args`` describe; prints progress, then where the table and figures are; exit code."""
    from neurograph.studies.executors import ExecutorError
    from neurograph.studies.sweep_file import SweepError, load_sweep
    from neurograph_cli.display import is_terminal
    from neurograph_cli.sweep_progress import TextProgress
    from neurograph.studies.sweep_run import run_sweep

    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    settings = {
        "executor": args.executor or ("dask" if args.scheduler else None),
        "workers": args.workers,
        "scheduler": args.scheduler,
        "out": None if args.out is None else str(args.out),
    }
    try:
        sweep = load_sweep(args.sweep, settings)
        progress = TextProgress(stdout, live=not args.no_live and is_terminal(stdout), metrics=sweep.metrics)
        result = run_sweep(sweep, reporter=progress)
    except SweepError as e:
        stderr.write(f"neurograph: {_one_line(e)}\n")
        return 2
    except ExecutorError as e:
        stderr.write(f"neurograph: {_one_line(e)}\n")
        return 1
    except KeyboardInterrupt:
        stderr.write("neurograph: sweep interrupted; run the same command again to continue it\n")
        return 130
    stdout.write(f"table: {result.table}\n")
    if result.figures:
        stdout.write(f"figures: {result.figures[0].parent} ({len(result.figures)} PNG)\n")
    if result.failed:
        stderr.write(f"neurograph: {len(result.failed)} of {len(result.rows)} runs did not finish (see the table)\n")
        return 1
    return 0


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


if __name__ == "__main__":
    sys.exit(main())
