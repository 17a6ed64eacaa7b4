"""Ticket trackers as channels: GitHub issues and Jira. For each incident a tracker follows,
`incident.opened` files a ticket (remembered in the store, so a ticket is filed once), every
other `incident.*` event is a comment on it, `incident.resolved` closes it (resolves it in
Jira) and `incident.reopened` opens it again."""

from __future__ import annotations

import httpx

from syncline.alerting import render
from syncline.alerting.channels import REFUSED, DeliveryFailed, agent
from syncline.alerting.notification import Notification
from syncline.alerting_config import GithubIssuesChannel, JiraChannel
from syncline.store.tickets import Tickets


def _text(n: Notification) -> str:
    body = n.body
    change = body.get("change") or n.kind.removeprefix("incident.")
    said = f": {body['text']}" if body.get("text") else ""
    return (f"Syncline: incident {body.get('incident')} {change}{said} "
            f"(state {body.get('state')}, owner {body.get('owner') or '—'}, "
            f"assignee {body.get('assignee') or '—'}, due {body.get('due_at')})")


class _Tracker:
    def __init__(self, channel: str, tickets: Tickets, timeout_s: float,
                 auth: httpx.Auth | None, headers: dict[str, str]) -> None:
        self.channel, self.tickets = channel, tickets
        self.http = httpx.Client(timeout=timeout_s, auth=auth,
                                 headers={"User-Agent": agent(), **headers})

    def _call(self, method: str, url: str, json: object) -> httpx.Response:
        try:
            r = self.http.request(method, url, json=json)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None
        if not r.is_success:
            text = " ".join(r.text.split())[:200]
            raise DeliveryFailed(f"{method} {httpx.URL(url).path} answered HTTP {r.status_code}"
                                 f"{': ' + text if text else ''}", permanent=r.status_code in REFUSED)
        return r

    def send(self, n: Notification) -> None:
        incident = n.body.get("incident")
        if not n.kind.startswith("incident.") or not isinstance(incident, int):
            raise DeliveryFailed(f"a tracker files incidents; {n.kind} is not one", permanent=True)
        ref, _ = self.tickets.ref(self.channel, incident)
        if ref is None:
            if n.kind != "incident.opened":
                raise DeliveryFailed(f"incident {incident} has no ticket here yet", permanent=True)
            ref, url = self.file(n)
            self.tickets.filed(self.channel, incident, ref, url)
            return
        if n.kind == "incident.opened":
            return  # filed already (sent again after a restart): nothing twice
        self.comment(ref, _text(n))
        if n.kind == "incident.resolved":
            self.finish(ref)
        elif n.kind == "incident.reopened":
            self.reopen(ref)

    def file(self, n: Notification) -> tuple[str, str | None]:
        raise NotImplementedError

    def comment(self, ref: str, text: str) -> None:
        raise NotImplementedError

    def finish(self, ref: str) -> None:
        raise NotImplementedError

    def reopen(self, ref: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.http.close()


class GithubIssues(_Tracker):
    def __init__(self, channel: str, cfg: GithubIssuesChannel, tickets: Tickets) -> None:
        super().__init__(channel, tickets, cfg.timeout_s(), None,
                         {"Authorization": f"Bearer {cfg.token.get_secret_value()}",
                          "Accept": "application/vnd.github+json"})
        self.base = f"{cfg.url.rstrip('/')}/repos/{cfg.repo}/issues"

    def file(self, n: Notification) -> tuple[str, str | None]:
        labels = ["syncline", f"severity:{n.body.get('severity') or n.severity}"]
        r = self._call("POST", self.base, {"title": str(n.body.get("title") or n.kind),
                                            "body": render.plain(n), "labels": labels})
        data = r.json()
        return str(data["number"]), data.get("html_url")

    def comment(self, ref: str, text: str) -> None:
        self._call("POST", f"{self.base}/{ref}/comments", {"body": text})

    def finish(self, ref: str) -> None:
        self._call("PATCH", f"{self.base}/{ref}", {"state": "closed", "state_reason": "completed"})

    def reopen(self, ref: str) -> None:
        self._call("PATCH", f"{self.base}/{ref}", {"state": "open"})


class Jira(_Tracker):
    def __init__(self, channel: str, cfg: JiraChannel, tickets: Tickets) -> None:
        super().__init__(channel, tickets, cfg.timeout_s(),
                         httpx.BasicAuth(cfg.user, cfg.token.get_secret_value()), {})
        self.cfg = cfg
        self.base = f"{cfg.url.rstrip('/')}/rest/api/2/issue"

    def file(self, n: Notification) -> tuple[str, str | None]:
        r = self._call("POST", self.base, {"fields": {
            "project": {"key": self.cfg.project}, "summary": str(n.body.get("title") or n.kind)[:250],
            "description": render.plain(n), "issuetype": {"name": self.cfg.issue_type}}})
        key = str(r.json()["key"])
        return key, f"{self.cfg.url.rstrip('/')}/browse/{key}"

    def comment(self, ref: str, text: str) -> None:
        self._call("POST", f"{self.base}/{ref}/comment", {"body": text})

    def _move(self, ref: str, wanted: str) -> None:
        found = self._call("GET", f"{self.base}/{ref}/transitions", None).json()
        ids = [t["id"] for t in found.get("transitions", []) if t.get("name", "").lower() == wanted.lower()]
        if not ids:
            raise DeliveryFailed(f"issue {ref} has no transition named {wanted!r}", permanent=True)
        self._call("POST", f"{self.base}/{ref}/transitions", {"transition": {"id": ids[0]}})

    def finish(self, ref: str) -> None:
        self._move(ref, self.cfg.done)

    def reopen(self, ref: str) -> None:
        self._move(ref, "Reopen")
