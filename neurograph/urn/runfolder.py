"""Run folder of a URN run: :class:`~neurograph.run.folder.RunFolder` plus the connectome.

Adds to the usual layout (``scenario.yaml``, ``metrics.jsonl``, ``events.jsonl``,
``summary.json``)::

    connectome.graphml          final active network (see neurograph.urn.connectome)
    figures/structure.png       Figs. 3/4: activities and weights sorted by layer
    figures/connectome.png      Fig. 6: the active network in projection
    graphs/connectome-N.graphml periodic active networks (report.graph_every)

Every file is streamed from arrays, so writing costs memory for one chunk and
time in proportion to what is written. The full neurograph GraphML
(``graph.graphml``, ``graphs/cycle-N.graphml``) is written only while the graph
has at most ``max_graph_connections`` connections: a dense URN has S^2 of them
(25 million at S = 5,000), a GraphML file of gigabytes that no tool reading
GraphML loads; with lifetime deletion the final graph is small again. A
connectome file holds at most ``max_connectome_edges`` synapses (the
strongest). ``summary.json`` gets an ``outputs`` section: for each final file
whether it was written, its size in connections or synapses, the seconds it
took, and the reason when it was skipped or cut.

Checkpoints are written as for a char-RNN run (``checkpoint.safetensors``,
:meth:`RunFolder.checkpoint`) and resumed by
:func:`~neurograph.run.folder.open_for_resume`, which reads either model's scenario.
"""

from __future__ import annotations

import time
from pathlib import Path

from neurograph.graph import Graph
from neurograph.run.folder import RunFolder
from neurograph.urn.analysis import Analysis
from neurograph.urn.connectome import MAX_EDGES, write_connectome, write_figures

__all__ = ["MAX_GRAPH_CONNECTIONS", "URNRunFolder"]

MAX_GRAPH_CONNECTIONS = 250_000  # a full snapshot: S = 500 dense, ~60 MB of GraphML, about 2 s to write


class URNRunFolder(RunFolder):
    """Reporter writing a URN run folder; the trainer calls :meth:`connectome` after each snapshot."""

    def __init__(
        self,
        path: Path,
        *,
        max_graph_connections: int = MAX_GRAPH_CONNECTIONS,
        max_connectome_edges: int = MAX_EDGES,
    ) -> None:
        super().__init__(path)
        self.max_graph_connections = max_graph_connections
        self.max_connectome_edges = max_connectome_edges
        self.outputs: dict[str, dict] = {}  # final files: written, size, seconds, reason

    def snapshot(self, cycle, graph, reserve, final):
        connections = graph.num_connections()
        if connections > self.max_graph_connections:
            if final:
                self.outputs["graph.graphml"] = {
                    "written": False,
                    "connections": connections,
                    "reason": f"{connections:,} connections, more than the {self.max_graph_connections:,} a full "
                    "snapshot holds; the active network is in connectome.graphml and every weight in "
                    "checkpoint.safetensors (deletion.enabled=true shrinks the graph)",
                }
            return
        start = time.perf_counter()
        super().snapshot(cycle, graph, reserve, final)
        if final:
            self.outputs["graph.graphml"] = {"written": True, "connections": connections, "seconds": _since(start)}

    def connectome(self, cycle: int, graph: Graph, analysis: Analysis, final: bool) -> None:
        limit = self.max_connectome_edges
        if not final:
            (self.path / "graphs").mkdir(exist_ok=True)
            write_connectome(self.path / "graphs" / f"connectome-{cycle}.graphml", graph, analysis, max_edges=limit)
            return
        start = time.perf_counter()
        sizes = write_connectome(self.path / "connectome.graphml", graph, analysis, max_edges=limit)
        record = {"written": True, **sizes, "seconds": _since(start)}
        if sizes["synapses_written"] < sizes["synapses"]:
            record["reason"] = f"the strongest {limit:,} of {sizes['synapses']:,} active synapses"
        self.outputs["connectome.graphml"] = record
        start = time.perf_counter()
        write_figures(self.path / "figures", graph, analysis)
        self.outputs["figures"] = {"written": True, "seconds": _since(start)}

    def end(self, summary):
        super().end({**summary, "outputs": dict(self.outputs)} if self.outputs else summary)


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 3)
