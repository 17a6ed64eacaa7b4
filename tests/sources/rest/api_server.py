"""A real HTTP API on loopback: ~3,000 items behind every pagination style, and injectable faults.

Endpoints (page size 100 unless asked otherwise; ``updated_since`` filters every item list):

    /items/pages?page=&per_page=      {"data": [...]}                      page_number
    /items/offset?offset=&limit=      {"items": [...], "total": N}         offset
    /items/cursor?cursor=&limit=      {"results": [...], "meta": {"next"}} cursor token
    /items/link?page=&per_page=       [...] + Link: <...>; rel="next"      link_header
    /items/next?page=&per_page=       {"data": [...], "next": "/items/..."} next_url
    /items/all                        [...]                                no pagination
    /events?updated_since=            [...] of ``events``, filtered by comparing the text
    /items/feed?offset=&limit=        newest first (offset drift when items are added)
    /orgs?page=&per_page=             {"data": [orgs]}
    /orgs/{id}/repos?page=&per_page=  {"data": [repos]}
    POST /oauth/token                 {"access_token", "expires_in"}

Faults (``inject`` for the next matching requests, ``chaos`` for every N-th request):
429 with Retry-After in seconds (``429s``) or as an HTTP-date (``429date``), ``500``,
``503``, ``reset`` (socket closed without a response), ``slow`` (answer after
``slow_s``), ``truncated`` (a 200 whose complete body is cut JSON) and ``cut`` (a 200 whose
body stops short of its Content-Length).
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import json
import socket
import struct
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

BASE_TIME = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
COLORS = ["red", "green", "blue", "black"]
FAULTS = ("429s", "429date", "500", "503", "reset", "slow", "truncated", "cut")


def iso(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def make_item(i: int, version: int = 0) -> dict[str, Any]:
    return {
        "id": i,
        "name": f"item {i}",
        "price": i * 1.25,
        "qty": i % 17,
        "active": i % 3 == 0,
        "note": None if i % 10 else f"tenth {i}",
        "tags": ["a", f"t{i % 5}"],
        "meta": {"color": COLORS[i % 4], "size": i % 10},
        "updated_at": iso(BASE_TIME + dt.timedelta(seconds=i + version * 100_000)),
        "version": version,
    }


def make_repo(org: int, j: int, version: int = 0) -> dict[str, Any]:
    return {"id": org * 1000 + j, "name": f"repo {org}-{j}", "stars": (org * j) % 97,
            "updated_at": iso(BASE_TIME + dt.timedelta(seconds=org * 100 + j + version * 100_000))}


class ApiServer:
    """The API's data, faults and request log, served by a ThreadingHTTPServer thread."""

    def __init__(self, items: int = 3000, orgs: int = 12) -> None:
        self.items: list[dict[str, Any]] = [make_item(i) for i in range(1, items + 1)]
        self.orgs = [{"id": k, "login": f"org{k}"} for k in range(1, orgs + 1)]
        # org k has (7k mod 30) repos: some orgs have none, some span several pages
        self.repos = {k: [make_repo(k, j) for j in range(1, (7 * k) % 30 + 1)] for k in range(1, orgs + 1)}
        self.lock = threading.Lock()
        self.faults: deque[tuple[str, str]] = deque()  # (path prefix, kind)
        self.chaos_every = 0
        self.chaos_kinds: list[str] = []
        self.data_requests = 0
        self.log: list[tuple[str, str, dict[str, str]]] = []  # (method, path, query)
        self.slow_s = 1.0
        self.retry_after = "1"
        self.auth: tuple[str, ...] | None = None
        self.tokens: set[str] = set()
        self.token_lifetime = 3600
        self.tokens_issued = 0
        self.drift: dict[int, int] = {}  # feed offset served -> items added right after
        self.events: list[dict[str, Any]] = []  # served by /events, set by the test
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ApiServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- test controls -----------------------------------------------------------------

    def inject(self, kind: str, path: str = "/", times: int = 1) -> None:
        assert kind in FAULTS, kind
        with self.lock:
            self.faults.extend([(path, kind)] * times)

    def chaos(self, every: int, kinds: list[str]) -> None:
        """Every ``every``-th data request fails with the next of ``kinds``, in rotation."""
        self.chaos_every, self.chaos_kinds = every, list(kinds)

    def update_items(self, ids: list[int], version: int) -> None:
        with self.lock:
            for i in ids:
                self.items[i - 1] = make_item(i, version)

    def add_items(self, n: int) -> list[int]:
        with self.lock:
            start = len(self.items) + 1
            self.items.extend(make_item(i, 0) for i in range(start, start + n))
            return list(range(start, start + n))

    def requests_to(self, prefix: str) -> list[dict[str, str]]:
        return [q for _, p, q in self.log if p.startswith(prefix)]

    # -- serving -----------------------------------------------------------------------

    def next_fault(self, path: str) -> str | None:
        with self.lock:
            for i, (prefix, kind) in enumerate(self.faults):
                if path.startswith(prefix):
                    del self.faults[i]
                    return kind
            self.data_requests += 1
            if self.chaos_every and self.data_requests % self.chaos_every == 0:
                n = self.data_requests // self.chaos_every - 1
                return self.chaos_kinds[n % len(self.chaos_kinds)]
        return None

    def authorized(self, headers: Any, query: dict[str, str]) -> bool:
        auth = self.auth
        if auth is None:
            return True
        given = headers.get("Authorization", "")
        if auth[0] == "bearer":
            return bool(given == f"Bearer {auth[1]}")
        if auth[0] == "basic":
            return bool(given == "Basic " + base64.b64encode(f"{auth[1]}:{auth[2]}".encode()).decode())
        if auth[0] == "header":
            return bool(headers.get(auth[1]) == auth[2])
        if auth[0] == "query":
            return query.get(auth[1]) == auth[2]
        return given.removeprefix("Bearer ") in self.tokens  # oauth2

    def answer(self, path: str, q: dict[str, str]) -> tuple[Any, dict[str, str]] | None:
        """The body and extra headers of a GET, or None for 404."""
        if path == "/events":  # an API comparing the cursor's text, as many do
            text = q.get("updated_since", "")
            with self.lock:
                return [dict(e) for e in self.events if e["updated_at"] >= text], {}
        with self.lock:
            items = [dict(i) for i in self.items]
            orgs = list(self.orgs)
            repos = {k: list(v) for k, v in self.repos.items()}
        since = q.get("updated_since")
        if since:
            limit = dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
            items = [i for i in items if dt.datetime.fromisoformat(i["updated_at"].replace("Z", "+00:00")) >= limit]
            repos = {k: [r for r in v if dt.datetime.fromisoformat(r["updated_at"].replace("Z", "+00:00")) >= limit]
                     for k, v in repos.items()}
        page = int(q.get("page", 1))
        per = int(q.get("per_page", 100))
        window = slice((page - 1) * per, page * per)
        if path == "/items/pages":
            return {"data": items[window], "page": page}, {}
        if path in ("/items/offset", "/items/feed"):
            off, lim = int(q.get("offset", 0)), int(q.get("limit", 100))
            ordered = items[::-1] if path == "/items/feed" else items
            return {"items": ordered[off:off + lim], "total": len(ordered)}, {}
        if path == "/items/cursor":
            after = int(q["cursor"].removeprefix("id:")) if q.get("cursor") else 0
            chunk = [i for i in items if i["id"] > after][: int(q.get("limit", 100))]
            token = f"id:{chunk[-1]['id']}" if chunk and chunk[-1]["id"] < items[-1]["id"] else None
            return {"results": chunk, "meta": {"next": token}}, {}
        if path in ("/items/link", "/items/next"):
            chunk = items[window]
            nxt = None
            if page * per < len(items):
                nxt = f"{path}?{urlencode({**q, 'page': page + 1})}"
            if path == "/items/link":
                links = [f'<{self.url}{path}?{urlencode({**q, "page": 1})}>; rel="first"']
                if nxt:
                    links.append(f'<{self.url}{nxt}>; rel="next"')
                return chunk, {"Link": ", ".join(links)}
            return {"data": chunk, "next": nxt}, {}
        if path == "/items/all":
            return items, {}
        if path == "/orgs":
            return {"data": orgs[window]}, {}
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "orgs" and parts[2] == "repos" and parts[1].isdigit():
            if int(parts[1]) not in repos:
                return None
            return {"data": repos[int(parts[1])][window]}, {}
        return None


def _handler(api: ApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else each response waits 40 ms for a delayed ACK

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None,
                      raw: bytes | None = None, length: int | None = None) -> None:
            data = raw if raw is not None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data) if length is None else length))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length", 0))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(size).decode()).items()}
            api.log.append(("POST", self.path, form))
            if self.path != "/oauth/token":
                self.send_json(404, {"error": "not found"})
            elif api.auth is None or form.get("client_secret") != api.auth[2] \
                    or form.get("client_id") != api.auth[1] or form.get("grant_type") != "client_credentials":
                self.send_json(401, {"error": "invalid_client"})
            else:
                with api.lock:
                    api.tokens_issued += 1
                    token = f"tok-{api.tokens_issued}"
                    api.tokens.add(token)
                self.send_json(200, {"access_token": token, "token_type": "bearer",
                                     "expires_in": api.token_lifetime})

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            api.log.append(("GET", parts.path, q))
            try:
                self._get(parts.path, q)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up first (the slow fault)

        def _get(self, path: str, q: dict[str, str]) -> None:
            fault = api.next_fault(path)
            if fault == "reset":
                # SO_LINGER 0: close with an RST, as a crashed proxy would
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
                return
            if fault in ("429s", "429date"):
                after = api.retry_after if fault == "429s" else email.utils.format_datetime(
                    dt.datetime.now(dt.UTC) + dt.timedelta(seconds=float(api.retry_after)), usegmt=True)
                self.send_json(429, {"error": "slow down"}, {"Retry-After": after})
                return
            if fault in ("500", "503"):
                self.send_json(int(fault), {"error": "unavailable"})
                return
            if fault == "slow":
                time.sleep(api.slow_s)
            if not api.authorized(self.headers, q):
                self.send_json(401, {"error": "unauthorized"})
                return
            found = api.answer(path, q)
            if found is None:
                self.send_json(404, {"error": f"no such endpoint {path}"})
                return
            body, headers = found
            data = json.dumps(body).encode()
            if fault == "truncated":
                self.send_json(200, None, headers, raw=data[: len(data) // 2])
            elif fault == "cut":
                self.send_json(200, None, headers, raw=data[: len(data) // 2], length=len(data))
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            else:
                self.send_json(200, body, headers)
            if path == "/items/feed":
                with api.lock:
                    added = api.drift.pop(int(q.get("offset", 0)), 0)
                api.add_items(added)

    return Handler
