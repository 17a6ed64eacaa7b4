"""Arrow's pool for a run: one that returns freed memory, unless the user chose one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

# a Runner made in a fresh process, then the pool Arrow allocates new buffers from
PROBE = """
import pyarrow as pa
from syncline.config import load_workspace
from syncline.engine.run import Runner
from syncline.store.store import MetadataStore
import sys
ws = load_workspace(sys.argv[1])
Runner(ws, MetadataStore(ws.metadata_url()))
print(pa.default_memory_pool().backend_name, pa.array(range(1000)).buffers()[1] is not None)
"""


def pool_after_runner(tmp_path: Path, env: dict[str, str]) -> str:
    (tmp_path / "syncline.yaml").write_text("version: 1\n")
    done = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path)], capture_output=True, text=True,
                          env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    name, allocated = done.stdout.split()
    assert allocated == "True"
    return name


def test_a_run_allocates_arrow_buffers_from_jemalloc(tmp_path: Path) -> None:
    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        pytest.skip("this build of Arrow has no jemalloc")
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    assert pool_after_runner(tmp_path, env) == "jemalloc"


def test_the_users_choice_of_pool_wins(tmp_path: Path) -> None:
    env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "system"}
    assert pool_after_runner(tmp_path, env) == "system"
