"""A JSON API on loopback for tests: `json_api(answer)` serves every GET with what `answer`
returns for (the call's number from 1, the path, its Authorization header): (status, body);
`headers` go with every answer, and `port` chooses the port (default: a free one)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

Answer = Callable[[int, str, str | None], tuple[int, Any]]


@contextmanager
def json_api(answer: Answer, headers: dict[str, str] | None = None, port: int = 0) -> Iterator[str]:
    calls = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with lock:
                calls[0] += 1
                n = calls[0]
            status, body = answer(n, self.path, self.headers.get("Authorization"))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_GET  # a POST's body is not read: answered alike

        def log_message(self, *_: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
