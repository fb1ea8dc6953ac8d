"""Drop-in replacements for the hub APIs of PyTorch and MegEngine, running on hubcore.

* :mod:`hubcore.compat.torch_hub` -- ``torch.hub`` (``from hubcore.compat import torch_hub``)
* :mod:`hubcore.compat.megengine_hub` -- ``megengine.hub``

Neither imports its framework; the framework plugins (hubcore-torch, hubcore-megengine) read
weight files and redirect a repository's own calls to those APIs through hubcore (see
:mod:`hubcore.redirects`). docs/migration.md lists every deliberate difference.
"""
