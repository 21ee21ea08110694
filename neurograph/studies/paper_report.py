"""The papers' Figures 1-3 and their numbers, from multi-seed outputs.

``neurograph run SCENARIO --seeds 0-19 --out DIR/NAME`` writes one multi-seed
output: run folders ``DIR/NAME/seed-<n>/`` and ``DIR/NAME/aggregate.json``
(:func:`neurograph.charrnn.trainer.run_seeds`). :func:`write_paper_report` reads every
such output in DIR (at any depth: ``DIR/easy``, ``DIR/multipliers/hard``, ...)
and tells what each one is from its seeds' ``scenario.yaml``, never from
folder names: the structure kind (or a fixed
network's penalty) gives the paper's revision, the phases' tasks and a fixed
size give the experiment. It writes into the report folder::

    report.md                 table of final sizes and losses beside the papers' numbers
    figure1-<revision>.png    easy vs hard: loss and hidden size, median and IQR over seeds
    figure2-<revision>.png    hard: median loss of the variable size and of each fixed size
    figure3-<revision>.png    switch: loss and hidden size with the phase boundaries

Curves come from ``aggregate.json`` (rebuilt from the seeds' metrics when it is
absent or covers other seeds), the table from each seed's summary
(:func:`neurograph.run.reader.run_summary`). Losses are nats per character (the
papers plot them per 40-character window). A figure is drawn only for the
experiments present; the report lists the missing ones. Figures are drawn on
bare matplotlib ``Figure`` objects with the Agg canvas, as :mod:`neurograph.run.plots`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from neurograph.atomic import atomic_open, write_text_atomic
from neurograph.studies.aggregate import aggregate_rows
from neurograph.run.reader import read_jsonl, run_phases, run_summary
from neurograph.run.folder import RunFolderError

__all__ = ["PaperReportError", "Revision", "REVISIONS", "PAPER_FIXED_SIZES", "Output", "find_outputs",
           "write_paper_report"]  # fmt: skip

PAPER_FIXED_SIZES = (10, 20, 50, 100)  # Figure 2's fixed sizes, besides the variable network's final size
EXPERIMENTS = ("easy", "hard", "switch", "fixed", "other")  # table order
TASK_COLORS = {"easy": "tab:green", "hard": "tab:blue"}  # Figure 1's columns


class PaperReportError(RunFolderError):
    """A folder of multi-seed outputs that cannot be reported on."""


@dataclass(frozen=True)
class Revision:
    """A paper revision: what its text reports, for the table beside our numbers."""

    title: str
    stem: str  # file-name part: figure1-<stem>.png
    cycles: int  # length of the paper's runs
    sizes: dict[str, int]  # final hidden size the text gives per task
    fixed: str  # what the text says of Figure 2
    switch: str  # what the text says of Figure 3


REVISIONS = {
    "multipliers": Revision(
        "multiplier revision", "multipliers", 300_000, {"easy": 6, "hard": 27},
        "the best fixed size is the variable network's final size (27), 100 neurons the poorest; the variable "
        "size seems to outperform fixed sizes",
        "the network grows when the task turns hard, and stays large after hard -> easy",
    ),
    "outgoing_l1": Revision(
        "outgoing-L1 revision", "outgoing-l1", 100_000, {"easy": 14, "hard": 37},
        "the variable-size network outperforms fixed-size networks of any size",
        "the network grows when the task turns hard, then sheds excess neurons, also after hard -> easy",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Output:
    """One multi-seed output: what its scenario is and what its seeds left."""

    path: Path
    name: str  # scenario name
    structure: str  # structure kind as written ("fixed" for a baseline)
    revision: str  # "multipliers", "outgoing_l1", or a fixed network's other penalty ("none")
    experiment: str  # one of EXPERIMENTS
    tasks: tuple[str, ...]  # task kind of each phase
    fixed: int | None  # hidden size of a fixed network
    cycles: int  # total cycles of the scenario
    summaries: list[dict]  # one per seed, ascending seed
    aggregate: dict  # aggregate_rows fields: cycles, loss and hidden quartiles
    phases: list[dict]  # run_phases of the first seed: task, start, end, optimum

    @property
    def key(self) -> tuple:
        return (self.revision, self.experiment, self.fixed)

    @property
    def label(self) -> str:
        if self.experiment == "fixed":
            return f"fixed {self.fixed}, hard"
        if self.experiment in ("switch", "other"):
            return f"{self.experiment} ({' -> '.join(self.tasks)})"
        return self.experiment

    def final(self, field: str) -> list[float]:
        """Each seed's final ``hidden`` or ``loss`` (seeds without one are left out)."""
        return [float(s[field]) for s in self.summaries if s.get(field) is not None]


# ------------------------------------------------------------------ reading
def find_outputs(root: str | os.PathLike) -> list[Output]:
    """Every multi-seed output in ``root`` (``root`` itself or any folder below), in table order.

    A multi-seed output is a folder with ``seed-<n>/scenario.yaml`` run folders;
    the search does not descend into one.
    """
    root = Path(root)
    if not root.is_dir():
        raise PaperReportError(f"{root}: not a folder")
    try:
        folders = _output_dirs(root)
    except OSError as e:
        raise PaperReportError(f"{root}: cannot list its folders ({e})") from None
    outputs = [_read_output(p) for p in folders]
    if not outputs:
        raise PaperReportError(
            f"{root}: no multi-seed outputs (folders of seed-<n>/ run folders with their scenario.yaml, "
            "as `neurograph run SCENARIO --seeds 0-19 --out DIR/NAME` writes)"
        )
    seen: dict[tuple, Path] = {}
    for out in outputs:
        if out.experiment != "other" and out.key in seen:
            raise PaperReportError(
                f"{seen[out.key]} and {out.path} are both the {_revision_title(out.revision)}'s {out.label}; "
                "a report compares one output per experiment"
            )
        seen[out.key] = out.path
    return sorted(outputs, key=_table_order)


def _output_dirs(folder: Path) -> list[Path]:
    if _seed_dirs(folder):
        return [folder]
    return [found for sub in sorted(folder.iterdir()) if sub.is_dir() for found in _output_dirs(sub)]


def _table_order(out: Output) -> tuple:
    return (*_revision_order(out.revision), EXPERIMENTS.index(out.experiment), out.fixed or 0, out.path.name)


def _revision_order(revision: str) -> tuple:
    """The papers' revisions first, in REVISIONS order, then any other penalty by name."""
    return (list(REVISIONS).index(revision) if revision in REVISIONS else len(REVISIONS), revision)


def _seed_dirs(path: Path) -> dict[int, Path]:
    """seed -> run folder, for ``seed-<n>/`` folders with a ``scenario.yaml``."""
    found = {}
    for p in path.glob("seed-*"):
        number = p.name[len("seed-") :]
        if number.isdigit() and (p / "scenario.yaml").is_file():
            found[int(number)] = p
    return dict(sorted(found.items()))


def _read_output(path: Path) -> Output:
    seeds = _seed_dirs(path)
    identities = {seed: _identity(d / "scenario.yaml") for seed, d in seeds.items()}
    first = next(iter(identities.values()))
    for seed, identity in identities.items():
        if identity != first:
            raise PaperReportError(
                f"{path}: seed-{seed} is scenario {identity['name']!r} ({identity['tasks']}), "
                f"seed-{min(seeds)} is {first['name']!r} ({first['tasks']}); one output holds one scenario"
            )
    first_dir = next(iter(seeds.values()))
    return Output(
        path=path,
        **first,
        summaries=[run_summary(d) for d in seeds.values()],
        aggregate=_aggregate(path, seeds),
        phases=run_phases(first_dir, read_jsonl(first_dir / "metrics.jsonl")),
    )


def _identity(path: Path) -> dict:
    """What a resolved scenario is: name, structure, revision, experiment, tasks, fixed size, cycles."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        structure = data["structure"]
        kind = str(structure["kind"])
        tasks = tuple(str(p["task"]["kind"]) for p in data["phases"])
        cycles = sum(int(p["cycles"]) for p in data["phases"])
        fixed = int(structure["hidden"]) if kind == "fixed" else None
        revision = str(structure.get("penalty", "outgoing_l1")) if kind == "fixed" else kind
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, ValueError) as e:
        problem = " ".join(str(e).split()) or type(e).__name__
        raise PaperReportError(f"{path}: not a resolved char-RNN scenario ({problem})") from None
    return {"name": str(data.get("name")), "structure": kind, "revision": revision,
            "experiment": _experiment(kind, tasks), "tasks": tasks, "fixed": fixed, "cycles": cycles}  # fmt: skip


def _experiment(structure: str, tasks: tuple[str, ...]) -> str:
    if structure == "fixed":
        return "fixed" if tasks == ("hard",) else "other"
    if tasks in (("easy",), ("hard",)):
        return tasks[0]
    return "switch" if len(tasks) > 1 and set(tasks) == {"easy", "hard"} else "other"


def _aggregate(path: Path, seeds: dict[int, Path]) -> dict:
    """``aggregate.json`` if it covers exactly these seeds, else the same rebuilt from their metrics."""
    file = path / "aggregate.json"
    if file.is_file():
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise PaperReportError(f"{file}: not JSON ({e})") from None
        if not isinstance(data, dict) or not {"seeds", "cycles", "loss", "hidden"} <= data.keys():
            raise PaperReportError(f"{file}: not an aggregate (seeds, cycles, loss and hidden expected)")
        if sorted(data["seeds"]) == list(seeds):
            return data
    return aggregate_rows({seed: read_jsonl(d / "metrics.jsonl") for seed, d in seeds.items()})


# ---------------------------------------------------------------- numbers
def _quartiles(values: list[float]) -> tuple[float, float, float] | None:
    """(q25, median, q75), numpy's linear interpolation as in aggregate.json; None for no values."""
    if not values:
        return None
    q25, median, q75 = np.percentile(np.asarray(values, dtype=np.float64), [25, 50, 75])
    return float(q25), float(median), float(q75)


def _cell(values: list[float], fmt: str) -> str:
    """``median [q25, q75]``, or n/a."""
    q = _quartiles(values)
    return "n/a" if q is None else f"{q[1]:{fmt}} [{q[0]:{fmt}}, {q[2]:{fmt}}]"


def _median(values: list[float]) -> float | None:
    q = _quartiles(values)
    return None if q is None else q[1]


def _revision_title(revision: str) -> str:
    return REVISIONS[revision].title if revision in REVISIONS else f"penalty {revision!r}"


def _revision_stem(revision: str) -> str:
    return REVISIONS[revision].stem if revision in REVISIONS else revision.replace("_", "-")


def _paper_size(out: Output) -> str:
    revision = REVISIONS.get(out.revision)
    if revision is None or out.experiment not in revision.sizes:
        return "-"
    return f"{revision.sizes[out.experiment]} at {revision.cycles:,} cycles"


def _optimum(out: Output) -> str:
    value = _median([float(s["optimum"]) for s in out.summaries if s.get("optimum") is not None])
    return "n/a" if value is None else f"{value:.4f}"


# ---------------------------------------------------------------- figures
def _new_figure(size: tuple[float, float]) -> Figure:
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig: Figure, path: Path) -> None:
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)


def _band(ax, out: Output, field: str, color: str, label: str | None = None) -> None:
    """Median line and inter-quartile band of ``loss`` or ``hidden`` against cycles."""
    cycles, stat = out.aggregate["cycles"], out.aggregate[field]
    steps = "post" if field == "hidden" else None  # sizes change by whole neurons at a cycle
    ax.plot(cycles, stat["median"], color=color, label=label, drawstyle="steps-post" if steps else "default")
    ax.fill_between(cycles, stat["q25"], stat["q75"], color=color, alpha=0.25, linewidth=0, step=steps)


def _optimum_lines(ax, phases: list[dict]) -> None:
    labelled = False
    for phase in phases:
        if phase.get("optimum") is not None:
            ax.hlines(phase["optimum"], phase["start"], phase["end"], colors="black", linestyles="dashed",
                      linewidth=1, label=None if labelled else "optimum")  # fmt: skip
            labelled = True


def _loss_limits(ax, outputs: list[Output], headroom: float = 1.05) -> None:
    """y from 0 to ``headroom`` times the highest finite quartile (early losses are near ln 4)."""
    values = [v for o in outputs for v in o.aggregate["loss"]["q75"] + o.aggregate["loss"]["median"]]
    top = max((v for v in values if v is not None and math.isfinite(v)), default=0.0)
    ax.set_ylim(0, headroom * top or 1.0)


def _size_limits(ax, outputs: list[Output]) -> None:
    """y from 0 to above the highest quartile of every output (a shared axis must fit them all)."""
    top = max((v for o in outputs for v in o.aggregate["hidden"]["q75"] + o.aggregate["hidden"]["median"]), default=0)
    ax.set_ylim(0, 1.08 * top + 1)


def _style(loss_ax, size_ax=None) -> None:
    loss_ax.set_ylabel("loss (nats / char)")
    loss_ax.grid(alpha=0.3)
    axes = [loss_ax]
    if size_ax is not None:
        size_ax.set_ylabel("hidden neurons")
        size_ax.grid(alpha=0.3)
        axes.append(size_ax)
    axes[-1].set_xlabel("cycle")


def _figure1(outputs: list[Output], title: str, path: Path) -> None:
    """One column per task (easy, hard): loss above, hidden size below."""
    fig = _new_figure((5.5 * len(outputs), 6))
    axes = fig.subplots(2, len(outputs), sharex="col", sharey="row", height_ratios=[2, 1], squeeze=False)
    for col, out in enumerate(outputs):
        loss_ax, size_ax, color = axes[0, col], axes[1, col], TASK_COLORS[out.experiment]
        _band(loss_ax, out, "loss", color, "median, IQR")
        _optimum_lines(loss_ax, out.phases)
        _band(size_ax, out, "hidden", color)
        _loss_limits(loss_ax, outputs)
        _size_limits(size_ax, outputs)
        loss_ax.set_title(f"{out.experiment} ({len(out.summaries)} seeds)")
        loss_ax.legend(loc="upper right")
        _style(loss_ax, size_ax)
    fig.suptitle(f"Figure 1, {title}: easy vs hard")
    _save_png(fig, path)


def _figure2(hard: Output, fixed: list[Output], title: str, path: Path) -> None:
    """Median loss on hard: the variable-size network thick and black, each fixed size thin."""
    fig = _new_figure((8, 5))
    ax = fig.subplots()
    for out in fixed:
        ax.plot(out.aggregate["cycles"], out.aggregate["loss"]["median"], linewidth=1, label=f"fixed {out.fixed}")
    size = _median(hard.final("hidden"))
    variable = "variable size" + ("" if size is None else f" (final median {size:g})")
    ax.plot(hard.aggregate["cycles"], hard.aggregate["loss"]["median"], color="black", linewidth=2.5, label=variable)
    _optimum_lines(ax, hard.phases)
    _loss_limits(ax, [hard, *fixed])
    _style(ax)
    ax.legend(loc="upper right")
    ax.set_title(f"Figure 2, {title}: variable vs fixed size on hard (medians over seeds)")
    _save_png(fig, path)


def _figure3(out: Output, title: str, path: Path) -> None:
    """Loss and hidden size across the phases, a grey line at each task switch."""
    fig = _new_figure((10, 6))
    loss_ax, size_ax = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    _band(loss_ax, out, "loss", "tab:blue", "median, IQR")
    _band(size_ax, out, "hidden", "tab:blue")
    _optimum_lines(loss_ax, out.phases)
    for i, phase in enumerate(out.phases):
        if i:
            for ax in (loss_ax, size_ax):
                ax.axvline(phase["start"], color="grey", linewidth=0.8)
        loss_ax.annotate(phase["task"], xy=(phase["start"], 1.0), xycoords=("data", "axes fraction"),
                         xytext=(4, -4), textcoords="offset points", va="top", color="dimgrey")  # fmt: skip
    _loss_limits(loss_ax, [out], headroom=1.15)  # room for the task labels
    _size_limits(size_ax, [out])
    loss_ax.legend(loc="upper right")
    _style(loss_ax, size_ax)
    size_ax.set_xlim(0, out.cycles)
    fig.suptitle(f"Figure 3, {title}: {' -> '.join(out.tasks)} ({len(out.summaries)} seeds)")
    _save_png(fig, path)


# ----------------------------------------------------------------- report
def write_paper_report(root: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Path:
    """Write ``report.md`` and the figures' PNGs into ``out_dir`` (default ``root/report``); returns report.md.

    ``root`` holds multi-seed outputs (see the module docstring). Raises
    :class:`PaperReportError` when there are none, when one cannot be read,
    when two are the same experiment, or when the report cannot be written.
    """
    root = Path(root)
    out_dir = Path(out_dir) if out_dir is not None else root / "report"
    outputs = find_outputs(root)
    revisions = sorted({o.revision for o in outputs} | set(REVISIONS), key=_revision_order)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        sections, missing = [], []
        for revision in revisions:
            body, absent = _revision_section(revision, [o for o in outputs if o.revision == revision], out_dir)
            sections += body
            missing += absent
        text = _markdown(root, outputs, sections, missing)
        write_text_atomic(out_dir / "report.md", text)
    except OSError as e:
        raise PaperReportError(f"{out_dir}: cannot write the report ({e.strerror or e})") from None
    return out_dir / "report.md"


def _markdown(root: Path, outputs: list[Output], sections: list[str], missing: list[str]) -> str:
    lines = [
        f"# The papers' experiments: report of `{root}`",
        "",
        f"{len(outputs)} multi-seed outputs, each identified by its seeds' `scenario.yaml`. Curves: median (line) "
        "and inter-quartile range (band) over seeds at each metrics cycle (`aggregate.json`). Table: each seed's "
        "final summary (`summary.json`); brackets hold the 25th and 75th percentiles over seeds (numpy's linear "
        "interpolation). Losses are smoothed cross-entropy in nats per character (the papers plot the sum over a "
        "40-character window, 40 times these); optimum: the task's best achievable loss, as the runs computed it. "
        "Paper: the final size the revision's text reports (medians of 20 runs) after its number of cycles; "
        "runs of other lengths compare only loosely.",
        "",
        _table(root, outputs),
        *_unfinished(root, outputs),
        *sections,
        "## Missing",
        "",
        *([f"- {m}" for m in missing] or ["Nothing: every experiment of both revisions is present."]),
        "",
    ]
    return "\n".join(lines)


def _table(root: Path, outputs: list[Output]) -> str:
    rows = [
        "| output | revision (structure kind) | experiment | cycles | seeds | final hidden, median [25%, 75%] "
        "| paper's hidden | final loss, median [25%, 75%] | optimum |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for o in outputs:
        kind = f"`fixed`, penalty `{o.revision}`" if o.structure == "fixed" else f"`{o.structure}`"
        rows.append(
            f"| `{_where(root, o)}` | {_revision_title(o.revision)} ({kind}) | {o.label} | {o.cycles:,} "
            f"| {len(o.summaries)} | {_cell(o.final('hidden'), 'g')} | {_paper_size(o)} "
            f"| {_cell(o.final('loss'), '.4f')} | {_optimum(o)} |"
        )
    return "\n".join(rows) + "\n"


def _where(root: Path, out: Output) -> str:
    """The output's folder relative to the report's root (``.`` for the root itself)."""
    return out.path.relative_to(root).as_posix()


def _unfinished(root: Path, outputs: list[Output]) -> list[str]:
    notes = [
        f"- `{_where(root, o)}`, seed {s['seed']}: {s['status']} at cycle {s['cycles']:,} of {o.cycles:,}"
        for o in outputs
        for s in o.summaries
        if s.get("status") != "finished"
    ]
    return ["Seeds that did not finish (their last values are counted):", "", *notes, ""] if notes else []


def _revision_section(revision: str, outputs: list[Output], out_dir: Path) -> tuple[list[str], list[str]]:
    """Markdown of the revision's figures (drawn into ``out_dir``), and what is missing for them."""
    title = _revision_title(revision)
    if not outputs:
        return [], [f"{title}: no outputs; Figures 1-3 not drawn"]
    by = {o.experiment: o for o in outputs if o.experiment in ("easy", "hard", "switch")}
    fixed = sorted((o for o in outputs if o.experiment == "fixed"), key=lambda o: o.fixed)
    stem, lines, missing = _revision_stem(revision), [], []
    for n, section in enumerate((_section1, _section2, _section3), start=1):
        body, absent = section(by, fixed, revision, out_dir / f"figure{n}-{stem}.png")
        lines += body
        missing += absent
    return lines, missing


def _section1(by: dict[str, Output], fixed: list[Output], revision: str, png: Path) -> tuple[list[str], list[str]]:
    title, pair = _revision_title(revision), [by[e] for e in ("easy", "hard") if e in by]
    missing = [
        f"{title}: no {e} output; Figure 1 " + ("shows the other task only" if pair else "not drawn")
        for e in ("easy", "hard")
        if e not in by
    ]
    if not pair:
        return [], missing
    _figure1(pair, title, png)
    return [f"## Figure 1, {title}: easy vs hard", "", f"![Figure 1]({png.name})", "", *_ratio(by, revision)], missing


def _section2(by: dict[str, Output], fixed: list[Output], revision: str, png: Path) -> tuple[list[str], list[str]]:
    title = _revision_title(revision)
    missing = _missing_sizes(by.get("hard"), fixed, title)
    if "hard" not in by or not fixed:
        needs = [what for what, ok in (("hard output", "hard" in by), ("fixed-size output", fixed)) if not ok]
        return [], [f"{title}: Figure 2 not drawn (no {' and no '.join(needs)})", *missing]
    _figure2(by["hard"], fixed, title, png)
    lines = [f"## Figure 2, {title}: variable vs fixed size on hard", "", f"![Figure 2]({png.name})", ""]
    return lines + _fixed_text(by["hard"], fixed, revision), missing


def _section3(by: dict[str, Output], fixed: list[Output], revision: str, png: Path) -> tuple[list[str], list[str]]:
    title = _revision_title(revision)
    if "switch" not in by:
        return [], [f"{title}: no switch output; Figure 3 not drawn"]
    _figure3(by["switch"], title, png)
    lines = [f"## Figure 3, {title}: task switches", "", f"![Figure 3]({png.name})", ""]
    return lines + _switch_text(by["switch"], revision), []


def _ratio(by: dict[str, Output], revision: str) -> list[str]:
    easy, hard = (_median(by[e].final("hidden")) if e in by else None for e in ("easy", "hard"))
    if not easy or hard is None:
        return []
    line = f"Final hidden size, median: hard {hard:g} / easy {easy:g} = {hard / easy:.2f}"
    if revision in REVISIONS:
        sizes = REVISIONS[revision].sizes
        line += f" (paper: {sizes['hard']} / {sizes['easy']} = {sizes['hard'] / sizes['easy']:.2f})"
    return [line + ".", ""]


def _fixed_text(hard: Output, fixed: list[Output], revision: str) -> list[str]:
    finals = [("variable size", hard), *((f"fixed {o.fixed}", o) for o in fixed)]
    finals = [(name, _median(o.final("loss"))) for name, o in finals]
    known = [(name, v) for name, v in finals if v is not None]
    lines = ["Final loss, median over seeds: " + ", ".join(f"{name} {v:.4f}" for name, v in known) + "."]
    if known:
        lines.append(f"Lowest: {min(known, key=lambda nv: nv[1])[0]}.")
    if revision in REVISIONS:
        lines.append(f"The paper: {REVISIONS[revision].fixed}.")
    return [" ".join(lines), ""]


def _missing_sizes(hard: Output | None, fixed: list[Output], title: str) -> list[str]:
    """The papers' Figure 2 sizes (10, 20, the variable network's final size, 50, 100) with no output."""
    present = {o.fixed for o in fixed}
    wanted = {n: str(n) for n in PAPER_FIXED_SIZES}
    size = _median(hard.final("hidden")) if hard is not None else None
    if size is not None:
        size = math.floor(size + 0.5)
        wanted[size] = f"{size} (the variable network's median final size here)"
    lacking = [text for n, text in sorted(wanted.items()) if n not in present]
    if size is None:
        lacking.append("the variable network's final size (unknown without a hard output)")
    return [f"{title}: fixed sizes of the papers' Figure 2 missing: {', '.join(lacking)}"] if lacking else []


def _switch_text(out: Output, revision: str) -> list[str]:
    rows = [
        "| phase | task | end cycle | hidden, median [25%, 75%] | loss, median [25%, 75%] | optimum |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for i, phase in enumerate(out.phases):
        ends = [p for s in out.summaries for p in s.get("phases", []) if p.get("phase") == i]
        hidden = [float(p["hidden"]) for p in ends if p.get("hidden") is not None]
        loss = [float(p["loss"]) for p in ends if p.get("loss") is not None]
        optimum = "n/a" if phase.get("optimum") is None else f"{phase['optimum']:.4f}"
        rows.append(f"| {i + 1} | {phase['task']} | {phase['end']:,} | {_cell(hidden, 'g')} | {_cell(loss, '.4f')} "
                    f"| {optimum} |")  # fmt: skip
    paper = [f"The paper: {REVISIONS[revision].switch}.", ""] if revision in REVISIONS else []
    return ["At each phase end, over seeds:", "", *rows, "", *paper]
