"""How a history event reads: one line saying what changed, before -> after."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["change_text"]


def change_text(event: Mapping[str, Any]) -> str:
    """What one history event changed, before -> after, in a line."""
    kind = event["kind"]
    after = event.get("after") or {}
    if kind in ("alias", "unalias"):
        old = f"v{event['from']}" if event.get("from") is not None else "-"
        new = f"v{event['to']}" if event.get("to") is not None else "-"
        return f"{kind} {event['alias']}: {old} -> {new}"
    if kind == "link":
        return f"link v{after.get('version')} -> {after.get('link')}"
    if kind == "linked":
        return f"linked v{event.get('version')} in {after.get('model')}:v{after.get('version')}"
    if kind in ("update", "describe"):
        before = event.get("before") or {}
        changes = ", ".join(
            f"{k}: {json.dumps(before.get(k))} -> {json.dumps(after.get(k))}" for k in sorted(after)
        )
        where = f" v{event['version']}" if event.get("version") is not None else ""
        return f"{kind}{where} {changes}"
    if kind == "card":
        old = (event.get("before") or {}).get("sha256", "")[:12] or "-"
        return f"card of {event.get('target')}: {old} -> {after.get('sha256', '')[:12]}"
    return f"{kind} v{event.get('version')}"
