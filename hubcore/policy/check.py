"""``hubcore check``: a publisher's static review of a hub repository. Runs no repository code.

Errors (exit status 1): an entrypoint without a docstring, no literal ``dependencies`` list,
a dependency that is not a valid requirement, a weight URL that is malformed or (for paths
inside the repository) missing, a weight path that leads out of the repository, and with
``--online``/``--verify`` a weight that cannot be reached or whose bytes do not match the
declared sha256.

``--online`` and ``--verify`` reach weight URLs through the configured mirrors, as downloads
do; in offline mode they are refused (:class:`~hubcore.errors.OfflineError`) rather than
quietly skipped. For a repository that is not a local folder and not trusted, they do not
touch the weight URLs that :func:`hubcore.repo.pretrained.resolve_repo_weight_url` refuses (local
files, loopback and private addresses): each is reported as an error instead.

Warnings: weights without a sha256, weights declared in a form only known at run time, names
that become entrypoints only because they are imported from an installed package (import
them as ``_name`` if they are helpers), and a repository without a README or model card.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from hubcore import config, runcontext
from hubcore.errors import HubError, OfflineError
from hubcore.policy import trust
from hubcore.records import Record
from hubcore.repo.discovery import HUBCONF, HubconfInfo, discover_hubconf
from hubcore.repo.pretrained import resolve_repo_weight_url
from hubcore.sources import Snapshot
from hubcore.store import transfer

__all__ = ["Finding", "check_snapshot"]

README_NAMES = ("README.md", "README.rst", "README.txt", "README", "MODEL_CARD.md", "MODELCARD.md")


class Finding(Record):
    """One result of the check."""

    level: Literal["error", "warning"]
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.where}: {self.message}"


def check_snapshot(
    snapshot: Snapshot, *, online: bool = False, verify: bool = False
) -> list[Finding]:
    """Review *snapshot*; see the module docstring for what is checked."""
    if (online or verify) and config.is_offline():
        flag = "--verify" if verify else "--online"
        raise OfflineError(
            f"check {flag} needs the network, but offline mode is on (--offline or "
            f"HUBCORE_OFFLINE=1). Run it online, or without {flag} for the static review."
        )
    info = discover_hubconf(snapshot.root)
    findings = list(_check_dependencies(snapshot.root, info))
    findings += _check_entrypoints(info)
    remote = trust.identity(snapshot) is not None
    network = online or verify
    # Offline checks fetch nothing, so only the containment of paths applies to them.
    allow_local = not network or not remote or trust.is_trusted(snapshot)
    with runcontext.fetching_for(allow_local):  # an untrusted repository: public addresses only
        findings += _check_weights(
            snapshot.root,
            info,
            online=online,
            verify=verify,
            remote=remote,
            allow_local=allow_local,
        )
    if not any((snapshot.root / name).is_file() for name in README_NAMES):
        findings.append(
            Finding("warning", "repository", "no README or model card (README.md, MODEL_CARD.md)")
        )
    return findings


def _check_dependencies(root: Path, info: HubconfInfo) -> Iterator[Finding]:
    from packaging.requirements import InvalidRequirement, Requirement

    if not info.declares_dependencies:
        yield Finding("error", HUBCONF, "no `dependencies = [...]` list (use [] for none)")
    for warning in info.warnings:
        level: Literal["error", "warning"] = "error" if "dependencies" in warning else "warning"
        yield Finding(level, HUBCONF, warning)
    for dep in info.dependencies:
        try:
            Requirement(dep)
        except InvalidRequirement as exc:
            yield Finding("error", HUBCONF, f"dependency {dep!r} is not a valid requirement: {exc}")


def _check_entrypoints(info: HubconfInfo) -> Iterator[Finding]:
    for entry in info.entrypoints.values():
        where = entry.defined_in or HUBCONF
        if not entry.resolved:
            yield Finding(
                "warning",
                HUBCONF,
                f"{entry.name!r} is an entrypoint only by being exported ({entry.note}); "
                f"if it is a helper, import it as _{entry.name}",
            )
        elif not (entry.doc or "").strip():
            yield Finding("error", where, f"entrypoint {entry.name!r} has no docstring")


def _check_weights(
    root: Path,
    info: HubconfInfo,
    *,
    online: bool,
    verify: bool,
    remote: bool,
    allow_local: bool,
) -> Iterator[Finding]:
    for entry in info.entrypoints.values():
        weights = entry.weights
        if weights is None:
            continue
        where = entry.defined_in or HUBCONF
        if not weights.known:
            yield Finding("warning", where, f"{entry.name}: @pretrained arguments are not literal")
            continue
        for variant, spec in weights.variants.items():
            label = f"{entry.name}[{variant}] {spec.url}"
            try:
                url = resolve_repo_weight_url(
                    spec.url, root, remote=remote, allow_local=allow_local
                )
            except HubError as exc:
                yield Finding("error", where, f"{label}: {exc}")
                continue
            problem = _url_problem(root, spec.url)
            if problem:
                yield Finding("error", where, f"{label}: {problem}")
                continue
            if spec.sha256 is None:
                yield Finding("warning", where, f"{label}: no sha256 (hubcore hash FILE prints it)")
            elif len(spec.sha256) != 64 or any(c not in "0123456789abcdef" for c in spec.sha256):
                yield Finding("error", where, f"{label}: sha256 is not 64 hex digits")
                continue
            if verify:
                try:
                    transfer.fetch(url, sha256=spec.sha256, progress=False)
                except HubError as exc:
                    yield Finding("error", where, f"{label}: {exc}")
            elif online:
                reason = _unreachable(url)
                if reason:
                    yield Finding("error", where, f"{label}: {reason}")


def _url_problem(root: Path, url: str) -> str | None:
    parts = urlsplit(url)
    if "://" in url:
        if not parts.netloc and parts.scheme not in ("file", "memory"):
            return "the URL has no host"
        return None
    if Path(url).expanduser().is_absolute():
        return "an absolute path works only on this machine; use a path inside the repository"
    if not (root / url).is_file():
        return "no such file in the repository"
    return None


def _unreachable(url: str) -> str | None:
    target = config.rewrite_url(url)  # the mirror, as downloads use it
    try:
        if urlsplit(target).scheme in ("http", "https"):
            from hubcore.store import http

            # the one HTTP client: origin-bound credentials, no silent https -> http
            response = http.send(target, method="HEAD", mirror=False)
            with response:
                if response.status_code >= 400:
                    return f"HTTP {response.status_code}"
            return None
        from hubcore.store import stores

        # the one opener of stores: OSS endpoints, time limits, typed errors
        store = stores.open_store(target)
        stores.call(store, "info", store.path, what="checking the weights")
    except HubError as exc:  # refused by hubcore's own rules (a downgrade, a bad host)
        return f"unreachable: {exc}"
    except Exception as exc:  # any failure to reach it is the finding
        from hubcore.store.http import describe_failure

        return f"unreachable: {describe_failure(exc)}"
    return None
