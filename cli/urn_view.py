"""How the command line shows a URN run: progress lines, the summary line and ``show``'s text.

A URN run counts epochs and nats per sample, and what it has to show is its
structure: train and test accuracy, the active hidden neurons (of the living
ones), how many fire at each iteration, the layers they form, deletions and
the forward fractions by layer and by z. The char-RNN's words (reserve,
additions, the optimum) have no meaning here and are not shown. Plain text
only: the live view (:mod:`neurograph_cli.live`) builds its rich lines from
the same figures.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "is_urn",
    "slashed",
    "percent",
    "row_line",
    "summary_line",
    "show_text",
    "run_model",
]

ABLATION_NAMES = {  # summary["ablation"] key -> what the ablation keeps
    "neurons": "active neurons",
    "synapses": "active network",
    "forward": "forward only",
    "adjacent": "adjacent layers",
}


def is_urn(data: dict | None) -> bool:
    """Whether a start payload or summary is a URN run's."""
    return bool(data) and data.get("model") == "urn"


def slashed(values) -> str:
    return "/".join(str(v) for v in values) if values else "n/a"


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _number(value, fmt: str = "{:.2f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def row_line(row: dict, total: int, rate: str, eta: str) -> str:
    """One progress line: epoch, loss, accuracies, active neurons per iteration and layer, deletions, directions."""
    return (
        f"epoch {row['cycle']:>5}/{total} {row['task']:<7} loss {row['loss']:.4f} nats/sample "
        f"train {percent(row.get('accuracy'))} test {percent(row.get('test_accuracy'))} "
        f"active {row['active']}/{row['hidden']} per iteration {slashed(row.get('active_per_iteration'))} "
        f"layers {slashed(row['layers'])} deleted {row['deletes']} "
        f"forward {_number(row.get('forward_fraction'))} (z {_number(row.get('forward_fraction_z'))}) "
        f"{rate} epochs/s ETA {eta}"
    )


def summary_line(summary: dict, rate: str) -> str:
    """One line for the end of a URN run."""
    return (
        f"{summary['status']}: {summary['cycles']:,}/{summary['total_cycles']:,} epochs, "
        f"test {percent(summary.get('test_accuracy'))} (train {percent(summary.get('accuracy'))}), "
        f"active {summary['active']}/{summary['hidden']} hidden in layers {slashed(summary['layers'])} "
        f"(path depth {summary.get('path_depth', 'n/a')}), {summary['deletes']} deleted, "
        f"loss {summary['loss']:.4f} nats/sample, {summary['wall_s']:.1f} s ({rate} epochs/s)"
    )


def run_model(run_dir: Path) -> str:
    """The ``model`` of a run folder's scenario (``charrnn`` when it names none)."""
    import yaml

    try:
        data = yaml.safe_load((Path(run_dir) / "scenario.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return "charrnn"
    return str(data.get("model", "charrnn")) if isinstance(data, dict) else "charrnn"


def show_text(run_dir: Path, s: dict, last_row: dict | None, wall: str) -> str:
    """``neurograph show`` for a URN run: ``s`` from :func:`neurograph.run.reader.run_summary`;
    an unfinished run's structure comes from its ``last_row`` of metrics."""
    s = {**(last_row or {}), **{k: v for k, v in s.items() if v is not None}} if s["status"] == "incomplete" else s
    epochs = f"{s['cycles']:,} / {s['total_cycles']:,}"
    if s["status"] == "incomplete":
        at = s.get("checkpoint_cycle")
        epochs += " (no checkpoint)" if at is None else f" (resumable from epoch {at:,})"
    fields = [
        ("run", str(run_dir)),
        ("scenario", f"{s['scenario']} (seed {s['seed']})"),
        ("status", s["status"]),
        ("epochs", epochs),
    ]
    if "active" in s:
        fields += _structure_fields(s)
    fields += [
        ("wall time", wall),
        ("epochs/s", _number(s.get("cycles_per_s"))),
    ]
    lines = [f"{name + ':':<16}{value}" for name, value in fields]
    lines += _ablation_lines(s.get("ablation"))
    lines += _output_lines(s.get("outputs"))
    lines += [""] + _phase_table(s.get("phases", []), last_row)
    return "\n".join(lines) + "\n"


def _structure_fields(s: dict) -> list[tuple[str, str]]:
    fractions = s.get("fractions") or {}
    directions = "; ".join(
        f"by {by}: " + ", ".join(f"{percent(f)} {name}" for name, f in fractions[by].items())
        for by in ("layer", "z")
        if by in fractions
    )
    ratio = s.get("length_ratio")
    locality = (
        f"mean length {_number(s.get('mean_synapse_length'))} against {_number(s.get('random_pair_length'))} "
        f"between random pairs of active neurons" + ("" if ratio is None else f" ({ratio:.2f}x)")
    )
    total = s.get("active_total")
    return [
        ("accuracy", f"test {percent(s.get('test_accuracy'))}, train {percent(s.get('accuracy'))}"),
        ("loss", "n/a" if s.get("loss") is None else f"{s['loss']:.4f} nats/sample (cross-entropy)"),
        (
            "active",
            f"{s['active']} of {s.get('hidden', 'n/a')} hidden neurons"
            + ("" if total is None else f" ({total} with inputs and outputs)")
            + f", {s.get('deletes', 0)} deleted",
        ),
        (
            "per iteration",
            f"{slashed(s.get('active_per_iteration'))} hidden neurons fire at iterations 1..I"
            f" ({s.get('multi_iteration', 'n/a')} at more than one)",
        ),
        (
            "layers",
            f"{slashed(s.get('layers'))} (first firing), depth {s.get('depth', 'n/a')}, "
            f"path depth {s.get('path_depth', 'n/a')}",
        ),
        ("synapses", f"{s.get('synapses', 'n/a'):,} active" + (f"; {directions}" if directions else "")),
        ("locality", locality),
    ]


def _ablation_lines(ablation: dict | None) -> list[str]:
    if not ablation:
        return []
    rows = [("keep", "test accuracy", "max logit change", "synapses kept")]
    for key, result in ablation.items():
        rows.append(
            (
                ABLATION_NAMES.get(key, key),
                percent(result["accuracy_after"]),
                f"{result['max_output_change']:.4g}",
                f"{result['kept_synapses']:,}",
            )
        )
    before = next(iter(ablation.values()))["accuracy_before"]
    return [f"{'ablations:':<16}whole network: test {percent(before)}"] + _table(rows, indent=16)


def _output_lines(outputs: dict | None) -> list[str]:
    if not outputs:
        return []
    lines = []
    for name, o in outputs.items():
        if not o.get("written"):
            text = f"{name} not written: {o.get('reason', 'n/a')}"
        else:
            size = o.get("connections", o.get("synapses_written"))
            text = f"{name} ({'' if size is None else f'{size:,} edges, '}{o.get('seconds', 0):.1f} s)"
            text += f": {o['reason']}" if o.get("reason") else ""
        lines.append(f"{'outputs:' if not lines else '':<16}{text}")
    return lines


def _phase_table(phases: list[dict], last_row: dict | None) -> list[str]:
    rows = [("phase", "task", "at epoch", "active", "test accuracy", "earlier tasks", "layers")]
    for p in phases:
        if p.get("partial") and last_row and last_row.get("phase") == p["phase"]:
            p = {**last_row, **p}  # a phase under way: its structure as of the last metrics row
        end = f"{p['end_cycle']:,}" + (" (so far)" if p.get("partial") else "")
        earlier = ", ".join(percent(a) for a in p.get("earlier_test_accuracy", [])) or "-"
        rows.append(
            (
                str(p["phase"] + 1),
                p["task"],
                end,
                str(p.get("active", "n/a")),
                percent(p.get("test_accuracy")),
                earlier,
                slashed(p.get("layers")),
            )
        )
    return _table(rows)


def _table(rows: list[tuple[str, ...]], indent: int = 0) -> list[str]:
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    return [" " * indent + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
