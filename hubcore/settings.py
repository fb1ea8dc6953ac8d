"""Settings: every ``HUBCORE_*`` environment variable, read in one place into a frozen object,
and the one reader of hubcore's configuration files.

:func:`current` returns the :class:`Settings` in force. It is built from the environment (and
from the overrides the API and the command line apply with :func:`overridden`); a malformed
value is a :class:`~hubcore.errors.ConfigError` naming the variable. The object is rebuilt
only when a ``HUBCORE_*`` variable changed, so reading settings costs a dictionary scan, and
tests that set variables see them at once.

The files are read here too, by :func:`read_toml` alone: the user's configuration file
(:meth:`Settings.user_config`: ``HUBCORE_CONFIG`` or ``<home>/config.toml``) and the project's
``./hubcore.toml`` (:func:`project_config`, whose tables belong to the features: ``[site]``,
``[registry]``, ``repos``). A file is parsed again only when its modification time, size or
inode changed, so an edited file is seen by the next read in a long-running process, and a
file that is not TOML is one :class:`~hubcore.errors.ConfigError` everywhere, naming the file
and the line. The parsed mirrors (:meth:`Settings.mirror_table`) belong to the snapshot: they
are parsed once for each value of ``HUBCORE_MIRRORS`` and state of the file.

The fields of :class:`Settings` are the table of variables; the user guide shows the same table
(:func:`table` renders it, and a test checks the guide against it). Nothing else in hubcore
reads ``os.environ`` for its own variables; git hosts' conventional token variable
(``GITHUB_TOKEN``) is read here too.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hubcore.errors import ConfigError
from hubcore.records import Record, field, fields, replace

__all__ = [
    "PROJECT_FILE",
    "Settings",
    "TomlFile",
    "current",
    "overridden",
    "override_process",
    "project_config",
    "read_toml",
    "table",
]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def _flag(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={text!r} is not a yes/no value (use 1 or 0)")


def _number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not a number") from None
    if value < 0 or value != value:
        raise ConfigError(f"{name}={text!r} must be zero or more")
    return value


def _whole(name: str, text: str) -> int:
    if not text.strip().isdigit():
        raise ConfigError(f"{name}={text!r} is not a whole number")
    return int(text)


def _names(name: str, text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _path(name: str, text: str) -> Path:
    return Path(text).expanduser().absolute()


def _text(name: str, text: str) -> str:
    return text


def _verify_mode(name: str, text: str) -> str:
    mode = text.strip().lower()
    if mode not in ("changed", "always"):
        raise ConfigError(
            f"{name}={text!r} is not understood: use 'always' (hash every cached weight file "
            "when it is used) or 'changed' (the default: hash files changed since verified)"
        )
    return mode


def _positive(name: str, text: str) -> int:
    value = _whole(name, text)
    if value <= 0:
        raise ConfigError(f"{name}={text!r} must be a positive number of bytes")
    return value


def _webhook_format(name: str, text: str) -> str:
    kind = text.strip().lower()
    if kind not in ("slack", "json"):
        raise ConfigError(f"{name}={text!r} is not understood: use 'slack' or 'json'")
    return kind


def _setting(
    env: str,
    default: Any,
    parse: Callable[[str, str], Any],
    doc: str,
    *,
    alias: str = "",
    secret: bool = False,
) -> Any:
    return field(
        default=default,
        metadata={"env": env, "parse": parse, "doc": doc, "alias": alias},
        repr=not secret,  # a secret never appears in a printed or logged Settings
    )


class Settings(Record):
    """The settings in force; each field documents its variable."""

    home: Path | None = _setting(
        "HUBCORE_HOME", None, _path, "hub home: the cache root (default: the user cache dir)"
    )
    config_file: Path | None = _setting(
        "HUBCORE_CONFIG", None, _path, "configuration file (default: <home>/config.toml)"
    )
    offline: bool = _setting("HUBCORE_OFFLINE", False, _flag, "1: never touch the network")
    disable_progress: bool = _setting(
        "HUBCORE_DISABLE_PROGRESS", False, _flag, "1: no progress bars"
    )
    disable_plugin_autoload: bool = _setting(
        "HUBCORE_DISABLE_PLUGIN_AUTOLOAD", False, _flag, "1: load only the built-in plugins"
    )
    blocked_plugins: tuple[str, ...] = _setting(
        "HUBCORE_BLOCK_PLUGINS", (), _names, "comma-separated plugin names not to load"
    )
    mirrors: str = _setting(
        "HUBCORE_MIRRORS", "", _text, "URL rewrites FROM=TO, separated by ';' (see mirrors)"
    )
    trust: tuple[str, ...] = _setting(
        "HUBCORE_TRUST", (), _names, "comma-separated trusted repositories ('*': all)"
    )
    lock: Path | None = _setting(
        "HUBCORE_LOCK", None, _path, "lock file to load under (default: ./hub.lock if present)"
    )
    max_archive_bytes: int = _setting(
        "HUBCORE_MAX_ARCHIVE_BYTES", 4 << 30, _whole, "largest unpacked repository archive"
    )
    connections: int = _setting(
        "HUBCORE_CONNECTIONS", 8, _whole, "parallel connections of one download"
    )
    chunk_mb: float = _setting(
        "HUBCORE_CHUNK_MB", 16.0, _number, "size of one ranged request (MiB)"
    )
    parallel_min_mb: float = _setting(
        "HUBCORE_PARALLEL_MIN_MB", 64.0, _number, "smallest file fetched in parallel (MiB)"
    )
    fast_link_mbps: float = _setting(
        "HUBCORE_FAST_LINK_MBPS", 200.0, _number, "one connection this fast is not split"
    )
    retries: int = _setting("HUBCORE_RETRIES", 5, _whole, "attempts of one download")
    connect_timeout: float = _setting(
        "HUBCORE_CONNECT_TIMEOUT", 10.0, _number, "seconds to connect, every transport"
    )
    read_timeout: float = _setting(
        "HUBCORE_READ_TIMEOUT", 60.0, _number, "seconds without a byte, every transport"
    )
    allow_private_urls: bool = _setting(
        "HUBCORE_ALLOW_PRIVATE_URLS",
        False,
        _flag,
        "1: untrusted repositories may name local files and private-network weight URLs",
    )
    stall_budget: float = _setting(
        "HUBCORE_STALL_BUDGET",
        120.0,
        _number,
        "seconds without progress, over all attempts, before a transfer fails (0: none)",
    )
    allow_http: tuple[str, ...] = _setting(
        "HUBCORE_ALLOW_HTTP",
        (),
        _names,
        "hosts (host or host:port) an https URL may redirect to over plain http",
    )
    max_hubconf_bytes: int = _setting(
        "HUBCORE_MAX_HUBCONF_BYTES",
        1 << 20,
        _positive,
        "largest file static discovery parses (4 times that for all files together)",
    )
    verify: str = _setting(
        "HUBCORE_VERIFY", "changed", _verify_mode, "re-hash cached weights: changed or always"
    )
    fast_load: bool = _setting(
        "HUBCORE_FAST_LOAD",
        True,
        _flag,
        "0: build pretrained models plainly (initialised, then weights copied in)",
    )
    fast_load_min_bytes: int = _setting(
        "HUBCORE_FAST_LOAD_MIN_BYTES",
        16 << 20,
        _whole,
        "weights smaller than this load on the plain path (cheaper for small models)",
    )
    github_token: str = _setting(
        "HUBCORE_GITHUB_TOKEN", "", _text, "token for GitHub", alias="GITHUB_TOKEN"
    )
    gitlab_token: str = _setting("HUBCORE_GITLAB_TOKEN", "", _text, "token for GitLab")
    oss_endpoint: str = _setting(
        "HUBCORE_OSS_ENDPOINT", "", _text, "S3-compatible endpoint for oss:// folders"
    )
    registry: str = _setting(
        "HUBCORE_REGISTRY", "", _text, "registry: a folder or fsspec URL (default: <home>/registry)"
    )
    registry_actor: str = _setting(
        "HUBCORE_REGISTRY_ACTOR",
        "",
        _text,
        "who registry changes are recorded as (default: user@host)",
    )
    registry_webhook: str = _setting(
        "HUBCORE_REGISTRY_WEBHOOK",
        "",
        _text,
        "URL notified of registry changes (a secret: never shown)",
        secret=True,
    )
    registry_webhook_format: str = _setting(
        "HUBCORE_REGISTRY_WEBHOOK_FORMAT", "slack", _webhook_format, "payload: slack or json"
    )
    registry_webhook_filter: str = _setting(
        "HUBCORE_REGISTRY_WEBHOOK_FILTER",
        "",
        _text,
        "which changes to send: kinds=a,b;models=A,B;aliases=x,y (default: all)",
    )

    def hub_home(self) -> Path:
        """The hub home: ``HUBCORE_HOME`` (or ``--home``), else the user cache directory."""
        if self.home is not None:
            return self.home
        import platformdirs  # imported when used: most commands name the home

        return Path(platformdirs.user_cache_dir("hubcore", appauthor=False))

    def config_path(self) -> Path:
        """The user's configuration file: ``HUBCORE_CONFIG`` or ``<home>/config.toml``."""
        return self.config_file or self.hub_home() / "config.toml"

    def user_config(self) -> TomlFile:
        """What the configuration file says now (empty when there is none)."""
        return read_toml(self.config_path(), missing_ok=True)

    def mirror_table(self) -> Mapping[str, str]:
        """The URL prefix rewrites (read-only): the ``[mirrors]`` table of the configuration
        file, then ``HUBCORE_MIRRORS`` (which wins). Parsed once for each value of the
        variable and state of the file; see :func:`hubcore.config.mirrors`."""
        path = self.config_path().absolute()
        key = (self.mirrors, path, _stamp(path))
        with _files_lock:
            found = _mirror_tables.get(key)
        if found is not None:
            return found
        from hubcore import config  # the parser shows a bad URL through the one redactor

        user = self.user_config()
        parsed = MappingProxyType(config.parse_mirrors(user, self.mirrors))
        with _files_lock:
            _remember(_mirror_tables, (self.mirrors, path, user.stamp), parsed)
        return parsed


_override: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "hubcore_settings_override", default=None
)
_process_override: dict[str, Any] = {}
_cache_lock = threading.Lock()
_cached: tuple[tuple[tuple[str, str], ...], Settings] | None = None


_held: contextvars.ContextVar[list[Settings] | None] = contextvars.ContextVar(
    "hubcore_settings_held", default=None
)


@contextlib.contextmanager
def environment_held() -> Iterator[None]:
    """Read the environment once for the whole block (one public call reads the settings
    about ten times; each read otherwise scans the environment again). Overrides
    (:func:`overridden`, :func:`override_process`) still apply on every read; a variable
    changed inside the block takes effect at the next call. Nested blocks share the outer
    one's reading."""
    if _held.get() is not None:
        yield
        return
    token = _held.set([])
    try:
        yield
    finally:
        _held.reset(token)


def release_environment() -> None:
    """Stop holding the environment's reading in the current context: for a copy of a public
    call's context given to a thread, which may run after the call has ended."""
    _held.set(None)


def _from_environment() -> Settings:
    held = _held.get()
    if held:
        return held[0]
    built = _read_environment()
    if held is not None:
        held.append(built)
    return built


def _read_environment() -> Settings:
    global _cached
    relevant = _relevant_environment()
    with _cache_lock:
        if _cached is not None and _cached[0] == relevant:
            return _cached[1]
    values: dict[str, Any] = {}
    environ = {_text_of(k): _text_of(v) for k, v in relevant}
    for spec in fields(Settings):
        meta = spec.metadata
        for name in (meta["env"], meta["alias"]):
            if name and environ.get(name, "").strip():
                values[spec.name] = meta["parse"](name, environ[name].strip())
                break
    built = Settings(**values)
    with _cache_lock:
        _cached = (relevant, built)
    return built


_ALIASES = {f.metadata["alias"] for f in fields(Settings) if f.metadata["alias"]}
_RAW_ALIASES = {os.fsencode(alias) for alias in _ALIASES}


def _relevant_environment() -> tuple[tuple[Any, Any], ...]:
    """The HUBCORE_* (and alias) variables, as cheaply as possible: this runs on every read
    of the settings, so on POSIX it scans the environment's raw bytes without decoding."""
    raw = getattr(os.environ, "_data", None) if os.name == "posix" else None
    if isinstance(raw, dict):  # POSIX keeps the environment as bytes
        return tuple(
            sorted((k, v) for k, v in raw.items() if k.startswith(b"HUBCORE_") or k in _RAW_ALIASES)
        )
    return tuple(
        sorted((k, v) for k, v in os.environ.items() if k.startswith("HUBCORE_") or k in _ALIASES)
    )


def _text_of(value: Any) -> str:
    return os.fsdecode(value) if isinstance(value, bytes) else str(value)


def current() -> Settings:
    """The settings in force: the environment, then any :func:`overridden` values."""
    global _evolved
    base = _from_environment()
    extra = {**_process_override, **(_override.get() or {})}
    if not extra:
        return base
    last = _evolved  # a load reads the settings many times; the overrides rarely change
    if last is not None and last[0] is base and last[1] == extra:
        return last[2]
    built = replace(base, **extra)
    _evolved = (base, extra, built)
    return built


_evolved: tuple[Settings, dict[str, Any], Settings] | None = None


@contextlib.contextmanager
def overridden(**values: Any) -> Iterator[Settings]:
    """Apply *values* (field names of :class:`Settings`) on top of the environment for the
    block, in this context only (threads and other tasks keep theirs)."""
    unknown = set(values) - {f.name for f in fields(Settings)}
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
    token = _override.set({**(_override.get() or {}), **values})
    try:
        yield current()
    finally:
        _override.reset(token)


def override_process(**values: Any) -> None:
    """Apply *values* for the whole process, every thread included (the command line's
    options; ``None`` removes an override)."""
    unknown = set(values) - {f.name for f in fields(Settings)}
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
    for name, value in values.items():
        if value is None:
            _process_override.pop(name, None)
        else:
            _process_override[name] = value


@contextlib.contextmanager
def process_overrides_restored() -> Iterator[None]:
    """Restore the process-wide overrides after the block (one CLI command's options)."""
    saved = dict(_process_override)
    try:
        yield
    finally:
        _process_override.clear()
        _process_override.update(saved)


# -- the configuration files ---------------------------------------------------------------------

#: The project's configuration file, in the working folder.
PROJECT_FILE = "hubcore.toml"
#: What tells an edited file from the one read before.
_Stamp = tuple[int, int, int, int]
_files_lock = threading.Lock()
_documents: dict[Path, tuple[_Stamp, dict[str, Any]]] = {}
_mirror_tables: dict[tuple[str, Path, _Stamp | None], Mapping[str, str]] = {}
_REMEMBERED = 16
_AT_LINE = r"^(?P<msg>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$"


class TomlFile:
    """One configuration file as read: where it is (absolute), what it says (``data``, a
    copy of its own: changing it changes nothing else), and whether it exists (``found``).
    A plain class: creating an attrs class costs start-up time every command pays."""

    __slots__ = ("data", "found", "path", "stamp")

    def __init__(
        self,
        path: Path,
        data: dict[str, Any] | None = None,
        *,
        found: bool = True,
        stamp: _Stamp | None = None,
    ) -> None:
        self.path = path
        self.data: dict[str, Any] = {} if data is None else data
        self.found = found
        self.stamp = stamp

    def __repr__(self) -> str:
        return f"TomlFile({str(self.path)!r}, found={self.found})"

    def table(self, name: str) -> dict[str, Any]:
        """The ``[name]`` table (empty when absent); a :class:`ConfigError` naming the file
        when *name* is something else."""
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"[{name}] in {self.path} must be a table")
        return value


def _stamp_of(info: os.stat_result) -> _Stamp:
    return (info.st_mtime_ns, info.st_size, info.st_ino, info.st_ctime_ns)


def _stamp(path: Path) -> _Stamp | None:
    try:
        return _stamp_of(os.stat(path))
    except OSError:
        return None


def _remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
    memo.pop(key, None)
    memo[key] = value
    while len(memo) > _REMEMBERED:  # a few files and settings at a time: keep the newest
        del memo[next(iter(memo))]


def read_toml(path: str | os.PathLike[str], *, missing_ok: bool = False) -> TomlFile:
    """Read the TOML file at *path*: the one reader of hubcore's configuration files.

    The parse is kept until the file's modification time, size or inode change. A file that
    cannot be read, is not UTF-8 or is not TOML is a :class:`ConfigError` naming the file (as
    an absolute path), the line where the parser stopped, and what to do; a missing file is
    one too, unless *missing_ok* (then the result is empty, with ``found`` false).
    """
    where = Path(path).absolute()
    try:
        stamp = _stamp_of(os.stat(where))
    except FileNotFoundError:
        if missing_ok:
            return TomlFile(where, found=False)
        raise ConfigError(f"{where} does not exist: create it, or name a file that does") from None
    except OSError as exc:
        raise _unreadable(where, exc) from None
    with _files_lock:
        known = _documents.get(where)
    if known is None or known[0] != stamp:
        try:
            with open(where, "rb") as handle:
                stamp = _stamp_of(os.fstat(handle.fileno()))  # the file actually read
                raw = handle.read()
        except OSError as exc:
            raise _unreadable(where, exc) from None
        known = (stamp, _parse(where, raw))
        with _files_lock:
            _remember(_documents, where, known)
    return TomlFile(where, copy.deepcopy(known[1]), stamp=known[0])


def project_config(path: str | os.PathLike[str] | None = None) -> TomlFile:
    """The project's configuration file: *path* (which must exist), else ``./hubcore.toml``
    (``found`` false when there is none). Each feature reads its own table of it."""
    if path is not None:
        return read_toml(path)
    return read_toml(Path.cwd() / PROJECT_FILE, missing_ok=True)


def _unreadable(where: Path, exc: OSError) -> ConfigError:
    reason = exc.strerror or type(exc).__name__
    return ConfigError(f"cannot read {where}: {reason}; make it a readable file, or remove it")


def _parse(where: Path, raw: bytes) -> dict[str, Any]:
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10
        import tomli as tomllib
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(_not_toml(where, "the text is not UTF-8", bad_line)) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        line: int | None = getattr(exc, "lineno", None)
        matched = re.match(_AT_LINE, message, re.S)
        if matched:  # Python 3.11 to 3.13 give the position in the message only
            message, line = matched["msg"], int(matched["line"])
        raise ConfigError(_not_toml(where, str(getattr(exc, "msg", message)), line)) from None


def _not_toml(where: Path, reason: str, line: int | None) -> str:
    at = f" at line {line}" if line else ""
    return (
        f"{where} is not valid TOML{at}: {reason}; fix {'that line' if line else 'the file'} "
        "(TOML syntax: https://toml.io)"
    )


def table() -> list[tuple[str, str, str]]:
    """``(variable, default, meaning)`` for every setting, for the docs."""
    rows = []
    for spec in fields(Settings):
        default = spec.default
        shown = "" if default in (None, "", ()) else str(default)
        if isinstance(default, bool):
            shown = "1" if default else "0"
        env = spec.metadata["env"]
        if spec.metadata["alias"]:
            env += f" (or {spec.metadata['alias']})"
        rows.append((env, shown, spec.metadata["doc"]))
    return rows
