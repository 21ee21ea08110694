"""Helper threads that run shares of a compiled kernel, waiting for work by spinning.

:func:`neurograph.kernels.charrnn_bptt.bptt_window` splits the members of a batch
between the calling thread and helpers; the kernel releases the GIL, so the
shares run in parallel. A batched cycle is about a millisecond and the kernel
half of it, so handing a share over must cost microseconds. On a 2-core VM a
thread pool's sleeping thread took some 75 us to start its share (a sixth of
it), and numba's own parallel loops (``prange``, OpenMP) ran on one thread
whenever the calling thread had been busy between calls, that is, in every
training cycle: two threads were no faster than one. A :class:`Helper`
instead waits for its next job spinning on a flag, for a few milliseconds,
and only then sleeps on a condition; the flag is read with an atomic load in
compiled code that holds no GIL. The price: while jobs keep coming, a helper
keeps its core busy.

A helper runs one job at a time: :meth:`Helper.post`, then :meth:`Helper.join`
before the next post. A job's exception is raised by ``join``.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from neurograph.kernels.jit import numba

__all__ = ["Helper", "helpers"]

_IDLE_SPINS = 20_000_000  # flag reads a helper spins for its next job before it sleeps (~5 ms on a 2023 CPU)
_JOIN_SPINS = 100_000  # flag reads per compiled call while joining (~25 us; Python may interrupt in between)
_POSTED, _DONE, _ASLEEP = 0, 1, 2  # the flags: job numbers posted and done, 1 while the helper sleeps


class Helper:
    """One helper thread (a daemon); see the module docstring."""

    def __init__(self) -> None:
        self._flags = np.zeros(3, dtype=np.int64)
        self._wake = threading.Condition()
        self._job: tuple[Callable, tuple] | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._serve, name="neurograph-kernel", daemon=True).start()

    def post(self, fn: Callable, args: tuple) -> None:
        """Start ``fn(*args)`` on the helper."""
        self._job = (fn, args)
        self._flags[_POSTED] += 1
        if self._flags[_ASLEEP]:
            with self._wake:
                self._wake.notify()

    def join(self) -> None:
        """Wait for the posted job to finish; raise its exception, if any."""
        posted = int(self._flags[_POSTED])
        while not _spin_until(self._flags, _DONE, posted, _JOIN_SPINS):
            pass
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _serve(self) -> None:
        flags, seen = self._flags, 0
        while True:
            if not _spin_until_not(flags, _POSTED, seen, _IDLE_SPINS):
                with self._wake:
                    flags[_ASLEEP] = 1
                    while flags[_POSTED] == seen:  # checked after the flag is set: no post is missed
                        self._wake.wait()
                    flags[_ASLEEP] = 0
            seen += 1
            fn, args = self._job
            try:
                fn(*args)
            except BaseException as error:  # noqa: BLE001 - handed to the joining thread
                self._error = error
            flags[_DONE] = seen


_helpers: dict[int, list[Helper]] = {}  # process id -> its helpers (a forked child starts its own)


def helpers(count: int) -> list[Helper]:
    """This process's first ``count`` helpers, started when first needed and kept."""
    mine = _helpers.setdefault(os.getpid(), [])
    while len(mine) < count:
        mine.append(Helper())
    return mine[:count]


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
def _spin_until(flags, i, value, tries):  # pragma: no cover - compiled
    """True once flags[i] == value; False after ``tries`` reads."""
    for _ in range(tries):
        if _load_acquire(flags, i) == value:
            return True
    return False


@numba.njit(cache=True, nogil=True)
def _spin_until_not(flags, i, value, tries):  # pragma: no cover - compiled
    """True once flags[i] != value; False after ``tries`` reads."""
    for _ in range(tries):
        if _load_acquire(flags, i) != value:
            return True
    return False
