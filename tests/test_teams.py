"""Teams and on-call, follow the sun: Los Angeles paired with Kolkata, weekends and a DST change,
rotations handing off at local time; owners from connections and connector files; mistakes
named by key. Frozen moments, no clock."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import syncline.cli.app as cli
from syncline.config import load_workspace
from syncline.errors import ConfigurationError
from syncline.teams import Team, route

TEAMS: dict[str, Any] = {
    "platform": {"members": ["ann@example.com", "bob@example.com", "mia@example.com"],
                 "timezone": "America/Los_Angeles", "hours": "09:00-17:00", "pair": "platform-blr",
                 "on_call": {"rotation": ["ann@example.com", "bob@example.com"], "every": "7d",
                             "handoff": "2026-01-05T09:00"}},
    "platform-blr": {"timezone": "Asia/Kolkata", "hours": "09:00-17:00", "pair": "platform",
                     "on_call": {"rotation": ["chitra@example.com", "dev@example.com"], "every": "7d",
                                 "handoff": "2026-01-05T09:00"}},
    "managers": {"timezone": "UTC", "on_call": {"rotation": ["mia@example.com"], "every": "7d",
                                                "handoff": "2026-01-05T09:00"}},
}
LA = dt.timezone(dt.timedelta(hours=-8))  # Pacific standard time (January)


def teams() -> dict[str, Team]:
    return {name: Team.model_validate(t) for name, t in TEAMS.items()}


@pytest.mark.parametrize(("local", "person", "via", "reason"), [
    # Tuesday 10:00 in Los Angeles: its own hours, week 2 of the rotation (from Mon Jan 5 09:00)
    (dt.datetime(2026, 1, 13, 10, 0, tzinfo=LA), "bob@example.com", "platform", "own_hours"),
    # Tuesday 20:00 in Los Angeles = Wednesday 09:30 in Kolkata: the pair's hours
    (dt.datetime(2026, 1, 13, 20, 0, tzinfo=LA), "dev@example.com", "platform-blr", "pair_hours"),
    # Tuesday 19:00 in Los Angeles = Wednesday 08:30 in Kolkata: nobody's hours
    (dt.datetime(2026, 1, 13, 19, 0, tzinfo=LA), "bob@example.com", "platform", "out_of_hours"),
    # Saturday 10:00 in Los Angeles (Saturday 23:30 in Kolkata): a weekend for both
    (dt.datetime(2026, 1, 17, 10, 0, tzinfo=LA), "bob@example.com", "platform", "out_of_hours"),
    # Sunday 20:00 in Los Angeles = Monday 09:30 in Kolkata: the pair's Monday, its week 3
    (dt.datetime(2026, 1, 18, 20, 0, tzinfo=LA), "chitra@example.com", "platform-blr", "pair_hours"),
    # Friday 16:59 in Los Angeles: still in hours; 17:00 out
    (dt.datetime(2026, 1, 16, 16, 59, tzinfo=LA), "bob@example.com", "platform", "own_hours"),
    (dt.datetime(2026, 1, 16, 17, 0, tzinfo=LA), "bob@example.com", "platform", "out_of_hours"),
], ids=["own-hours", "pair-hours", "nobody", "weekend", "pair-monday", "friday-1659", "friday-1700"])
def test_a_page_follows_the_sun(local: dt.datetime, person: str, via: str, reason: str) -> None:
    page = route(teams(), "platform", local)
    assert (page.person, page.via, page.reason) == (person, via, reason)
    assert page.manager == "mia@example.com"


def test_rotations_hand_off_at_local_time_across_a_dst_change() -> None:
    platform = teams()["platform"]
    pacific = dt.timezone(dt.timedelta(hours=-8))
    daylight = dt.timezone(dt.timedelta(hours=-7))
    assert platform.on_call_person(dt.datetime(2026, 1, 12, 8, 59, tzinfo=pacific)) == "ann@example.com"
    assert platform.on_call_person(dt.datetime(2026, 1, 12, 9, 0, tzinfo=pacific)) == "bob@example.com"
    assert platform.on_call_person(dt.datetime(2026, 1, 19, 9, 0, tzinfo=pacific)) == "ann@example.com"
    # clocks go forward on Sunday March 8: Monday March 9's handoff (the 10th turn) is still at
    # 09:00 local, not 10:00
    assert platform.on_call_person(dt.datetime(2026, 3, 9, 8, 59, tzinfo=daylight)) == "ann@example.com"
    assert platform.on_call_person(dt.datetime(2026, 3, 9, 9, 0, tzinfo=daylight)) == "bob@example.com"
    # before the first handoff the turns run backwards the same way
    assert platform.on_call_person(dt.datetime(2026, 1, 1, 12, 0, tzinfo=pacific)) == "bob@example.com"


def test_hours_past_midnight_and_a_team_without_hours() -> None:
    night = Team.model_validate({"timezone": "UTC", "hours": "22:00-06:00"})
    assert night.in_hours(dt.datetime(2026, 1, 13, 23, 0, tzinfo=dt.UTC))  # Tuesday night
    assert night.in_hours(dt.datetime(2026, 1, 14, 5, 59, tzinfo=dt.UTC))  # Wednesday early
    assert not night.in_hours(dt.datetime(2026, 1, 14, 6, 0, tzinfo=dt.UTC))
    assert not night.in_hours(dt.datetime(2026, 1, 17, 23, 0, tzinfo=dt.UTC))  # Saturday night
    assert night.in_hours(dt.datetime(2026, 1, 17, 1, 0, tzinfo=dt.UTC))  # Friday's night, Saturday 01:00
    assert Team.model_validate({}).in_hours(dt.datetime(2026, 1, 17, 3, 0, tzinfo=dt.UTC))


def write(root: Path, **more: Any) -> Path:
    doc: dict[str, Any] = {
        "version": 1, "teams": TEAMS,
        "sources": {"shop": {"type": "sqlite", "path": "shop.db", "owner": "platform-blr"}},
        "destinations": {"wh": {"type": "duckdb", "path": "wh.duckdb"}},
        "connections": {"shop_to_wh": {"source": "shop", "destination": "wh"},
                        "orders": {"source": "shop", "destination": "wh", "owner": "platform"}}}
    for key, value in more.items():
        doc[key] = value
    (root / "syncline.yaml").write_text(yaml.safe_dump(doc))
    return root


def test_owners_come_from_the_connection_else_its_source_or_connector_file(tmp_path: Path) -> None:
    ws = load_workspace(write(tmp_path))
    assert dict(ws.owners) == {"shop_to_wh": "platform-blr", "orders": "platform"}
    (tmp_path / "shop.yaml").write_text("type: sqlite\npath: shop.db\nowner: platform\n")
    write(tmp_path, sources={"shop": {"connector": "shop.yaml"}})
    assert dict(load_workspace(tmp_path).owners) == {"shop_to_wh": "platform", "orders": "platform"}


def test_oncall_shows_each_team_and_where_its_page_goes(tmp_path: Path) -> None:
    write(tmp_path)
    done = CliRunner().invoke(cli.app, ["oncall", "--at", "2026-01-13T20:00-08:00", "--json",
                                        "-w", str(tmp_path)])
    assert done.exit_code == 0, done.output
    rows = {r["team"]: r for r in json.loads(done.stdout)["teams"]}
    assert rows["platform"]["page"] == {"team": "platform", "person": "dev@example.com",
                                        "via": "platform-blr", "reason": "pair_hours",
                                        "manager": "mia@example.com"}
    assert rows["platform"]["in_hours"] is False and rows["platform-blr"]["in_hours"] is True
    assert rows["platform"]["owns"] == ["orders"]
    table = CliRunner().invoke(cli.app, ["oncall", "--team", "platform", "--at",
                                         "2026-01-13T10:00-08:00", "-w", str(tmp_path)]).output
    assert "bob@example.com" in table and "in its hours" in table


@pytest.mark.parametrize(("change", "expected"), [
    ({"teams": {**TEAMS, "platform": {**TEAMS["platform"], "pair": "platfrom-blr"}}},
     "teams.platform.pair: 'platfrom-blr' is not another team"),
    ({"teams": {**TEAMS, "platform": {**TEAMS["platform"], "timezone": "America/Los_Angles"}}},
     "teams.platform.timezone: got 'America/Los_Angles'"),
    ({"teams": {**TEAMS, "platform": {**TEAMS["platform"], "hours": "9-5"}}},
     "teams.platform.hours: got '9-5'; expected HH:MM-HH:MM"),
    ({"teams": {**TEAMS, "platform": {**TEAMS["platform"], "on_call": {
        "rotation": ["ann@example.com"], "handoff": "next monday"}}}},
     "teams.platform.on_call.handoff: got 'next monday'"),
    ({"teams": {**TEAMS, "platform": {**TEAMS["platform"], "notify": ["pager"]}}},
     "teams.platform.notify: 'pager' is not a channel"),
    ({"connections": {"c": {"source": "shop", "destination": "wh", "owner": "data"}}},
     "connections.c.owner: 'data' is not a team"),
    ({"sources": {"shop": {"type": "sqlite", "path": "shop.db", "owner": "nobody"}}},
     "sources.shop.owner: 'nobody' is not a team"),
], ids=["unknown-pair", "bad-zone", "bad-hours", "bad-handoff", "unknown-channel",
        "owner-not-a-team", "source-owner-not-a-team"])
def test_a_bad_team_or_owner_names_its_key(tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    write(tmp_path, **change)
    with pytest.raises(ConfigurationError) as info:
        load_workspace(tmp_path)
    assert expected in str(info.value)


def test_the_editor_schema_accepts_teams_and_owners(tmp_path: Path) -> None:
    import jsonschema

    from syncline.config_schema import workspace_schema

    doc = yaml.safe_load(write(tmp_path).joinpath("syncline.yaml").read_text())
    assert list(jsonschema.Draft202012Validator(workspace_schema()).iter_errors(doc)) == []
