"""Static discovery: list/help read hubconf.py with ast and never execute repository code."""

from __future__ import annotations

from pathlib import Path

import pytest

import hubcore
from hubcore.errors import (
    EntrypointNotFoundError,
    HubconfNotFoundError,
    HubconfSyntaxError,
    RepoNotFoundError,
)

# Every module of this repository writes a marker and raises if it is ever imported.
TRAP = """
import pathlib
pathlib.Path({marker!r}).write_text("executed")
raise RuntimeError("repository code must not run during discovery")
"""


@pytest.fixture
def trapped_repo(make_hub_repo, tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "executed.txt"
    trap = TRAP.format(marker=str(marker))
    repo = make_hub_repo(
        {
            "hubconf.py": trap
            + """
import not_installed_anywhere
from models.resnet import resnet18
from models.zoo import *
from .local_mod import local_entry as renamed
from external_pkg import external_thing
from models import resnet
import os
from hubcore import pretrained, Weights

dependencies = ["not_installed_anywhere", "another-missing-dist>=1.0"]

alias = resnet18
CONSTANT = 3
configured = make_model("x")

@pretrained(
    {"imagenet": Weights("https://example.invalid/r.pth", sha256="ab" * 32, size=1024),
     "coco": "https://example.invalid/c.pth"},
    default="coco",
)
def detector(num_classes: int = 80, *, pretrained_backbone=True):
    '''Detect things.

    More text.
    '''

class Tokenizer:
    '''Splits text.'''
    def __init__(self, vocab, lower=True):
        pass

def _helper():
    '''not an entrypoint'''
""",
            "models/__init__.py": trap,
            "models/resnet.py": trap
            + """
from hubcore import pretrained

@pretrained(
    "weights/r18.pth",
    sha256="CDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCD",
)
def resnet18(pretrained=False, **kwargs):
    '''ResNet-18 from the repo.'''
""",
            "models/zoo.py": trap
            + """
__all__ = ["vgg", "deep_alias"]
from .deep import deep as deep_alias

def vgg(depth=11):
    '''VGG.'''

def not_exported():
    pass
""",
            "models/deep.py": trap + "\ndef deep():\n    '''Deep definition.'''\n",
            "local_mod.py": trap + "\ndef local_entry(x):\n    '''Relative import.'''\n",
        }
    )
    return repo, marker


def test_list_follows_reexports_without_executing(trapped_repo) -> None:
    repo, marker = trapped_repo
    names = hubcore.list(str(repo))
    assert names == sorted(
        [
            "Tokenizer",
            "alias",
            "configured",
            "deep_alias",
            "detector",
            "external_thing",
            "renamed",
            "resnet18",
            "vgg",
        ]
    )
    assert not marker.exists()


def test_help_reads_the_real_definition(trapped_repo) -> None:
    repo, marker = trapped_repo
    assert hubcore.help(str(repo), "resnet18") == "ResNet-18 from the repo."
    assert hubcore.help(str(repo), "alias") == "ResNet-18 from the repo."
    assert hubcore.help(str(repo), "deep_alias") == "Deep definition."
    assert hubcore.help(str(repo), "renamed") == "Relative import."
    assert hubcore.help(str(repo), "detector").startswith("Detect things.")
    assert hubcore.help(str(repo), "Tokenizer") == "Splits text."
    assert not marker.exists()


def test_discover_details(trapped_repo) -> None:
    repo, _ = trapped_repo
    info = hubcore.discover(str(repo))
    assert info.dependencies == ("not_installed_anywhere", "another-missing-dist>=1.0")
    r18 = info.entrypoints["resnet18"]
    assert r18.defined_in == "models/resnet.py:11"
    assert r18.signature == "(pretrained=False, **kwargs)"
    assert r18.weights is not None
    assert r18.weights.variants["default"].url == "weights/r18.pth"
    assert r18.weights.variants["default"].sha256 == "cd" * 32
    det = info.entrypoints["detector"].weights
    assert det is not None
    assert det.default == "coco"
    assert det.variants["imagenet"].size == 1024
    assert info.entrypoints["Tokenizer"].signature == "(vocab, lower=True)"
    assert info.entrypoints["Tokenizer"].kind == "class"


def test_unresolvable_names_say_why(trapped_repo) -> None:
    repo, _ = trapped_repo
    info = hubcore.discover(str(repo))
    ext = info.entrypoints["external_thing"]
    assert not ext.resolved
    assert "external_pkg" in (ext.note or "")
    assert "make_model" in (info.entrypoints["configured"].note or "")
    assert "cannot be read statically" in hubcore.help(str(repo), "external_thing")


def test_helpers_modules_and_data_are_not_entrypoints(trapped_repo) -> None:
    repo, _ = trapped_repo
    names = hubcore.list(str(repo))
    for hidden in ("_helper", "os", "resnet", "CONSTANT", "dependencies", "pretrained", "Weights"):
        assert hidden not in names
    with pytest.raises(EntrypointNotFoundError):
        hubcore.help(str(repo), "_helper")


def test_external_star_import_is_reported(make_hub_repo) -> None:
    repo = make_hub_repo({"hubconf.py": "from torchvision.models import *\ndef a():\n    pass\n"})
    info = hubcore.discover(str(repo))
    assert list(info.entrypoints) == ["a"]
    assert not info.complete
    assert "torchvision.models" in info.warnings[0]


def test_sys_path_insert_is_followed(make_hub_repo) -> None:
    repo = make_hub_repo(
        {
            "hubconf.py": """
                import os, sys
                sys.path.insert(0, os.path.join(os.path.dirname(__file__), "src"))
                from nets import net
            """,
            "src/nets.py": "def net():\n    '''From src.'''\n",
        }
    )
    assert hubcore.help(str(repo), "net") == "From src."


def test_unknown_entry_suggests_close_names(trapped_repo) -> None:
    repo, _ = trapped_repo
    with pytest.raises(EntrypointNotFoundError) as info:
        hubcore.help(str(repo), "resnet19")
    assert info.value.suggestions[0] == "resnet18"
    assert "resnet18" in str(info.value)
    assert isinstance(info.value, LookupError)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(RepoNotFoundError, match="does not exist"):
        hubcore.list(str(tmp_path / "nope"))


def test_no_hubconf(make_hub_repo) -> None:
    repo = make_hub_repo({"model.py": "x = 1\n"})
    with pytest.raises(HubconfNotFoundError, match=r"no hubconf\.py"):
        hubcore.list(str(repo))


def test_syntax_error_names_file_and_line(make_hub_repo) -> None:
    repo = make_hub_repo({"hubconf.py": "def ok():\n    pass\n\ndef broken(:\n    pass\n"})
    with pytest.raises(HubconfSyntaxError) as info:
        hubcore.list(str(repo))
    assert "hubconf.py line 4" in str(info.value)
    assert isinstance(info.value, SyntaxError)


def test_syntax_error_in_reexported_module(make_hub_repo) -> None:
    repo = make_hub_repo({"hubconf.py": "from m import f\n", "m.py": "def f(:\n"})
    with pytest.raises(HubconfSyntaxError, match=r"m\.py line 1"):
        hubcore.list(str(repo))


def test_import_cycle_terminates(make_hub_repo) -> None:
    repo = make_hub_repo(
        {
            "hubconf.py": "from a import *\n",
            "a.py": "from b import *\ndef fa():\n    pass\n",
            "b.py": "from a import *\ndef fb():\n    pass\n",
        }
    )
    assert hubcore.list(str(repo)) == ["fa", "fb"]


def test_decorator_arguments_may_name_module_constants(make_hub_repo) -> None:
    repo = make_hub_repo(
        {
            "hubconf.py": """
            from hubcore import pretrained

            URL = "https://example.org/net.pth"
            VARIANTS = {"a": "https://example.org/a.pth", "b": "https://example.org/b.pth"}
            SHA = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

            @pretrained(URL, sha256=SHA)
            def net(**kwargs):
                return None

            @pretrained(VARIANTS, default="b")
            def multi(**kwargs):
                return None

            URL2 = "https://example.org/first.pth"
            URL2 = compute()

            @pretrained(URL2)
            def changed(**kwargs):
                return None
            """
        }
    )
    entries = hubcore.discover(str(repo)).entrypoints
    single = entries["net"].weights.variants["default"]
    assert (single.url, single.sha256) == ("https://example.org/net.pth", "0123456789abcdef" * 4)
    assert sorted(entries["multi"].weights.variants) == ["a", "b"]
    assert entries["multi"].weights.default == "b"
    assert not entries["changed"].weights.known  # rebound to something computed


def test_submodules_of_installed_packages_are_not_entrypoints(make_hub_repo) -> None:
    repo = make_hub_repo(
        {
            "hubconf.py": """
            from email import message, message_from_string
            from importlib import metadata
            from xml.etree import ElementTree
            """
        }
    )
    # Modules are not callable, so torch.hub.list would not list them either; a function
    # imported from an installed package is listed (it may be an entrypoint), unresolved.
    assert hubcore.list(str(repo)) == ["message_from_string"]


def test_constants_computed_at_import_are_not_entrypoints(make_hub_repo) -> None:
    repo = make_hub_repo(
        {
            "hubconf.py": """
            import os
            import pathlib

            HERE = os.path.dirname(__file__)
            here = os.path.abspath(HERE)
            root = pathlib.Path(__file__).resolve().parent
            cache = os.environ.get("CACHE", "x")
            DEVICE = pick_device()
            model = build_model()
            """
        }
    )
    # torch.hub.list lists callables only; of these, only `model` might be one.
    assert hubcore.list(str(repo)) == ["model"]


def weights_urls(repo: Path) -> dict[str, list[str] | None]:
    """Each entrypoint's declared weight URLs, ``None`` when it declares none."""
    entries = hubcore.discover(str(repo)).entrypoints
    return {
        name: None if e.weights is None else [w.url for w in e.weights.variants.values()]
        for name, e in entries.items()
    }


def test_aliases_of_hubcores_decorator_are_recognised(make_hub_repo) -> None:
    repo = make_hub_repo(
        {
            "hubconf.py": """
            import hubcore as hc
            import hubcore.repo.pretrained
            import hubcore.repo.pretrained as module_attr
            from hubcore import pretrained as hp, Weights as W
            from hubcore.repo.pretrained import pretrained as P, Weights as W2
            from hubcore.repo.weights import Weights as W3
            from .common import deco
            from common import *

            @hp("https://example.org/a.pth")
            def a(**kwargs):
                pass

            @hc.pretrained("https://example.org/b.pth")
            def b(**kwargs):
                pass

            @hubcore.pretrained("https://example.org/c.pth")
            def c(**kwargs):
                pass

            @module_attr.pretrained("https://example.org/d.pth")
            def d(**kwargs):
                pass

            @P({"x": W("https://example.org/x.pth"), "y": W2(url="https://example.org/y.pth"),
                "z": hc.Weights("https://example.org/z.pth")})
            def e(**kwargs):
                pass

            @deco(W3("https://example.org/f.pth", "ab" * 32))
            def f(**kwargs):
                pass

            @star_deco("https://example.org/g.pth")
            def g(**kwargs):
                pass
            """,
            "common.py": """
            from hubcore import pretrained as deco
            from hubcore import pretrained as star_deco
            """,
        }
    )
    urls = weights_urls(repo)
    assert urls == {
        "a": ["https://example.org/a.pth"],
        "b": ["https://example.org/b.pth"],
        "c": ["https://example.org/c.pth"],
        "d": ["https://example.org/d.pth"],
        "e": [
            "https://example.org/x.pth",
            "https://example.org/y.pth",
            "https://example.org/z.pth",
        ],
        "f": ["https://example.org/f.pth"],
        "g": ["https://example.org/g.pth"],
    }


def test_other_decorators_named_pretrained_are_not_hubcores(make_hub_repo) -> None:
    repo = make_hub_repo(
        {
            "hubconf.py": """
            import othermodels
            from timm.models import pretrained
            from hubcore import pretrained as real, Weights
            from mylib import Weights as OtherWeights
            from local import e

            @pretrained("https://example.org/a.pth")
            def a(**kwargs):
                pass

            @othermodels.pretrained("https://example.org/b.pth")
            def b(**kwargs):
                pass

            @real({"x": OtherWeights("https://example.org/x.pth")})
            def c(**kwargs):
                pass

            @real(url="https://example.org/d.pth")  # hubcore's takes `weights`, not `url`
            def d(**kwargs):
                pass
            """,
            "local.py": """
            def pretrained(url):
                return lambda f: f

            @pretrained("https://example.org/e.pth")
            def e(**kwargs):
                pass
            """,
        }
    )
    info = hubcore.discover(str(repo)).entrypoints
    assert info["a"].weights is None
    assert info["b"].weights is None
    assert info["c"].weights is not None
    assert not info["c"].weights.known
    assert info["d"].weights is not None
    assert not info["d"].weights.known
    assert info["e"].weights is None


def test_megengine_hub_decorator_in_each_spelling(make_hub_repo) -> None:
    repo = make_hub_repo(
        {
            "hubconf.py": """
            import megengine
            import megengine.hub as mh
            from megengine import hub
            from megengine.hub import pretrained
            from hubcore.compat import megengine_hub as compat

            @hub.pretrained("https://example.org/a.pkl")
            def a(**kwargs):
                pass

            @mh.pretrained(url="https://example.org/b.pkl")
            def b(**kwargs):
                pass

            @megengine.hub.pretrained("https://example.org/c.pkl")
            def c(**kwargs):
                pass

            @pretrained("https://example.org/d.pkl")
            def d(**kwargs):
                pass

            @compat.pretrained("https://example.org/e.pkl")
            def e(**kwargs):
                pass
            """
        }
    )
    urls = weights_urls(repo)
    assert {k: v for k, v in urls.items() if k in "abcde"} == {
        n: [f"https://example.org/{n}.pkl"] for n in "abcde"
    }


# -- names static reading cannot see ----------------------------------------------------------

DYNAMIC = {
    "update": ("import zoo\nglobals().update(zoo.registry)\n", 2, "globals().update"),
    "item": (
        "import zoo\nfor _k in zoo.names:\n    globals()[_k] = zoo.make(_k)\n",
        3,
        "globals()[",
    ),
    "setdefault": ("globals().setdefault('net', None)\n", 1, "globals().setdefault"),
    "vars": ("import zoo\nvars().update(zoo.registry)\n", 2, "vars().update"),
    "setattr": (
        "import sys, zoo\nfor _k in zoo.names:\n"
        "    setattr(sys.modules[__name__], _k, zoo.make(_k))\n",
        3,
        "setattr(sys.modules[__name__]",
    ),
    "setattr_alias": (
        "import sys\nthis = sys.modules[__name__]\nsetattr(this, 'net', print)\n",
        3,
        "setattr(this",
    ),
    "module_dict": (
        "import sys\nsys.modules[__name__].__dict__.update({})\n",
        2,
        "sys.modules[__name__].__dict__.update",
    ),
    "exec": ("exec(open('models.txt').read())\n", 1, "exec("),
    "getattr": ("def __getattr__(name):\n    return lambda: name\n", 1, "__getattr__"),
    "in_function": (
        "def _register(names):\n    for n in names:\n        globals()[n] = print\n"
        "_register(['a'])\n",
        3,
        "globals()[",
    ),
    "star": ("from torchvision.models import *\n", 1, "torchvision.models"),
    # in a block's header: the expression runs although no statement of the body does
    "if_test": ("import zoo\nif globals().update(zoo.registry):\n    pass\n", 2, "globals()"),
    "elif_test": (
        "import zoo\nif zoo.old:\n    pass\nelif vars().update(zoo.registry):\n    pass\n",
        4,
        "vars().update",
    ),
    "with_item": (
        "import contextlib, zoo\nwith contextlib.nullcontext(globals().update(zoo.r)):\n    pass\n",
        2,
        "globals().update",
    ),
    "except_type": (
        "import sys\ntry:\n    pass\n"
        "except (setattr(sys.modules[__name__], 'net', print) or Exception):\n    pass\n",
        4,
        "setattr(sys.modules[__name__]",
    ),
}


#: Functions and classes defined where discovery does not follow: (source, line, name, how).
HIDDEN_DEFS = {
    "for_body": ("for _n in (1,):\n    def net():\n        x = 1\n", 2, "net", "`for` loop"),
    "while_body": ("while True:\n    class net:\n        pass\n    break\n", 2, "net", "`while`"),
    "match": ("match 1:\n    case _:\n        def net():\n            pass\n", 3, "net", "`match`"),
}


@pytest.mark.parametrize("case", sorted(HIDDEN_DEFS))
def test_functions_defined_where_reading_does_not_follow_make_the_listing_incomplete(
    case: str, make_hub_repo
) -> None:
    """torch.hub lists such a function: the listing says where, and load imports for it."""
    source, line, name, how = HIDDEN_DEFS[case]
    repo = make_hub_repo({"hubconf.py": "dependencies = []\n" + source})
    info = hubcore.discover(str(repo))
    assert not info.complete
    (gap,) = info.gaps
    assert gap.where == f"hubconf.py:{line + 1}"
    assert f"defines `{name}`" in gap.reason
    assert how in gap.reason


#: Other names bound where discovery reads no value: (source, line, name, how).
UNREAD = {
    "for_target": ("import zoo\nfor net in zoo.nets:\n    pass\n", 2, "net", "`for` loop"),
    "for_body_assign": ("for _k in (1,):\n    net = print\n", 2, "net", "`for` loop"),
    "with_target": (
        "import contextlib\nwith (\n    contextlib.nullcontext(print) as net,\n):\n    pass\n",
        3,
        "net",
        "`with` target",
    ),
    "walrus": ("if (net := print):\n    pass\n", 1, "net", "`:=`"),
    "walrus_in_comprehension": ("_all = [net := f for f in (print,)]\n", 1, "net", "`:=`"),
}


@pytest.mark.parametrize("case", sorted(UNREAD))
def test_names_bound_where_no_value_is_read_are_accounted_for(case: str, make_hub_repo) -> None:
    """A loop variable or a `with` target is most often data: the listing stays complete, the
    name is listed as skipped with where and why, and load imports the hubconf for it."""
    source, line, name, how = UNREAD[case]
    repo = make_hub_repo({"hubconf.py": "dependencies = []\n" + source})
    info = hubcore.discover(str(repo))
    assert info.complete, info.gaps
    assert name in info.unread
    assert f"hubconf.py:{line + 1}" in info.skipped[name]
    assert how in info.skipped[name]


def test_names_of_functions_comprehensions_and_main_blocks_in_a_loop_are_not_listed(
    make_hub_repo,
) -> None:
    source = (
        "dependencies = []\n"
        "for _i in range(2):\n"
        "    def _helper(local_variable=1):\n        inner = 2\n"
        "    _squares = [k * k for k in range(3)]\n"
        "    _f = lambda q: q\n"
        "if __name__ == '__main__':\n    for main_only in range(1):\n        pass\n"
        'def net():\n    """A net."""\n'
    )
    info = hubcore.discover(str(make_hub_repo({"hubconf.py": source})))
    assert info.complete, info.gaps
    assert list(info.entrypoints) == ["net"]
    assert not info.unread
    assert "main_only" not in info.unread


@pytest.mark.parametrize(
    "source",
    [
        "for _n in (1,):\n    def net():\n        return 'net'\n",
        "import contextlib\nwith contextlib.nullcontext(lambda: 'net') as net:\n    pass\n",
        "for net in (lambda: 'net',):\n    pass\n",
    ],
)
def test_a_name_bound_where_no_value_is_read_loads_by_importing(
    source, make_hub_repo, hub_home
) -> None:
    from hubcore.compat import torch_hub

    repo = str(make_hub_repo({"hubconf.py": "dependencies = []\n" + source}))
    assert hubcore.list(repo) == []
    assert hubcore.load(repo, "net") == "net"
    assert hubcore.list(repo, imported=True) == ["net"]
    assert torch_hub.list(repo, source="local") == ["net"]  # as torch.hub lists it


@pytest.mark.parametrize("case", sorted(DYNAMIC))
def test_dynamic_exports_make_the_listing_incomplete(case: str, make_hub_repo) -> None:
    source, line, shown = DYNAMIC[case]
    repo = make_hub_repo({"hubconf.py": "dependencies = []\n" + source})
    info = hubcore.discover(str(repo))
    assert not info.complete
    (gap,) = info.gaps
    assert gap.where == f"hubconf.py:{line + 1}"
    assert shown in gap.reason
    assert str(gap) in info.warnings


def test_reading_globals_is_not_a_dynamic_export(make_hub_repo) -> None:
    repo = make_hub_repo(
        {
            "hubconf.py": """
            import sys
            dependencies = []
            __all__ = [k for k in globals() if not k.startswith("_")]
            names = sorted(vars())
            me = sys.modules[__name__]
            print(getattr(me, "x", None), globals().get("net"))

            def net():
                exec("y = 1")  # runs in the function's own namespace
                return vars()
            """
        }
    )
    info = hubcore.discover(str(repo))
    assert info.complete, info.gaps
    assert list(info.entrypoints) == ["net"]


def test_dynamic_exports_of_a_star_imported_module_are_reported(make_hub_repo) -> None:
    repo = make_hub_repo(
        {
            "hubconf.py": "from zoo import *\n",
            "zoo/__init__.py": "from .registry import table\ndef base():\n    pass\n"
            "globals().update(table)\n",
            "zoo/registry.py": "table = {}\n",
        }
    )
    info = hubcore.discover(str(repo))
    assert list(info.entrypoints) == ["base"]
    assert [g.where for g in info.gaps] == ["zoo/__init__.py:4"]


def test_names_in_a_literal_all_bound_at_run_time_are_listed(make_hub_repo) -> None:
    repo = make_hub_repo(
        {
            "hubconf.py": "from zoo import *\n",
            "zoo.py": "__all__ = ['a', 'b']\nglobals().update(make())\ndef a():\n    pass\n",
        }
    )
    info = hubcore.discover(str(repo))
    assert list(info.entrypoints) == ["a", "b"]
    assert not info.entrypoints["b"].resolved
    assert info.complete  # __all__ says exactly what the star import brings


# -- names resolved as Python resolves them; every public name accounted for -------------------


def test_a_package_attribute_shadows_the_submodule_of_the_same_name(make_hub_repo) -> None:
    repo = make_hub_repo(
        {
            "hubconf.py": "from pkg.configs import (net_a, net_b, helpers)\n",
            "pkg/__init__.py": "",
            "pkg/configs/__init__.py": """
            from .net_a import net_a
            from .net_b import net_b
            from . import helpers
            __all__ = [k for k in globals().keys() if not k.startswith("_")]
            """,
            "pkg/configs/net_a.py": "def net_a():\n    '''A.'''\n",
            "pkg/configs/net_b.py": "def net_b():\n    '''B.'''\n",
            "pkg/configs/helpers.py": "def helpers():\n    pass\n",
        }
    )
    info = hubcore.discover(str(repo))
    assert list(info.entrypoints) == ["net_a", "net_b"]
    assert info.entrypoints["net_a"].doc == "A."
    assert info.skipped == {"helpers": "a module"}
    assert info.complete


def test_every_public_name_is_an_entrypoint_or_skipped_with_its_reason(make_hub_repo) -> None:
    repo = make_hub_repo(
        {
            "hubconf.py": """
            import os
            from xml.etree import ElementTree as ET
            from hubcore import pretrained
            from models import blocks
            dependencies = ["torch"]
            HERE = os.path.dirname(__file__)
            SIZES = [1, 2]
            same = print
            from models import net
            """,
            "models/__init__.py": "from .net import net\n",
            "models/net.py": "def net():\n    pass\n",
            "models/blocks.py": "",
        }
    )
    info = hubcore.discover(str(repo))
    assert set(info.entrypoints) == {"net", "same"}
    assert not info.entrypoints["same"].resolved  # a builtin: callable, but not followed
    assert set(info.skipped) == {
        "os",
        "ET",
        "pretrained",
        "blocks",
        "dependencies",
        "HERE",
        "SIZES",
    }
    assert info.skipped["os"] == "a module"
    assert info.skipped["blocks"] == "a module"
    assert "hubcore" in info.skipped["pretrained"]
    assert "data" in info.skipped["SIZES"]
    assert info.complete


def test_names_bound_only_under_main_are_not_entrypoints(make_hub_repo) -> None:
    repo = make_hub_repo(
        {
            "hubconf.py": """
            from utils import print_args
            dependencies = []

            def yolo(pretrained=False):
                '''Detects.'''

            if __name__ == "__main__":
                import argparse
                from pathlib import Path
                from PIL import Image
                from utils import print_args, build
                parser = argparse.ArgumentParser()
                opt = parser.parse_args()
                model = yolo()
                results = model(Image.open(Path("x.jpg")))
            else:
                def only_imported():
                    pass
            """,
            "utils.py": "def print_args():\n    pass\ndef build():\n    pass\n",
        }
    )
    info = hubcore.discover(str(repo))
    assert list(info.entrypoints) == ["only_imported", "print_args", "yolo"]
    for name in ("parser", "opt", "model", "results", "Path", "Image", "build"):
        assert "__main__" in info.skipped[name]
    assert info.complete


def test_names_bound_only_for_type_checkers_are_not_entrypoints(make_hub_repo) -> None:
    repo = make_hub_repo(
        {
            "hubconf.py": """
            import typing
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from models import Net
            if typing.TYPE_CHECKING:
                from models import Other
            def net():
                pass
            """,
            "models.py": "class Net:\n    pass\nclass Other:\n    pass\n",
        }
    )
    info = hubcore.discover(str(repo))
    assert list(info.entrypoints) == ["net"]
    assert "TYPE_CHECKING" in info.skipped["Net"]


def test_all_built_from_literal_lists_is_evaluated(make_hub_repo) -> None:
    repo = make_hub_repo(
        {
            "hubconf.py": "from zoo import *\n",
            "zoo.py": """
            pretrained = ["a", "b"]
            converted = ["c"]
            __all__ = pretrained + converted
            __all__ += ("d",)
            __all__.extend(["e"])
            __all__.append("f")
            def a(): pass
            def b(): pass
            def c(): pass
            def d(): pass
            def e(): pass
            def f(): pass
            class Block: pass
            class Head: pass
            """,
        }
    )
    info = hubcore.discover(str(repo))
    assert list(info.entrypoints) == ["a", "b", "c", "d", "e", "f"]
    assert info.complete


def test_a_computed_all_makes_a_star_import_incomplete(make_hub_repo) -> None:
    repo = make_hub_repo(
        {
            "hubconf.py": "from zoo import *\n",
            "zoo.py": "def a(): pass\n__all__ = [n for n in dir() if n in allowed()]\n",
        }
    )
    info = hubcore.discover(str(repo))
    assert list(info.entrypoints) == ["a"]
    (gap,) = info.gaps
    assert gap.where == "zoo.py:2"
    assert "__all__" in gap.reason


def test_an_except_handler_does_not_override_what_the_try_body_binds(make_hub_repo) -> None:
    repo = make_hub_repo(
        {
            "hubconf.py": """
            try:
                import yaml
                from models import net
            except ImportError:
                from not_installed_vendor import yaml
                net = None
                HAS_YAML = False
            """,
            "models.py": "def net():\n    pass\n",
        }
    )
    info = hubcore.discover(str(repo))
    assert list(info.entrypoints) == ["net"]
    assert info.skipped["yaml"] == "a module"
    assert "HAS_YAML" in info.skipped
