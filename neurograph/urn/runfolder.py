"""Run folder of a URN run: :class:`~neurograph.runfolder.RunFolder` plus the connectome.

Adds to the usual layout (``scenario.yaml``, ``metrics.jsonl``, ``events.jsonl``,
``summary.json``)::

    connectome.graphml          final active network (see neurograph.urn.connectome)
    figures/structure.png       Figs. 3/4: activities and weights sorted by layer
    figures/connectome.png      Fig. 6: the active network in projection
    graphs/connectome-N.graphml periodic active networks (report.graph_every)

The full neurograph GraphML (``graph.graphml``, ``graphs/cycle-N.graphml``) is
written only while the graph has at most ``max_graph_connections``
connections: a dense URN has S^2 of them (25 million at S = 5,000), which
networkx cannot hold; with lifetime deletion the final graph is small again.
Checkpoints are written as for a char-RNN run (``checkpoint.safetensors``,
:meth:`RunFolder.checkpoint`); :func:`open_urn_for_resume` is
:func:`~neurograph.runfolder.open_for_resume` for a URN scenario.
"""

from __future__ import annotations

from pathlib import Path

from neurograph.checkpoint import CHECKPOINT, CheckpointError, load_checkpoint
from neurograph.graph import Graph
from neurograph.runfolder import (
    RunFolder,
    RunFolderError,
    _check_same_run,
    _log_sizes,
    _logged_anything,
    _probe_writable,
)
from neurograph.scenario import ScenarioError
from neurograph.urn.analysis import Analysis
from neurograph.urn.connectome import write_connectome, write_figures
from neurograph.urn.scenario import URNScenario, load_urn_scenario

__all__ = ["URNRunFolder", "open_urn_for_resume"]


class URNRunFolder(RunFolder):
    """Reporter writing a URN run folder; the trainer calls :meth:`connectome` after each snapshot."""

    def __init__(self, path: Path, *, max_graph_connections: int = 250_000) -> None:
        super().__init__(path)
        self.max_graph_connections = max_graph_connections

    def snapshot(self, cycle, graph, reserve, final):
        if graph.num_connections() <= self.max_graph_connections:
            super().snapshot(cycle, graph, reserve, final)

    def connectome(self, cycle: int, graph: Graph, analysis: Analysis, final: bool) -> None:
        if final:
            write_connectome(self.path / "connectome.graphml", graph, analysis)
            write_figures(self.path / "figures", graph, analysis)
        else:
            (self.path / "graphs").mkdir(exist_ok=True)
            write_connectome(self.path / "graphs" / f"connectome-{cycle}.graphml", graph, analysis)


def open_urn_for_resume(path: Path) -> tuple[URNScenario, dict | None, dict | None]:
    """Scenario, checkpoint state and tensors of a URN run folder; logs cut to the checkpoint.

    As :func:`neurograph.runfolder.open_for_resume` (same checks, same
    :class:`RunFolderError`), with the scenario read by :func:`load_urn_scenario`.
    """
    path = Path(path)
    if not (path / "scenario.yaml").is_file():
        raise RunFolderError(f"{path}: not a run folder (scenario.yaml missing)")
    for tmp in path.glob(f".{CHECKPOINT}.*.tmp"):  # left by a kill mid-write
        tmp.unlink(missing_ok=True)
    try:
        scenario = load_urn_scenario(path / "scenario.yaml")
        if not (path / CHECKPOINT).exists() and not _logged_anything(path):
            return scenario, None, None  # killed before its first checkpoint: start over
        state, tensors = load_checkpoint(path)
    except (ScenarioError, CheckpointError) as e:
        raise RunFolderError(str(e)) from None
    _check_same_run(path, scenario, state)
    sizes = _log_sizes(path, state)  # all checked before any is cut: a refusal changes nothing
    try:
        _probe_writable(path)
        for log, size in sizes.items():
            with open(log, "r+b") as f:
                f.truncate(size)
    except OSError as e:
        raise RunFolderError(f"{path}: run folder not writable ({e.strerror})") from None
    return scenario, state, tensors
