"""Drop-in replacements for the hub APIs of PyTorch and MegEngine, running on hubcore.

* :mod:`hubcore.compat.torch_hub` -- ``torch.hub`` (``from hubcore.compat import torch_hub``),
  from the hubcore-torch plugin (:mod:`hubcore_torch.hub`);
* :mod:`hubcore.compat.megengine_hub` -- ``megengine.hub``, from the hubcore-megengine plugin
  (:mod:`hubcore_megengine.hub`).

Each API lives with its framework's plugin; the modules here re-export it under one stable
path and, without the plugin, fail with an :class:`~hubcore.errors.DependencyError` (also an
``ImportError``) naming what to install. Neither imports its framework: the plugins read
weight files with their backends and redirect a repository's own calls to those APIs through
hubcore (see :mod:`hubcore.repo.redirects`). What the APIs share, framework-free, is
:mod:`hubcore.compat.common`. docs/migration.md lists every deliberate difference.
"""

from __future__ import annotations

import importlib.util

from hubcore.errors import DependencyError


def require_plugin(module: str, distribution: str, peer: str) -> None:
    """Raise :class:`~hubcore.errors.DependencyError` unless *module* (a plugin's peer API,
    ``hubcore_torch.hub``) can be imported, with the ``pip install`` that provides it.

    Only the plugin's absence is reported this way; an error raised while the installed
    plugin imports propagates unchanged.
    """
    if importlib.util.find_spec(module.partition(".")[0]) is not None:
        if importlib.util.find_spec(module) is not None:
            return
        advice = f"{distribution} is too old to provide {module}: pip install -U {distribution}"
    else:
        advice = f"{distribution} (pip install {distribution})"
    raise DependencyError(f"{peer}'s API on hubcore (hubcore.compat)", [advice])
