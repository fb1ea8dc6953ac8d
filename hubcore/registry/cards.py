"""Model cards: what a person writes about a registered model (or a version), completed
with what the registry knows.

A card is Markdown with front matter in the model-page format the catalog site reads (the
PyTorch hub's ``template.md`` fields: ``title``, ``summary``, ``image``, ``author``, ``tags``,
``github-link``, ``github-id``, ``featured_image_1/2``, ``accelerator``, ``order``,
``demo-model-link``, with the template's fixed ``layout``, ``category`` ...). The written part
is stored as ``collections/<name>/card.json`` (a version's: ``cards/v<N>.json``), replaced by
compare-and-swap and recorded in the history (event ``card``, with the sha256 and size of
the text before and after). :func:`render` fills the fields the writer left out (title,
summary from the description, author, tags) and appends generated sections: versions and
aliases, metadata and metrics as a table, the lineage (a Mermaid diagram), and how to load
it with hubcore (and with ``torch.hub`` when the version is a hub repository).
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hubcore.registry.errors import RegistryError, VersionNotFoundError
from hubcore.registry.names import LATEST, check_name, encode_name, parse_spec

if TYPE_CHECKING:
    from hubcore.registry.core import Registry, Version

__all__ = [
    "FIELDS",
    "card_key",
    "front_matter",
    "headline",
    "hubconf_entries",
    "load_snippets",
    "read_written",
    "render",
    "write",
]

#: The model-page fields, in the template's order, and what a card sets when the writer did not.
FIELDS: dict[str, Any] = {
    "layout": "hub_detail",
    "background-class": "hub-background",
    "body-class": "hub",
    "category": "researchers",
    "title": "",
    "summary": "",
    "image": "no-image",
    "author": "",
    "tags": [],
    "github-link": "",
    "github-id": "",
    "featured_image_1": "no-image",
    "featured_image_2": "no-image",
    "accelerator": "",
    "order": 10,
    "demo-model-link": "",
}
_FRONT = re.compile(r"\A(?:\ufeff)?---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
MAX_CARD = 1 << 20


def card_key(name: str, number: int | None = None) -> str:
    """Where the written card of *name* (or of its version *number*) is stored."""
    base = f"collections/{encode_name(name)}"
    return f"{base}/card.json" if number is None else f"{base}/cards/v{number:010d}.json"


def front_matter(text: str) -> tuple[dict[str, Any], str]:
    """``(fields, body)`` of a card; YAML front matter (PyYAML when installed, else
    ``key: value`` lines with JSON or plain values)."""
    match = _FRONT.match(text)
    if match is None:
        return {}, text
    header, body = match.group(1), text[match.end() :]
    try:
        import yaml
    except ImportError:
        return _simple_fields(header), body
    try:
        fields = yaml.safe_load(header) or {}
    except yaml.YAMLError as exc:
        raise RegistryError(f"the card's front matter is not valid YAML: {exc}") from None
    if not isinstance(fields, dict):
        raise RegistryError("the card's front matter must be 'field: value' lines")
    return {str(k): v for k, v in fields.items()}, body


def _simple_fields(header: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for line in header.splitlines():
        key, sep, value = line.partition(":")
        if not sep or not key.strip() or line.startswith((" ", "#")):
            continue
        value = value.strip()
        try:
            fields[key.strip()] = json.loads(value)
        except ValueError:
            fields[key.strip()] = value.strip("'\"")
    return fields


def _target(registry: Registry, spec: str) -> tuple[str, Version | None]:
    """``(name, version)``: a bare name is the collection's card, ``NAME:X`` a version's."""
    if ":" in spec or "@" in spec:
        version = registry.get(spec)
        return version.name, version
    check_name(spec)
    registry.collection(spec)  # exists?
    return spec, None


def read_written(registry: Registry, spec: str) -> str:
    """The card text as written (``""`` when none was)."""
    name, version = _target(registry, spec)
    found = registry._read_json(card_key(name, version.number if version else None))
    return str(found[0].get("text", "")) if found else ""


def write(registry: Registry, spec: str, text: str) -> None:
    """Store *text* as the written card of *spec* (``NAME`` or ``NAME:VERSION``), by
    compare-and-swap, and record the change in the history."""
    from hubcore.registry.core import _dumps

    if len(text.encode()) > MAX_CARD:
        raise RegistryError(f"the card is larger than {MAX_CARD} bytes")
    front_matter(text)  # refuse what the catalog could not read
    name, version = _target(registry, spec)
    key = card_key(name, version.number if version else None)
    new = {"text": text}
    before = None
    if not registry.store.create(key, _dumps(new)):

        def change(current: dict[str, Any]) -> dict[str, Any] | None:
            return None if current == new else new

        result = registry._update(key, change, what=f"the card of {spec}")
        if result is None:
            return
        before = _summary(str(result[0].get("text", "")))
    event = registry._event(
        name,
        "card",
        before=before,
        after=_summary(text),
        target=str(version) if version else name,
    )
    if version is not None:
        event["version"] = version.number
    registry._commit(name, event)


def _summary(text: str) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(text.encode()).hexdigest(), "size": len(text.encode())}


def render(registry: Registry, spec: str) -> str:
    """The full card of *spec*: written front matter and text, completed (see the module
    docstring)."""
    name, version = _target(registry, spec)
    collection = registry.collection(name)
    written, body = front_matter(read_written(registry, spec))
    aliases = registry.aliases(name)
    versions = [version] if version is not None else registry.versions(name, limit=0)
    shown = version or headline(registry, name, aliases)
    description = (version.description if version else "") or collection.get("description", "")
    fields = dict(FIELDS)
    fields.update(
        title=str(version) if version else name,
        summary=(description.strip().splitlines() or [""])[0]
        or f"{'A registered model' if collection['kind'] != 'artifact' else 'An artifact'} "
        "in the hubcore registry",
        author=(version.creator if version else collection.get("creator", "")),
        tags=list((version.tags if version else collection.get("tags")) or []),
    )
    fields.update(written)
    sections = [body.strip() or description.strip()]
    sections.append(_versions_section(registry, versions, aliases))
    sections.append(_metadata_section(versions))
    if shown is not None:
        sections.append(_lineage_section(registry, shown))
        sections.append(_load_section(registry, name, shown, aliases))
    return _dump_front(fields) + "\n" + "\n\n".join(s for s in sections if s) + "\n"


def headline(registry: Registry, name: str, aliases: Mapping[str, int]) -> Version | None:
    """The version a collection's card shows lineage and loading for: production, else latest."""
    for alias in ("production", LATEST):
        if alias in aliases:
            try:
                return registry.get(f"{name}:v{aliases[alias]}")
            except VersionNotFoundError:
                return None
    return None


def _dump_front(fields: Mapping[str, Any]) -> str:
    # JSON scalars and lists are YAML too: no YAML writer needed, and nothing is mangled
    lines = ["---"]
    for key, value in fields.items():
        lines.append(f"{key}: {json.dumps(value, ensure_ascii=False, default=str)}")
    lines.append("---")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text.replace("|", "\\|").replace("\n", " ")


def _versions_section(
    registry: Registry, versions: list[Version], aliases: Mapping[str, int]
) -> str:
    by_number: dict[int, list[str]] = {}
    for alias, number in aliases.items():
        by_number.setdefault(number, []).append(alias)
    rows = ["## Versions and aliases", "", "| version | aliases | artifact | created | by |"]
    rows.append("| --- | --- | --- | --- | --- |")
    for v in sorted(versions, key=lambda v: -v.number):
        link = f"{v.link[0]}:v{v.link[1]}" if v.link else f"sha256:{v.digest[:12]}"
        names = ", ".join(f"`{a}`" for a in sorted(by_number.get(v.number, [])))
        rows.append(f"| v{v.number} | {names} | {_cell(link)} | {v.created[:19]} | {v.creator} |")
    return "\n".join(rows)


def _metadata_section(versions: list[Version]) -> str:
    metadata = {v.number: v.metadata for v in versions}
    keys = sorted({k for m in metadata.values() for k in m})
    if not keys:
        return ""
    rows = ["## Metadata and metrics", ""]
    if len(versions) == 1:
        rows += ["| key | value |", "| --- | --- |"]
        rows += [f"| {_cell(k)} | {_cell(versions[0].metadata[k])} |" for k in keys]
        return "\n".join(rows)
    rows.append("| version | " + " | ".join(_cell(k) for k in keys) + " |")
    rows.append("| --- |" + " --- |" * len(keys))
    for number in sorted(metadata, reverse=True):
        cells = [_cell(metadata[number][k]) if k in metadata[number] else "" for k in keys]
        rows.append(f"| v{number} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _lineage_section(registry: Registry, version: Version) -> str:
    from hubcore.registry.lineage import build

    graph = build(registry, f"{version.name}:v{version.number}", depth=2)
    if len(graph.nodes) <= 1:
        return ""
    return f"## Lineage of {version}\n\n```mermaid\n{graph.mermaid()}\n```"


def load_snippets(
    registry: Registry, name: str, version: Version, aliases: Mapping[str, int]
) -> tuple[list[tuple[str, str]], str]:
    """How to load *version* of *name*: ``[(API, code)]`` (hubcore always, ``torch.hub``
    or ``megengine.hub`` for a hub repository of that framework), and the framework."""
    pointing = sorted(a for a, n in aliases.items() if n == version.number and a != LATEST)
    tag = "production" if "production" in pointing else pointing[0] if pointing else ""
    tag = tag or f"v{version.number}"
    ref = f"registry:{name}:{tag}"
    where = f"# HUBCORE_REGISTRY={registry.store.url}\n"
    entries, framework = hubconf_entries(registry, version)
    entry = f", {entries[0]!r}" if entries else ""
    snippets = [("hubcore", f"{where}import hubcore\n\nmodel = hubcore.load({ref!r}{entry})")]
    if entries and framework == "torch":
        snippets.append(
            (
                "torch.hub",
                "import torch, hubcore.registry\n\n"
                f"folder = hubcore.registry.open({registry.store.url!r}).get("
                f"{ref.removeprefix('registry:')!r}).download()\n"
                f"model = torch.hub.load(str(folder), {entries[0]!r}, source='local')",
            )
        )
    if entries and framework == "megengine":
        snippets.append(
            (
                "megengine.hub",
                "from hubcore.compat import megengine_hub  # megengine.hub's API\n\n"
                f"model = megengine_hub.load({ref!r}, {entries[0]!r})",
            )
        )
    return snippets, framework


def _load_section(
    registry: Registry, name: str, version: Version, aliases: Mapping[str, int]
) -> str:
    lines = ["## Load it"]
    for label, code in load_snippets(registry, name, version, aliases)[0]:
        lines += ["", f"With `{label}`:", "", "```python", code, "```"]
    return "\n".join(lines)


def hubconf_entries(registry: Registry, version: Version) -> tuple[list[str], str]:
    """The public entrypoints of a version's ``hubconf.py`` and its framework (``torch``,
    ``megengine`` or ``""``), read statically; nothing when it has none."""
    from hubcore.registry.core import blob_key

    entry = next((f for f in version.files if f.path == "hubconf.py" and f.url is None), None)
    if entry is None or (entry.size or 0) > 1 << 20:
        return [], ""
    try:
        data, _ = registry.store.read(blob_key(entry.sha256))
        tree = ast.parse(data)
    except (FileNotFoundError, SyntaxError, ValueError):
        return [], ""
    names = [
        n.name
        for n in tree.body
        if isinstance(n, ast.FunctionDef | ast.ClassDef) and not n.name.startswith("_")
    ]
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(a.name.partition(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.partition(".")[0])
    framework = "torch" if "torch" in imported else "megengine" if "megengine" in imported else ""
    return names, framework


def parse_target(spec: str) -> str:
    """*spec* checked: ``NAME`` or ``NAME:VERSION`` (for the command line)."""
    if ":" in spec or "@" in spec:
        parse_spec(spec)
    else:
        check_name(spec)
    return spec
