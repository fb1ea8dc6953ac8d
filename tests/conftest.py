"""Shared test setup. ``HUBCORE_TEST_REQUIRE`` (set by the Makefile per environment) lists
modules that must import, so a broken environment fails loudly instead of skipping."""

from __future__ import annotations

import importlib
import os

import pytest


def pytest_sessionstart(session: pytest.Session) -> None:
    for name in filter(None, os.environ.get("HUBCORE_TEST_REQUIRE", "").split(",")):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise pytest.UsageError(f"this environment must provide {name}: {exc}") from exc
