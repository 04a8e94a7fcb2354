"""Readiness through the tunnel: ``GET /api/status`` answers 200.

A raw HTTP/1.0 request over a socket: ``http.client`` would pull ``email`` and ``ssl`` into
every connect's start-up (about 25 ms) for one status line.
"""

from __future__ import annotations

import socket
import time
from typing import NamedTuple

from jupytunnel.errors import JupytunnelError
from jupytunnel.net import LOOPBACK

_STATUS_LINE_MAX = 256


def send(port: int, base_url: str, token: str, *, timeout: float, path: str | None = None) -> socket.socket | None:
    """Send the request; the answer is read by ``answered_ok``, so the caller can work while
    it travels through the tunnel. None when the local end does not even accept.
    ``path``: below the base URL; by default ``api/status`` with a token (200 only when the
    token is good) and ``api`` without one (200 from any Jupyter, one that asks for a
    password too: its ``api/status`` answers 403 to a request without credentials)."""
    path = base_url.rstrip("/") + "/" + (path or ("api/status" if token else "api"))
    auth = f"Authorization: token {token}\r\n" if token else ""
    request = f"GET {path} HTTP/1.0\r\nHost: {LOOPBACK}:{port}\r\n{auth}\r\n".encode()
    try:
        sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
    except OSError:
        return None
    try:
        sock.sendall(request)
    except OSError:
        sock.close()
        return None
    return sock


def answered_ok(sock: socket.socket | None) -> bool:
    """Whether the status line of the answer says 200; closes the socket."""
    return status_of(sock) == 200  # noqa: PLR2004


def status_ok(port: int, base_url: str, token: str, *, timeout: float = 2.0) -> bool:
    return answered_ok(send(port, base_url, token, timeout=timeout))


class TokenRefusedError(JupytunnelError):
    """Jupyter answered 401/403 to a token we hold: a token problem, never a time-out."""


def status_of(sock: socket.socket | None) -> int | None:
    """The HTTP status of the answer (None: no answer); closes the socket."""
    if sock is None:
        return None
    head = b""
    try:
        with sock:
            while b"\r\n" not in head and len(head) < _STATUS_LINE_MAX:
                chunk = sock.recv(_STATUS_LINE_MAX)
                if not chunk:
                    break
                head += chunk
    except OSError:
        return None
    return status_code(head)


def code(port: int, base_url: str, token: str, *, timeout: float = 2.0, path: str | None = None) -> int | None:
    return status_of(send(port, base_url, token, timeout=timeout, path=path))


def wait_status(port: int, base_url: str, token: str, *, deadline: float) -> None:
    """Poll until the server answers through the tunnel, or the deadline passes.

    Until then ssh accepts the local connection and drops it when the remote end refuses,
    so a failed request is the normal "not yet", retried quickly. A 401/403 to our token is
    Jupyter itself refusing it: ``TokenRefusedError`` at once.
    """
    delay = 0.02
    while True:
        answer = code(port, base_url, token, timeout=max(0.2, min(5.0, deadline - time.monotonic())))
        if answer == 200:  # noqa: PLR2004
            return
        if answer in (401, 403) and token:
            raise TokenRefusedError(f"Jupyter refused the token (HTTP {answer})")
        if time.monotonic() + delay >= deadline:
            raise JupytunnelError(f"Jupyter did not answer through the tunnel ({LOOPBACK}:{port}) in time")
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def status_code(head: bytes) -> int | None:
    """The status of an HTTP status line (``HTTP/1.1 403 Forbidden`` -> 403), None if none."""
    if not head.startswith(b"HTTP/1."):
        return None
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[1][:3].isdigit():  # noqa: PLR2004
        return None
    return int(parts[1][:3])


class Ask(NamedTuple):
    """One request for ``ask_many``: the local port, the server's base URL, its token."""

    port: int
    base_url: str
    token: str


def ask_many(asks: list[Ask], *, timeout: float) -> list[int | None]:
    """Send every request at once and read the answers as they come (one thread, ``selectors``):
    the HTTP status of each, None where nothing answered within ``timeout`` s.

    The request is ``send``'s: ``api/status`` with a token, ``api`` without.
    """
    import selectors

    results: list[int | None] = [None] * len(asks)
    heads: dict[int, bytes] = {}
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        for i, ask in enumerate(asks):
            sock = send(ask.port, ask.base_url, ask.token, timeout=timeout)
            if sock is None:
                continue
            sock.setblocking(False)  # noqa: FBT003 - the socket API's own flag
            sel.register(sock, selectors.EVENT_READ, i)
            heads[i] = b""
        try:
            while sel.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                for key, _ in sel.select(left):
                    i = key.data
                    conn = key.fileobj
                    assert isinstance(conn, socket.socket)
                    try:
                        chunk = conn.recv(_STATUS_LINE_MAX)
                    except BlockingIOError:
                        continue
                    except OSError:
                        chunk = b""
                    heads[i] += chunk
                    if not chunk or b"\r\n" in heads[i] or len(heads[i]) >= _STATUS_LINE_MAX:
                        results[i] = status_code(heads[i])
                        sel.unregister(conn)
                        conn.close()
        finally:
            for key in list(sel.get_map().values()):
                sel.unregister(key.fileobj)
                key.fileobj.close()  # type: ignore[union-attr]
    return results
