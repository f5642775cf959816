"""Tests of the pytest plugin, run with pytest's own pytester (tests/pytest_plugin.rs runs them
from the source tree, tests/packaging.rs against the installed wheel)."""

from __future__ import annotations

from typing import List

import pytest

pytest_plugins = ["pytester"]


def _entry_point_installed() -> bool:
    try:
        from importlib.metadata import entry_points
    except ImportError:  # 3.7
        return False
    eps = entry_points()
    group = eps.select(group="pytest11") if hasattr(eps, "select") else eps.get("pytest11", [])
    return any(ep.value == "crashcatch.pytest_plugin" for ep in group)


@pytest.fixture
def plugin_args() -> List[str]:
    """`-p crashcatch.pytest_plugin` when the plugin is not installed (the source tree), nothing
    when the wheel's pytest11 entry point registers it."""
    return [] if _entry_point_installed() else ["-p", "crashcatch.pytest_plugin"]
