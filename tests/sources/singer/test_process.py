"""A tap's files stay private and never outlive a kill; a tap never outlives Syncline."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from syncline.sources.singer.process import TapFolder, sweep

from syncfixtures import dest_query, run_sync

FAKE = [sys.executable, str(Path(__file__).parents[1] / "fake_tap.py")]
SECRET = "hunter2-do-not-leak"


def write_ws(root: Path, tap_config: dict[str, Any]) -> None:
    doc = {
        "version": 1,
        "sources": {"tap": {"type": "singer", "command": FAKE,
                            "config": {"password": SECRET, **tap_config}}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"c": {"source": "tap", "destination": "wh", "destination_schema": "dst",
                              "max_attempts": 1, "streams": {"items": {"write": "append"}}}},
    }
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")


def tap_folders(root: Path) -> list[Path]:
    return sorted((root / ".syncline" / "tmp").glob("singer-*"))


def system_temp_leftovers() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("syncline-singer-*")}


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped is not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return fields[0] != "Z"


def wait_for(predicate: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def test_tap_files_live_in_the_private_state_folder_and_are_removed(tmp_path: Path) -> None:
    before = system_temp_leftovers()
    log = tmp_path / "argv.log"
    write_ws(tmp_path, {"records": 5, "log": str(log)})
    result = run_sync(tmp_path)
    assert result.status == "succeeded", result.error
    assert dest_query(tmp_path, "SELECT count(*) FROM dst.items") == [(5,)]
    used = [Path(i["argv"][i["argv"].index("--config") + 1]) for i in map(json.loads, log.open())]
    assert used and all(p.parent.parent == tmp_path / ".syncline" / "tmp" for p in used)
    assert tap_folders(tmp_path) == []  # removed when each tap ended
    assert (tmp_path / ".syncline" / "tmp").stat().st_mode & 0o777 == 0o700
    assert system_temp_leftovers() == before


def test_tap_files_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    with TapFolder(tmp_path / ".syncline" / "tmp") as folder:
        written = Path(folder.write("config.json", {"password": SECRET}))
        assert folder.path.stat().st_mode & 0o777 == 0o700
        assert written.stat().st_mode & 0o777 == 0o600
    assert not folder.path.exists()


def test_a_live_owners_folder_is_kept_and_a_dead_ones_removed(tmp_path: Path) -> None:
    parent = tmp_path / "tmp"
    live = TapFolder(parent)
    # Left by a process that died between creating its folder and locking it:
    orphan = parent / "singer-999999999-0abc"
    orphan.mkdir()
    (orphan / "config.json").write_text(SECRET)
    assert sweep(parent) == [orphan]
    assert live.path.exists() and not orphan.exists()
    live.close()


def test_sigkill_takes_the_tap_with_it_and_the_next_start_removes_its_files(tmp_path: Path) -> None:
    log = tmp_path / "argv.log"
    write_ws(tmp_path, {"records": 100, "hang_after": 3, "log": str(log)})
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCLINE_")}
    proc = subprocess.Popen([sys.executable, "-m", "syncline", "sync", "c", "-w", str(tmp_path)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def hanging_pid() -> int | None:  # the tap has written all it will and sleeps
            lines = log.read_text().splitlines() if log.exists() else []
            return next((json.loads(ln)["hanging"] for ln in lines if '"hanging"' in ln), None)
        assert wait_for(lambda: hanging_pid() is not None, 60), "the tap never reached its hang"
        tap = hanging_pid()
        assert tap is not None and running(tap)
        [left] = tap_folders(tmp_path)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert wait_for(lambda: not running(tap), 2.0), "the tap outlived Syncline"
    assert SECRET in (left / "config.json").read_text()  # what a kill leaves behind...

    write_ws(tmp_path, {"records": 5})
    assert run_sync(tmp_path).status == "succeeded"
    assert not left.exists() and tap_folders(tmp_path) == []  # ...is gone at the next start
