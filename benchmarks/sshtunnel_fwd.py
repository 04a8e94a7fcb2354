"""An sshtunnel (paramiko) local forward, run with the benchmark venv's Python.

Prints ``ready LOCAL_PORT`` once the forward listens, and holds it until stdin closes.

Usage: python sshtunnel_fwd.py SSH_PORT USER KEY_FILE REMOTE_PORT
"""

from __future__ import annotations

import sys

import sshtunnel


def main() -> None:
    ssh_port, user, key, remote_port = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    forwarder = sshtunnel.SSHTunnelForwarder(
        ("127.0.0.1", int(ssh_port)),
        ssh_username=user,
        ssh_pkey=key,
        allow_agent=False,
        host_pkey_directories=[],
        ssh_config_file=None,
        remote_bind_address=("127.0.0.1", int(remote_port)),
        local_bind_address=("127.0.0.1", 0),
    )
    forwarder.start()
    try:
        print(f"ready {forwarder.local_bind_port}", flush=True)
        sys.stdin.read()
    finally:
        forwarder.stop()


if __name__ == "__main__":
    main()
