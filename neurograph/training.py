"""Train one run of either model: the scenario picks the trainer and the run folder it writes.

:func:`train` is what ``neurograph run`` does, without the command line's
progress display, signal handling and thread settings: load the scenario (or
take one), build the model's trainer, optionally write a run folder, train to
the end and return the summary. :func:`trainer_class` and
:func:`run_folder_class` name the model's pieces for callers that wire their
own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from neurograph.graph import Graph
from neurograph.run.reporters import Reporter, ReporterSet

__all__ = ["train", "trainer_class", "run_folder_class"]


def trainer_class(scenario) -> type:
    """The trainer of ``scenario.model``: :class:`~neurograph.charrnn.trainer.Trainer`,
    :class:`~neurograph.urn.train.URNTrainer` or :class:`~neurograph.layered.trainer.LayeredTrainer`."""
    if scenario.model == "urn":
        from neurograph.urn.train import URNTrainer

        return URNTrainer
    if scenario.model == "layered":
        from neurograph.layered.trainer import LayeredTrainer

        return LayeredTrainer
    from neurograph.charrnn.trainer import Trainer

    return Trainer


def run_folder_class(scenario) -> type:
    """The run-folder reporter of ``scenario.model`` (the URN's also writes its connectome)."""
    if scenario.model == "urn":
        from neurograph.urn.runfolder import URNRunFolder

        return URNRunFolder
    from neurograph.run.folder import RunFolder

    return RunFolder


def train(
    scenario: Any,
    out: str | Path | None = None,
    *,
    overrides: Iterable[str] = (),
    cycles: int | None = None,
    graph: Graph | None = None,
    reporters: Iterable[Reporter] = (),
    force: bool = False,
) -> dict:
    """Train one run to its end; returns its summary (``summary.json``'s fields).

    scenario: a :class:`~neurograph.charrnn.scenario.Scenario`, a
    :class:`~neurograph.urn.scenario.URNScenario`, or the path of a scenario
    file, loaded with ``overrides`` (``"a.b=value"``, as ``--set``) and
    ``cycles`` (as ``--cycles``). out: the run folder to write (refused if it
    holds a run, unless ``force``); None writes nothing. graph: a char-RNN
    or layered network built (or read back) by hand to train instead of the
    scenario's (``Trainer(scenario, graph=graph)``, ``LayeredTrainer``'s
    likewise). reporters: more reporters, e.g. your own
    :class:`~neurograph.run.reporters.Reporter`.

    Steps are char-RNN cycles or URN epochs. The run uses torch's current
    thread count (``torch.set_num_threads``), which the run folder records.

    >>> import tempfile
    >>> from neurograph import EasyTask, OutgoingL1Rule, Phase, Scenario, run_summary
    >>> scenario = Scenario(name="t", structure=OutgoingL1Rule(), phases=[Phase(task=EasyTask(), cycles=100)])
    >>> out = Path(tempfile.mkdtemp()) / "run"
    >>> summary = train(scenario, out)
    >>> run_summary(out) == summary, sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    (True, ['checkpoint.safetensors', 'events.jsonl', 'graph.graphml', 'metrics.jsonl', 'scenario.yaml', 'summary.json'])
    """
    if isinstance(scenario, (str, Path)):
        from neurograph.scenario import load_scenario

        scenario = load_scenario(scenario, list(overrides), cycles=cycles)
    elif list(overrides) or cycles is not None:
        raise ValueError("overrides and cycles apply to a scenario file; pass its path, or change the scenario")
    options = {} if graph is None else {"graph": graph}
    if graph is not None and scenario.model == "urn":
        raise ValueError("graph= trains a char-RNN or layered network built by hand; a URN builds its own")
    trainer = trainer_class(scenario)(scenario, **options)  # builds before any folder is written
    sinks = list(reporters)
    if out is not None:
        from neurograph.run.folder import prepare_run_folder

        folder = prepare_run_folder(Path(out), scenario, force=force)
        sinks.insert(0, run_folder_class(scenario)(folder))
    trainer.reporters = ReporterSet(sinks)
    return trainer.run()
