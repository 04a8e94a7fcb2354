"""Readiness through the tunnel: ``GET /api/status`` answers 200."""

from __future__ import annotations

import http.client
import time

from jupytunnel.errors import JupytunnelError


def status_ok(port: int, base_url: str, token: str, *, timeout: float = 2.0) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Authorization": f"token {token}"} if token else {}
        conn.request("GET", base_url.rstrip("/") + "/api/status", headers=headers)
        response = conn.getresponse()
        response.read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
    return response.status == 200  # noqa: PLR2004


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
