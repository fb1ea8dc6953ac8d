"""An example remote source: a repository that is one ``hubconf.py`` at a URL.

``hubfile:https://example.org/zoo/hubconf.py`` (a gist's raw file, say). Written against
:class:`hubcore.sources.remote.RemoteSource`, which owns the rest: the cache, offline mode,
``force_reload``, one fetch when many processes ask, and the record for the next offline run.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hubcore.errors import InvalidReferenceError
from hubcore.sources import Claim, FetchContext, RepoRef, canonical_url
from hubcore.sources.remote import RemoteSource, Resolution

PREFIX = "hubfile:"


class HubfileSource(RemoteSource):
    """One ``hubconf.py`` at any URL hubcore can download."""

    name = "hubfile"
    forms = ("hubfile:https://host/path/hubconf.py",)

    def claim(self, text: str, options: Mapping[str, Any]) -> int:
        """Only its own prefix: the most specific claim there is."""
        return Claim.SPECIFIC if text.startswith(PREFIX) else Claim.NONE

    def parse(self, text: str, options: Mapping[str, Any]) -> RepoRef | None:
        """``hubfile:<url>`` -> a reference identified by the URL (credentials dropped)."""
        if not text.startswith(PREFIX):
            return None
        url = text[len(PREFIX) :]
        if "://" not in url or not url.endswith(".py"):
            raise InvalidReferenceError(f"{text!r}: expected {self.forms[0]}")
        identity = f"{self.name}:{canonical_url(url)}"
        return RepoRef(source=self.name, repo=url, text=text, identity=identity)

    def record_name(self, ref: RepoRef) -> str:
        """A URL has one moving name: what it served last."""
        return "latest"

    def resolve(self, ref: RepoRef, ctx: FetchContext) -> Resolution:
        """Fetch the file (revalidated on every online load): its sha256 is the snapshot id."""
        from hubcore.store import transfer  # when fetching, not when the plugin loads

        file = transfer.fetch(ref.repo, cache=ctx.cache, progress=ctx.progress, revalidate=True)

        def fill(tree: Path) -> None:
            shutil.copyfile(file.path, tree / "hubconf.py")

        return file.sha256, fill
