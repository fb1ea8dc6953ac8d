"""``hubcore site check``: review template-format pages as the PyTorch hub's sanity check
does, and more.

Errors: a page that cannot be read; a missing or empty required field (``title``,
``summary``, ``image``, ``author``, ``tags``, ``github-link``, ``category``); ``layout``,
``background-class`` or ``body-class`` changed from the template's values; a category other
than ``researchers``/``developers``; a tag outside the allowed set; an image (``image``,
``featured_image_1``, ``featured_image_2``) missing from ``images/``; a file not named
``<owner>_<repo>_<title>.md`` after its ``github-id`` (or ``github-link``); a python block
that does not compile; a hub call that names an entrypoint its repository does not have
(checked for repositories the site knows, read statically); with ``run``, a page whose python
blocks fail or time out when executed.

``run`` executes each page's python blocks, in order, as one script in a new Python process
with a timeout, as the PyTorch hub's CI does with its pages. ``torch.hub`` and
``megengine.hub`` calls in that script go through hubcore (its cache, verification and
trust); the repositories the page names are trusted for that run only.
"""

from __future__ import annotations

import math
import os
import posixpath
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from hubcore import api
from hubcore.errors import ConfigError, HubError
from hubcore.policy.check import Finding
from hubcore.repo.discovery import HubconfInfo
from hubcore.site.collectors import repository_identity
from hubcore.site.pages import (
    FIELDS,
    PLACEHOLDER_IMAGES,
    REQUIRED_FIELDS,
    TemplatePage,
    code_blocks,
    hub_calls,
    iter_pages,
    page_image,
    python_source,
    read_page,
)
from hubcore.site.render import body_references, is_external, site_path

__all__ = ["CATEGORIES", "TEMPLATE_HEADERS", "check_page", "check_pages", "run_page"]

#: The template's fixed header fields and their values.
TEMPLATE_HEADERS = {
    "layout": "hub_detail",
    "background-class": "hub-background",
    "body-class": "hub",
}
CATEGORIES = ("researchers", "developers")
_PYTHON = ("python", "py", "python3")

# Run before a page's code that uses a peer's hub API: the API answers through hubcore.
_PRELUDE = """
import importlib as _importlib
try:
    _target = _importlib.import_module({peer!r})
    _api = _importlib.import_module({ours!r})
except ImportError:
    pass
else:
    for _name in ("load", "list", "help"):
        if hasattr(_api, _name):
            setattr(_target, _name, getattr(_api, _name))
"""
_PEERS = {"torch.hub": "hubcore.compat.torch_hub", "megengine.hub": "hubcore.compat.megengine_hub"}


def check_pages(
    folder: Path,
    *,
    allowed_tags: Sequence[str],
    repositories: Mapping[str, HubconfInfo] | None = None,
    run: bool = False,
    timeout: float = 600.0,
) -> list[Finding]:
    """Check every page of *folder* (see the module docstring). *repositories* maps
    repository identities to their discovery, for the entrypoint check."""
    findings: list[Finding] = []
    for path in iter_pages(folder):
        findings += check_page(
            path,
            allowed_tags=allowed_tags,
            repositories=repositories or {},
            run=run,
            timeout=timeout,
        )
    return findings


def check_page(
    path: Path,
    *,
    allowed_tags: Sequence[str],
    repositories: Mapping[str, HubconfInfo],
    run: bool = False,
    timeout: float = 600.0,
) -> list[Finding]:
    """Check one page; see the module docstring."""
    where = path.name
    try:
        page = read_page(path)
    except HubError as exc:
        return [Finding("error", where, str(exc).removeprefix(f"{path}: "))]
    findings = [Finding("error", where, m) for m in _field_problems(page, allowed_tags)]
    findings += [Finding("error", where, m) for m in _naming_problems(page)]
    findings += _reference_problems(page)
    compiled = True
    for block in code_blocks(page.body):
        if block.language not in _PYTHON:
            continue
        line = page.body_offset + block.line
        try:
            compile(python_source(block.code), f"{where}:{line}", "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:
            compiled = False
            at = line + (getattr(exc, "lineno", None) or 0)
            message = getattr(exc, "msg", None) or str(exc)
            findings.append(
                Finding("error", f"{where}:{at}", f"python block does not compile: {message}")
            )
            continue
        for call in hub_calls(block.code):
            info = repositories.get(repository_identity(call.repo))
            if info is not None and call.entry not in info.entrypoints:
                known = ", ".join(sorted(info.entrypoints)) or "none"
                findings.append(
                    Finding(
                        "error",
                        f"{where}:{line + call.line}",
                        f"{call.api}({call.repo!r}, {call.entry!r}): the repository has no "
                        f"entrypoint {call.entry!r} (it has: {known})",
                    )
                )
    if run and compiled:
        problem = run_page(page, timeout=timeout)
        if problem:
            findings.append(Finding("error", where, problem))
    return findings


def _field_problems(page: TemplatePage, allowed_tags: Sequence[str]) -> list[str]:
    problems = []
    for field in FIELDS:
        if field != "tags" and not page.is_scalar(field):
            problems.append(f"field '{field}' must be a single value, not a list or mapping")
    for field in REQUIRED_FIELDS:
        if field == "tags":
            present = bool(page.tags)
        else:  # a list where one value belongs is reported above
            present = bool(page.text(field)) or not page.is_scalar(field)
        if not present:
            problems.append(f"missing required field '{field}'")
    for field, expected in TEMPLATE_HEADERS.items():
        if page.text(field) != expected:
            problems.append(f"field '{field}' must be '{expected}' as in the template")
    category = page.text("category")
    if category and category not in CATEGORIES:
        problems.append(f"category '{category}' is not one of: {', '.join(CATEGORIES)}")
    for tag in page.tags:
        if tag not in allowed_tags:
            problems.append(f"tag '{tag}' is not allowed; use: {', '.join(allowed_tags)}")
    for field in ("image", "featured_image_1", "featured_image_2"):
        value = page.text(field)
        if value in PLACEHOLDER_IMAGES:
            continue
        if page_image(value, page.path.parent) is None:
            problems.append(f"field '{field}': image '{value}' is not in images/")
    return problems


def _reference_problems(page: TemplatePage) -> list[Finding]:
    # the site keeps a body's picture or link inside the site only when it names a file
    # there (pictures in images/); the others are dropped from the page, so say so
    found = []
    for line, kind, url in body_references(page.body):
        if not url.strip() or url.strip().startswith("#") or is_external(url):
            continue
        inside = site_path(url)
        name = posixpath.normpath(unquote(urlsplit(inside).path)) if inside else ""
        if posixpath.dirname(name) != "images" or (
            page_image(posixpath.basename(name), page.path.parent) is None
        ):
            at = f"{page.path.name}:{page.body_offset + line}"
            found.append(
                Finding(
                    "warning",
                    at,
                    f"{kind} '{url}' names no file of the site (only images/ is published); "
                    "it is left out of the page",
                )
            )
    return found


def _owner_repo(page: TemplatePage) -> tuple[str, str] | None:
    github_id = page.text("github-id")
    if github_id.count("/") == 1:
        owner, repo = github_id.split("/")
        return owner, repo
    parts = urlsplit(page.text("github-link"))
    segments = [s for s in parts.path.split("/") if s]
    if parts.netloc.endswith("github.com") and len(segments) >= 2:
        return segments[0], segments[1].removesuffix(".git")
    return None


def _naming_problems(page: TemplatePage) -> list[str]:
    found = _owner_repo(page)
    if found is None:
        return []  # the missing field is reported on its own
    owner, repo = found
    prefix = f"{owner}_{repo}_"
    stem = page.path.stem
    if not stem.startswith(prefix) or len(stem) == len(prefix):
        return [f"file name must be '{prefix}<title>.md' (from github-id {owner}/{repo})"]
    return []


def run_page(page: TemplatePage, *, timeout: float) -> str:
    """Run the page's python blocks as one script in a new process; ``""`` when it succeeds,
    else what went wrong (the last lines of its error output)."""
    if not (math.isfinite(timeout) and timeout > 0):
        raise ConfigError(f"the timeout must be a positive number of seconds, not {timeout}")
    code = "\n\n".join(
        python_source(b.code) for b in code_blocks(page.body) if b.language in _PYTHON
    )
    if not code.strip():
        return ""
    repos = {repository_identity(c.repo) for c in hub_calls(code)}
    env = dict(os.environ)
    trusted = [t for t in env.get("HUBCORE_TRUST", "").split(",") if t.strip()]
    # local folders are trusted anyway; a name hubcore cannot parse is no identity
    remote = sorted(r for r in repos if ":" in r and not r.startswith("local:"))
    env["HUBCORE_TRUST"] = ",".join([*trusted, *remote])
    env["HUBCORE_DISABLE_PROGRESS"] = "1"
    env.setdefault("MPLBACKEND", "Agg")
    with tempfile.TemporaryDirectory(prefix="hubcore-site-run-") as folder:
        script = Path(folder) / f"{page.path.stem}.py"
        # only the APIs the page uses: importing a framework takes seconds
        preludes = [_PRELUDE.format(peer=p, ours=o) for p, o in _PEERS.items() if p in code]
        script.write_text("".join(preludes) + "\n" + code, encoding="utf-8")
        # errors go to a file, not a pipe: a process the page leaves behind could hold a
        # pipe open and keep us waiting; the page runs in its own process group, which is
        # killed when the page ends or its time is up, so nothing it started outlives it
        with open(Path(folder) / "stderr.txt", "w+b") as errors:
            process = subprocess.Popen(
                [sys.executable, str(script)],
                cwd=folder,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                start_new_session=True,
            )
            try:
                returncode: int | None = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                returncode = None
            finally:
                _kill_group(process)
            errors.seek(0, os.SEEK_END)
            errors.seek(max(0, errors.tell() - 65536))
            stderr = errors.read().decode("utf-8", errors="replace")
    if returncode is None:
        return f"its python blocks did not finish within {timeout:g} s"
    if returncode == 0:
        return ""
    tail = [line for line in stderr.strip().splitlines() if line.strip()][-3:]
    return f"its python blocks failed (exit status {returncode}): " + " | ".join(tail)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already
    process.wait()


def known_repositories(references: Sequence[str]) -> tuple[dict[str, HubconfInfo], list[str]]:
    """Discover *references* statically; returns identity -> discovery, and problems."""
    found: dict[str, HubconfInfo] = {}
    problems = []
    for reference in references:
        try:
            snapshot = api.open_repo(reference)
            found[snapshot.ref.identity] = api.discover(snapshot)
        except HubError as exc:
            problems.append(f"{reference}: {exc}")
    return found, problems
