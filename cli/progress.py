"""Plain progress display: one line per metrics row (the live view replaces it on terminals)."""

from __future__ import annotations

from neurograph.reporters import Reporter

__all__ = ["Progress"]


class Progress(Reporter):
    """Prints a line every ``every_rows`` metrics rows, plus events counts."""

    def __init__(self, stream, *, live: bool = False, every_rows: int = 10) -> None:
        self.stream = stream
        self.every_rows = every_rows
        self._rows = 0
        self.total = 0

    def start(self, info):
        self.total = info["total_cycles"]
        phases = " -> ".join(f"{p['task']}({p['cycles']})" for p in info["phases"])
        self.stream.write(f"{info['scenario']} seed {info['seed']}: {info['rule']} on {info['device']}, {phases}\n")

    def metrics(self, row):
        self._rows += 1
        if self._rows % self.every_rows and row["cycle"] != self.total:
            return
        opt = "" if row["optimum"] is None else f" (optimum {row['optimum']:.3f})"
        self.stream.write(
            f"cycle {row['cycle']:>7}/{self.total} {row['task']:<5} loss {row['loss']:.4f}{opt} "
            f"hidden {row['hidden']:>3} reserve {row['reserve']} +{row['adds']} -{row['deletes']} "
            f"{row['cycles_per_s']:.0f} cycles/s\n"
        )
        self.stream.flush()

    def end(self, summary):
        self.stream.write(
            f"{summary['status']}: {summary['cycles']} cycles, {summary['hidden']} hidden, "
            f"loss {summary['loss']:.4f}/char, {summary['wall_s']:.1f} s ({summary['cycles_per_s']:.0f} cycles/s)\n"
        )
