"""Opening files that *are* a model (ONNX, TorchScript, ...) through the backend that reads them.

A weight file needs an entrypoint to build the model it fits; a model file holds the
architecture too. :func:`open_model_file` fetches one into the cache exactly as weights are
fetched (verified against a sha256 when given, offline from the cache, mirrors) and hands it
to the backend that declares its suffix (:class:`hubcore.plugins.backends.ModelFileOpener`).
"""

from __future__ import annotations

from typing import Any, cast

from hubcore.errors import NoBackendError
from hubcore.plugins import get_plugins
from hubcore.plugins.backends import (
    Backend,
    ModelFileOpener,
    WeightsFile,
    call_backend,
    model_formats,
)
from hubcore.store import transfer

__all__ = ["model_file_backend", "open_model_file"]


def model_file_backend(file: WeightsFile, backend: str | None = None) -> Backend:
    """The backend that opens the model file *file*: the one named *backend*, else the one
    backend that declares the file's suffix in its ``model_formats``.

    Raises :class:`~hubcore.errors.NoBackendError` when the named backend opens no model
    files, when no installed backend declares the suffix, or when several do (name one).
    """
    plugins = get_plugins()
    openers = {name: model_formats(b) for name, b in plugins.backends.items() if model_formats(b)}
    known = "; ".join(f"{n}: {', '.join(f)}" for n, f in openers.items()) or "none installed"
    if backend is not None:
        chosen = plugins.backend_named(backend)
        if backend not in openers:
            raise NoBackendError(
                f"the backend {backend!r} cannot open model files (it has no open_model); "
                f"backends that open model files: {known}. To read weights into a model, use "
                "load_weights instead."
            )
        return chosen
    claimed = [name for name, formats in openers.items() if file.suffix in formats]
    if len(claimed) == 1:
        return plugins.backends[claimed[0]]
    if claimed:
        raise NoBackendError(
            f"more than one backend opens {file.suffix} model files ({', '.join(claimed)}); "
            "pass backend=... to choose one."
        )
    what = f"{file.suffix} files" if file.suffix else f"{file.name} (it has no suffix)"
    raise NoBackendError(
        f"no installed backend opens {what} as a model (model-file formats: {known}). Install "
        "the plugin for its framework, or pass backend=... if the name does not tell the format."
    )


def open_model_file(
    url: str,
    *,
    backend: str | None = None,
    sha256: str | None = None,
    offline: bool | None = None,
    progress: bool | None = None,
    **options: Any,
) -> object:
    """Fetch the model file at *url* through the cache and open it with its backend.

    *url* is any fsspec URL or a path. *sha256* pins its content
    (:class:`~hubcore.errors.IntegrityError` and nothing cached on a mismatch); *backend*
    names the backend when the suffix does not decide (:func:`model_file_backend`); *options*
    go to the backend's ``open_model``. A file the backend cannot open raises
    :class:`~hubcore.errors.WeightsFormatError`, any other failure of the backend a
    :class:`~hubcore.errors.BackendError`.
    """
    file = transfer.fetch(url, sha256=sha256, offline=offline, progress=progress)
    chosen = model_file_backend(file, backend)
    opener = cast(ModelFileOpener, chosen).open_model  # model_file_backend checked it
    return call_backend(
        chosen, f"open {file.name} ({file.url}) as a model", lambda: opener(file, **options)
    )
