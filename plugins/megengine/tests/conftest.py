"""hubcore's fixtures (``hub_home``, ``make_hub_repo``, ``file_server``) are opt-in."""

pytest_plugins = ["hubcore.testing.pytest_plugin"]
