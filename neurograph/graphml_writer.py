"""Streaming GraphML: nodes and edges written from columns, a chunk at a time.

networkx holds every node and edge as a dict of Python objects (about a
kilobyte per edge) before it writes a byte; a dense URN has millions of
synapses. This writer takes each attribute as one array (a *column*), turns
a chunk of rows at a time into text and writes it, so memory stays at one
chunk whatever the size, and a ``KeyboardInterrupt`` (Ctrl-C, or the command
line's SIGTERM handler) lands between chunks.

The file is the one ``nx.write_graphml(g, f, named_key_ids=True)`` writes for
the same graph: key ids equal attribute names, Python types map to GraphML
types as networkx maps them (``int`` -> ``long``, ``float`` -> ``double``,
``str`` -> ``string``), floats are written with ``repr`` (they read back
exactly), so ``nx.read_graphml`` and :func:`neurograph.graphml.read_graphml`
read it unchanged.
"""

from __future__ import annotations

from typing import IO, Mapping, Sequence

import numpy as np
from xml.sax.saxutils import escape, quoteattr

__all__ = ["CHUNK_ROWS", "Columns", "write_graphml_columns"]

CHUNK_ROWS = 20_000  # rows turned into text at once: a few MB of text, and a Ctrl-C waits at most one chunk
_HEADER = (
    "<?xml version='1.0' encoding='utf-8'?>\n"
    '<graphml xmlns="http://graphml.graphdrawing.org/xmlns" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns '
    'http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">\n'
)

Columns = Mapping[str, Sequence | np.ndarray]  # attribute name -> one value per row


def write_graphml_columns(
    f: IO[bytes],
    *,
    graph_attributes: Mapping[str, int | float | str],
    node_labels: Sequence[str],
    nodes: Columns,
    edge_sources: np.ndarray,
    edge_targets: np.ndarray,
    edges: Columns,
) -> None:
    """Write a directed graph to the binary file ``f``.

    ``node_labels`` (n,) name the nodes; ``nodes`` holds n values per attribute.
    ``edge_sources`` and ``edge_targets`` (E,) are row indices into
    ``node_labels``; ``edges`` holds E values per attribute. A column's type
    is its dtype's (numpy ints -> ``long``, floats -> ``double``, strings or
    objects -> ``string``); every value of a column has that type.
    """
    node_types = {k: _type(v) for k, v in nodes.items()}
    edge_types = {k: _type(v) for k, v in edges.items()}
    keys = [*_keys("edge", edge_types), *_keys("node", node_types), *_keys("graph", _scalar_types(graph_attributes))]
    f.write((_HEADER + "".join(keys) + '  <graph edgedefault="directed">\n').encode())
    labels = [quoteattr(str(label)) for label in node_labels]
    template = _element("node", "id={}", node_types)
    for start in range(0, len(labels), CHUNK_ROWS):
        rows = slice(start, start + CHUNK_ROWS)
        f.write(_rows(template, [labels[rows]], nodes, node_types, rows))
    template = _element("edge", "source={} target={}", edge_types)
    for start in range(0, len(edge_sources), CHUNK_ROWS):
        rows = slice(start, start + CHUNK_ROWS)
        ends = [[labels[k] for k in np.asarray(a[rows]).tolist()] for a in (edge_sources, edge_targets)]
        f.write(_rows(template, ends, edges, edge_types, rows))
    data = "".join(f'    <data key="{k}">{_text(v)}</data>\n' for k, v in graph_attributes.items())
    f.write((data + "  </graph>\n</graphml>\n").encode())


def _type(column) -> str:
    kind = np.asarray(column).dtype.kind
    if kind in "iu":
        return "long"
    if kind == "f":
        return "double"
    if kind == "b":
        raise ValueError("boolean columns are not supported: networkx reads them back as strings")
    return "string"


def _scalar_types(values: Mapping) -> dict[str, str]:
    types = {}
    for k, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise ValueError(f"graph attribute {k!r}: {type(v).__name__} is not int, float or str")
        types[k] = "long" if isinstance(v, int) else "double" if isinstance(v, float) else "string"
    return types


def _keys(kind: str, types: Mapping[str, str]) -> list[str]:
    # networkx lists keys newest first; the order carries no meaning, but files compare equal this way
    return [
        f'  <key id="{k}" for="{kind}" attr.name="{k}" attr.type="{t}" />\n' for k, t in reversed(list(types.items()))
    ]


def _element(tag: str, opening: str, types: Mapping[str, str]) -> str:
    """A ``str.format`` template for one node or edge: its opening fields, then one ``<data>`` per column."""
    body = "".join(f'      <data key="{k}">{{}}</data>\n' for k in types)
    if not types:
        return f"    <{tag} {opening} />\n"
    return f"    <{tag} {opening}>\n{body}    </{tag}>\n"


def _rows(template: str, leading: list[list[str]], columns: Columns, types: Mapping[str, str], rows: slice) -> bytes:
    values = [_cells(columns[k][rows], t) for k, t in types.items()]
    return "".join(template.format(*row) for row in zip(*leading, *values)).encode()


def _cells(column, kind: str) -> list:
    """One chunk of a column as the text GraphML holds (floats by repr through str, strings escaped)."""
    values = np.asarray(column).tolist() if isinstance(column, np.ndarray) else list(column)
    if kind == "string":
        return [escape(str(v)) for v in values]
    if kind == "double":
        return [float(v) for v in values]
    return [int(v) for v in values]


def _text(value) -> str:
    return escape(value) if isinstance(value, str) else repr(value)
