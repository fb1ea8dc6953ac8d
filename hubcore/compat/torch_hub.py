"""``torch.hub``'s API on hubcore: switch by changing one import.

::

    from hubcore.compat import torch_hub as hub     # was: import torch.hub as hub

The API lives in the hubcore-torch plugin (:mod:`hubcore_torch.hub`, documented there); this
module re-exports it, and without the plugin importing it raises
:class:`~hubcore.errors.DependencyError` (an ``ImportError``) saying
``pip install hubcore-torch``. Importing it does not import torch.
"""

from __future__ import annotations

from hubcore.compat import require_plugin

require_plugin("hubcore_torch.hub", "hubcore-torch", "torch.hub")

from hubcore_torch.hub import *  # type: ignore[import-not-found,import-untyped,unused-ignore]  # noqa: E402, F403
from hubcore_torch.hub import (  # type: ignore[import-not-found,import-untyped,unused-ignore]  # noqa: E402
    __all__ as __all__,
)
