"""FaultProxy: a loopback TCP proxy that adds latency, resets, cuts or hangs connections on demand.

    with FaultProxy("127.0.0.1", 5432) as proxy:      # Syncline connects to proxy.port
        proxy.cut_after(300_000, times=2)               # the next two streams die mid-read
        ...
        proxy.pass_through()

A fault can be switched at any moment and applies to live connections at their next
chunk as well as to new ones. ``times`` limits how many connections it hits; after
that the proxy passes traffic again. Byte thresholds (``cut_after``, ``hang``) count
the bytes a connection has carried from the target to the client, so a query's
result stream is cut, not its handshake.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

Kind = Literal["pass", "latency", "reset", "cut", "hang"]
_CHUNK = 64 * 1024
_POLL_S = 0.1


@dataclass(frozen=True)
class Fault:
    """What the proxy does to traffic: see the ``FaultProxy`` methods that build one."""

    kind: Kind = "pass"
    seconds: float = 0.0  # latency per forwarded chunk
    after_bytes: int = 0  # cut / hang once this many bytes came from the target
    times: int | None = None  # connections to hit before passing again; None: all


@dataclass
class ProxyStats:
    """What the proxy did, for tests to assert that a fault really fired."""

    connections: int = 0
    resets: int = 0
    cuts: int = 0
    hangs: int = 0
    bytes_down: int = 0


def _rst(sock: socket.socket) -> None:
    """Close with a TCP RST rather than a FIN: SO_LINGER on, timeout 0."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


@dataclass(eq=False)
class _Link:
    client: socket.socket
    server: socket.socket
    down: int = 0
    hung: bool = False
    closed: threading.Event = field(default_factory=threading.Event)

    def reset(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            _rst(self.client)
            _rst(self.server)

    def close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            for sock in (self.client, self.server):
                try:
                    sock.close()
                except OSError:
                    pass


class FaultProxy:
    """A threading TCP proxy on 127.0.0.1 (an ephemeral port) in front of ``host:port``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.stats = ProxyStats()
        self._lock = threading.Lock()
        self._fault = Fault()
        self._left: int | None = None
        self._links: set[_Link] = set()
        self._threads: list[threading.Thread] = []
        self._stopped = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self.host, self.port = self._listener.getsockname()

    # -- switching faults at runtime --------------------------------------------------

    def set(self, fault: Fault) -> None:
        with self._lock:
            self._fault = fault
            self._left = fault.times

    def pass_through(self) -> None:
        self.set(Fault())

    def latency(self, seconds: float) -> None:
        """Delay every forwarded chunk, in both directions, by ``seconds``."""
        self.set(Fault("latency", seconds=seconds))

    def reset(self, times: int | None = None) -> None:
        """RST new connections on accept and live ones at their next chunk."""
        self.set(Fault("reset", times=times))

    def cut_after(self, n_bytes: int, times: int | None = None) -> None:
        """Forward ``n_bytes`` from the target on a connection, then RST it."""
        self.set(Fault("cut", after_bytes=n_bytes, times=times))

    def hang(self, after_bytes: int = 0, times: int | None = None) -> None:
        """Stop forwarding (keeping the sockets open) once ``after_bytes`` came from the target."""
        self.set(Fault("hang", after_bytes=after_bytes, times=times))

    @property
    def fault(self) -> Fault:
        with self._lock:
            return self._fault

    def _take(self, kind: Kind) -> Fault | None:
        """The current fault if it is ``kind`` and may still hit a connection (counted as used)."""
        with self._lock:
            if self._fault.kind != kind or self._left == 0:
                return None
            if self._left is not None:
                self._left -= 1
            if kind == "reset":
                self.stats.resets += 1
            elif kind == "cut":
                self.stats.cuts += 1
            elif kind == "hang":
                self.stats.hangs += 1
            return self._fault

    def _armed(self) -> Fault:
        with self._lock:
            return Fault() if self._left == 0 else self._fault

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._listener.listen(64)
        self._spawn(self._accept_loop, "fault-proxy-accept")
        return self

    def close(self) -> None:
        """Stop accepting and RST every live connection."""
        self._stopped.set()
        with self._lock:
            links = list(self._links)
        for link in links:
            link.reset()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    # -- the data path ----------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            ready, _, _ = select.select([self._listener], [], [], _POLL_S)
            if not ready:
                continue
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue
            with self._lock:
                self.stats.connections += 1
            if self._take("reset") is not None:
                _rst(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _rst(client)
                continue
            link = _Link(client, server)
            fault = self.fault
            if fault.kind == "hang" and fault.after_bytes == 0 and self._take("hang") is not None:
                link.hung = True
            with self._lock:
                self._links.add(link)
            self._spawn(self._pump, "fault-proxy-up", link, client, server, False)
            self._spawn(self._pump, "fault-proxy-down", link, server, client, True)

    def _pump(self, link: _Link, src: socket.socket, dst: socket.socket, down: bool) -> None:
        try:
            while not link.closed.is_set() and not self._stopped.is_set():
                if link.hung and down:
                    time.sleep(_POLL_S)  # read nothing more from the target: it looks silent
                    continue
                ready, _, _ = select.select([src], [], [], _POLL_S)
                if not ready:
                    continue
                data = src.recv(_CHUNK)
                if not data:
                    link.close()
                    return
                if link.hung:
                    continue  # a hung link swallows what the client still sends
                data = self._apply(link, data, down)
                if data is None:
                    return
                if data:
                    dst.sendall(data)
                    if down:
                        self._carried(link, len(data))
        except OSError:
            link.reset()
        finally:
            if link.closed.is_set():
                with self._lock:
                    self._links.discard(link)

    def _carried(self, link: _Link, n: int) -> None:
        link.down += n
        with self._lock:
            self.stats.bytes_down += n

    def _apply(self, link: _Link, data: bytes, down: bool) -> bytes | None:
        """The bytes to forward now; None when the link was reset."""
        fault = self._armed()
        if fault.kind == "latency":
            time.sleep(fault.seconds)
        elif fault.kind == "reset" and self._take("reset") is not None:
            link.reset()
            return None
        elif fault.kind in ("cut", "hang") and down and link.down + len(data) > fault.after_bytes:
            if self._take(fault.kind) is None:
                return data
            head = data[: max(0, fault.after_bytes - link.down)]
            if head:
                link.client.sendall(head)
                self._carried(link, len(head))
            if fault.kind == "cut":
                link.reset()
                return None
            link.hung = True
            return b""
        return data
