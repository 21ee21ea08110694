"""Which progress display a command uses: the rich live view on a terminal, plain lines elsewhere."""

from __future__ import annotations

import os

from neurograph.run.reporters import Reporter
from neurograph_cli.progress import Progress
from neurograph_cli.seeds_progress import SeedsLines, SeedsView

__all__ = ["is_terminal", "make_progress", "make_seeds_progress"]


def is_terminal(stream) -> bool:
    """Whether ``stream`` is a terminal that understands cursor movement (not ``TERM=dumb``)."""
    isatty = getattr(stream, "isatty", None)
    try:
        tty = bool(isatty and isatty())
    except (ValueError, OSError):  # closed or detached stream
        return False
    return tty and os.environ.get("TERM") != "dumb"


def make_progress(stream, *, live: bool) -> Reporter:
    """The live view when ``live`` and ``stream`` is a terminal, else plain :class:`Progress` lines."""
    if live and is_terminal(stream):
        from neurograph_cli.live import LiveView  # imports rich: only when it is shown

        return LiveView.for_stream(stream)
    return Progress(stream)


def make_seeds_progress(stream, *, live: bool) -> SeedsView:
    """For a ``--seeds`` batch: the live table when ``live`` and ``stream`` is a terminal, else plain
    :class:`SeedsLines`; its ``reporter_for`` gives each member the reporter that feeds it."""
    if live and is_terminal(stream):
        from neurograph_cli.seeds_live import SeedsLiveView  # imports rich: only when it is shown

        return SeedsLiveView.for_stream(stream)
    return SeedsLines(stream)
