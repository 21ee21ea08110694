"""One writer per run folder: an OS lock on the file ``.lock`` inside it.

A ``flock`` lock belongs to an open file, and the kernel drops it when the
process holding the file ends, however it ends: a run killed with SIGKILL
never leaves a stale lock. The file itself is never deleted (deleting it
would let a second writer lock a new file while the first still holds the
old one). A lock is advisory: only neurograph's writers honour it. Where
there is no ``flock`` (Windows) nothing is locked.

A process holds a folder's lock once: :func:`acquire` of a folder it already
holds returns True at once. So ``prepare_run_folder`` or ``open_for_resume``
take the lock before they change anything, and the
:class:`~neurograph.run.folder.RunFolder` that writes the run keeps it until
its ``end`` calls :func:`release`. The open file is not inherited by
processes this one starts.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

__all__ = ["LOCK", "acquire", "release", "holds"]

LOCK = ".lock"

_held: dict[str, int] = {}  # real path of a run folder -> open descriptor of its lock file
_guard = threading.Lock()  # in-process executors run several writers in threads


def acquire(folder: Path) -> bool:
    """Lock ``folder`` for this process; False if another process holds it.

    OSError if the lock file cannot be created (a read-only folder).
    """
    key = os.path.realpath(folder)
    with _guard:
        if key in _held or fcntl is None:
            return True
        fd = os.open(os.path.join(key, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        _held[key] = fd
        return True


def release(folder: Path) -> None:
    """Let go of ``folder``'s lock, if this process holds it."""
    with _guard:
        fd = _held.pop(os.path.realpath(folder), None)
    if fd is not None:
        os.close(fd)


def holds(folder: Path) -> bool:
    """Whether this process holds ``folder``'s lock."""
    return os.path.realpath(folder) in _held
