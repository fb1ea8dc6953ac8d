"""Testing helpers shipped for plugin authors.

* :mod:`hubcore.testing.pytest_plugin` provides the fixtures ``hub_home``, ``make_hub_repo``
  and ``file_server``. pytest loads it only for projects that ask, in their ``conftest.py``:
  ``pytest_plugins = ["hubcore.testing.pytest_plugin"]``.
* :class:`~hubcore.testing.files.FileServer` is the loopback file server behind ``file_server``.
* :class:`BackendConformance` is a test class a backend plugin subclasses in its own tests to
  prove it honours the backend contract end to end.
"""

from hubcore.testing.backend import BackendConformance
from hubcore.testing.files import FileServer, write_repo

__all__ = ["BackendConformance", "FileServer", "write_repo"]
