"""Draw a lineage graph as an inline SVG at build time (no script, no external request).

Nodes are placed in columns by their longest distance from a node with no inputs (so every
edge points right), and in rows in the order they are given; edges are cubic curves with an
arrow head. Labels are escaped; long ones are shortened with an ellipsis and kept whole in a
``<title>`` tooltip.
"""

from __future__ import annotations

from html import escape

from hubcore.site.model import LineageGraph

__all__ = ["lineage_svg"]

_W, _H, _GAP_X, _GAP_Y, _PAD = 168, 40, 56, 18, 8
_MAX_LABEL = 22


def _columns(graph: LineageGraph) -> dict[str, int]:
    ids = [n.id for n in graph.nodes]
    inputs: dict[str, list[str]] = {i: [] for i in ids}
    for edge in graph.edges:
        if edge.source in inputs and edge.target in inputs:
            inputs[edge.target].append(edge.source)
    column: dict[str, int] = {}

    def depth(node: str, visiting: frozenset[str]) -> int:
        if node in column:
            return column[node]
        if node in visiting:  # a cycle: break it here rather than recurse forever
            return 0
        found = max((depth(p, visiting | {node}) + 1 for p in inputs[node]), default=0)
        column[node] = found
        return found

    for node in ids:
        depth(node, frozenset())
    return column


def lineage_svg(graph: LineageGraph, title: str = "Lineage") -> str:
    """The SVG markup of *graph*, accessible as one image named *title*."""
    column = _columns(graph)
    rows: dict[int, int] = {}
    place: dict[str, tuple[int, int]] = {}
    for node in graph.nodes:
        col = column[node.id]
        place[node.id] = (col, rows.get(col, 0))
        rows[col] = rows.get(col, 0) + 1
    width = (max(column.values(), default=0) + 1) * (_W + _GAP_X) - _GAP_X + 2 * _PAD
    height = max(rows.values(), default=1) * (_H + _GAP_Y) - _GAP_Y + 2 * _PAD

    def box(node_id: str) -> tuple[int, int]:
        col, row = place[node_id]
        return _PAD + col * (_W + _GAP_X), _PAD + row * (_H + _GAP_Y)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-labelledby="lineage-title">',
        f'<title id="lineage-title">{escape(title)}</title>',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'class="lineage-arrow"/></marker></defs>',
    ]
    for edge in graph.edges:
        if edge.source not in place or edge.target not in place:
            continue
        x1, y1 = box(edge.source)
        x2, y2 = box(edge.target)
        sx, sy, tx, ty = x1 + _W, y1 + _H // 2, x2, y2 + _H // 2
        mid = (sx + tx) // 2
        parts.append(
            f'<path class="lineage-edge" d="M{sx},{sy} C{mid},{sy} {mid},{ty} {tx},{ty}" '
            'marker-end="url(#arrow)"/>'
        )
    for node in graph.nodes:
        x, y = box(node.id)
        label = node.label if len(node.label) <= _MAX_LABEL else node.label[: _MAX_LABEL - 1] + "…"
        classes = f"lineage-node lineage-{escape(node.kind)}" + (" current" if node.current else "")
        radius = 20 if node.kind == "run" else 4  # runs are rounded
        shape = f'<rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="{radius}"/>'
        parts.append(
            f'<g class="{classes}"><title>{escape(node.kind)}: {escape(node.label)}</title>{shape}'
            f'<text x="{x + _W // 2}" y="{y + _H // 2}" dominant-baseline="middle" '
            f'text-anchor="middle">{escape(label)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
