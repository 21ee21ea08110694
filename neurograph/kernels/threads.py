"""Helper threads that run shares of a compiled kernel; a thread that waits sleeps.

:func:`neurograph.kernels.charrnn_bptt.bptt_window` splits the members of a batch
between the calling thread and helpers; the kernel releases the GIL, so the
shares run in parallel. A helper waits for its next job, and the calling
thread for a helper's job to finish, on a lock: asleep, leaving the core to
whatever else runs. Waking a sleeping helper and being woken by it took 10 to
30 us on a 2-core VM, against a millisecond a cycle; the kernel's split of the
members absorbs it. Helpers that spun for their next job (up to 5 ms, longer
than a cycle, so they never slept while a batch trained) made a batch 1.3 times
faster than one thread on an idle 2-core machine, and 1.7 or more times slower
than one thread next to one other busy process.

``NEUROGRAPH_SPIN_US`` (microseconds, default 0) asks a waiting thread to spin
that long on a flag before it sleeps; the spin is one compiled call that holds
no GIL (the thread it waits for needs the GIL to report, and CPython hands a
wanted GIL over only every 5 ms), reading the flag with an atomic load.

A helper runs one job at a time: :meth:`Helper.post`, then :meth:`Helper.join`
before the next post. A job's exception is raised by ``join``.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable

import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from neurograph.kernels.jit import numba

__all__ = ["Helper", "available_cores", "helpers", "spin_s"]


def _spin_from_environment() -> float:
    """``NEUROGRAPH_SPIN_US`` in seconds (0 when unset)."""
    text = os.environ.get("NEUROGRAPH_SPIN_US", "0")
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ValueError(f"NEUROGRAPH_SPIN_US must be a number of microseconds >= 0, got {text!r}")
    return value * 1e-6


spin_s = _spin_from_environment()  # seconds a waiting thread spins before it sleeps; read at every wait
_POSTED, _DONE = 0, 1  # the flags: jobs posted, jobs done (numbered from 1)


class Helper:
    """One helper thread (a daemon); see the module docstring."""

    def __init__(self) -> None:
        self._flags = np.zeros(2, dtype=np.int64)
        self._go, self._done = threading.Lock(), threading.Lock()  # held; released once per job
        self._go.acquire()
        self._done.acquire()
        self._job: tuple[Callable, tuple] | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._serve, name="neurograph-kernel", daemon=True).start()

    def post(self, fn: Callable, args: tuple) -> None:
        """Start ``fn(*args)`` on the helper."""
        self._job = (fn, args)
        self._go.release()  # wakes the helper if it sleeps
        self._flags[_POSTED] += 1  # after the release: a helper that sees it does not sleep in acquire

    def join(self) -> None:
        """Wait for the posted job to finish; raise its exception, if any."""
        _spin(self._flags, _DONE, int(self._flags[_POSTED]))
        self._done.acquire()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _serve(self) -> None:
        flags, job = self._flags, 0
        while True:
            job += 1
            _spin(flags, _POSTED, job)
            self._go.acquire()
            fn, args = self._job
            try:
                fn(*args)
            except BaseException as error:  # noqa: BLE001 - handed to the joining thread
                self._error = error
            self._done.release()
            flags[_DONE] = job  # after the release, as in post


def _spin(flags: np.ndarray, i: int, value: int) -> None:
    """Spin until flags[i] >= value, for at most about :data:`spin_s` seconds.

    One compiled call that holds no GIL throughout: a loop of short calls
    would take the GIL back between them, and the thread it waits for needs
    the GIL to report (CPython hands a wanted GIL over only every 5 ms).
    """
    if spin_s > 0:
        _reached(flags, i, value, int(spin_s * _reads_per_second()))


def _reads_per_second() -> float:
    """How fast :func:`_reached` reads, measured once."""
    global _READS_PER_S
    if _READS_PER_S is None:
        flags, tries = np.zeros(1, dtype=np.int64), 1_000_000
        _reached(flags, 0, 1, 1)  # compiled (or loaded) before the clock starts
        start = time.perf_counter()
        _reached(flags, 0, 1, tries)
        _READS_PER_S = tries / max(time.perf_counter() - start, 1e-6)
    return _READS_PER_S


_READS_PER_S: float | None = None


_helpers: dict[int, list[Helper]] = {}  # process id -> its helpers (a forked child starts its own)


def helpers(count: int) -> list[Helper]:
    """This process's first ``count`` helpers, started when first needed and kept."""
    mine = _helpers.setdefault(os.getpid(), [])
    while len(mine) < count:
        mine.append(Helper())
    return mine[:count]


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which taskset and containers narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@intrinsic
def _load_acquire(typingctx, array, index):  # pragma: no cover - compile time
    """array[index] as an atomic load: read again on every call, never hoisted out of a loop."""

    def codegen(context, builder, signature, args):
        arrty = signature.args[0]
        ary = context.make_array(arrty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, arrty, ary, [args[1]])
        return builder.load_atomic(ptr, ordering="acquire", align=8)

    return types.int64(array, index), codegen


@numba.njit(cache=True, nogil=True)
def _reached(flags, i, value, tries):  # pragma: no cover - compiled
    """True once flags[i] >= value; False after ``tries`` reads."""
    for _ in range(tries):
        if _load_acquire(flags, i) >= value:
            return True
    return False
