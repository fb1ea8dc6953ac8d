"""Notifications of registry changes: the plugin hook, and webhooks through an outbox.

Every change (log, link, unlink, alias move, edit, delete) is an event (see
:meth:`Registry.history <hubcore.registry.core.Registry.history>`). Two kinds of listener hear
it:

* plugins, through the ``hubcore_registry_event(event)`` hook, in the writer's process, right
  after the change (each listener on its own: one that fails is logged and the others still
  hear the event; see :mod:`hubcore.events`);
* webhooks configured in the configuration file (``HUBCORE_CONFIG`` or
  ``<home>/config.toml``) or the project's ``./hubcore.toml``::

      [registry.webhooks.ml-team]             # the name: letters, digits, '-' and '_'
      url = "https://hooks.slack.com/services/T000/B000/XXXX"
      format = "slack"                        # or "json"
      kinds = ["link", "alias"]               # default: every change
      models = ["Image Classifier"]           # default: every artifact and registered model
      aliases = ["production"]                # alias moves of these aliases only

  or the environment (``HUBCORE_REGISTRY_WEBHOOK``, ``..._FORMAT``, ``..._FILTER`` as
  ``kinds=link,alias;models=Image Classifier;aliases=production``; named ``env``).

Webhook delivery never fails a change and never holds it up for long: before the event is
added to the history, one entry per matching webhook is written to ``outbox/<event id>~<webhook
name>.json`` in the registry (create-only, so writing it twice is writing it once). Delivery
is then tried within :data:`INLINE_BUDGET` seconds; what fails stays in the outbox, with its
attempts and the time of the next one (exponential backoff), and is tried again by the next
change made by anyone with that webhook configured, or by ``hubcore registry notify --flush``
(:func:`flush`), which retries with backoff. Delivery is at least once: a deliverer claims an
entry by compare-and-swap (a lease, so two deliverers do not send it at the same time), sends
it and deletes it; if it dies in between, the lease runs out and the entry is sent again.
Every request carries the event's id as ``Idempotency-Key`` (and ``idempotency_key`` in JSON
payloads), the same on every attempt, so receivers can drop repeats.

Entries are delivered only by a process that has their webhook configured, and webhooks are
configured per machine and project, so an entry whose webhook is configured nowhere any more
would stay forever. Expiry rule: an entry whose webhook is not configured in the process
looking at it, and that nobody has written (enqueued, claimed or retried) for
:data:`ORPHAN_EXPIRY` seconds (7 days), is dropped, with a warning naming the event and the
webhook. :meth:`Registry.gc <hubcore.registry.core.Registry.gc>` drops them (:func:`expire`),
and so does any delivery that lists the outbox (a change made with some webhook configured,
``hubcore registry notify --flush``). An entry of a webhook configured there is never dropped:
it is retried, whatever its age.

A webhook's URL is a secret (a Slack webhook's path is its key): it is stored in no registry
object, and messages, logs and errors name the webhook by its name and host only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import attrs

from hubcore.errors import ConfigError
from hubcore.registry.errors import RegistryError, VersionNotFoundError

if TYPE_CHECKING:
    from hubcore.registry.core import Registry
    from hubcore.registry.store import ObjectInfo

__all__ = [
    "INLINE_BUDGET",
    "ORPHAN_EXPIRY",
    "Webhook",
    "announce",
    "deliver_pending",
    "enqueue",
    "expire",
    "flush",
    "payload",
    "summary",
    "webhooks",
]

logger = logging.getLogger(__name__)

#: Seconds a change may spend delivering notifications before it returns.
INLINE_BUDGET = 5.0
#: Seconds a deliverer holds an entry it claimed; after that another may send it again.
LEASE = 60.0
#: Longest wait between two scheduled attempts of one entry.
MAX_BACKOFF = 3600.0
#: Seconds an outbox entry of a webhook not configured here may go unwritten before it is
#: dropped (see the module docstring): a deliverer that knows the webhook rewrites its entries
#: at least every :data:`MAX_BACKOFF` while it makes changes or flushes.
ORPHAN_EXPIRY = 7 * 86400.0
_OUTBOX = "outbox"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_KINDS = ("log", "link", "unlink", "alias", "unalias", "update", "describe", "delete", "card")


@attrs.frozen
class Webhook:
    """A configured webhook: where (a secret), which payload, which events."""

    name: str
    url: str = attrs.field(repr=False)
    format: str = "slack"
    kinds: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    #: Seconds for one request (connect and read each).
    timeout: float = 10.0

    @property
    def shown(self) -> str:
        """How messages name the webhook: its name and host, never its URL."""
        return f"webhook {self.name!r} ({urlsplit(self.url).hostname or '?'})"

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether *event* passes the filters (an empty filter passes everything)."""
        if self.kinds and event.get("kind") not in self.kinds:
            return False
        if self.models and event.get("name") not in self.models:
            return False
        if self.aliases and event.get("kind") in ("alias", "unalias"):
            return event.get("alias") in self.aliases
        return True

    def scrub(self, text: str) -> str:
        """*text* with this webhook's URL, and any part of its path, replaced by its name."""
        from hubcore.store.redaction import redact

        parts = urlsplit(self.url)
        for secret in (self.url, parts.path, parts.query):
            if secret and secret != "/":
                text = text.replace(secret, "<hidden>")
        return redact(text)


def _strings(value: Any, where: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {key} must be a list of strings")
    return tuple(value)


def _webhook(name: str, table: Mapping[str, Any], where: str) -> Webhook:
    where = f"[registry.webhooks.{name}] in {where}"
    if not _NAME.match(name):
        raise ConfigError(f"{where}: a webhook name is 1 to 64 letters, digits, '-' or '_'")
    unknown = sorted(set(table) - {"url", "format", "kinds", "models", "aliases", "timeout"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    url = table.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"{where}: url must be an http or https URL")
    kind = table.get("format", "slack")
    if kind not in ("slack", "json"):
        raise ConfigError(f"{where}: format must be 'slack' or 'json'")
    kinds = _strings(table.get("kinds"), where, "kinds")
    wrong = sorted(set(kinds) - set(_KINDS))
    if wrong:
        raise ConfigError(f"{where}: unknown kinds {wrong}; known: {', '.join(_KINDS)}")
    timeout = table.get("timeout", 10.0)
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"{where}: timeout must be a positive number of seconds")
    return Webhook(
        name=name,
        url=url,
        format=kind,
        kinds=kinds,
        models=_strings(table.get("models"), where, "models"),
        aliases=_strings(table.get("aliases"), where, "aliases"),
        timeout=float(timeout),
    )


def _from_environment() -> Webhook | None:
    from hubcore import settings

    current = settings.current()
    if not current.registry_webhook.strip():
        return None
    table: dict[str, Any] = {
        "url": current.registry_webhook.strip(),
        "format": current.registry_webhook_format,
    }
    for part in filter(None, (p.strip() for p in current.registry_webhook_filter.split(";"))):
        key, sep, values = part.partition("=")
        if not sep or key.strip() not in ("kinds", "models", "aliases"):
            raise ConfigError(
                f"HUBCORE_REGISTRY_WEBHOOK_FILTER: {part!r} is not kinds=..., models=... or "
                "aliases=... (comma-separated values, ';' between filters)"
            )
        table[key.strip()] = [v.strip() for v in values.split(",") if v.strip()]
    try:
        return _webhook("env", table, "the environment")
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("[registry.webhooks.env] in ", "")) from None


def webhooks() -> list[Webhook]:
    """The webhooks configured now: ``[registry.webhooks.*]`` of the configuration file and
    of ``./hubcore.toml``, and ``HUBCORE_REGISTRY_WEBHOOK`` (named ``env``)."""
    from hubcore import settings

    found: dict[str, Webhook] = {}
    sources = [
        (file.data, str(file.path))
        for file in (settings.current().user_config(), settings.project_config())
    ]
    for document, where in sources:
        section = document.get("registry", {})
        tables = section.get("webhooks", {}) if isinstance(section, dict) else None
        if not isinstance(tables, dict):
            raise ConfigError(f"[registry.webhooks] in {where} must hold tables of webhooks")
        for name, table in tables.items():
            if not isinstance(table, dict):
                raise ConfigError(f"[registry.webhooks.{name}] in {where} must be a table")
            found[name] = _webhook(name, table, where)
    env = _from_environment()
    if env is not None:
        found[env.name] = env
    return list(found.values())


# -- what is sent ------------------------------------------------------------------------------


def _v(number: Any) -> str:
    return f"v{number}" if number is not None else "-"


def summary(event: Mapping[str, Any]) -> str:
    """One line saying what changed, who did it."""
    name, kind, who = event.get("name"), event.get("kind"), event.get("who")
    after = event.get("after") or {}
    if kind == "alias":
        old = event.get("from")
        moved = f"moved {_v(old)} -> {_v(event.get('to'))}" if old is not None else "set to"
        what = f"alias {event.get('alias')} {moved}"
        if old is None:
            what += f" {_v(event.get('to'))}"
    elif kind == "unalias":
        what = f"alias {event.get('alias')} removed (was {_v(event.get('from'))})"
    elif kind == "link":
        what = f"linked {_v(after.get('version'))} -> {after.get('link')}"
    elif kind == "log":
        what = f"logged {_v(event.get('version'))}"
    elif kind in ("unlink", "delete"):
        what = f"{kind}ed {_v(event.get('version'))}".replace("deleteed", "deleted")
    elif kind == "update":
        what = f"edited {_v(event.get('version'))} ({', '.join(sorted(after))})"
    elif kind == "card":
        what = f"card of {event.get('target') or name} edited"
    else:
        what = f"{kind} ({', '.join(sorted(after))})"
    return f"{name}: {what} by {who}"


def _snippet(event: Mapping[str, Any]) -> str:
    name = event.get("name")
    if event.get("kind") == "alias" and event.get("to") is not None:
        return f'hubcore.load("registry:{name}:{event.get("alias")}")'
    number = event.get("version")
    if number is None:
        number = (event.get("after") or {}).get("version")
    return f'hubcore.load("registry:{name}:v{number}")' if number is not None else ""


def payload(event: Mapping[str, Any], hook: Webhook, registry: str) -> bytes:
    """The request body for *hook*: Slack's ``text`` and ``blocks``, or plain JSON."""
    text = summary(event)
    snippet = _snippet(event)
    if hook.format == "json":
        body: dict[str, Any] = {
            "idempotency_key": event["id"],
            "text": text,
            "registry": registry,
            "snippet": snippet,
            "event": dict(event),
        }
    else:
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*"}},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"{event.get('kind')} at {event.get('when')} in {registry}",
                    }
                ],
            },
        ]
        if snippet:
            blocks.append(
                {"type": "section", "text": {"type": "mrkdwn", "text": f"```{snippet}```"}}
            )
        body = {"text": text, "blocks": blocks}
    return json.dumps(body, sort_keys=True, default=str).encode()


# -- the outbox --------------------------------------------------------------------------------


def _key(event_id: str, hook: str) -> str:
    return f"{_OUTBOX}/{event_id}~{hook}.json"


def enqueue(registry: Registry, event: Mapping[str, Any]) -> int:
    """Write one outbox entry per configured webhook that wants *event*; how many."""
    from hubcore.registry.core import _dumps

    try:
        hooks = webhooks()
    except ConfigError as exc:  # the change happened; a bad configuration must not undo it
        logger.warning("registry notifications are not configured right: %s", _safe(str(exc)))
        return 0
    count = 0
    for hook in hooks:
        if hook.matches(event):
            entry = {"event": dict(event), "webhook": hook.name, "attempts": 0, "next": 0.0}
            registry.store.create(_key(str(event["id"]), hook.name), _dumps(entry))
            count += 1
    return count


def announce(registry: Registry, event: Mapping[str, Any]) -> None:
    """Tell plugins (``hubcore_registry_event``), each listener isolated from the others."""
    from hubcore import events

    events.notify("hubcore_registry_event", event={**event, "registry": registry.store.url})


def deliver_pending(registry: Registry) -> dict[str, int]:
    """Deliver what is due in the outbox within :data:`INLINE_BUDGET` seconds, never
    raising: a registry change calls it after every event."""
    try:
        return _deliver(registry, budget=INLINE_BUDGET, attempts=2, due_only=True)
    except Exception as exc:  # notifications never fail the change they report
        logger.warning("registry notifications not delivered now: %s", _safe(str(exc)))
        return {"delivered": 0, "failed": 0, "pending": -1}


def flush(registry: Registry, *, budget: float = 120.0, attempts: int = 5) -> dict[str, int]:
    """Deliver everything pending now (``hubcore registry notify --flush``), each entry with
    up to *attempts* tries and exponential backoff, within *budget* seconds in all, and drop
    expired entries of webhooks not configured here (see the module docstring). Returns
    ``{"delivered", "failed", "pending", "expired"}`` (pending: still in the outbox, any
    webhook)."""
    return _deliver(registry, budget=budget, attempts=attempts, due_only=False)


def pending(registry: Registry) -> list[dict[str, Any]]:
    """The outbox entries (event, webhook name, attempts, next attempt, last error)."""
    found = []
    for info in registry.store.objects(_OUTBOX):
        entry = registry._read_json(info.key)
        if entry is not None:
            found.append(entry[0])
    return found


def _safe(text: str) -> str:
    for hook in _configured_quietly():
        text = hook.scrub(text)
    from hubcore.store.redaction import redact

    return redact(text)


def _configured_quietly() -> list[Webhook]:
    try:
        return webhooks()
    except ConfigError:
        return []


def _hook_name(key: str) -> str:
    """The webhook an outbox entry's key names (``outbox/<event id>~<webhook>.json``)."""
    return key.rpartition("~")[2].removesuffix(".json")


def _orphaned(registry: Registry, info: ObjectInfo, configured: Mapping[str, Any]) -> bool:
    """Whether the outbox entry *info* is expired: its webhook is not in *configured*, and
    nobody has written it for :data:`ORPHAN_EXPIRY` seconds (checked again on the object
    itself just before, so that an entry a deliverer claimed since the listing stays)."""
    if _hook_name(info.key) in configured:
        return False
    cutoff = time.time() - ORPHAN_EXPIRY
    if info.mtime >= cutoff:
        return False
    now = registry.store.info(info.key)
    return now is not None and now.mtime < cutoff


def _drop(registry: Registry, key: str) -> None:
    logger.warning(
        "dropped the notification %s for webhook %r: that webhook is not configured here "
        "and nobody has tried to deliver it for %d days",
        key.rpartition("/")[2].rpartition("~")[0],
        _hook_name(key),
        ORPHAN_EXPIRY // 86400,
    )
    registry.store.delete(key)


def expire(registry: Registry, *, dry_run: bool = False) -> int:
    """Drop the outbox entries no one delivers (the rule is in the module docstring); how
    many (*dry_run*: only counted). A configuration that cannot be read drops nothing: its
    webhooks may be the ones the entries wait for."""
    try:
        configured = {h.name: h for h in webhooks()}
    except ConfigError as exc:
        logger.warning("outbox entries kept: %s", _safe(str(exc)))
        return 0
    count = 0
    for info in list(registry.store.objects(_OUTBOX)):
        if _orphaned(registry, info, configured):
            count += 1
            if not dry_run:
                _drop(registry, info.key)
    return count


def _deliver(registry: Registry, *, budget: float, attempts: int, due_only: bool) -> dict[str, int]:
    hooks = {h.name: h for h in webhooks()}
    report = {"delivered": 0, "failed": 0, "pending": 0, "expired": 0}
    if not hooks and due_only:
        return report  # after a change: nothing to deliver, so no listing either
    deadline = time.monotonic() + budget
    for info in list(registry.store.objects(_OUTBOX)):
        hook = hooks.get(_hook_name(info.key))
        if hook is None and _orphaned(registry, info, hooks):
            _drop(registry, info.key)
            report["expired"] += 1
            continue
        if hook is None or time.monotonic() >= deadline:
            report["pending"] += 1  # someone with that webhook configured delivers it
            continue
        outcome = _deliver_one(registry, info.key, hook, deadline, attempts, due_only)
        report[outcome] += 1
    return report


def _deliver_one(
    registry: Registry, key: str, hook: Webhook, deadline: float, attempts: int, due_only: bool
) -> str:
    now = time.time()
    claimed: dict[str, Any] = {}

    def claim(current: dict[str, Any]) -> dict[str, Any] | None:
        if float(current.get("lease", 0)) > now or (due_only and current.get("next", 0) > now):
            return None
        claimed.update(current, lease=now + LEASE, attempts=int(current.get("attempts", 0)) + 1)
        return dict(claimed)

    try:
        if registry._update(key, claim, what=f"the outbox entry {key}") is None:
            return "pending"
    except VersionNotFoundError:
        return "delivered"  # another deliverer sent it meanwhile
    event = claimed["event"]
    error = _send(hook, event, registry.store.url, deadline, attempts)
    if error is None:
        registry.store.delete(key)
        return "delivered"
    tries = int(claimed["attempts"])
    logger.warning("%s: %s not delivered yet: %s", summary(event), hook.shown, error)

    def release(current: dict[str, Any]) -> dict[str, Any] | None:
        wait = min(MAX_BACKOFF, 2.0 ** min(tries, 20))
        return {**current, "lease": 0.0, "next": time.time() + wait, "error": error}

    try:
        registry._update(key, release, what=f"the outbox entry {key}")
    except (VersionNotFoundError, RegistryError):
        pass  # gone, or contended: its lease runs out and it is tried again
    return "failed"


class _Retry(Exception):
    """A failure worth another attempt: a connection failure or a 5xx/408/425/429 answer."""


def _send(
    hook: Webhook, event: Mapping[str, Any], registry: str, deadline: float, attempts: int
) -> str | None:
    """POST the event to *hook*, retried with backoff; ``None`` when it was accepted, else
    the reason (with no part of the URL)."""
    import tenacity

    from hubcore.store import http

    body = payload(event, hook, registry)
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": str(event["id"]),
        "X-Hubcore-Event": str(event.get("kind")),
    }

    def attempt() -> None:
        left = deadline - time.monotonic()
        if left <= 0.05:
            raise tenacity.TryAgain  # counted; stops at the deadline below
        status, reason = _post(hook, body, headers, min(hook.timeout, left))
        if 200 <= status < 300:
            return
        reason = http.status_text(status, reason)
        if status >= 500 or http.is_transient(status):
            raise _Retry(reason)
        raise RegistryError(reason)

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts) | _stop_at(deadline),
        wait=_capped(tenacity.wait_exponential(multiplier=0.25, max=8.0), deadline),
        retry=tenacity.retry_if_exception_type((_Retry, tenacity.TryAgain)),
        reraise=True,
    )
    try:
        with _scrubbed_logs(hook):
            retrying(attempt)
    except (_Retry, RegistryError) as exc:
        return hook.scrub(str(exc))
    except tenacity.TryAgain:
        return "out of time"
    except Exception as exc:  # an unexpected failure must not leak the URL either
        return hook.scrub(f"{type(exc).__name__}: {exc}")
    return None


#: Redirects a webhook may answer that are followed (same origin only): they keep the POST.
_KEPT_REDIRECTS = frozenset({307, 308})


def _post(hook: Webhook, body: bytes, headers: Mapping[str, str], budget: float) -> tuple[int, str]:
    """POST *body* to *hook* and return the final ``(status, reason)`` within *budget*
    seconds in all, however slowly the receiver answers (it runs in a daemon thread that is
    abandoned at the deadline). Redirects are followed only to the webhook's own origin and
    only when they keep the method (307, 308): the body and headers never reach another
    host. The answer's body is never read."""
    import threading

    result: list[tuple[int, str]] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(_post_now(hook, body, headers, budget))
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=run, name=f"webhook-{hook.name}", daemon=True)
    worker.start()
    worker.join(budget)
    if failure:
        raise failure[0]
    if not result:
        raise _Retry(f"no complete answer within {budget:.1f} s")
    return result[0]


def _post_now(
    hook: Webhook, body: bytes, headers: Mapping[str, str], budget: float
) -> tuple[int, str]:
    import requests

    from hubcore.store import http

    target = hook.url
    home = http.origin(hook.url)
    for _ in range(http.MAX_REDIRECTS + 1):
        try:
            response = http.session().request(
                "POST",
                target,
                headers=dict(headers),
                data=body,
                stream=True,
                allow_redirects=False,
                timeout=(budget, budget),
            )
        except requests.RequestException as exc:
            raise _Retry(http.describe_failure(exc)) from None
        status, reason, location = (
            response.status_code,
            response.reason,
            response.headers.get("Location"),
        )
        response.close()
        if status not in http.REDIRECTS:
            return status, reason
        following = urljoin(target, location or "")
        if status not in _KEPT_REDIRECTS or not location or http.origin(following) != home:
            where = urlsplit(following).hostname or "?"
            raise RegistryError(
                f"answered {status} (a redirect to {where}); a webhook's POST follows only "
                "307 and 308 redirects within its own origin: configure the final URL"
            )
        target = following
    raise RegistryError("too many redirects")


class _ScrubFilter(logging.Filter):
    """Hides every webhook called so far from HTTP libraries' log lines (installed once and
    kept: a request abandoned at its deadline may still log after its caller returned)."""

    def __init__(self) -> None:
        super().__init__()
        self.hooks: dict[str, Webhook] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        shown = message
        for hook in list(self.hooks.values()):
            shown = hook.scrub(shown)
        if shown != message:
            record.msg, record.args = shown, None
        return True


#: Loggers that may name the URL of a request (urllib3's debug line has its path).
_HTTP_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "hubcore.store.http")
_SCRUB = _ScrubFilter()


@contextlib.contextmanager
def _scrubbed_logs(hook: Webhook) -> Iterator[None]:
    """From now on, what HTTP libraries log has no part of *hook*'s URL (a Slack webhook's
    path is its key, and the one redactor keeps paths)."""
    _SCRUB.hooks[hook.url] = hook
    for name in _HTTP_LOGGERS:
        if _SCRUB not in logging.getLogger(name).filters:
            logging.getLogger(name).addFilter(_SCRUB)
    yield


def _capped(wait: Any, deadline: float) -> Any:
    def capped(retry_state: Any) -> float:
        return float(min(wait(retry_state), max(0.0, deadline - time.monotonic())))

    return capped


def _stop_at(deadline: float) -> Any:
    import tenacity

    class StopAtDeadline(tenacity.stop.stop_base):
        def __call__(self, retry_state: Any) -> bool:
            return time.monotonic() >= deadline - 0.05

    return StopAtDeadline()


def describe_webhooks(hooks: Sequence[Webhook]) -> list[dict[str, Any]]:
    """The webhooks as they may be shown: name, host, format and filters, never the URL."""
    return [
        {
            "name": h.name,
            "host": urlsplit(h.url).hostname,
            "format": h.format,
            "kinds": list(h.kinds),
            "models": list(h.models),
            "aliases": list(h.aliases),
        }
        for h in hooks
    ]
