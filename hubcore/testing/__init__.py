"""Testing helpers shipped for plugin authors.

* :mod:`hubcore.testing.pytest_plugin` (auto-loaded by pytest through the ``pytest11`` entry
  point) provides the fixtures ``hub_home`` and ``make_hub_repo``.
* :class:`BackendConformance` is a test class a backend plugin subclasses in its own tests to
  prove it honours the backend contract end to end.
"""

from hubcore.testing.backend import BackendConformance
from hubcore.testing.pytest_plugin import write_repo

__all__ = ["BackendConformance", "write_repo"]
