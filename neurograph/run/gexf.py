"""Dynamic GEXF 1.2 of a run's history, streamed as text.

One node per neuron that lived up to the history's cycle, with its life as
``start`` / ``end`` (whole cycles, both included; no ``end`` while alive),
its static attributes, its dynamic ones as spells, and its position as
``viz:position``; one edge per connection with its life (``spells`` when it
had several). Time is ``timeformat="integer"``, in cycles (URN: epochs):
networkx's GEXF writer declares integer times as ``timeformat="long"``,
which the GEXF 1.2 schema does not allow, and holds the whole document in
memory, so the file is written here a node or an edge at a time. Edge
``weight`` is a dynamic attribute (``|w|``; Gephi's dynamic edge weight), with
the real one in ``signed_weight``. ``died`` and ``age`` are as of the
history's cycle. GEXF has no typed graph attributes: the schema's are
written as ``name=value`` pairs in ``meta/description``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO
from xml.sax.saxutils import escape, quoteattr

from neurograph import __version__
from neurograph.atomic import atomic_open
from neurograph.graph_columns import EDGE_ATTRIBUTES, NODE_ATTRIBUTES
from neurograph.run.lifetime import Life, Lifetime

__all__ = ["GEXF_NS", "VIZ_NS", "write_lifetime_gexf"]

GEXF_NS = "http://www.gexf.net/1.2draft"
VIZ_NS = "http://www.gexf.net/1.2draft/viz"
_TYPES = {int: "integer", float: "double", str: "string"}
_NODE = {a.name: a for a in NODE_ATTRIBUTES}
_EDGE = {a.name: a for a in EDGE_ATTRIBUTES}


def write_lifetime_gexf(history: Lifetime, path: str | os.PathLike) -> None:
    """Write ``history`` as dynamic GEXF to ``path``, atomically."""
    node_static = [k for k in history.node_names if not _NODE[k].dynamic]
    node_dynamic = [k for k in history.node_names if _NODE[k].dynamic]
    edge_static = [a.name for a in EDGE_ATTRIBUTES if not a.dynamic]
    edge_dynamic = [a.name for a in EDGE_ATTRIBUTES if a.dynamic]
    first = min((life.lives[0][0] for life in history.nodes.values()), default=0)
    about = " ".join(f"{k}={v}" for k, v in history.graph.items())  # GEXF has no typed graph attributes
    with atomic_open(Path(path), "w") as f:
        f.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<gexf xmlns="{GEXF_NS}" xmlns:viz="{VIZ_NS}" version="1.2">\n'
            f"  <meta>\n    <creator>neurograph {__version__}</creator>\n"
            f"    <description>{escape(about)}</description>\n  </meta>\n"
            f'  <graph mode="dynamic" defaultedgetype="directed" timeformat="integer" '
            f'start="{min(first, history.cycle)}" end="{history.cycle}">\n'
        )
        _declare(f, "node", "static", node_static, _NODE)
        _declare(f, "node", "dynamic", node_dynamic, _NODE)
        _declare(f, "edge", "static", edge_static, _EDGE)
        _declare(f, "edge", "dynamic", edge_dynamic, _EDGE)
        f.write("    <nodes>\n")
        for label, life in history.nodes.items():
            x, y, z = history.positions[label]
            static = life.static | {"x": float(x), "y": float(y), "z": float(z)}
            opening = f"id={quoteattr(label)} label={quoteattr(label)}{_span(life)}"
            position = f'        <viz:position x="{x!r}" y="{y!r}" z="{z!r}" />\n'
            _element(f, "node", opening, life, {k: static[k] for k in node_static}, node_dynamic, position, history.cycle)
        f.write("    </nodes>\n    <edges>\n")
        for k, ((source, target), life) in enumerate(history.edges.items()):
            opening = f'id="{k}" source={quoteattr(source)} target={quoteattr(target)}{_span(life)}'
            _element(f, "edge", opening, life, {n: life.static[n] for n in edge_static}, edge_dynamic, "", history.cycle)
        f.write("    </edges>\n  </graph>\n</gexf>\n")


def _declare(f: IO[str], kind: str, mode: str, names: list[str], schema: dict) -> None:
    if not names:
        return
    f.write(f'    <attributes class="{kind}" mode="{mode}">\n')
    for name in names:
        f.write(f'      <attribute id="{name}" title="{name}" type="{_TYPES[schema[name].type]}" />\n')
    f.write("    </attributes>\n")


def _span(life: Life) -> str:
    """A single life as ``start`` / ``end`` attributes (spells are written in the body)."""
    if len(life.lives) != 1:
        return ""
    start, end = life.lives[0]
    return f' start="{start}"' + ("" if end is None else f' end="{end}"')


def _element(
    f: IO[str], tag: str, opening: str, life: Life, static: dict, dynamic: list[str], extra: str, cycle: int
) -> None:
    """One node or edge; a living one's last spell ends at ``cycle`` (GEXF readers want both ends)."""
    values = [f'          <attvalue for="{k}" value={_value(v)} />\n' for k, v in static.items()]
    for k in dynamic:
        values += [
            f'          <attvalue for="{k}" value={_value(v)} start="{a}" end="{b}" />\n'
            for v, a, b in life.spells.get(k, ())
        ]
    body = "        <attvalues>\n" + "".join(values) + "        </attvalues>\n"
    if len(life.lives) != 1:
        spells = "".join(f'          <spell start="{a}" end="{cycle if b is None else b}" />\n' for a, b in life.lives)
        body += f"        <spells>\n{spells}        </spells>\n"
    f.write(f"      <{tag} {opening}>\n{body}{extra}      </{tag}>\n")


def _value(value) -> str:
    """An XML attribute value, quoted: floats by repr (they read back exactly), text escaped."""
    if isinstance(value, str):
        return quoteattr(value)
    return f'"{float(value)!r}"' if isinstance(value, float) else f'"{int(value)}"'
