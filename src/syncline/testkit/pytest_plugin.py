"""A pytest plugin for connector authors: the connector test kit as one assertion or fixture.

Use ``assert_connector_ok(workspace_dir, source_name)`` in a test, or the fixture::

    def test_my_connector(connector_checks):
        connector_checks("path/to/workspace", "my_source")

Load it with ``-p syncline.testkit.pytest_plugin`` or ``pytest_plugins = [...]`` in a
root ``conftest.py`` (installed Syncline registers it as the ``syncline`` plugin).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from syncline.config import load_workspace
from syncline.errors import ConfigurationError
from syncline.testkit.checks import CheckResult, format_results, run_checks


def assert_connector_ok(workspace_dir: str | Path, source_name: str, *, stream: str | None = None,
                        batch_size: int = 1000) -> list[CheckResult]:
    """Run every check on the source; fail the test with each failed check's detail."""
    try:
        ws = load_workspace(workspace_dir)
    except ConfigurationError as exc:
        pytest.fail(f"the workspace in {workspace_dir} does not load: {exc}", pytrace=False)
    results = run_checks(ws, source_name, stream=stream, batch_size=batch_size)
    failed = [r for r in results if not r.passed]
    if failed:
        pytest.fail(f"{len(failed)} connector check(s) failed for source '{source_name}':\n"
                    + format_results(failed).rsplit("\n", 1)[0], pytrace=False)
    return results


@pytest.fixture
def connector_checks() -> Callable[..., list[CheckResult]]:
    """``connector_checks(workspace_dir, source_name, stream=None, batch_size=1000)``."""
    return assert_connector_ok
