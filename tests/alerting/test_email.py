"""Email through a real SMTP server on loopback (aiosmtpd): STARTTLS, login, two parts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml
from receivers import smtp_server

from syncline.alerting.delivery import Deliverer
from syncline.alerting.notification import Notification
from syncline.config import load_workspace
from syncline.store.store import MetadataStore

T0 = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)


def channel(port: int, cert: Path, password: str) -> dict[str, object]:
    return {"type": "email", "host": "127.0.0.1", "port": port, "starttls": True,
            "ca_file": str(cert), "user": "syncline", "password": password,
            "from": "syncline@example.com", "to": ["data-team@example.com", "oncall@example.com"]}


def test_a_notification_arrives_as_mail_with_text_and_html(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    with smtp_server(tmp_path) as box, MetadataStore(url) as store:
        (tmp_path / "syncline.yaml").write_text(yaml.safe_dump({
            "version": 1, "metadata": url,
            "channels": {"team-mail": channel(box.port, box.cert, "mail-secret-1")}}))
        ws = load_workspace(tmp_path)
        n = Notification(id="n/1", kind="run.failed", time=T0, severity="error",
                         connection="shop_to_warehouse",
                         body={"message": "connection refused", "runbook": "https://x.test/rb"})
        store.outbox().put([("team-mail", n.id, n.kind, n.payload())], T0)
        assert Deliverer(store, lambda: T0).drain(ws).delivered == 1
    [mail] = box.messages
    assert box.logins == ["syncline"]  # logged in, which the server allows only over TLS
    assert mail["Subject"] == "[syncline] error · run.failed · shop_to_warehouse"
    assert mail["To"] == "data-team@example.com, oncall@example.com"
    assert mail["Message-ID"] == "<n-1@syncline>"
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in mail.walk()
             if not p.is_multipart()}
    assert "connection refused" in parts["text/plain"] and "https://x.test/rb" in parts["text/plain"]
    assert "<table>" in parts["text/html"] and "shop_to_warehouse" in parts["text/html"]


def test_a_wrong_password_is_retried_and_never_shown(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    with smtp_server(tmp_path) as box, MetadataStore(url) as store:
        (tmp_path / "syncline.yaml").write_text(yaml.safe_dump({
            "version": 1, "metadata": url,
            "channels": {"team-mail": channel(box.port, box.cert, "not-the-password-77")}}))
        ws = load_workspace(tmp_path)
        n = Notification(id="n-2", kind="run.failed", time=T0)
        store.outbox().put([("team-mail", n.id, n.kind, n.payload())], T0)
        report = Deliverer(store, lambda: T0).drain(ws)
        assert report.retrying == 1 and box.messages == []
        [entry] = store.outbox().read()
        assert entry.status == "pending" and "535" in (entry.last_error or "")
        assert "not-the-password-77" not in (entry.last_error or "")
