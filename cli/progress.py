"""Plain progress lines for pipes, logs and ``--no-live``, and the text both displays share.

The plain reporter writes no colours or terminal codes, so its output reads the
same in a log file as on screen. The rich live view (:mod:`neurograph_cli.live`)
replaces it on terminals; :func:`neurograph_cli.display.make_progress` picks one.
"""

from __future__ import annotations

from neurograph.run.reporters import Reporter
from neurograph_cli import urn_view

__all__ = ["Progress", "format_duration", "summary_line"]

RATE_SMOOTHING = 0.7  # weight of the old cycles/s estimate in the ETA (rows' rates are noisy)


def format_duration(seconds: float | None) -> str:
    """``h:mm:ss`` (or ``m:ss`` under an hour); ``--:--`` when unknown."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "--:--"
    s = max(0, int(round(seconds)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def smoothed_rate(previous: float | None, rate: float) -> float:
    """Exponential average of cycles/s over metrics rows."""
    return rate if previous is None else RATE_SMOOTHING * previous + (1 - RATE_SMOOTHING) * rate


def eta_seconds(cycle: int, total: int, rate: float | None) -> float | None:
    """Seconds left at ``rate`` cycles/s; None while the rate is unknown."""
    return (total - cycle) / rate if rate else None


def optimum_text(optimum: float | None) -> str:
    return "n/a" if optimum is None else f"{optimum:.4f}"


def units(info: dict | None) -> tuple[str, str]:
    """(name of a training step, loss unit) of a run: cycles and nats/char unless ``info`` says otherwise."""
    info = info or {}
    return info.get("unit", "cycle"), info.get("loss_unit", "nats/char")


def rate_text(rate: float) -> str:
    """Steps per second: whole numbers for fast runs, two decimals for slow (URN epochs)."""
    return f"{rate:.0f}" if rate >= 10 else f"{rate:.2f}"


def summary_line(summary: dict, info: dict | None = None) -> str:
    """One line for the end of a run (both displays print it)."""
    if urn_view.is_urn(summary):
        return urn_view.summary_line(summary, rate_text(summary["cycles_per_s"]))
    unit, loss_unit = units(info)
    return (
        f"{summary['status']}: {summary['cycles']:,}/{summary['total_cycles']:,} {unit}s, "
        f"{summary['hidden']} hidden (reserve {summary['reserve']}), +{summary['adds']} -{summary['deletes']}, "
        f"loss {summary['loss']:.4f} {loss_unit} (optimum {optimum_text(summary['optimum'])}), "
        f"{summary['wall_s']:.1f} s ({rate_text(summary['cycles_per_s'])} {unit}s/s)"
    )


class Progress(Reporter):
    """Header, a line at each phase change and every ``every_rows``-th metrics row, and the summary.

    ``live`` is accepted for older callers and ignored: :func:`~neurograph_cli.display.make_progress` chooses the display.
    """

    def __init__(self, stream, *, live: bool = False, every_rows: int = 10) -> None:
        self.stream = stream
        self.every_rows = every_rows
        self._rows = 0
        self._phase: int | None = None
        self._rate: float | None = None
        self.total = 0
        self.phases: list[dict] = []
        self.info: dict = {}
        self.unit, self.loss_unit = units(None)

    def start(self, info):
        self.info = dict(info)
        self.unit, self.loss_unit = units(info)
        self.total = info["total_cycles"]
        self.phases = [dict(p) for p in info["phases"]]
        phases = " -> ".join(f"{p['task']}({p['cycles']})" for p in self.phases)
        resumed = f", resuming at {self.unit} {info['start_cycle']}" if info.get("start_cycle") else ""
        self._write(f"{info['scenario']} seed {info['seed']}: {info['rule']} on {info['device']}, {phases}{resumed}")

    def metrics(self, row):
        self._rows += 1
        self._rate = smoothed_rate(self._rate, row["cycles_per_s"])
        changed = row["phase"] != self._phase
        if changed:
            self._phase = row["phase"]
            self._write(self._phase_line(row))
        if changed or self._rows % self.every_rows == 0 or row["cycle"] == self.total:
            self._write(self._row_line(row))

    def status(self, text):
        self._write(f"{text}...")

    def end(self, summary):
        self._write(summary_line(summary, self.info))

    def _phase_line(self, row) -> str:
        i, n = row["phase"], len(self.phases)
        end = self.phases[i]["end"] if i < n else self.total
        optimum = "" if urn_view.is_urn(self.info) else f" (optimum {optimum_text(row['optimum'])})"
        return f"phase {i + 1}/{n}: {row['task']} until {self.unit} {end}{optimum}"

    def _row_line(self, row) -> str:
        if urn_view.is_urn(self.info):
            eta = format_duration(eta_seconds(row["cycle"], self.total, self._rate))
            return urn_view.row_line(row, self.total, rate_text(row["cycles_per_s"]), eta)
        opt = "" if row["optimum"] is None else f" (optimum {row['optimum']:.4f}, gap {row['gap']:+.4f})"
        layers = ""
        if "active" in row and "layers" in row:
            layers = f" active {row['active']} layers {'/'.join(str(n) for n in row['layers'])}"
        if "widths" in row:  # a layered network: depth and widths by area, test accuracy
            layers = f" depth {row['depth']} ({'/'.join(str(n) for n in row['widths'])})"
            if row.get("test_accuracy") is not None:
                layers += f" test {100 * row['test_accuracy']:.1f}%"
        eta = format_duration(eta_seconds(row["cycle"], self.total, self._rate))
        return (
            f"{self.unit} {row['cycle']:>7}/{self.total} {row['task']:<5} loss {row['loss']:.4f}{opt} "
            f"hidden {row['hidden']:>3} reserve {row['reserve']} +{row['adds']} -{row['deletes']}{layers} "
            f"{rate_text(row['cycles_per_s'])} {self.unit}s/s ETA {eta}"
        )

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()
