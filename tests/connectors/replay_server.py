"""A loopback server replaying recorded GitHub and PokéAPI responses with their pagination."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

RECORDINGS = Path(__file__).parent / "recordings"


def _load(name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((RECORDINGS / name).read_text(encoding="utf-8"))
    return data


class Replay(BaseHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        type(self).requests.append(self.path)
        parts = url.path.strip("/").split("/")
        if parts[:1] == ["orgs"] and parts[2:] == ["repos"]:
            self._github(url.path, query, _load(f"github/orgs_{parts[1]}_repos.json"))
        elif parts[:1] == ["repos"] and parts[3:] == ["issues"]:
            file = RECORDINGS / f"github/issues_{parts[2]}.json"
            items = _load(file.relative_to(RECORDINGS).as_posix()) if file.exists() else []
            since = query.get("since")
            if since:  # GitHub: issues updated at or after `since`
                items = [i for i in items if i["updated_at"] >= since]
            items.sort(key=lambda i: (i["updated_at"], i["id"]))
            self._github(url.path, query, items)
        elif parts[:2] == ["api", "v2"] and len(parts) == 3:
            self._poke(parts[2], query)
        else:
            self._send(404, {"message": "Not Found"})

    def _github(self, path: str, query: dict[str, str], items: list[dict[str, Any]]) -> None:
        page, size = int(query.get("page", 1)), int(query.get("per_page", 30))
        chunk = items[(page - 1) * size: page * size]
        headers = {}
        if page * size < len(items):
            nxt = urlencode({**query, "page": page + 1})
            headers["Link"] = f'<http://{self.headers["Host"]}{path}?{nxt}>; rel="next"'
        self._send(200, chunk, headers)

    def _poke(self, kind: str, query: dict[str, str]) -> None:
        items = _load(f"pokeapi/{kind}.json")
        offset, limit = int(query.get("offset", 0)), int(query.get("limit", 20))
        end = offset + limit
        nxt = (f"http://{self.headers['Host']}/api/v2/{kind}?offset={end}&limit={limit}"
               if end < len(items) else None)
        self._send(200, {"count": len(items), "next": nxt, "previous": None,
                         "results": items[offset:end]})

    def _send(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def replay_server() -> Iterator[str]:
    """Serve the recordings on 127.0.0.1; yields the base URL."""
    Replay.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Replay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
