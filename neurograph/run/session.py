"""Stop requests and wall time of a run that may span several sessions (resumes).

Trainers mix this in: ``wall`` is the wall time of earlier sessions (restored
from a checkpoint), :meth:`start_session` marks the start of this one, and
:meth:`elapsed` adds them up. :meth:`request_stop` only sets a flag, so it is
safe to call from a signal handler; the trainer checks it where it can stop
cleanly.
"""

from __future__ import annotations

import time

__all__ = ["Session"]


class Session:
    wall: float = 0.0  # seconds of earlier sessions
    _session: tuple[float, float] | None = None  # (start, wall before) while running
    _stop_requested: bool = False

    def start_session(self) -> float:
        """Mark the start of this session; returns its perf_counter time."""
        t0 = time.perf_counter()
        self._session = (t0, self.wall)
        return t0

    def request_stop(self) -> None:
        """Ask the running trainer to stop at its next clean point."""
        self._stop_requested = True

    def elapsed(self) -> float:
        """Wall time of the run so far, seconds, across resumed sessions."""
        if self._session is None:
            return self.wall
        start, before = self._session
        return before + time.perf_counter() - start
