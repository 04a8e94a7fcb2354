"""A tiny HTTP server on the target side that jupytunnel takes for a Jupyter server.

It writes a ``jpserver-PID.json`` runtime file (what jupytunnel's discovery reads), answers
``GET /api/status`` with 200 for its token, and streams ``GET /payload?size=N`` bytes of
zeros: the throughput benchmark downloads through each tunnel from here, so that only the
tunnel, not a Jupyter handler, is in the data path. Loopback only; it exits on SIGTERM or
when its stdin closes, removing its runtime file.

Usage: python payload_server.py RUNTIME_DIR
"""

from __future__ import annotations

import http.server
import json
import os
import secrets
import signal
import sys
import threading
import urllib.parse
from pathlib import Path

CHUNK = b"\0" * (1 << 20)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    token = ""

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        given = query.get("token", [""])[0] or self.headers.get("Authorization", "").removeprefix("token ")
        if not secrets.compare_digest(given, self.token):
            self._send(403, b'{"message": "Forbidden"}')
            return
        if url.path == "/api/status":
            self._send(200, b'{"started": "payload", "connections": 0, "kernels": 0}')
        elif url.path == "/payload":
            size = int(query.get("size", ["0"])[0])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            left = size
            view = memoryview(CHUNK)
            while left > 0:
                n = min(left, len(CHUNK))
                self.wfile.write(view[:n])
                left -= n
        else:
            self._send(404, b"{}")

    def _send(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


def main() -> None:
    runtime_dir = Path(sys.argv[1])
    runtime_dir.mkdir(parents=True, exist_ok=True)
    Handler.token = secrets.token_hex(24)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    info = runtime_dir / f"jpserver-{os.getpid()}.json"
    info.write_text(
        json.dumps(
            {
                "base_url": "/",
                "hostname": "127.0.0.1",
                "password": False,
                "pid": os.getpid(),
                "port": port,
                "root_dir": str(runtime_dir),
                "secure": False,
                "sock": "",
                "token": Handler.token,
                "url": f"http://127.0.0.1:{port}/",
                "version": "payload-server",
            },
            indent=1,
        )
    )

    def stop(*_: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    threading.Thread(target=lambda: (sys.stdin.read(), stop()), daemon=True).start()
    print(f"ready {port} {Handler.token}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        info.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
