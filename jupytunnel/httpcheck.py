"""Readiness through the tunnel: ``GET /api/status`` answers 200.

A raw HTTP/1.0 request over a socket: ``http.client`` would pull ``email`` and ``ssl`` into
every connect's start-up (about 25 ms) for one status line.
"""

from __future__ import annotations

import socket
import time

from jupytunnel.errors import JupytunnelError

_OK = (b"HTTP/1.0 200 ", b"HTTP/1.1 200 ")
_STATUS_LINE_MAX = 256


def send(port: int, base_url: str, token: str, *, timeout: float) -> socket.socket | None:
    """Send the request; the answer is read by ``answered_ok``, so the caller can work while
    it travels through the tunnel. None when the local end does not even accept."""
    path = base_url.rstrip("/") + "/api/status"
    auth = f"Authorization: token {token}\r\n" if token else ""
    request = f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n{auth}\r\n".encode()
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
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
    if sock is None:
        return False
    head = b""
    try:
        with sock:
            while b"\r\n" not in head and len(head) < _STATUS_LINE_MAX:
                chunk = sock.recv(_STATUS_LINE_MAX)
                if not chunk:
                    break
                head += chunk
    except OSError:
        return False
    return head.startswith(_OK)


def status_ok(port: int, base_url: str, token: str, *, timeout: float = 2.0) -> bool:
    return answered_ok(send(port, base_url, token, timeout=timeout))


def wait_status(port: int, base_url: str, token: str, *, deadline: float) -> None:
    """Poll until the server answers through the tunnel, or the deadline passes.

    Until then ssh accepts the local connection and drops it when the remote end refuses,
    so a failed request is the normal "not yet", retried quickly.
    """
    delay = 0.02
    while True:
        if status_ok(port, base_url, token, timeout=max(0.2, min(5.0, deadline - time.monotonic()))):
            return
        if time.monotonic() + delay >= deadline:
            raise JupytunnelError(f"Jupyter did not answer through the tunnel (127.0.0.1:{port}) in time")
        time.sleep(delay)
        delay = min(delay * 2, 0.25)
