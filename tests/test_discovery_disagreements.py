"""Hubconf spellings where a naive top-to-bottom reading and the imported module disagree.

For each, static discovery must either read the weights the runtime applies, or report them
as declared but not literal (``known=False``, so ``hubcore lock`` refuses); never a URL the
entrypoint does not use (the lock would record a hash for a file never fetched and leave the
one fetched unchecked), and never "no weights" for an entrypoint that has some.
"""

from __future__ import annotations

import pytest

import hubcore
from hubcore.repo.pretrained import weights_of
from hubcore.repo.weights import default_variant
from hubcore.runner import import_hubconf

HEAD = "import os\nimport sys\nimport contextlib\nfrom hubcore import pretrained\n"
UNSET = "os.environ.get('HUBCORE_REVIEW_NEVER_SET')"
USE = "@pretrained(URL)\ndef m(): ...\n"
USE_ITEM = "@pretrained(URLS['m'])\ndef m(): ...\n"

# each hubconf's `m` carries w/a.pth at run time (or w/b.pth where noted in the name)
FORMS: dict[str, str] = {
    "if_rebinds_constant": f"URL = 'w/a.pth'\nif {UNSET}:\n    URL = 'w/b.pth'\n" + USE,
    "if_else_constant": f"if not {UNSET}:\n    URL = 'w/a.pth'\nelse:\n    URL = 'w/b.pth'\n" + USE,
    "if_else_entrypoint": (
        f"if not {UNSET}:\n    @pretrained('w/a.pth')\n    def m(): ...\n"
        "else:\n    @pretrained('w/b.pth')\n    def m(): ...\n"
    ),
    "if_else_entrypoint_without_weights": (
        f"if not {UNSET}:\n    @pretrained('w/a.pth')\n    def m(): ...\nelse:\n    def m(): ...\n"
    ),
    "if_shadows_the_decorator": (
        f"if {UNSET}:\n    def pretrained(url):\n        return lambda f: f\n"
        "@pretrained('w/a.pth')\ndef m(): ...\n"
    ),
    "if_rebinds_decorator": (
        f"D = pretrained('w/a.pth')\nif {UNSET}:\n    D = pretrained('w/b.pth')\n@D\ndef m(): ...\n"
    ),
    "for_rebinds_b": "URL = 'w/a.pth'\nfor URL in ['w/b.pth']:\n    pass\n" + USE,
    "for_body_rebinds_b": "URL = 'w/a.pth'\nfor _ in [1]:\n    URL = 'w/b.pth'\n" + USE,
    "while_rebinds_b": "URL = 'w/a.pth'\nwhile URL == 'w/a.pth':\n    URL = 'w/b.pth'\n" + USE,
    "match_rebinds_b": "URL = 'w/a.pth'\nmatch 1:\n    case 1:\n        URL = 'w/b.pth'\n" + USE,
    "with_as_rebinds_b": (
        "URL = 'w/a.pth'\nwith contextlib.nullcontext('w/b.pth') as URL:\n    pass\n" + USE
    ),
    "walrus_rebinds_b": "URL = 'w/a.pth'\n_ = (URL := 'w/b.pth')\n" + USE,
    "walrus_in_call_rebinds_b": "URL = 'w/a.pth'\nlen(URL := 'w/b.pth')\n" + USE,
    "global_in_function_rebinds_b": (
        "URL = 'w/a.pth'\ndef _set():\n    global URL\n    URL = 'w/b.pth'\n_set()\n" + USE
    ),
    "item_assigned_b": "URLS = {'m': 'w/a.pth'}\nURLS['m'] = 'w/b.pth'\n" + USE_ITEM,
    "item_updated_b": "URLS = {'m': 'w/a.pth'}\nURLS.update(m='w/b.pth')\n" + USE_ITEM,
    "item_or_assigned_b": "URLS = {'m': 'w/a.pth'}\nURLS |= {'m': 'w/b.pth'}\n" + USE_ITEM,
    "item_set_in_function_b": (
        "URLS = {'m': 'w/a.pth'}\ndef _f():\n    URLS['m'] = 'w/b.pth'\n_f()\n" + USE_ITEM
    ),
    "globals_write_b": "URL = 'w/a.pth'\nglobals()['URL'] = 'w/b.pth'\n" + USE,
    "module_setattr_b": (
        "URL = 'w/a.pth'\nsetattr(sys.modules[__name__], 'URL', 'w/b.pth')\n" + USE
    ),
    "exec_b": "URL = 'w/a.pth'\nexec(\"URL = 'w/b.pth'\")\n" + USE,
    "stacked": "@pretrained('w/a.pth')\n@pretrained('w/b.pth')\ndef m(): ...\n",
    "del_and_rebind": "URL = 'w/b.pth'\ndel URL\nURL = 'w/a.pth'\n" + USE,
    "type_checking": (
        "from typing import TYPE_CHECKING\nURL = 'w/a.pth'\nif TYPE_CHECKING:\n"
        "    URL = 'w/b.pth'\n" + USE
    ),
}


@pytest.mark.parametrize("form", list(FORMS))
def test_discovery_agrees_with_the_runtime_or_says_not_literal(
    hub_home, make_hub_repo, form: str
) -> None:
    repo = make_hub_repo({"hubconf.py": HEAD + FORMS[form]})
    info = hubcore.discover(str(repo)).entrypoints["m"].weights
    spec = weights_of(import_hubconf(hubcore.open_repo(str(repo))).m)
    assert spec is not None
    assert info is not None, "discovery found no weights where the runtime applies some"
    if info.known:
        assert dict(info.variants) == dict(spec.variants)
        assert info.default == default_variant(spec.variants, spec.default)


# Spellings that bind each name one way only: still read exactly (no false "not literal").
CLEAR: dict[str, str] = {
    "single_conditional_binding": f"if not {UNSET}:\n    URL = 'w/a.pth'\n" + USE,
    "unrelated_names_rebound": (
        "URL = 'w/a.pth'\nCACHE = {}\nCACHE['x'] = 1\nfor i in range(2):\n    pass\n" + USE
    ),
    "try_import": (
        "try:\n    import numpy\nexcept ImportError:\n    numpy = None\nURL = 'w/a.pth'\n" + USE
    ),
}


@pytest.mark.parametrize("form", list(CLEAR))
def test_names_bound_one_way_are_still_read(hub_home, make_hub_repo, form: str) -> None:
    repo = make_hub_repo({"hubconf.py": HEAD + CLEAR[form]})
    info = hubcore.discover(str(repo)).entrypoints["m"].weights
    spec = weights_of(import_hubconf(hubcore.open_repo(str(repo))).m)
    assert info is not None
    assert info.known
    assert spec is not None
    assert dict(info.variants) == dict(spec.variants)
