"""``neurograph study SCENARIO... --seeds N``: the extension study, run and reported.

Every (scenario, seed) runs in a process pool (:func:`neurograph.studies.extensions.run_study`);
finished runs are kept, so the same command continues an interrupted study.
Then ``OUT/report.md`` and ``OUT/report.png`` are written
(:func:`neurograph.studies.extension_report.write_report`). Progress goes to
stderr (a line per run), the report's path to stdout. Exit codes: 0 done,
1 some run failed, 2 bad input (raised to :func:`neurograph_cli.main.main`).

Imports of the library happen inside :func:`run_command`, so the CLI can call
:func:`add_arguments` while building its parser without importing torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from neurograph_cli.arguments import seed_count, worker_count

__all__ = ["add_arguments", "run_command"]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("scenarios", nargs="+", type=Path, metavar="SCENARIO", help="char-RNN scenario YAML files")
    parser.add_argument("--seeds", type=seed_count, default=10, help="seeds 0..N-1 per scenario (default 10)")
    parser.add_argument(
        "--cycles", type=int, help="total cycles per run; phases keep their proportions (default: the scenario's)"
    )
    parser.add_argument("--workers", type=worker_count, default=2, help="parallel runs, one CPU thread each (default 2)")
    parser.add_argument("--out", type=Path, default=Path("runs/extensions"), help="study folder (default runs/extensions)")
    parser.add_argument("--batched", action="store_true", help="train all runs in one batched tensor program")
    return parser


def run_command(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run the study ``args`` describe and write its report; the exit code (bad input raises)."""
    from neurograph.studies.extension_report import write_report
    from neurograph.studies.extensions import StudyError, run_study

    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr

    def progress(name: str, seed: int, status: str) -> None:
        stderr.write(f"{status:>8}  {name} seed-{seed}\n")

    try:
        records = run_study(
            args.scenarios, range(args.seeds), cycles=args.cycles, workers=args.workers, out_dir=args.out,
            progress=progress, batched=args.batched,
        )  # fmt: skip
    except StudyError as e:
        stderr.write(f"neurograph: {' '.join(str(e).split())}\n")
        return 1
    stdout.write(f"report: {write_report(records, args.out)}\n")
    return 0
