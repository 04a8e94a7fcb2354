"""Unit tests of the two raw-socket clients: the PROTOCOL.mux alive check and the HTTP
readiness check. The peers are small servers on a Unix socket and on loopback, speaking the
bytes the real ones speak, so that every branch (bad hello, wrong request id, oversized or
cut-off message, 200, 403, nothing listening) is reached; a real ssh master answers
``master_pid`` in tests/test_tunnel.py."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jupytunnel import httpcheck
from jupytunnel.errors import JupytunnelError
from jupytunnel.ssh import mux


def _serve_once(listener: socket.socket, handler: Callable[[socket.socket], None]) -> threading.Thread:
    def run() -> None:
        listener.settimeout(5)
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            handler(conn)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _msg(*words: int) -> bytes:
    body = struct.pack(f">{len(words)}I", *words)
    return struct.pack(">I", len(body)) + body


def _read_msg(conn: socket.socket) -> bytes:
    (length,) = struct.unpack(">I", conn.recv(4, socket.MSG_WAITALL))
    return conn.recv(length, socket.MSG_WAITALL)


@pytest.fixture
def unix_listener(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "ctl")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    yield path, listener
    listener.close()


def _mux_peer(
    *, hello: int = mux.MUX_MSG_HELLO, kind: int = mux.MUX_S_ALIVE, rid_delta: int = 0, pid: int = 4242
) -> Callable[[socket.socket], None]:
    def handler(conn: socket.socket) -> None:
        assert struct.unpack(">II", _read_msg(conn)) == (mux.MUX_MSG_HELLO, mux.SSHMUX_VER)
        check = struct.unpack(">II", _read_msg(conn))
        assert check[0] == mux.MUX_C_ALIVE_CHECK
        conn.sendall(_msg(hello, mux.SSHMUX_VER) + _msg(kind, check[1] + rid_delta, pid))

    return handler


def test_master_pid_from_the_alive_answer(unix_listener: tuple[str, socket.socket]) -> None:
    path, listener = unix_listener
    thread = _serve_once(listener, _mux_peer(pid=31337))
    assert mux.master_pid(path) == 31337
    thread.join(5)


@pytest.mark.parametrize(
    "peer",
    [
        _mux_peer(hello=0x7),  # not a hello
        _mux_peer(kind=0x80000002),  # MUX_S_FAILURE, not ALIVE
        _mux_peer(rid_delta=1),  # an answer to another request
    ],
)
def test_master_pid_refuses_answers_that_are_not_ours(
    unix_listener: tuple[str, socket.socket], peer: Callable[[socket.socket], None]
) -> None:
    path, listener = unix_listener
    thread = _serve_once(listener, peer)
    assert mux.master_pid(path) is None
    thread.join(5)


def test_master_pid_oversized_or_cut_off(unix_listener: tuple[str, socket.socket]) -> None:
    path, listener = unix_listener

    def oversized(conn: socket.socket) -> None:
        _read_msg(conn)
        conn.sendall(struct.pack(">I", 10**9))

    thread = _serve_once(listener, oversized)
    assert mux.master_pid(path) is None
    thread.join(5)

    def cut(conn: socket.socket) -> None:
        _read_msg(conn)
        conn.sendall(struct.pack(">I", 8) + b"\x00\x00")  # then closes

    thread = _serve_once(listener, cut)
    assert mux.master_pid(path) is None
    thread.join(5)


def test_master_pid_nothing_there(tmp_path: Path) -> None:
    assert mux.master_pid(str(tmp_path / "none")) is None
    silent = tmp_path / "silent"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(silent))
        listener.listen(1)
        start = time.monotonic()
        assert mux.master_pid(str(silent), timeout=0.3) is None  # a listener that never answers
        assert time.monotonic() - start < 5


# --- httpcheck ---------------------------------------------------------------------------


@pytest.fixture
def tcp_listener() -> Iterator[tuple[int, socket.socket]]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    yield listener.getsockname()[1], listener
    listener.close()


def _http_peer(status: bytes, seen: list[bytes]) -> Callable[[socket.socket], None]:
    def handler(conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        seen.append(data)
        conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")

    return handler


def test_status_ok_sends_the_token_in_a_header_not_the_url(tcp_listener: tuple[int, socket.socket]) -> None:
    port, listener = tcp_listener
    seen: list[bytes] = []
    thread = _serve_once(listener, _http_peer(b"200 OK", seen))
    assert httpcheck.status_ok(port, "/base/", "s3cret", timeout=5)
    thread.join(5)
    request = seen[0].decode()
    assert request.startswith("GET /base/api/status HTTP/1.0\r\n")
    assert "Authorization: token s3cret\r\n" in request
    assert "s3cret" not in request.splitlines()[0]


def test_status_ok_without_a_token_sends_no_header(tcp_listener: tuple[int, socket.socket]) -> None:
    port, listener = tcp_listener
    seen: list[bytes] = []
    thread = _serve_once(listener, _http_peer(b"200 OK", seen))
    assert httpcheck.status_ok(port, "/", "", timeout=5)
    thread.join(5)
    assert b"Authorization" not in seen[0]


def test_a_403_is_not_ready(tcp_listener: tuple[int, socket.socket]) -> None:
    port, listener = tcp_listener
    thread = _serve_once(listener, _http_peer(b"403 Forbidden", []))
    assert not httpcheck.status_ok(port, "/", "old", timeout=5)
    thread.join(5)


def test_nothing_listening() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        assert httpcheck.send(port, "/", "t", timeout=1) is None
        assert not httpcheck.answered_ok(None)
        start = time.monotonic()
        with pytest.raises(JupytunnelError, match=f"127.0.0.1:{port}"):
            httpcheck.wait_status(port, "/", "t", deadline=time.monotonic() + 0.5)
        assert time.monotonic() - start < 5


def test_wait_status_returns_once_the_server_answers(tcp_listener: tuple[int, socket.socket]) -> None:
    port, listener = tcp_listener

    def refuse_then_ok() -> None:
        listener.settimeout(5)
        for status in (b"503 Service Unavailable", b"200 OK"):
            conn, _ = listener.accept()
            with conn:
                _http_peer(status, [])(conn)

    thread = threading.Thread(target=refuse_then_ok, daemon=True)
    thread.start()
    httpcheck.wait_status(port, "/", "t", deadline=time.monotonic() + 10)
    thread.join(5)
