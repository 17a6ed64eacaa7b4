"""Loopback fakes of the GitHub issues and Jira APIs, recording what a tracker channel did."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Tracker:
    url: str = ""
    tickets: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: int = 0  # requests without the right credentials


@contextmanager
def fake_tracker(kind: str, secret: str) -> Iterator[Tracker]:
    """`kind`: github (a Bearer token `secret`) or jira (Basic `user:secret` of user bot)."""
    tracker = Tracker()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: Any = None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            got = self.headers.get("Authorization", "")
            want = (f"Bearer {secret}" if kind == "github"
                    else "Basic " + base64.b64encode(f"bot:{secret}".encode()).decode())
            if got != want:
                tracker.refused += 1
            return got == want

        def _body(self) -> Any:
            size = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(size)) if size else None

        def _route(self, method: str) -> None:
            body = self._body()
            if not self._authorized():
                self._answer(401, {"message": "Bad credentials"})
                return
            with lock:
                if kind == "github":
                    self._github(method, body)
                else:
                    self._jira(method, body)

        def _github(self, method: str, body: Any) -> None:
            m = re.fullmatch(r"/repos/[^/]+/[^/]+/issues(?:/(\d+)(/comments)?)?", self.path)
            if m is None:
                self._answer(404, {"message": "Not Found"})
            elif method == "POST" and m.group(1) is None:
                number = str(len(tracker.tickets) + 1)
                tracker.tickets[number] = {**body, "state": "open", "comments": []}
                self._answer(201, {"number": int(number), "html_url": f"{tracker.url}/issues/{number}"})
            elif method == "POST" and m.group(2):
                tracker.tickets[m.group(1)]["comments"].append(body["body"])
                self._answer(201, {"id": 1})
            elif method == "PATCH":
                tracker.tickets[m.group(1)]["state"] = body["state"]
                self._answer(200, {"number": int(m.group(1))})
            else:
                self._answer(405, {})

        def _jira(self, method: str, body: Any) -> None:
            m = re.fullmatch(r"/rest/api/2/issue(?:/([A-Z]+-\d+)(/comment|/transitions)?)?", self.path)
            if m is None:
                self._answer(404, {"errorMessages": ["Not Found"]})
            elif method == "POST" and m.group(1) is None:
                key = f"{body['fields']['project']['key']}-{len(tracker.tickets) + 1}"
                tracker.tickets[key] = {**body["fields"], "status": "To Do", "comments": []}
                self._answer(201, {"id": "10001", "key": key})
            elif method == "POST" and m.group(2) == "/comment":
                tracker.tickets[m.group(1)]["comments"].append(body["body"])
                self._answer(201, {"id": "1"})
            elif method == "GET" and m.group(2) == "/transitions":
                self._answer(200, {"transitions": [{"id": "31", "name": "Done"},
                                                   {"id": "11", "name": "Reopen"}]})
            elif method == "POST" and m.group(2) == "/transitions":
                tracker.tickets[m.group(1)]["status"] = {"31": "Done", "11": "To Do"}[
                    body["transition"]["id"]]
                self._answer(204)
            else:
                self._answer(405, {})

        def do_POST(self) -> None:
            self._route("POST")

        def do_PATCH(self) -> None:
            self._route("PATCH")

        def do_GET(self) -> None:
            self._route("GET")

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tracker.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield tracker
    finally:
        server.shutdown()
        server.server_close()
