"""``hubcore site new``: a template-format page for one entrypoint, written from discovery."""

from __future__ import annotations

import difflib
from pathlib import Path

import yaml

from hubcore import api
from hubcore.errors import EntrypointNotFoundError, HubError
from hubcore.site.collectors import entry_framework, entrypoint_row, github_id, snippets_for
from hubcore.site.model import slugify
from hubcore.site.render import human_size, valid_text

__all__ = ["page_name", "scaffold_page"]


class PageExistsError(HubError, FileExistsError):
    """The page to scaffold exists already."""


def page_name(owner_repo: str, entry: str) -> str:
    """``<owner>_<repo>_<title>.md`` (the PyTorch hub's naming rule)."""
    owner, _, repo = owner_repo.partition("/")
    return f"{owner}_{repo}_{entry}.md"


def scaffold_page(
    reference: str, entry: str, folder: Path, *, tags: tuple[str, ...] = (), force: bool = False
) -> Path:
    """Write a page for *entry* of *reference* into *folder* and return its path: title and
    summary from the docstring, ``github-id``, a hubcore snippet and, where the framework's
    hub API can reach the repository, a torch.hub or megengine.hub snippet. Runs no
    repository code."""
    snapshot = api.open_repo(reference)
    info = api.discover(snapshot)
    found = info.entrypoints.get(entry)
    if found is None or not found.resolved:
        known = sorted(info.entrypoints)
        close = difflib.get_close_matches(entry, known, n=3)
        raise EntrypointNotFoundError(entry, reference, known, close)
    ref = snapshot.ref
    github = github_id(ref)
    parts = ["local", *ref.repo.replace("\\", "/").strip("/").split("/")]
    owner_repo = github or "/".join(slugify(part) for part in parts[-2:])
    # outside GitHub there is no link to make up: `site check` asks for one
    link = f"https://github.com/{github}" if github else (ref.text if "://" in ref.text else "")
    doc = (found.doc or "").strip()
    summary = " ".join(doc.split("\n\n")[0].split()) or f"The {entry} entrypoint of {reference}."
    framework = entry_framework(snapshot.root, found)
    row = entrypoint_row(found, snapshot.root)
    meta = {
        "layout": "hub_detail",
        "background-class": "hub-background",
        "body-class": "hub",
        "category": "researchers",
        "title": entry,
        "summary": summary,
        "image": "no-image",
        "author": owner_repo.partition("/")[0],
        "tags": list(tags),
        "github-link": link,
        "github-id": owner_repo,
        "featured_image_1": "no-image",
        "featured_image_2": "no-image",
        "accelerator": "cpu",
        "order": 10,
        "demo-model-link": "",
    }
    body = ["### Model Description", "", doc or "(describe the model)", ""]
    if row.weights:
        body += ["Pretrained weights:", ""]
        for weight in row.weights:
            size = f", {human_size(weight.size)}" if weight.size else ""
            sha = f", sha256 `{weight.sha256}`" if weight.sha256 else ""
            default = " (default)" if weight.default else ""
            body.append(f"- `{weight.name}`{default}{size}{sha}")
        body.append("")
    body += ["### Example", ""]
    for snippet in snippets_for(ref, entry, framework, bool(row.weights)):
        body += [f"With {snippet.label}:", "", "```python", snippet.code, "```", ""]
    if info.dependencies:
        body += ["### Requirements", "", ", ".join(f"`{d}`" for d in info.dependencies), ""]
    path = folder / page_name(owner_repo, entry)
    if path.exists() and not force:
        raise PageExistsError(f"{path} exists; pass --force to replace it")
    folder.mkdir(parents=True, exist_ok=True)
    header = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    path.write_text(valid_text(f"---\n{header}---\n\n" + "\n".join(body)), encoding="utf-8")
    return path
