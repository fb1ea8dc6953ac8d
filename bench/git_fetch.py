"""Cold and warm git fetches over smart HTTP: hubcore against ``git clone --depth 1``.

Run ``.venv/torch/bin/python bench/git_fetch.py``. A loopback server runs the real
``git http-backend`` (tests/gitserver.py) over a generated repository with many refs (most of
them ``refs/pull/*``, as on a busy GitHub project). In the same run it times, as whole
processes (interpreter start-up and imports included, as a user sees them):

* ``git clone --depth 1 --branch main`` into a fresh folder;
* ``hubcore.open_repo("git+<url>@main")`` with a hub home that holds no repository (cold;
  a command ran there before, so the scan of installed plugins is remembered);
* the same again with the snapshot cached (warm: resolving the branch only);

and counts the requests and response bytes the server sent for each. Prints the ratios
hubcore / git (the targets: cold time within 1.5x, cold bytes within 1.05x) and the load
average, since on a shared machine the ratio moves with it. hubcore's modules are compiled to
bytecode first, as in an installed package (``PYTHONDONTWRITEBYTECODE`` would otherwise make
every run compile them from source), and it runs in an environment laid out as an installation
(``bench/installed.py``: no editable-install finders).

``HUBCORE_BENCH_CODE=<another checkout>`` measures that checkout's hubcore (and plugins) instead,
for a before/after table in one sitting.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: The checkout whose hubcore is measured (another commit's, for a before/after table).
CODE = Path(os.environ.get("HUBCORE_BENCH_CODE", ROOT)).resolve()
CODE_PATH = [str(CODE), str(CODE / "plugins" / "torch"), str(CODE / "plugins" / "megengine")]
sys.path.insert(0, str(ROOT))

from installed import installed_python  # noqa: E402

from tests.gitserver import BareRepo, git  # noqa: E402
from tests.test_git_transports import GitServer  # noqa: E402

# prints the seconds of the open_repo call itself, to tell start-up from fetching
HUBCORE_OPEN = (
    "import sys, time, hubcore, hubcore.plugins; hubcore.plugins.get_plugins(); "
    "t = time.perf_counter(); hubcore.open_repo(sys.argv[1]); print(time.perf_counter() - t)"
)


PLUGINS_SCANNED = "import hubcore.plugins; hubcore.plugins.get_plugins()"


def make_repo(root: Path, refs: int, commits: int, files: int) -> BareRepo:
    """A repository with *commits* commits of *files* files on main, and *refs* refs in all:
    a few branches and tags, the rest ``refs/pull/<n>/head`` at side commits."""
    rng = random.Random(7)
    repo = BareRepo(root, "lab/models")
    words = [f"w{n}" for n in range(2000)]
    for c in range(commits):
        changed = {
            f"pkg/mod{n}.py": " ".join(rng.choices(words, k=400)) + "\n"
            for n in range(files)
            if c == 0 or rng.random() < 0.2
        }
        changed["hubconf.py"] = f"def which():\n    '''The version.'''\n    return {c}\n"
        repo.commit(changed, f"commit {c}")
    head = git("rev-parse", "HEAD", cwd=repo.work)
    history = git("rev-list", "HEAD", cwd=repo.work).split()
    branches, tags = 25, 150
    lines = [f"create refs/heads/b{n} {history[n % len(history)]}\n" for n in range(branches)]
    lines += [f"create refs/tags/v{n} {history[n % len(history)]}\n" for n in range(tags)]
    pulls = max(0, refs - branches - tags - 1)
    lines += [f"create refs/pull/{n}/head {history[n % len(history)]}\n" for n in range(pulls)]
    subprocess.run(
        ["git", "update-ref", "--stdin"],
        input="".join(lines),
        text=True,
        cwd=repo.bare,
        check=True,
    )
    assert head
    return repo


def measure(server: GitServer, argv: list[str], env: dict[str, str]) -> dict[str, float]:
    server.sent.clear()
    start = time.perf_counter()
    # in a neutral folder: ``python -c`` puts the working folder first on sys.path
    done = subprocess.run(
        argv, check=True, env=env, capture_output=True, text=True, cwd=tempfile.gettempdir()
    )
    seconds = time.perf_counter() - start
    call = float(done.stdout.strip() or seconds)  # git: the whole process
    return {
        "seconds": seconds,
        "call": call,
        "requests": len(server.sent),
        "bytes": sum(server.sent),
    }


def run(refs: int = 3176, commits: int = 20, files: int = 60, runs: int = 5) -> dict[str, Any]:
    """Build the repository, run every contender *runs* times (taking turns), and return the
    medians per contender (seconds, seconds in the call, requests, bytes)."""
    for folder in ("hubcore", "plugins", "docs/example-plugin"):
        compileall.compile_dir(CODE / folder, quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        repos = base / "srv" / "repos"
        repos.mkdir(parents=True)
        make_repo(repos, refs, commits, files)
        server = GitServer(repos).start()
        try:
            url = f"{server.url}/lab/models.git"
            env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
            python = installed_python(base / "python", CODE_PATH)
            env["HUBCORE_TRUST"] = "*"
            env["HUBCORE_BLOCK_PLUGINS"] = "numpy-example"  # the docs' example: not a user's
            rows: dict[str, list[dict[str, float]]] = {"git": [], "cold": [], "warm": []}
            for run in range(runs):
                clone = [
                    "git", "clone", "-q", "--depth", "1", "--branch", "main", url,
                    str(base / f"clone{run}"),
                ]  # fmt: skip
                rows["git"].append(measure(server, clone, env))
                home = base / f"home{run}"
                env["HUBCORE_HOME"] = str(home)
                # a home that holds no repository, but has seen a command before (the
                # plugin scan is remembered there, as after any earlier hubcore command)
                subprocess.run(
                    [python, "-c", PLUGINS_SCANNED],
                    check=True,
                    env=env,
                    cwd=tempfile.gettempdir(),
                )
                hub = [python, "-c", HUBCORE_OPEN, f"git+{url}@main"]
                rows["cold"].append(measure(server, hub, env))
                rows["warm"].append(measure(server, hub, env))
        finally:
            server.stop()
    return {
        name: {key: statistics.median(r[key] for r in rows_) for key in rows_[0]}
        for name, rows_ in rows.items()
    }


def report(median: dict[str, Any], refs: int, runs: int) -> list[str]:
    """The printed table and the ratios to ``git clone --depth 1``."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [f"{refs} refs, median of {runs} runs (whole processes); load average {load}"]
    lines.append(f"{'':22}{'seconds':>10}{'in call':>10}{'requests':>10}{'bytes':>12}")
    for name, label in (("git", "git clone --depth 1"), ("cold", "hubcore cold"),
                        ("warm", "hubcore warm branch")):  # fmt: skip
        m = median[name]
        lines.append(
            f"{label:22}{m['seconds']:>10.3f}{m['call']:>10.3f}{m['requests']:>10.0f}"
            f"{m['bytes']:>12.0f}"
        )
    g, c = median["git"], median["cold"]
    lines.append(
        f"cold / git clone: time {c['seconds'] / g['seconds']:.2f}x (target <= 1.5x), "
        f"bytes {c['bytes'] / g['bytes']:.3f}x (target <= 1.05x), "
        f"requests {c['requests']:.0f} vs {g['requests']:.0f}; "
        f"the open_repo call alone: {c['call'] / g['seconds']:.2f}x"
    )
    return lines


def main() -> None:
    """Run the benchmark with the command-line options, print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refs", type=int, default=3176)
    parser.add_argument("--commits", type=int, default=20)
    parser.add_argument("--files", type=int, default=60)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    print(f"hubcore measured: {CODE}")
    median = run(args.refs, args.commits, args.files, args.runs)
    print("\n".join(report(median, args.refs, args.runs)))
    if args.json:
        args.json.write_text(json.dumps({"refs": args.refs, "median": median}, indent=2))


if __name__ == "__main__":
    main()
