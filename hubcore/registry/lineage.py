"""The lineage graph of a version, and its renderings: text, JSON, Graphviz dot, Mermaid.

Nodes are artifact versions (``artifact:NAME:vN``), registered-model versions
(``model:NAME:vN``) and runs (``run:ID``); edges go the way things flowed: an input into the
run that used it, a run into what it logged, an artifact version into the registered-model
versions that link to it. :func:`build` walks *depth* runs upstream (what made the version,
from which inputs, recursively) and downstream (which runs used it, what they made).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from hubcore.registry import runs
from hubcore.registry.errors import RegistryError, VersionNotFoundError

if TYPE_CHECKING:
    from hubcore.registry.core import Registry, Version

__all__ = ["FORMATS", "Edge", "Lineage", "Node", "build"]

FORMATS = ("text", "json", "dot", "mermaid")
#: How the text tree reads an edge, looking upstream and downstream.
_VERB_IN = {"output": "made by", "input": "used", "link": "links"}
_VERB_OUT = {"output": "made", "input": "used by", "link": "linked in"}


@attrs.frozen
class Node:
    """An artifact version, a registered model's version or a run."""

    id: str
    kind: str  # "artifact" | "model" | "run"
    label: str
    data: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Edge:
    """``source -> target``: ``input`` (version into run), ``output`` (run into version),
    ``link`` (artifact version into registered model version)."""

    source: str
    target: str
    kind: str


@attrs.frozen
class Lineage:
    """The graph around :attr:`root`."""

    root: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def node(self, node_id: str) -> Node:
        """The node with id *node_id*."""
        return next(n for n in self.nodes if n.id == node_id)

    def upstream(self) -> set[str]:
        """Ids of every node the root comes from."""
        return self._reach(lambda e: (e.target, e.source))

    def downstream(self) -> set[str]:
        """Ids of every node that comes from the root."""
        return self._reach(lambda e: (e.source, e.target))

    def _reach(self, way: Any) -> set[str]:
        seen: set[str] = set()
        todo = [self.root]
        while todo:
            here = todo.pop()
            for edge in self.edges:
                start, end = way(edge)
                if start == here and end not in seen:
                    seen.add(end)
                    todo.append(end)
        return seen

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: root, nodes (id, kind, label, data), edges."""
        return {
            "root": self.root,
            "nodes": [attrs.asdict(n) for n in self.nodes],
            "edges": [attrs.asdict(e) for e in self.edges],
        }

    def render(self, form: str) -> str:
        """The graph as ``text``, ``json``, ``dot`` or ``mermaid``."""
        if form == "json":
            return json.dumps(self.to_dict(), indent=1, sort_keys=True, default=str)
        if form == "dot":
            return self.dot()
        if form == "mermaid":
            return self.mermaid()
        if form == "text":
            return self.text()
        raise RegistryError(f"unknown lineage format {form!r}; use one of {', '.join(FORMATS)}")

    def text(self) -> str:
        """An indented tree: where the root comes from, then what comes from it."""
        lines = [self._describe(self.root)]
        up = self._tree(self.root, incoming=True, seen={self.root})
        down = self._tree(self.root, incoming=False, seen={self.root})
        if up:
            lines += ["upstream:", *up]
        if down:
            lines += ["downstream:", *down]
        if not up and not down:
            lines.append("(no recorded lineage)")
        return "\n".join(lines)

    def _tree(self, here: str, *, incoming: bool, seen: set[str], indent: str = "") -> list[str]:
        lines: list[str] = []
        edges = [e for e in self.edges if (e.target if incoming else e.source) == here]
        for i, edge in enumerate(edges):
            other = edge.source if incoming else edge.target
            last = i == len(edges) - 1
            verb = (_VERB_IN if incoming else _VERB_OUT)[edge.kind]
            again = other in seen
            lines.append(
                f"{indent}{'└─' if last else '├─'} {verb} {self._describe(other)}"
                + (" (see above)" if again else "")
            )
            if not again:
                seen.add(other)
                lines += self._tree(
                    other, incoming=incoming, seen=seen, indent=indent + ("   " if last else "│  ")
                )
        return lines

    def _describe(self, node_id: str) -> str:
        node = self.node(node_id)
        data = node.data
        if node.kind == "run":
            who = f", {data.get('user')}" if data.get("user") else ""
            return f"run {node.label} ({data.get('job_type')}, {data.get('status')}{who})"
        what = "registered model" if node.kind == "model" else (data.get("type") or "artifact")
        digest = str(data.get("digest") or "")[:12]
        return f"{node.label} [{what}{', sha256:' + digest if digest else ''}]"

    def dot(self) -> str:
        """Graphviz: ``dot -Tsvg``."""
        shapes = {"run": "ellipse", "model": "doubleoctagon", "artifact": "box"}
        lines = ["digraph lineage {", "  rankdir=LR;"]
        for node in self.nodes:
            style = ", style=bold" if node.id == self.root else ""
            label = json.dumps(_short(self, node))
            lines.append(
                f"  {json.dumps(node.id)} [label={label}, shape={shapes[node.kind]}{style}];"
            )
        for edge in self.edges:
            lines.append(f"  {json.dumps(edge.source)} -> {json.dumps(edge.target)};")
        lines.append("}")
        return "\n".join(lines)

    def mermaid(self) -> str:
        """A Mermaid flowchart (GitHub and many Markdown viewers draw it)."""
        ids = {n.id: f"n{i}" for i, n in enumerate(self.nodes)}
        lines = ["flowchart LR"]
        for node in self.nodes:
            label = _short(self, node).replace('"', "#quot;")
            shape = {"run": '(["{}"])', "model": '[["{}"]]', "artifact": '["{}"]'}[node.kind]
            lines.append(f"  {ids[node.id]}{shape.format(label)}")
        for edge in self.edges:
            lines.append(f"  {ids[edge.source]} -->|{edge.kind}| {ids[edge.target]}")
        lines.append(f"  style {ids[self.root]} stroke-width:3px")
        return "\n".join(lines)


def _short(graph: Lineage, node: Node) -> str:
    if node.kind == "run":
        return f"run {node.data.get('job_type')} {node.label} ({node.data.get('status')})"
    return node.label


def build(registry: Registry, spec: str, depth: int = 3) -> Lineage:
    """The lineage of the version *spec* names, *depth* runs up and down."""
    if depth < 0:
        raise RegistryError("the lineage depth must be zero or more")
    nodes: dict[str, Node] = {}
    edges: list[Edge] = []

    def edge(source: str, target: str, kind: str) -> None:
        if Edge(source, target, kind) not in edges:
            edges.append(Edge(source, target, kind))

    def version_node(name: str, number: int, version: Version | None = None) -> str:
        if version is None:
            version = registry._read_version(name, number)
        model = version is not None and version.link is not None
        node_id = f"{'model' if model else 'artifact'}:{name}:v{number}"
        if node_id not in nodes:
            data: dict[str, Any] = {"name": name, "version": number}
            if version is not None:
                data.update(
                    type=version.type,
                    digest=version.digest,
                    run=version.run,
                    deleted=bool(version.record.get("deleted")),
                )
            nodes[node_id] = Node(
                node_id, "model" if model else "artifact", f"{name}:v{number}", data
            )
        return node_id

    def run_node(run_id: str) -> tuple[str, dict[str, Any] | None]:
        node_id = f"run:{run_id}"
        try:
            record: dict[str, Any] | None = runs.read(registry, run_id)
        except VersionNotFoundError:
            record = None
        if node_id not in nodes:
            data = {
                k: (record or {}).get(k)
                for k in ("id", "job_type", "status", "user", "host", "started", "ended", "git")
            }
            nodes[node_id] = Node(node_id, "run", (record or {}).get("name") or run_id, data)
        return node_id, record

    walked_up: set[str] = set()
    walked_down: set[str] = set()

    def up(version: Version, node_id: str, left: int) -> None:
        if left <= 0 or node_id in walked_up or version.run is None:
            return
        walked_up.add(node_id)
        run_id, record = run_node(version.run)
        edge(run_id, node_id, "output")
        for item in (record or {}).get("inputs", []):
            used = registry._read_version(item["name"], int(item["version"]))
            used_id = version_node(item["name"], int(item["version"]), used)
            edge(used_id, run_id, "input")
            if used is not None:
                up(used, used_id, left - 1)

    def down(version: Version, node_id: str, left: int) -> None:
        if node_id in walked_down:
            return
        walked_down.add(node_id)
        for model, number in registry.links(version.name, version.number):
            edge(node_id, version_node(model, number), "link")
        if left <= 0:
            return
        for run_id_text in runs.users(registry, version.name, version.number):
            run_id, record = run_node(run_id_text)
            edge(node_id, run_id, "input")
            for item in (record or {}).get("outputs", []):
                made = registry._read_version(item["name"], int(item["version"]))
                made_id = version_node(item["name"], int(item["version"]), made)
                edge(run_id, made_id, "output")
                if made is not None:
                    down(made, made_id, left - 1)

    start = registry.get(spec)
    root = version_node(start.name, start.number, start)
    source = start
    source_id = root
    if start.link is not None:
        try:
            source = start.source()
        except VersionNotFoundError:  # the artifact version was deleted: show what it was
            found = registry._read_version(*start.link)
            source = found if found is not None else start
        source_id = version_node(source.name, source.number, source)
        edge(source_id, root, "link")
    up(source, source_id, depth)
    down(source, source_id, depth)
    return Lineage(root, tuple(nodes.values()), tuple(edges))
