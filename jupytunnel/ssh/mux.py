"""A native ``ssh -O check``: the OpenSSH multiplexing protocol's alive check.

Speaking PROTOCOL.mux directly over the control socket answers in well under a
millisecond, where starting an ``ssh -O check`` process costs several; status of fifty
tunnels and reconnects depend on that. See OpenSSH's PROTOCOL.mux.
"""

from __future__ import annotations

import socket
import struct

MUX_MSG_HELLO = 0x00000001
MUX_C_ALIVE_CHECK = 0x10000004
MUX_S_ALIVE = 0x80000005
SSHMUX_VER = 4
_MAX_MESSAGE = 256 * 1024


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("control socket closed")
        buf += chunk
    return buf


def _recv_message(sock: socket.socket) -> bytes:
    (length,) = struct.unpack(">I", _recv_exact(sock, 4))
    if length > _MAX_MESSAGE:
        raise ConnectionError("oversized mux message")
    return _recv_exact(sock, length)


def _message(*words: int) -> bytes:
    body = struct.pack(f">{len(words)}I", *words)
    return struct.pack(">I", len(body)) + body


def master_pid(control_path: str, *, timeout: float = 2.0) -> int | None:
    """The PID the master reports for itself, or None when nothing answers on the socket."""
    request_id = 1
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(control_path)
            sock.sendall(_message(MUX_MSG_HELLO, SSHMUX_VER) + _message(MUX_C_ALIVE_CHECK, request_id))
            hello = _recv_message(sock)
            if struct.unpack(">I", hello[:4])[0] != MUX_MSG_HELLO:
                return None
            reply = _recv_message(sock)
            kind, rid, pid = struct.unpack(">III", reply[:12])
            if kind != MUX_S_ALIVE or rid != request_id:
                return None
            return int(pid)
    except (OSError, ConnectionError, struct.error):
        return None


def proven_master(control_path: str, *, timeout: float) -> tuple[int, float] | None:
    """(PID, start time) of the master answering on ``control_path``, once psutil proves it
    ours (our uid, that control path in its command line); None otherwise."""
    from jupytunnel import procs

    pid = master_pid(control_path, timeout=timeout)
    created = procs.create_time(pid) if pid else None
    if pid is None or created is None or not procs.is_our_master(pid, created, control_path):
        return None
    return pid, created
