"""The pretrained protocol: ``@pretrained(url, sha256=...)`` on a hubconf entrypoint.

The decorated entrypoint gains a ``pretrained`` argument. ``pretrained=False`` (the default)
just builds the model. ``pretrained=True`` builds it, fetches the declared weights into the
cache (verified when a sha256 is declared), and hands file and model to the backend that
recognises the returned object. Named variants let one entrypoint offer several weight sets::

    @pretrained({"imagenet": Weights(url1, sha256=h1), "coco": url2}, default="imagenet")
    def detector(**kwargs): ...

    load(repo, "detector", pretrained="coco")

Relative weight URLs (``weights/model.safetensors``) are resolved against the repository root,
so weights can ship inside the repository.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import unquote, urlsplit

from hubcore import runcontext, settings
from hubcore.errors import (
    BackendError,
    HubconfError,
    HubError,
    NoBackendError,
    UntrustedRepoError,
    VariantNotFoundError,
    WeightsFormatError,
)
from hubcore.plugins import get_plugins
from hubcore.plugins.backends import (
    Backend,
    PlainPathNeeded,
    WeightAssigner,
    WeightsFile,
    assigns_weights,
    call_backend,
)
from hubcore.records import Record
from hubcore.repo.weights import Weights, declared_weights, default_variant
from hubcore.store import http, transfer
from hubcore.store.addresses import is_internal_host

__all__ = [
    "Weights",
    "apply_pretrained",
    "build_pretrained",
    "pretrained",
    "resolve_repo_weight_url",
    "weights_of",
]

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger(__name__)

#: Options the wrapper consumes unless the entrypoint declares them itself.
WEIGHT_OPTIONS = ("map_location", "progress", "weights_strict", "fast_load")


class PretrainedSpec(Record):
    """The weights an entrypoint declares: variants by name and the default variant."""

    variants: Mapping[str, Weights]
    default: str

    def choose(self, choice: bool | str, entry: str) -> Weights:
        """The weights ``pretrained=choice`` selects.

        ``True`` takes the default variant, or its safetensors twin (the rule of
        :func:`hubcore.repo.weights.default_variant`, which discovery shows too); a variant asked
        for by name is always taken as declared.
        """
        if choice is True:
            return self.variants[default_variant(self.variants, self.default)]
        if isinstance(choice, str) and choice in self.variants:
            return self.variants[choice]
        raise VariantNotFoundError(
            f"{entry} has no pretrained variant {choice!r}; available: "
            f"{', '.join(sorted(self.variants))} "
            f"(pretrained=True uses {default_variant(self.variants, self.default)!r})"
        )


def pretrained(
    weights: str | Weights | Mapping[str, str | Weights],
    sha256: str | None = None,
    *,
    size: int | None = None,
    default: str | None = None,
) -> Callable[[F], F]:
    """Declare the pretrained weights of a hubconf entrypoint.

    *weights* is one URL (any fsspec URL, or a path relative to the repository root), a
    :class:`Weights`, or a mapping of variant names to either. *sha256* and *size* describe a
    single URL. *default* names the variant ``pretrained=True`` selects (the first one
    otherwise). The arguments are read by :func:`hubcore.repo.weights.declared_weights`, as
    static discovery reads them; a bad one is a :class:`~hubcore.errors.UsageError`. Keep the
    arguments literal (or module constants) so ``hubcore list``/``help``/``lock`` can read
    them without running the hubconf.

    The decorated function accepts ``pretrained`` (``False``, ``True`` or a variant name) and,
    unless it declares them itself, ``map_location`` (passed to the backend's reader),
    ``progress``, ``weights_strict`` (``False`` tolerates missing/unexpected keys) and
    ``fast_load`` (``False`` forces the plain path, see :func:`build_pretrained`).
    """
    spec = PretrainedSpec(*declared_weights(weights, sha256, size, default))

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)
        own = set(signature.parameters)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if "pretrained" in own:
                bound = signature.bind_partial(*args, **kwargs)
                param = signature.parameters["pretrained"]
                fallback = False if param.default is inspect.Parameter.empty else param.default
                choice = bound.arguments.get("pretrained", fallback)
            else:
                choice = kwargs.pop("pretrained", False)
            options = {k: kwargs.pop(k) for k in WEIGHT_OPTIONS if k in kwargs and k not in own}
            if not choice:
                return fn(*args, **kwargs)
            weights = spec.choose(choice, fn.__name__)
            file = fetch_weights(weights, fn, progress=options.get("progress"))
            return build_pretrained(
                lambda: fn(*args, **kwargs),
                [file],
                strict=options.get("weights_strict", True),
                fast=options.get("fast_load"),
                read_options=_read_options(options.get("map_location")),
            )

        wrapper.__hubcore_pretrained__ = spec  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def weights_of(entrypoint: Callable[..., Any]) -> PretrainedSpec | None:
    """The :class:`PretrainedSpec` an entrypoint was decorated with, if any."""
    spec = getattr(entrypoint, "__hubcore_pretrained__", None)
    return spec if isinstance(spec, PretrainedSpec) else None


def apply_pretrained(
    result: Any,
    weights: Weights,
    entrypoint: Callable[..., Any] | None = None,
    *,
    map_location: Any = None,
    progress: bool | None = None,
    weights_strict: bool = True,
) -> Any:
    """Fetch *weights*, apply them to the model in *result* and return the result.

    *result* may be the model itself or a tuple/list whose first recognised element is the
    model (``(model, transform)``). When the backend applies weights in place, *result* is
    returned as it is. When it returns a new model (a functional framework), that model
    takes the old one's place: it is returned itself, or in a list (the same list, changed)
    or a tuple of the same type at the same position. This is the plain path: the model is
    already built; :func:`build_pretrained` builds it too, and faster.
    """
    file = fetch_weights(weights, entrypoint, progress=progress)
    return _apply_plain(result, [file], weights_strict, _read_options(map_location))


def fetch_weights(
    weights: Weights, entrypoint: Callable[..., Any] | None, *, progress: bool | None
) -> WeightsFile:
    """Fetch *weights* (declared by *entrypoint*) into the cache, verified; relative URLs
    resolve against the repository running now (or the entrypoint's own folder)."""
    context = runcontext.current()
    if context is not None:  # trusted already: its code runs; paths must stay inside
        url = resolve_repo_weight_url(
            weights.url, context.root, remote=context.remote, allow_local=True
        )
    else:
        url = transfer.normalize_url(weights.url, _repo_root_for(entrypoint))
    # The lock file's hash, if any, is added by transfer.fetch from the run context.
    return transfer.fetch(url, sha256=weights.sha256, progress=progress)


def build_pretrained(
    build: Callable[[], Any],
    files: Sequence[WeightsFile],
    *,
    strict: bool = True,
    fast: bool | None = None,
    read_options: Mapping[str, Any] | None = None,
) -> Any:
    """Build a model with ``build()`` and apply the verified weight *files* to it (several
    files are the shards of one state); return what ``build()`` returns, the model in it
    carrying the weights (see :func:`apply_pretrained` for where the model may be).

    The fast path: every backend that declares :class:`~hubcore.plugins.backends.WeightAssigner`
    builds inside its ``building_for_weights()`` (PyTorch: parameters on ``meta``, never
    initialised), and the backend that recognises the model assigns the files to it, shard
    by shard. Whenever a backend says the model cannot take it (or the build raised while a
    backend changed how it ran), ``build()`` runs again on the plain path: built as usual,
    the files read with :meth:`~hubcore.plugins.backends.Backend.read_weights` (shards merged into
    one state) and applied with :meth:`~hubcore.plugins.backends.Backend.apply_weights`. *fast*
    ``False`` forces the plain path and ``True`` the fast one; by default
    (``HUBCORE_FAST_LOAD``) the fast path is taken for weights of at least
    ``HUBCORE_FAST_LOAD_MIN_BYTES`` (16 MiB): below that, watching the build costs more than
    the copy it saves. *read_options* go to the backend's reader (``map_location``).
    """
    files = list(files)
    options = dict(read_options or {})
    if not files:
        raise ValueError("build_pretrained needs at least one weight file")
    if fast is None:
        current = settings.current()
        big = sum(f.size for f in files) >= current.fast_load_min_bytes
        fast = current.fast_load and big
    if not fast:
        return _apply_plain(build(), files, strict, options)
    capable = [b for b in get_plugins().backends.values() if assigns_weights(b)]
    records: list[tuple[Backend, Any]] = []
    failure: Exception | None = None
    result: Any = None
    with contextlib.ExitStack() as stack:
        for backend in capable:
            record = _enter_build(stack, backend)
            if record is not None:
                records.append((backend, record))
        try:
            result = build()
        except Exception as exc:
            if not any(getattr(r, "changed", True) for _, r in records):
                raise
            failure = exc
    changed = [(b, r) for b, r in records if getattr(r, "changed", True)]
    why: str | None
    if failure is not None:
        why = f"building raised {type(failure).__name__}: {failure}"
        del failure  # its traceback holds what the first build made
    elif not changed:
        return _apply_plain(result, files, strict, options)
    else:
        why, result = _assign(result, files, changed, strict, options)
        if why is None:
            return result
    result = None  # let what the fast build made go before building again
    logger.info("%s: plain load (%s)", files[0].name, why)
    for backend, record in records:
        _rewind(backend, record)
    return _apply_plain(build(), files, strict, options)


def _rewind(backend: Backend, record: Any) -> None:
    """Let *backend* put back what its fast build changed (its random generators), so the
    plain build starts where the first one did."""
    rewind = getattr(record, "rewind", None)
    if callable(rewind):
        call_backend(backend, "rewind a build for weights", rewind)


def _enter_build(stack: contextlib.ExitStack[Any], backend: Backend) -> Any:
    """Enter *backend*'s build context on *stack*; its record (``None``: it changes nothing)."""
    assigner = cast(WeightAssigner, backend)
    return call_backend(
        backend,
        "prepare to build a model for weights",
        lambda: stack.enter_context(assigner.building_for_weights()),
    )


def _assign(
    result: Any,
    files: list[WeightsFile],
    changed: list[tuple[Backend, Any]],
    strict: bool,
    options: dict[str, Any],
) -> tuple[str | None, Any]:
    """Assign *files* on the fast path: ``(None, result)``, or why not and ``None``."""
    index, model, backend = _find_model(result)
    record = next((r for b, r in changed if b is backend), None)
    if record is None or len(changed) > 1:
        names = ", ".join(b.name for b, _ in changed)
        return f"{names} changed the build of a {backend.name} model", None
    try:
        assigner = cast(WeightAssigner, backend)
        applied = assigner.assign_weights(model, files, record, strict=strict, **options)
    except PlainPathNeeded as exc:
        return str(exc) or "the backend needs it", None
    except HubError:
        raise  # a file the plain path cannot read either
    except Exception as exc:
        logger.warning(
            "%s could not assign weights (%s: %s)", backend.name, type(exc).__name__, exc
        )
        return f"{backend.name} failed: {exc}", None
    result = _put_back(result, index, model, applied, backend, files[0])
    _record_applied(files)
    logger.debug("%s: fast load by %s", files[0].name, backend.name)
    return None, result


def _apply_plain(
    result: Any, files: list[WeightsFile], strict: bool, options: Mapping[str, Any]
) -> Any:
    """The plain path: read the files with the backend and apply them to the built model."""
    index, model, backend = _find_model(result)
    state = _read_all(backend, files, options)
    applied = call_backend(
        backend,
        f"apply {files[0].name} to {type(model).__name__}",
        lambda: backend.apply_weights(model, state, strict=strict),
    )
    result = _put_back(result, index, model, applied, backend, files[0])
    _record_applied(files)
    return result


def _read_all(backend: Backend, files: list[WeightsFile], options: Mapping[str, Any]) -> Any:
    """One state from *files*: the file's, or the shards' merged (each key once)."""
    if len(files) == 1:
        return read_state(backend, files[0], **options)
    merged: dict[str, Any] = {}
    for file in files:
        state = read_state(backend, file, **options)
        if not isinstance(state, Mapping):
            raise WeightsFormatError(f"{file.name} holds no state dict, so it is not a shard")
        twice = sorted(set(state) & set(merged))
        if twice:
            raise WeightsFormatError(
                f"{file.name} repeats {', '.join(map(str, twice[:3]))} from an earlier shard; "
                "each name must be in one shard only"
            )
        merged.update(state)
    return merged


def _put_back(
    result: Any,
    index: int | None,
    model: Any,
    applied: object | None,
    backend: Backend,
    file: WeightsFile,
) -> Any:
    """*result* with the model that carries the weights (a functional backend's new one)."""
    if applied is None or applied is model:
        return result
    if not backend.recognizes(applied):
        raise BackendError(
            f"{backend.name} applied {file.name} to {type(model).__name__} but returned "
            f"a {type(applied).__name__}, which it does not recognise as a model. A backend "
            "returns None when it loads weights in place, or the new model that carries "
            "them (a functional framework); report this to the backend's authors."
        )
    return _substitute(result, index, applied)


def _record_applied(files: list[WeightsFile]) -> None:
    context = runcontext.current()
    if context is not None:
        for file in files:
            context.applied.append(runcontext.AppliedWeights(file.url, file.sha256, file.size))


def _read_options(map_location: Any) -> dict[str, Any]:
    return {} if map_location is None else {"map_location": map_location}


#: Object stores a weight URL of an untrusted repository may name; their "host" is a bucket.
_OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "hf"})


def resolve_repo_weight_url(url: str, root: Path, *, remote: bool, allow_local: bool) -> str:
    """See :func:`_resolve_repo_weight_url`; remembered for fetched snapshots, which never
    change (a live folder is judged afresh every time)."""
    if remote:
        return _resolved_in_snapshot(url, root, allow_local)
    return _resolve_repo_weight_url(url, root, remote=False, allow_local=allow_local)


@functools.lru_cache(maxsize=1024)
def _resolved_in_snapshot(url: str, root: Path, allow_local: bool) -> str:
    return _resolve_repo_weight_url(url, root, remote=True, allow_local=allow_local)


def _resolve_repo_weight_url(url: str, root: Path, *, remote: bool, allow_local: bool) -> str:
    """The URL to fetch for the weight URL *url* declared by the repository at *root*.

    One rule for every place that fetches a repository's weights (``load``, ``lock``,
    ``check --online/--verify``):

    * A relative path must stay inside the repository: ``..`` may not climb out of *root*,
      and in a *remote* repository (anything but a live local folder) neither may a
      symbolic link. Otherwise :class:`~hubcore.errors.HubconfError`, whatever the trust.
    * From a *remote* repository, unless *allow_local* (the repository is trusted) or
      ``HUBCORE_ALLOW_PRIVATE_URLS=1``: a local file outside the repository (``file://``,
      an absolute or ``~`` path), an ``http(s)`` URL whose host is or resolves to a
      loopback, private, link-local or other non-global address, a chained fsspec URL
      (``a::b``) and any scheme but ``http(s)`` and the object stores (``s3``, ``gs``,
      ``az``, ``oss``, ``hf``, ...) raise :class:`~hubcore.errors.UntrustedRepoError`.

    Mirrors apply later, to the request: the URL judged is the one the repository declares.
    Returns *url* as :func:`hubcore.store.transfer.normalize_url` makes it (a path becomes a
    ``file://`` URL).
    """

    def inside(path: Path, follow_links: bool) -> bool:
        resolve = os.path.realpath if follow_links else os.path.normpath
        return Path(resolve(path)).is_relative_to(resolve(root.absolute()))

    normalized = transfer.normalize_url(url, root)
    allowed = not remote or allow_local or settings.current().allow_private_urls
    is_path = normalized != url
    if is_path and not url.startswith("~") and not Path(url).is_absolute():
        target = root.absolute() / url
        if not inside(target, False) or (remote and not inside(target, True)):
            raise HubconfError(
                f"the weight path {url!r} points outside the repository. Weights shipped "
                "with a repository must be inside it; publish others at a URL."
            )
        return normalized
    if allowed:
        return normalized
    scheme = urlsplit(normalized).scheme.lower()
    if "::" in re.sub(r"\[[^\]]*\]", "", normalized):  # fsspec's chains; not an IPv6 host
        why = "a chained fsspec URL, which can read files on this machine"
    elif scheme == "file":
        if inside(Path(unquote(urlsplit(normalized).path)), True):
            return normalized
        why = "a file on this machine, outside the repository"
    elif scheme in ("http", "https"):
        host = http.origin(normalized)[1]  # refuses hosts that clients parse differently
        if not is_internal_host(host):
            return normalized
        why = f"on {host}, a loopback, private or link-local address"
    elif scheme in _OBJECT_STORES:
        return normalized
    else:
        why = f"a {scheme}: URL, which is not a public web or object-store address"
    raise UntrustedRepoError(
        f"refusing the weight URL {url!r} of a repository you have not trusted: it is {why}. "
        "Trust the repository (`hubcore trust add`, HUBCORE_TRUST or trust_repo=True) if it "
        "should reach this machine or its network, or set HUBCORE_ALLOW_PRIVATE_URLS=1."
    )


def read_state(backend: Backend, file: WeightsFile, **options: Any) -> Any:
    """Read *file* with *backend*, turning unexpected failures into a HubError."""
    return call_backend(
        backend,
        f"read {file.name} ({file.url})",
        lambda: backend.read_weights(file, **options),
    )


def _find_model(result: Any) -> tuple[int | None, Any, Backend]:
    """The model in *result*, its position (``None``: *result* is the model) and backend."""
    plugins = get_plugins()
    if isinstance(result, tuple | list):
        candidates: list[tuple[int | None, Any]] = list(enumerate(result))
    else:
        candidates = [(None, result)]
    for index, candidate in candidates:
        backend = plugins.backend_for(candidate)
        if backend is not None:
            return index, candidate, backend
    installed = ", ".join(plugins.backends) or "none"
    raise NoBackendError(
        f"no installed backend recognises {type(result).__name__} (installed backends: "
        f"{installed}), so pretrained weights cannot be applied. Install the plugin for its "
        "framework, such as hubcore-torch or hubcore-megengine."
    )


def _substitute(result: Any, index: int | None, model: object) -> Any:
    """*result* with *model* at *index* (``None``: *model* replaces *result* itself)."""
    if index is None:
        return model
    if isinstance(result, list):
        result[index] = model  # the entrypoint's own list, whatever its type, keeps identity
        return result
    items = [*result[:index], model, *result[index + 1 :]]
    try:
        if hasattr(result, "_fields"):  # a named tuple takes its fields one by one
            return type(result)(*items)
        return type(result)(items)
    except Exception as exc:
        raise BackendError(
            f"cannot put the model with weights back into the {type(result).__name__} the "
            f"entrypoint returned ({type(exc).__name__}: {exc}); return a plain tuple or list"
        ) from exc


def _repo_root_for(entrypoint: Callable[..., Any] | None) -> Path:
    """The repository of an entrypoint called outside :func:`hubcore.load` (directly)."""
    if entrypoint is not None:
        try:
            folder = Path(inspect.getfile(inspect.unwrap(entrypoint))).resolve().parent
        except (TypeError, OSError):
            return Path.cwd()
        for candidate in (folder, *folder.parents):
            if (candidate / "hubconf.py").is_file():
                return candidate
        return folder
    return Path.cwd()
