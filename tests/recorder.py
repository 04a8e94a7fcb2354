"""A colleague's listener on a shared host: records what it receives, answers 200 to all.

Run as another user: ``recorder.py PORT``; it prints "ready" and then every request's bytes.
"""

import socket
import sys


def main() -> None:
    with socket.socket() as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", int(sys.argv[1])))
        srv.listen(16)
        print("ready", flush=True)
        srv.settimeout(120)  # bounded: the test ends it long before
        while True:
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                break
            with conn:
                conn.settimeout(5)
                try:
                    data = conn.recv(65536)
                except OSError:
                    continue
                sys.stdout.write(data.decode("latin-1") + "\n----\n")
                sys.stdout.flush()
                conn.sendall(b'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{"started": "x"}\n')


if __name__ == "__main__":
    main()
