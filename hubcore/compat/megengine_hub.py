"""``megengine.hub``'s API on hubcore: switch by changing one import.

::

    from hubcore.compat import megengine_hub as hub     # was: from megengine import hub

The API lives in the hubcore-megengine plugin (:mod:`hubcore_megengine.hub`, documented
there); this module re-exports it, and without the plugin importing it raises
:class:`~hubcore.errors.DependencyError` (an ``ImportError``) saying
``pip install hubcore-megengine``. Importing it does not import MegEngine.
"""

from __future__ import annotations

from hubcore.compat import require_plugin

require_plugin("hubcore_megengine.hub", "hubcore-megengine", "megengine.hub")

from hubcore_megengine.hub import *  # type: ignore[import-not-found,import-untyped,unused-ignore]  # noqa: E402, F403
from hubcore_megengine.hub import (  # type: ignore[import-not-found,import-untyped,unused-ignore]  # noqa: E402
    __all__ as __all__,
)
