"""What holds while a repository's code runs follows that code into the threads it starts.

The lock's weight hashes, the rule that an untrusted repository's fetches avoid private
addresses, and the rule that repository code cannot grant trust are kept in context variables
(:mod:`hubcore.runcontext`); a thread starts with an empty context, so a repository that
downloaded from a ``ThreadPoolExecutor`` or a ``threading.Thread`` escaped all three. Threads
started, and callables submitted to thread pools, from repository code now carry its context;
the user's own threads are left as Python starts them.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import multiprocessing.pool
import shutil
import threading

import pytest
from click.testing import CliRunner

import hubcore
from hubcore import runcontext, settings
from hubcore.cli import main
from hubcore.errors import IntegrityError, UntrustedRepoError
from hubcore.policy import trust
from hubcore.repo.redirects import in_repository_code

from .fileserver import FileServer
from .gitserver import BareRepo, GitHostServer
from .test_lock import hub_files, weights_bytes

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")
pytest.importorskip("hubcore_numpy_example")

THREADED = """

import concurrent.futures
import threading

import hubcore


def pooled():
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(hubcore.download, URL).result()


def pooled_weights():
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(hubcore.load_weights, URL, backend="numpy-example").result()


def direct_weights():
    return hubcore.load_weights(URL, backend="numpy-example")


def _outcome(go=None):
    out = {}

    def fetch():
        if go is not None:
            go.wait()
        try:
            out["path"] = hubcore.download(URL)
        except Exception as exc:
            out["error"] = exc

    thread = threading.Thread(target=fetch)
    thread.start()
    return thread, out


def threaded():
    thread, out = _outcome()
    thread.join()
    return out


def outliving(go):
    '''Starts a thread that downloads only after the load has returned.'''
    return _outcome(go)


def a_pool():
    '''Returns a pool it has used: the user may submit to it later.'''
    pool = concurrent.futures.ThreadPoolExecutor(1)
    pool.submit(int).result()
    return pool
"""


@pytest.fixture
def locked(hub_home, tmp_path, monkeypatch):
    """acme/hub locked with the weights it downloads itself, whose bytes are then replaced."""
    git = GitHostServer(tmp_path / "srv" / "repos").start()
    files = FileServer(tmp_path / "weights").start()
    url = files.add("linear.safetensors", weights_bytes(1))
    text = hub_files(url, "v1")["hubconf.py"] + f"\nURL = {url!r}\n" + THREADED
    BareRepo(git.root, "acme/hub").commit({"hubconf.py": text}, "one")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["lock", "acme/hub:main", "--host", git.url])
    assert result.exit_code == 0, result.output
    files.add("linear.safetensors", weights_bytes(2))  # replaced behind the same URL
    monkeypatch.setenv("HUBCORE_HOME", str(tmp_path / "another-machine"))
    yield git, url
    git.stop()
    files.stop()


@pytest.mark.parametrize("entry", ["pooled", "pooled_weights", "direct_weights"])
def test_downloads_from_a_pool_of_repository_code_are_checked_against_the_lock(
    locked, entry
) -> None:
    git, url = locked
    with pytest.raises(IntegrityError, match="recorded in the lock file"):
        hubcore.load("acme/hub:main", entry, host=git.url)
    # outside any repository's code the lock does not apply
    assert hubcore.download(url).is_file()


def test_a_thread_started_by_repository_code_is_checked_against_the_lock(locked) -> None:
    git, _ = locked
    out = hubcore.load("acme/hub:main", "threaded", host=git.url)
    assert "path" not in out
    assert isinstance(out["error"], IntegrityError)
    assert "recorded in the lock file" in str(out["error"])


def test_a_thread_that_outlives_its_load_is_still_checked(locked) -> None:
    git, url = locked
    go = threading.Event()
    thread, out = hubcore.load("acme/hub:main", "outliving", go, host=git.url)
    assert runcontext.current() is None  # the load is over here
    go.set()
    thread.join(timeout=60)
    assert isinstance(out.get("error"), IntegrityError), out
    assert hubcore.download(url).is_file()  # the user's own call is not


def test_the_users_threads_are_left_alone(locked) -> None:
    git, url = locked
    pool = hubcore.load("acme/hub:main", "a_pool", host=git.url)  # hooks installed by now
    try:  # a pool the repository made serves the user's calls as the user's
        assert pool.submit(hubcore.download, url).result().is_file()
        assert pool.submit(runcontext.current).result() is None
    finally:
        pool.shutdown()
    seen = {}
    mine: contextvars.ContextVar[str] = contextvars.ContextVar("mine", default="unset")
    mine.set("set")

    def look() -> None:
        seen.update(
            context=runcontext.current(),
            repo=in_repository_code(),
            mine=mine.get(),
            path=hubcore.download(url),
        )

    thread = threading.Thread(target=look)
    thread.start()
    thread.join()
    # as Python starts a thread: an empty context, nothing of hubcore's
    assert seen["context"] is None
    assert seen["repo"] is False
    assert seen["mine"] == "unset"
    assert seen["path"].is_file()


def test_two_loads_in_two_threads_keep_their_own_context(tmp_path) -> None:
    """Each load's threads carry that load's facts, whatever runs beside it."""
    seen: dict[str, object] = {}
    both = threading.Barrier(2)

    def load(name: str) -> None:
        context = runcontext.RunContext(root=tmp_path / name, label=name, remote=True)
        with runcontext.entered(context):
            both.wait(timeout=30)  # both loads are running now
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                seen[name] = pool.submit(runcontext.current).result()

    threads = [threading.Thread(target=load, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert {n: getattr(c, "label", None) for n, c in seen.items()} == {"a": "a", "b": "b"}


def test_untrusted_fetches_stay_public_in_threads(monkeypatch) -> None:
    """``hubcore lock`` and ``check --online`` fetch an untrusted repository's weights under
    :func:`~hubcore.runcontext.fetching_for`; the parallel range requests of a large file run
    in worker threads, and must keep to public addresses too."""
    monkeypatch.delenv("HUBCORE_ALLOW_PRIVATE_URLS", raising=False)
    seen = []
    with runcontext.fetching_for(False):
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            seen.append(pool.submit(runcontext.public_addresses_only).result())
        thread = threading.Thread(target=lambda: seen.append(runcontext.public_addresses_only()))
        thread.start()
        thread.join()
    assert seen == [True, True]


NESTING = """
import concurrent.futures

import hubcore

dependencies = []


def loads_inner():
    # Not `with`: a worker that got as far as importing would wait for this thread's import
    # lock, held while an entrypoint runs, and shutting the pool down would never return.
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        return pool.submit(
            hubcore.load, "acme/inner", "f", host={host!r}, trust_repo=True
        ).result(timeout=30)
    finally:
        pool.shutdown(wait=False)
"""


def test_repository_code_in_a_thread_cannot_grant_trust(hub_home, tmp_path, monkeypatch) -> None:
    git = GitHostServer(tmp_path / "srv" / "repos").start()
    try:
        BareRepo(git.root, "acme/outer").commit({"hubconf.py": NESTING.format(host=git.url)}, "o")
        BareRepo(git.root, "acme/inner").commit(
            {"hubconf.py": "dependencies = []\n\n\ndef f():\n    return 'inner'\n"}, "i"
        )
        monkeypatch.setenv("HUBCORE_TRUST", f"github:{git.url}/acme/outer")
        refused = r"acme/inner.*loaded by the code of acme/outer"
        with pytest.raises(UntrustedRepoError, match=refused):
            hubcore.load("acme/outer", "loads_inner", host=git.url)
        assert not [e for e in trust.entries() if "acme/inner" in e]  # nothing was stored
    finally:
        git.stop()


def _context(tmp_path, name: str = "repo") -> runcontext.RunContext:
    return runcontext.RunContext(root=tmp_path, label=name, remote=True)


def test_a_thread_outliving_its_load_reads_the_environment_afresh(tmp_path, monkeypatch) -> None:
    """The environment is read once per public call; a thread the repository started keeps its
    run context after the load, but must not keep that call's reading of the environment."""
    monkeypatch.setenv("HUBCORE_MAX_HUBCONF_BYTES", "1000")
    go = threading.Event()
    seen: list[int] = []

    def later() -> None:
        go.wait(timeout=30)
        seen.append(settings.current().max_hubconf_bytes)
        seen.append(runcontext.current() is not None)

    with settings.environment_held(), runcontext.entered(_context(tmp_path)):
        assert settings.current().max_hubconf_bytes == 1000  # the reading is held now
        thread = threading.Thread(target=later)
        thread.start()
    monkeypatch.setenv("HUBCORE_MAX_HUBCONF_BYTES", "2000")
    go.set()
    thread.join(timeout=30)
    assert seen == [2000, True]


def test_the_hooks_chain_with_a_later_patch_and_a_thread_subclass(tmp_path) -> None:
    """Another library patching ``Thread.start`` after hubcore, a ``Timer`` and a subclass
    overriding ``run`` all keep the context; the user's own pool stays the user's."""
    runcontext.carry_into_threads()
    original = threading.Thread.start
    calls: list[str] = []

    def theirs(self: threading.Thread) -> None:
        calls.append(self.name)
        original(self)

    seen: dict[str, object] = {}

    class Sub(threading.Thread):
        def run(self) -> None:
            seen["sub"] = runcontext.current()

    users_pool = concurrent.futures.ThreadPoolExecutor(1)
    threading.Thread.start = theirs  # type: ignore[method-assign]
    try:
        with runcontext.entered(_context(tmp_path, "a")):
            sub = Sub(name="sub")
            sub.start()
            timer = threading.Timer(0, lambda: seen.__setitem__("timer", runcontext.current()))
            timer.start()
            seen["pool"] = users_pool.submit(runcontext.current).result()
        sub.join()
        timer.join()
        seen["after"] = users_pool.submit(runcontext.current).result()
    finally:
        threading.Thread.start = original  # type: ignore[method-assign]
        users_pool.shutdown()
    assert "sub" in calls
    assert {k: getattr(v, "label", None) for k, v in seen.items()} == {
        "sub": "a",
        "timer": "a",
        "pool": "a",
        "after": None,
    }


@pytest.mark.xfail(
    strict=True,
    reason="workers of a multiprocessing ThreadPool started during a load keep its context",
)
def test_a_library_pool_started_during_a_load_serves_the_user_as_the_user(tmp_path) -> None:
    """A non-``concurrent.futures`` pool (``multiprocessing.pool.ThreadPool``) that a library
    creates lazily during a load and keeps: its workers are started in the load's context, so
    the user's later calls through it run as repository code (lock, redirects)."""
    with runcontext.entered(_context(tmp_path)):
        pool = multiprocessing.pool.ThreadPool(1)
    try:
        assert pool.apply(runcontext.current) is None
    finally:
        pool.terminate()
