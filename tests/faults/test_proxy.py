"""The fault proxy itself, against a small TCP server on loopback: every fault does what it says."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from faults.proxy import FaultProxy


class _Fountain(socketserver.BaseRequestHandler):
    """`GIVE n` answers n bytes; any other line is echoed back."""

    def handle(self) -> None:
        f = self.request.makefile("rb")
        for line in f:
            if line.startswith(b"GIVE "):
                self.request.sendall(b"x" * int(line.split()[1]))
            else:
                self.request.sendall(line)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    server = _Server(("127.0.0.1", 0), _Fountain)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with FaultProxy("127.0.0.1", server.server_address[1]) as p:
            yield p
    finally:
        server.shutdown()
        server.server_close()


def _connect(proxy: FaultProxy) -> socket.socket:
    return socket.create_connection((proxy.host, proxy.port), timeout=2)


def _receive(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_pass_through_carries_every_byte(proxy: FaultProxy) -> None:
    with _connect(proxy) as sock:
        sock.sendall(b"GIVE 300000\n")
        assert len(_receive(sock, 300_000)) == 300_000
        sock.sendall(b"hello\n")
        assert _receive(sock, 6) == b"hello\n"


def test_latency_delays_each_exchange(proxy: FaultProxy) -> None:
    proxy.latency(0.3)
    with _connect(proxy) as sock:
        started = time.monotonic()
        sock.sendall(b"ping\n")
        assert _receive(sock, 5) == b"ping\n"
        assert time.monotonic() - started >= 0.6  # one chunk up, one down


def test_reset_on_accept_hits_only_the_next_connections(proxy: FaultProxy) -> None:
    proxy.reset(times=1)
    with pytest.raises((ConnectionResetError, BrokenPipeError)), _connect(proxy) as sock:
        sock.sendall(b"ping\n")
        time.sleep(0.2)
        sock.sendall(b"ping\n")
        sock.recv(10)
    with _connect(proxy) as sock:
        sock.sendall(b"ping\n")
        assert _receive(sock, 5) == b"ping\n"
    assert proxy.stats.resets == 1


def test_reset_mid_stream_hits_a_live_connection(proxy: FaultProxy) -> None:
    with _connect(proxy) as sock:
        sock.sendall(b"one\n")
        assert _receive(sock, 4) == b"one\n"
        proxy.reset()
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            sock.sendall(b"two\n")
            time.sleep(0.2)
            sock.recv(10)


def test_cut_after_forwards_exactly_n_bytes_then_resets(proxy: FaultProxy) -> None:
    proxy.cut_after(50_000, times=1)
    got = b""
    with _connect(proxy) as sock, pytest.raises(ConnectionResetError):
        sock.sendall(b"GIVE 400000\n")
        while True:
            chunk = sock.recv(65536)
            got += chunk
            if not chunk:
                break
    assert len(got) == 50_000
    with _connect(proxy) as sock:
        sock.sendall(b"GIVE 400000\n")
        assert len(_receive(sock, 400_000)) == 400_000
    assert proxy.stats.cuts == 1


def test_hang_goes_silent_but_keeps_the_connection_open(proxy: FaultProxy) -> None:
    proxy.hang(after_bytes=10_000, times=1)
    with _connect(proxy) as sock:
        sock.sendall(b"GIVE 100000\n")
        got = _receive_until_silent(sock)
        assert len(got) == 10_000
    assert proxy.stats.hangs == 1


def _receive_until_silent(sock: socket.socket) -> bytes:
    sock.settimeout(1.0)
    got = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError("the hung connection was closed")
            got += chunk
    except TimeoutError:
        return got
