"""A connection's region: its own, else its source's and destination's, else default; the two
mistakes that would move data across regions are configuration errors naming both sides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from syncline.config import load_workspace
from syncline.errors import ConfigurationError


def write(root: Path, source: dict[str, Any], destination: dict[str, Any],
          connection: dict[str, Any]) -> Path:
    (root / "syncline.yaml").write_text(yaml.safe_dump({
        "version": 1, "sources": {"shop": {"type": "sqlite", "path": "shop.db", **source}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb", **destination}},
        "connections": {"c": {"source": "shop", "destination": "wh", **connection},
                        "plain": {"source": "shop", "destination": "wh"}}}))
    return root


@pytest.mark.parametrize(("source", "destination", "connection", "region"), [
    ({}, {}, {}, "default"),
    ({"region": "eu"}, {}, {}, "eu"),
    ({}, {"region": "eu"}, {}, "eu"),
    ({"region": "eu"}, {"region": "eu"}, {"region": "eu"}, "eu"),
    ({}, {}, {"region": "us-east"}, "us-east"),
    ({"region": "eu"}, {"region": "us"}, {}, None),
    ({"region": "eu"}, {}, {"region": "us"}, None),
])
def test_a_connection_runs_in_the_region_its_ends_name(tmp_path: Path, source: dict[str, Any],
                                                       destination: dict[str, Any],
                                                       connection: dict[str, Any],
                                                       region: str | None) -> None:
    write(tmp_path, source, destination, connection)
    if region is not None:
        assert load_workspace(tmp_path).region("c") == region
        return
    with pytest.raises(ConfigurationError) as err:
        load_workspace(tmp_path)
    said = str(err.value)
    assert "sources.shop.region is 'eu'" in said and "'us'" in said, said  # both sides named
    assert "fix:" in said or err.value.fix, said


def test_a_region_name_is_checked_where_it_is_written(tmp_path: Path) -> None:
    write(tmp_path, {"region": "EU West"}, {}, {})
    with pytest.raises(ConfigurationError, match=r"sources\.shop\.region: got 'EU West'; a region is"):
        load_workspace(tmp_path)
    write(tmp_path, {}, {}, {"region": "eu/1"})
    with pytest.raises(ConfigurationError, match=r"connections\.c\.region: got 'eu/1'"):
        load_workspace(tmp_path)
