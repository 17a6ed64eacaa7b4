"""How a notification reads to a person: a subject line, plain text, HTML, a Slack message."""

from __future__ import annotations

import html
from typing import Any

from syncline.alerting.notification import Notification

_ICONS = {"critical": ":red_circle:", "error": ":red_circle:", "warning": ":large_orange_circle:",
          "info": ":large_blue_circle:"}
_SKIPPED = ("message", "title", "runbook", "sections", "subjects", "groups", "down_long", "page")


def subject(n: Notification) -> str:
    """`[syncline] critical · run.failed · shop_to_warehouse`, or the body's own title."""
    title = n.body.get("title")
    what = str(title) if title else " · ".join(x for x in (n.kind, n.connection, n.stream) if x)
    return f"[syncline] {n.severity} · {what}"


def _facts(n: Notification) -> list[tuple[str, str]]:
    page = n.body.get("page")
    paged = [("paged", f"{page.get('person')} ({page.get('via')}, {page.get('reason')})"
              + (f"; manager {page['manager']}" if page.get("manager") and n.severity == "critical" else ""))
             ] if isinstance(page, dict) and page.get("person") else []
    facts = paged + [(k, str(v)) for k, v in (("connection", n.connection), ("stream", n.stream),
                                      ("run", n.run), ("region", n.region)) if v is not None]
    facts += [(k, _text(v)) for k, v in sorted(n.body.items()) if k not in _SKIPPED]
    facts.append(("time", n.time.strftime("%Y-%m-%d %H:%M:%S UTC")))
    return facts


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _sections(n: Notification) -> list[dict[str, Any]]:
    """Tables a notification carries (a digest's): each a title, columns and rows."""
    found = n.body.get("sections")
    return [s for s in found if isinstance(s, dict)] if isinstance(found, list) else []


def plain(n: Notification) -> str:
    lines = [subject(n).removeprefix("[syncline] "), ""]
    if n.body.get("message"):
        lines += [str(n.body["message"]), ""]
    for section in _sections(n):
        lines += [str(section.get("title", "")), ""]
        lines += ["  " + " · ".join(str(c) for c in row) for row in section.get("rows", [])]
        lines.append("")
    lines += [f"{k}: {v}" for k, v in _facts(n)]
    if n.body.get("runbook"):
        lines += ["", f"runbook: {n.body['runbook']}"]
    lines += ["", f"notification {n.id}"]
    return "\n".join(lines) + "\n"


def as_html(n: Notification) -> str:
    e = html.escape
    rows = "".join(f"<tr><th align='left'>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _facts(n))
    message = f"<p>{e(str(n.body['message']))}</p>" if n.body.get("message") else ""
    for section in _sections(n):
        head = "".join(f"<th align='left'>{e(str(c))}</th>" for c in section.get("columns", []))
        body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>"
                       for row in section.get("rows", []))
        message += f"<h3>{e(str(section.get('title', '')))}</h3><table><tr>{head}</tr>{body}</table>"
    runbook = (f"<p><a href='{e(str(n.body['runbook']))}'>Runbook</a></p>"
               if n.body.get("runbook") else "")
    return (f"<html><body><h2>{e(subject(n).removeprefix('[syncline] '))}</h2>{message}"
            f"<table>{rows}</table>{runbook}<p><small>notification {e(n.id)}</small></p>"
            "</body></html>")


def slack(n: Notification) -> dict[str, Any]:
    """An incoming-webhook message: `text` for the notification preview, blocks for the rest."""
    title = f"{_ICONS.get(n.severity, '')} {subject(n).removeprefix('[syncline] ')}".strip()
    fields = [{"type": "mrkdwn", "text": f"*{k}*\n{v[:300]}"} for k, v in _facts(n)][:10]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*"}}]
    if n.body.get("message"):
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": str(n.body["message"])[:2900]}})
    for section in _sections(n):
        rows = "\n".join("• " + " · ".join(str(c) for c in row) for row in section.get("rows", []))
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": (
            f"*{section.get('title', '')}*\n{rows}")[:2900]}})
    blocks.append({"type": "section", "fields": fields})
    if n.body.get("runbook"):
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"<{n.body['runbook']}|Runbook>"}]})
    return {"text": title, "blocks": blocks}
