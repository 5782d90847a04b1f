"""The simulation tier: the real planner over simulated weeks and months. Each test takes
seconds, so they live here, out of the unit tier, and carry the `slow` marker (CI runs
them; `pytest -m "not slow"` skips them for a quick local loop)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.slow)
