"""Export time of a large graph in every format: GraphML, CSV, the dynamic GEXF, SONATA and neuPrint CSV.

Run ``python benchmarks/bench_export.py`` (about 40 s at the default million
connections). Builds one dense graph of ``--neurons`` hidden neurons
(``--neurons`` squared connections, the shape of a URN before it
sparsifies), then prints, per format, the seconds to write it and the file
size. GraphML and CSV are streamed from the graph's arrays a chunk at a time
(target: 1 million connections in at most 10 s); the GEXF goes through the
lifetime view (:mod:`neurograph.run.lifetime`), one spell per value; SONATA
(needs h5py) and neuPrint's CSV from the columns of :mod:`neurograph.run.lived`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from neurograph.graph import Graph
from neurograph.graphml import write_graphml
from neurograph.run.export import write_csv, write_gexf, write_neuprint
from neurograph.run.lived import lived_columns
from neurograph.run.sonata import write_sonata


def dense_graph(n: int, *, seed: int = 0) -> Graph:
    """``n`` hidden neurons, every ordered pair connected: ``n * n`` connections."""
    rng = np.random.default_rng(seed)
    g = Graph(capacity=n, graveyard_size=0)
    g.meta.update(scenario="bench", seed=str(seed), model="urn")
    ids = [g.add_neuron("hidden", bias=float(b), position=tuple(p)).id for b, p in zip(rng.normal(size=n), rng.random((n, 3)))]
    g.wire(ids, ids, rng.normal(size=(n, n)))
    g.cycle = 100
    return g


def timed(write, path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    write(path)
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in path.iterdir()) if path.is_dir() else path.stat().st_size
    return seconds, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=1000, help="hidden neurons; connections are its square")
    parser.add_argument(
        "--formats", default="graphml,csv,gexf", help="comma-separated, of graphml, csv, gexf, sonata, neuprint"
    )
    args = parser.parse_args()
    graph = dense_graph(args.neurons)
    writers = {
        "graphml": lambda p: write_graphml(graph, p),
        "csv": lambda p: write_csv(graph, p),
        "gexf": lambda p: write_gexf(graph, [], p),
        "sonata": lambda p: write_sonata(lived_columns(graph, []), p),
        "neuprint": lambda p: write_neuprint(lived_columns(graph, []), p),
    }
    print(f"{graph.num_connections():,} connections, {len(graph):,} neurons")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.formats.split(","):
            path = Path(tmp) / (fmt if fmt in ("csv", "sonata", "neuprint") else f"graph.{fmt}")
            seconds, size = timed(writers[fmt], path)
            rate = graph.num_connections() / seconds / 1e6
            print(f"{fmt:<8} {seconds:6.2f} s  {size / 1e6:7.1f} MB  {rate:5.2f} M connections/s")
            path.unlink() if path.is_file() else [p.unlink() for p in path.iterdir()]
    print(f"(cpu count {os.cpu_count()}; GraphML target: 1 M connections in <= 10 s)")


if __name__ == "__main__":
    main()
