"""Model packages: configuration, weights and (when needed) code saved together.

:func:`save_pretrained` writes a package folder, :func:`push` uploads it to any fsspec
destination, :func:`from_pretrained` (and :func:`hubcore.load` without an entry name) loads it
back from any source. :func:`model_config` makes configuration classes and
:func:`register_model_type` registers how a model type is built. See the publishing guide.
"""

from hubcore.packages.config import model_config
from hubcore.packages.load import from_pretrained
from hubcore.packages.push import push
from hubcore.packages.save import save_pretrained
from hubcore.packages.types import register_model_type

__all__ = ["from_pretrained", "model_config", "push", "register_model_type", "save_pretrained"]
