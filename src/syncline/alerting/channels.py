"""Senders: one notification out through one channel (webhook, Slack, email).

A sender is made for one drain of one channel and reuses its connection across the
notifications it sends (HTTP keep-alive, one SMTP session). `send` returns when the
receiver took the notification, else raises `DeliveryFailed`, which says whether trying
the same notification again can help (`permanent` when the receiver refused its content).
"""

from __future__ import annotations

import json
import re
import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import format_datetime
from importlib.metadata import version
from typing import Protocol

import httpx

from syncline.alerting import render
from syncline.alerting.notification import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, Notification, sign
from syncline.alerting_config import (
    EmailChannel,
    SlackChannel,
    WebhookChannel,
)
from syncline.redact import redact

#: Statuses that refuse the notification's content: sending it again cannot help.
REFUSED = (400, 413, 415, 422)


class DeliveryFailed(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(redact(message))
        self.permanent = permanent


class Sender(Protocol):
    def send(self, n: Notification) -> None: ...

    def close(self) -> None: ...


def agent() -> str:
    try:
        return f"syncline/{version('syncline')}"
    except Exception:  # not installed as a package (a source checkout on the path)
        return "syncline"


class _HttpSender:
    def __init__(self, timeout_s: float) -> None:
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=False,
                                    headers={"User-Agent": agent()})

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        try:
            r = self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None
        if r.is_success:
            return
        text = " ".join(r.text.split())[:200]
        raise DeliveryFailed(f"HTTP {r.status_code}{': ' + text if text else ''}",
                             permanent=r.status_code in REFUSED)

    def close(self) -> None:
        self._client.close()


class WebhookSender(_HttpSender):
    """The payload as JSON, signed: `Syncline-Signature: t=<unix>,v1=<hmac>`."""

    def __init__(self, cfg: WebhookChannel) -> None:
        super().__init__(cfg.timeout_s())
        self.cfg = cfg

    def send(self, n: Notification) -> None:
        body = n.to_bytes()
        headers = {**self.cfg.headers, "Content-Type": "application/json",
                   SIGNATURE_HEADER: sign(self.cfg.secret.get_secret_value(), body, int(time.time())),
                   IDEMPOTENCY_HEADER: n.id}
        self._post(self.cfg.url, body, headers)


class SlackSender(_HttpSender):
    """Slack's incoming-webhook message format (text and blocks)."""

    def __init__(self, cfg: SlackChannel) -> None:
        super().__init__(cfg.timeout_s())
        self.cfg = cfg

    def send(self, n: Notification) -> None:
        body = json.dumps(render.slack(n)).encode()
        self._post(self.cfg.url.get_secret_value(), body, {"Content-Type": "application/json"})


_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]")


class EmailSender:
    """SMTP with STARTTLS (or TLS from the start) and login; a plain and an HTML part. The
    Message-ID comes from the notification's id, so a mail sent twice is recognisably one."""

    def __init__(self, cfg: EmailChannel) -> None:
        self.cfg = cfg
        self._smtp: smtplib.SMTP | None = None

    def _session(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        cfg, timeout = self.cfg, self.cfg.timeout_s()
        context = ssl.create_default_context(cafile=cfg.ca_file)
        smtp: smtplib.SMTP
        if cfg.tls:
            smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=timeout)
        try:
            smtp.ehlo()
            if cfg.starttls and not cfg.tls:
                smtp.starttls(context=context)
                smtp.ehlo()
            if cfg.user:
                smtp.login(cfg.user, cfg.password.get_secret_value() if cfg.password else "")
        except BaseException:
            smtp.close()
            raise
        self._smtp = smtp
        return smtp

    def send(self, n: Notification) -> None:
        msg = EmailMessage()
        msg["Subject"] = render.subject(n)
        msg["From"] = self.cfg.sender
        msg["To"] = ", ".join(n.recipients or self.cfg.to)
        msg["Date"] = format_datetime(n.time)
        msg["Message-ID"] = f"<{_ID_CHARS.sub('-', n.id)}@syncline>"
        msg["X-Syncline-Kind"] = n.kind
        msg.set_content(render.plain(n))
        msg.add_alternative(render.as_html(n), subtype="html")
        try:
            self._session().send_message(msg)
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise DeliveryFailed(f"{self.cfg.host}:{self.cfg.port}: {type(exc).__name__}: "
                                 f"{_smtp_text(exc)}") from None

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None


def _smtp_text(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{exc.smtp_code} {text}"
    return str(exc) or type(exc).__name__
