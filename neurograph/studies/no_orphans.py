"""Worker processes that end with the process that started them.

A sweep's workers are separate processes (a spawn pool, a Dask
LocalCluster). Killed from outside (SIGKILL, SIGTERM, a closed terminal),
the sweep has no chance to stop them: they would go on training and then
wait for work forever, and with them the pool's resource tracker. Each
worker therefore calls :func:`die_with_parent` when it starts:

- on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` asks the kernel to kill it
  the moment its parent ends (``kernel=True``). The kernel watches the parent
  *thread* that started the worker, so only workers started from a thread
  that lives as long as they are needed may ask for it: a process pool's,
  started by ``submit`` in the sweep's thread, does; Dask's, started by a
  helper thread of each nanny, does not;
- everywhere, a daemon thread checks every :data:`POLL_S` seconds that the
  parent is still its parent (a process whose parent ended is adopted by
  another), and otherwise kills the worker the same way.

Killing a run at any moment is safe: checkpoints are replaced atomically and
a resume cuts the logs back to the last one.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

__all__ = ["POLL_S", "die_with_parent"]

POLL_S = 1.0  # the fallback's delay; costs one getppid() per second
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int, *, kernel: bool = True) -> None:
    """End this process (SIGKILL) when process ``parent``, its parent now, ends.

    ``parent`` is passed, not read: a parent that died before this call has
    already been replaced by another, and this process ends at once.
    ``kernel``: also ask Linux to signal at once (see the module docstring).
    """
    if kernel and sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # best effort: the watch below remains
    if os.getppid() != parent:
        _kill_self()
    threading.Thread(target=_watch, args=(parent,), name="die-with-parent", daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_S)
    _kill_self()


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
