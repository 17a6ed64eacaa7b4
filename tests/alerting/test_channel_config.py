"""`channels:` mistakes are configuration errors naming the key and the fix; secrets stay hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncline.config import load_workspace
from syncline.errors import ConfigurationError


def error(tmp_path: Path, channels: str) -> str:
    (tmp_path / "syncline.yaml").write_text(f"version: 1\nchannels:\n{channels}", encoding="utf-8")
    with pytest.raises(ConfigurationError) as info:
        load_workspace(tmp_path)
    return str(info.value)


@pytest.mark.parametrize(("channels", "expected"), [
    ("  ops-hook: {type: webhook, secret: s3cret-value-99}\n",
     "syncline.yaml: channels.ops-hook.url: required key is missing"),
    ("  fire: {type: slack}\n", "syncline.yaml: channels.fire.url: required key is missing"),
    ("  ops: {type: webhook, url: ops.example.com, secret: x}\n",
     "channels.ops.url: got 'ops.example.com'; expected an http:// or https:// URL"),
    ("  ops: {type: pager, url: 'https://x'}\n",
     "syncline.yaml: channels.ops.type: got 'pager'; expected one of 'webhook', 'slack', 'email'"),
    ("  mail: {type: email, host: smtp.example.com, from: a@example.com, to: [data-team]}\n",
     "channels.mail.to: got ['data-team']; 'data-team' is not an email address"),
    ("  mail: {type: email, host: smtp.example.com, from: a@example.com, to: [a@example.com], "
     "starttls: yes please}\n", "channels.mail.starttls:"),
    ("  ops: {type: webhook, url: 'https://x', secret: y, timeout: soon}\n", "channels.ops.timeout:"),
    ("  ops: {type: webhook, url: 'https://x', secret: y, retries: 3}\n",
     "channels.ops.retries: unknown key 'retries'"),
], ids=["webhook-without-url", "slack-without-url", "url-without-scheme", "unknown-type",
        "not-an-address", "not-a-boolean", "bad-timeout", "unknown-key"])
def test_a_bad_channel_names_its_key(tmp_path: Path, channels: str, expected: str) -> None:
    message = error(tmp_path, channels)
    assert expected in message
    assert "fix:" in message


def test_a_channel_error_never_shows_its_secret(tmp_path: Path) -> None:
    message = error(tmp_path, "  ops: {type: webhook, url: 'https://x', secret: 12345678901}\n")
    assert "channels.ops.secret" in message and "12345678901" not in message


def test_channels_load_typed_with_their_defaults(tmp_path: Path) -> None:
    (tmp_path / "syncline.yaml").write_text(
        "version: 1\nchannels:\n"
        "  mail: {type: email, host: smtp.example.com, from: s@example.com, to: [t@example.com]}\n",
        encoding="utf-8")
    mail = load_workspace(tmp_path).channels["mail"]
    assert mail.model_dump(by_alias=True) == {
        "type": "email", "host": "smtp.example.com", "port": 587, "starttls": True, "tls": False,
        "ca_file": None, "user": None, "password": None, "from": "s@example.com",
        "to": ["t@example.com"], "timeout": "10s"}
