"""Run folder of a URN run: :class:`~neurograph.run.folder.RunFolder` plus the connectome.

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
:meth:`RunFolder.checkpoint`) and resumed by
:func:`~neurograph.run.folder.open_for_resume`, which reads either model's scenario.
"""

from __future__ import annotations

from pathlib import Path

from neurograph.graph import Graph
from neurograph.run.folder import RunFolder
from neurograph.urn.analysis import Analysis
from neurograph.urn.connectome import write_connectome, write_figures

__all__ = ["URNRunFolder"]


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

