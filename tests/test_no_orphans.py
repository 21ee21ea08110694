"""No orphans: a ``neurograph sweep`` killed from outside takes its workers with it.

A real sweep (two long runs on two workers) runs in its own session; once both
runs train, every process descended from it is noted from /proc, the sweep's
process is killed, and none of the noted processes may be left after a few
seconds: not the pool's workers, not its resource tracker, not a Dask
LocalCluster's workers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from neurograph.studies import no_orphans

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")

BASE = Path(__file__).resolve().parents[1] / "scenarios" / "outgoing-l1" / "easy.yaml"
GONE_WITHIN_S = 3 * no_orphans.POLL_S + 5  # the kernel's signal is at once; the fallback polls


def stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a live process; None once it is gone (or a zombie)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return None if fields[0] in "ZX" else (fields[0], int(fields[1]), int(fields[19]))


def descendants(root: int) -> dict[int, int]:
    """pid -> start time of every live process below ``root``."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (s := stat(int(entry))) is not None:
            table[int(entry)] = s
    found, frontier = {}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (_, ppid, start) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = start
                frontier.append(pid)
    return found


def alive(pids: dict[int, int]) -> dict[int, int]:
    """Those of ``pids`` still running as the same process (a reused pid has another start time)."""
    return {pid: start for pid, start in pids.items() if (s := stat(pid)) is not None and s[2] == start}


def write_sweep(folder: Path, executor: str) -> Path:
    sets = {"phases.0.cycles": 200_000, "report.every": 50, "report.graph_every": 0, "report.checkpoint_every": 10_000}
    grid = {"structure.k": [1, 2]}
    data = {"base": str(BASE), "set": sets, "grid": grid, "seeds": 1, "executor": executor, "workers": 2}
    path = folder / "long.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def training(out: Path) -> int:
    """How many of the sweep's runs have written a metrics row."""
    return sum(1 for p in out.glob("*/seed-*/metrics.jsonl") if p.stat().st_size > 0)


@pytest.mark.parametrize(
    "executor, sig",
    [("local", signal.SIGKILL), ("local", signal.SIGTERM), ("dask", signal.SIGKILL)],
    ids=["local-sigkill", "local-sigterm", "dask-sigkill"],
)
def test_killing_a_sweep_leaves_no_process_behind(executor, sig, tmp_path):
    if executor == "dask":
        pytest.importorskip("distributed", reason="dask.distributed not installed")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "neurograph_cli.main", "sweep", str(write_sweep(tmp_path, executor))]
    sweep = subprocess.Popen(
        [*command, "--out", str(out), "--no-live"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the signal reaches the sweep's process alone
    )
    left: dict[int, int] = {}
    try:
        deadline = time.monotonic() + 180
        while training(out) < 2:
            assert sweep.poll() is None, sweep.stderr.read().decode()
            assert time.monotonic() < deadline, "the sweep's runs did not start in 180 s"
            time.sleep(0.1)
        below = descendants(sweep.pid)
        assert len(below) >= 2, below  # the two workers at least

        sweep.send_signal(sig)
        sweep.wait()
        deadline = time.monotonic() + GONE_WITHIN_S
        while (left := alive(below)) and time.monotonic() < deadline:
            time.sleep(0.1)

        assert left == {}, f"still running after the sweep was killed: {sorted(left)}"
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
        sweep.stderr.close()
        for pid in alive(left):  # only what this test started
            os.kill(pid, signal.SIGKILL)


def test_a_worker_whose_parent_is_gone_already_ends_at_once():
    code = "import time; from neurograph.studies.no_orphans import die_with_parent; die_with_parent(1); time.sleep(30)"
    done = subprocess.run([sys.executable, "-c", code], timeout=60)
    assert done.returncode == -signal.SIGKILL
