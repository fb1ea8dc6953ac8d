"""``@pretrained`` read statically agrees with ``@pretrained`` run: one grammar, every spelling.

Each form below is a hubconf that declares weights in a way Python accepts; discovery (which
runs nothing) must report exactly the variants and the default that the imported hubconf's
entrypoint carries. Forms that discovery cannot follow must say "declared, but not literal"
(``known=False``), never "no weights", so that ``hubcore lock`` refuses them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import hubcore
from hubcore.errors import UsageError
from hubcore.repo.pretrained import weights_of
from hubcore.repo.weights import Weights, default_variant
from hubcore.runner import import_hubconf

SHA = "ab" * 32

# Each form: files of a repository whose hubconf binds the entrypoint `m` (and maybe more).
FORMS: dict[str, dict[str, str]] = {
    "plain": {"hubconf.py": "from hubcore import pretrained\n@pretrained('w/m.pth')\ndef m(): ..."},
    "from_alias": {
        "hubconf.py": "from hubcore import pretrained as hp\n@hp('w/m.pth')\ndef m(): ..."
    },
    "module_alias": {"hubconf.py": "import hubcore as hc\n@hc.pretrained('w/m.pth')\ndef m(): ..."},
    "assigned_alias": {
        "hubconf.py": "import hubcore\nP = hubcore.pretrained\n@P('w/m.pth')\ndef m(): ..."
    },
    "assigned_alias_lower": {
        "hubconf.py": "import hubcore\np = hubcore.pretrained\n"
        f"@p('w/m.pth', {SHA!r})\ndef m(): ...",
    },
    "alias_of_alias": {
        "hubconf.py": "from hubcore import pretrained as a\n"
        "b = a\nC = b\n@C('w/m.pth')\ndef m(): ...",
    },
    "alias_in_other_module": {
        "hubconf.py": "from common import P\n@P('w/m.pth', size=3)\ndef m(): ...",
        "common.py": "import hubcore.repo.pretrained as r\nP = r.pretrained\n",
    },
    "repo_module": {
        "hubconf.py": "import hubcore.repo.pretrained as r\n"
        "@r.pretrained('w/m.pth', size=3)\ndef m(): ...",
    },
    "decorator_variable": {
        "hubconf.py": "from hubcore import pretrained\nD = pretrained('w/m.pth')\n@D\ndef m(): ..."
    },
    "decorator_variable_imported": {
        "hubconf.py": "from decos import D\n@D\ndef m(): ...",
        "decos.py": "import hubcore\nD = hubcore.pretrained({'a': 'w/a.pth', 'b': 'w/b.pth'})\n",
    },
    "call_form": {
        "hubconf.py": "from hubcore import pretrained\n"
        "def _m(): ...\nm = pretrained('w/m.pth')(_m)\n",
    },
    "call_form_variable": {
        "hubconf.py": (
            "from hubcore import pretrained\nD = pretrained('w/m.pth', default='default')\n"
            "def _m(): ...\nm = D(_m)\n"
        )
    },
    "call_form_imported": {
        "hubconf.py": "from hubcore import pretrained\nfrom nets import build\n"
        "m = pretrained('w/m.pth')(build)\n",
        "nets.py": "def build():\n    'Builds.'\n",
    },
    "dict_constant": {
        "hubconf.py": (
            "from hubcore import pretrained as p\n"
            "URLS = {'a': 'w/m.pth', 'b': 'w/m.safetensors'}\n@p(URLS)\ndef m(): ..."
        )
    },
    "dict_constant_lower_case": {
        "hubconf.py": (
            "from hubcore import pretrained as p\n"
            "urls = {'a': 'w/a.pth', 'b': 'w/b.pth'}\n@p(urls, default='b')\ndef m(): ..."
        )
    },
    "dict_of_weights_constant": {
        "hubconf.py": (
            "from hubcore import pretrained, Weights\n"
            f"URLS = {{'a': Weights('w/a.pth', {SHA!r}), 'b': 'w/b.pth'}}\n"
            "@pretrained(URLS)\ndef m(): ..."
        )
    },
    "dict_of_constants": {
        "hubconf.py": (
            "from hubcore import pretrained\nA = 'w/a.pth'\nB = 'w/b.pth'\n"
            "@pretrained({'a': A, 'b': B}, default='b')\ndef m(): ..."
        )
    },
    "constant_from_module": {
        "hubconf.py": "from hubcore import pretrained\nfrom urls import URL\n"
        "@pretrained(URL)\ndef m(): ...",
        "urls.py": "URL = 'w/m.pth'\n",
    },
    "subscripted_constants": {
        "hubconf.py": (
            "from hubcore import pretrained\n"
            f"URLS = {{'m': 'w/m.pth'}}\nHASHES = {{'m': {SHA!r}}}\n"
            "@pretrained(URLS['m'], sha256=HASHES['m'])\ndef m(): ..."
        )
    },
    "constant_rebound_after_use": {
        "hubconf.py": (
            "from hubcore import pretrained\nURL = 'w/first.pth'\n"
            "@pretrained(URL)\ndef m(): ...\nURL = 'w/second.pth'\n"
        )
    },
    "twin_relative": {
        "hubconf.py": (
            "from hubcore import pretrained\n"
            "@pretrained({'a': 'w/m.pth', 'b': 'w/m.safetensors'})\ndef m(): ..."
        )
    },
    "weights_in_dict": {
        "hubconf.py": (
            "from hubcore import pretrained, Weights as W\n"
            f"@pretrained({{'a': W('w/m.PTH'), 'b': W('w/m.safetensors', sha256={SHA.upper()!r})}})"
            "\ndef m(): ..."
        )
    },
    "single_weights": {
        "hubconf.py": (
            "from hubcore import pretrained, Weights\n"
            f"@pretrained(Weights(url='w/m.pth', sha256={SHA!r}, size=9))\ndef m(): ..."
        )
    },
    "keywords": {
        "hubconf.py": (
            "from hubcore import pretrained\n"
            f"@pretrained(weights='w/m.pth', sha256={SHA!r}, size=4)\ndef m(): ..."
        )
    },
    "class_entrypoint": {
        "hubconf.py": (
            "import hubcore\nP = hubcore.pretrained\n"
            "@P({'x': 'w/x.pth'})\nclass m:\n    def __init__(self): ...\n"
        )
    },
    "megengine_compat": {
        "hubconf.py": (
            "from hubcore.compat import megengine_hub as hub\n"
            "@hub.pretrained('https://example.org/m.pkl')\ndef m(): ..."
        )
    },
    "megengine_decorator_variable": {
        "hubconf.py": (
            "from hubcore.compat import megengine_hub as hub\n"
            "D = hub.pretrained('https://example.org/m.pkl')\n@D\ndef m(): ..."
        )
    },
    "megengine_call_form": {
        "hubconf.py": (
            "from hubcore.compat import megengine_hub as hub\nmge_pretrained = hub.pretrained\n"
            "def _m(): ...\nm = mge_pretrained('https://example.org/m.pkl')(_m)"
        )
    },
}


@pytest.mark.parametrize("form", list(FORMS))
def test_discovery_reads_every_form_as_the_runtime_does(hub_home, make_hub_repo, form: str) -> None:
    if form.startswith("megengine"):
        pytest.importorskip("hubcore_megengine")
    repo = make_hub_repo(FORMS[form])
    info = hubcore.discover(str(repo)).entrypoints["m"].weights
    spec = weights_of(import_hubconf(hubcore.open_repo(str(repo))).m)
    assert spec is not None
    assert info is not None, "discovery found no weights"
    assert info.known, "discovery could not read weights the runtime reads"
    assert dict(info.variants) == dict(spec.variants)
    assert info.default == default_variant(spec.variants, spec.default)


def test_call_form_keeps_the_wrapped_functions_description(make_hub_repo) -> None:
    repo = make_hub_repo(FORMS["call_form_imported"])
    entry = hubcore.discover(str(repo)).entrypoints["m"]
    assert (entry.kind, entry.doc, entry.defined_in) == ("function", "Builds.", "nets.py:1")


def test_an_assigned_alias_is_hubcores_api_not_a_constant(make_hub_repo) -> None:
    repo = make_hub_repo(FORMS["assigned_alias"])
    info = hubcore.discover(str(repo))
    assert "constant" not in info.skipped["P"]
    assert "hubcore" in info.skipped["P"]


# Uses of hubcore's decorator that static reading cannot follow: each is declared weights
# whose URLs are known only at run time.
NOT_LITERAL: dict[str, dict[str, str]] = {
    "computed_argument": {
        "hubconf.py": "from hubcore import pretrained\n@pretrained(pick())\ndef m(): ..."
    },
    "starred_arguments": {
        "hubconf.py": "import hubcore\n"
        "ARGS = ('w/m.pth',)\n@hubcore.pretrained(*ARGS)\ndef m(): ...",
    },
    "decorator_from_a_call": {
        "hubconf.py": "import hubcore\nD = make(hubcore.pretrained)\n@D\ndef m(): ..."
    },
    "decorator_variable_computed": {
        "hubconf.py": "from hubcore import pretrained\nD = pretrained(pick())\n@D\ndef m(): ..."
    },
    "helper_function": {
        "hubconf.py": (
            "from hubcore import pretrained\n"
            "def with_weights(url):\n    return pretrained(url)\n"
            "@with_weights('w/m.pth')\ndef m(): ..."
        )
    },
    "helper_importing_inside": {
        "hubconf.py": (
            "def with_weights(url):\n    import hubcore\n    return hubcore.pretrained(url)\n"
            "@with_weights('w/m.pth')\ndef m(): ..."
        )
    },
    "helper_in_other_module": {
        "hubconf.py": "from helpers import with_weights\n@with_weights('w/m.pth')\ndef m(): ...",
        "helpers.py": (
            "from hubcore import pretrained as p\n"
            "def _inner(url):\n    return p(url)\n"
            "def with_weights(url):\n    return _inner(url)\n"
        ),
    },
    "helper_lambda": {
        "hubconf.py": (
            "from hubcore import pretrained\nwith_weights = lambda url: pretrained(url)\n"
            "@with_weights('w/m.pth')\ndef m(): ..."
        )
    },
    "call_form_through_helper": {
        "hubconf.py": (
            "from hubcore import pretrained\ndef _m(): ...\nm = wrap(pretrained, 'w/m.pth', _m)\n"
        )
    },
    "call_form_computed": {
        "hubconf.py": "from hubcore import pretrained\ndef _m(): ...\nm = pretrained(pick())(_m)\n"
    },
    "conditional_decorator": {
        "hubconf.py": (
            "import hubcore\n@(hubcore.pretrained if FLAG else other)('w/m.pth')\ndef m(): ..."
        )
    },
    "invalid_arguments": {  # the import fails at run time; nothing to lock either way
        "hubconf.py": "from hubcore import pretrained\n"
        "@pretrained({'a': 'x'}, default='b')\ndef m(): ...",
    },
}


@pytest.mark.parametrize("form", list(NOT_LITERAL))
def test_uses_discovery_cannot_follow_are_declared_but_not_literal(
    make_hub_repo, form: str
) -> None:
    repo = make_hub_repo(NOT_LITERAL[form])
    info = hubcore.discover(str(repo)).entrypoints["m"].weights
    assert info is not None, "discovery reported no weights"
    assert not info.known


def test_unrelated_decorators_and_helpers_declare_no_weights(make_hub_repo) -> None:
    repo = make_hub_repo(
        {
            "hubconf.py": """
            import functools
            import hubcore
            from hubcore import pretrained

            def register(fn):
                return fn

            def uses_hubcore_otherwise(fn):
                hubcore.download("x")
                return fn

            @register
            def a(): ...

            @functools.lru_cache(maxsize=None)
            def b(): ...

            @uses_hubcore_otherwise
            def c(): ...

            d = register(a)
            """
        }
    )
    entries = hubcore.discover(str(repo)).entrypoints
    assert {name: entries[name].weights for name in "abcd"} == dict.fromkeys("abcd")


def test_discovery_never_runs_the_forms_it_follows(make_hub_repo, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    repo = make_hub_repo(
        {
            "hubconf.py": f"""
            import pathlib
            pathlib.Path({str(marker)!r}).write_text("ran")
            import hubcore
            from helpers import D
            P = hubcore.pretrained
            @D
            def m(): ...
            n = P('w/n.pth')(m)
            """,
            "helpers.py": f"""
            import pathlib
            pathlib.Path({str(marker)!r}).write_text("ran")
            from hubcore import pretrained
            D = pretrained('w/m.pth')
            """,
        }
    )
    entries = hubcore.discover(str(repo)).entrypoints
    assert [w.url for w in entries["n"].weights.variants.values()] == ["w/n.pth"]
    assert [w.url for w in entries["m"].weights.variants.values()] == ["w/m.pth"]
    assert not marker.exists()


# -- the one grammar ------------------------------------------------------------------------


def test_one_grammar_for_the_decorators_arguments() -> None:
    from hubcore.repo.weights import declared_weights

    assert declared_weights("u", SHA, 3) == ({"default": Weights("u", SHA, 3)}, "default")
    assert declared_weights({"a": "u", "b": Weights("v")}, default="b") == (
        {"a": Weights("u"), "b": Weights("v")},
        "b",
    )
    bad = [
        ({}, {}, "at least one"),
        ({"a": "x"}, {"default": "b"}, "default variant"),
        ({"a": "x"}, {"sha256": SHA}, "single URL"),
        ({"a": 3}, {}, "URL or a Weights"),
        ({1: "x"}, {}, "variant names"),
        (3, {}, "URL, a Weights or a mapping"),
        ("u", {"sha256": 5}, "sha256"),
        ("u", {"size": "9"}, "size"),
        ("u", {"size": True}, "size"),
        (Weights("u"), {"sha256": SHA}, "inside Weights"),
        (Weights(3), {}, "URL"),  # type: ignore[arg-type]
        ({"a": "x"}, {"default": 3}, "default"),
    ]
    for weights, options, message in bad:
        with pytest.raises(UsageError, match=message):
            declared_weights(weights, **options)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=message):  # the decorator keeps raising TypeError
            hubcore.pretrained(weights, **options)  # type: ignore[arg-type]
