"""Tables: rich on a colour terminal, plain when piped or with NO_COLOR, fitted to the terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

PLAIN = (
    "NAME    HOST                                 TRANSPORT  LAUNCHER\n"
    "aura    aura.example.org                     tcp        nohup\n"
    "broken  INVALID                              -          -\n"
    "uni     compute.some.university.example.edu  socket     tmux\n"
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "cfg" / "profiles"
    folder.mkdir(parents=True)
    (folder / "aura.toml").write_text('host = "aura.example.org"\n')
    (folder / "uni.toml").write_text(
        'host = "compute.some.university.example.edu"\ntransport = "socket"\nlauncher = "tmux"\n'
    )
    (folder / "broken.toml").write_text("host = 1\n")
    # COLUMNS (pytest-xdist exports it) would override the terminal size for rich.
    drop = ("NO_COLOR", "FORCE_COLOR", "TERM", "COLUMNS", "LINES")
    base = {k: v for k, v in os.environ.items() if k not in drop}
    return {**base, "JUPYTUNNEL_CONFIG_DIR": str(tmp_path / "cfg"), "TERM": "xterm-256color"}


def on_terminal(args: list[str], env: dict[str, str], *, columns: int) -> str:
    """Run jupytunnel with stdout on a pseudo-terminal of the given width."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupytunnel", *args], stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    data = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                data += chunk
            elif proc.poll() is not None:
                break
    finally:
        proc.wait(timeout=60)
        os.close(master)
    return data.decode().replace("\r\n", "\n")


def test_piped_output_is_plain(env: dict[str, str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "jupytunnel", "profile", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert out.stdout == PLAIN


def test_terminal_gets_a_rich_table(env: dict[str, str]) -> None:
    out = on_terminal(["profile", "list"], env, columns=120)
    assert "\x1b[" in out  # styled
    assert "─" in out  # rich's header rule
    assert "compute.some.university.example.edu" in out


def test_no_color_on_a_terminal_is_plain(env: dict[str, str]) -> None:
    assert on_terminal(["profile", "list"], {**env, "NO_COLOR": "1"}, columns=120) == PLAIN


def test_a_table_wider_than_the_terminal_fits_and_wide_is_whole(env: dict[str, str]) -> None:
    # Never wrapped into an unreadable block: cells shortened in the middle, columns dropped.
    for columns in (40, 30):
        out = on_terminal(["profile", "list"], env, columns=columns)
        lines = [ln for ln in re.sub(r"\x1b\[[0-9;]*m", "", out).splitlines() if ln]
        assert max(len(ln) for ln in lines) <= columns, out
        assert "comput" in out
        assert "…" in out
    # --wide: every cell whole, as piped output is.
    assert on_terminal(["profile", "list", "--wide"], {**env, "NO_COLOR": "1"}, columns=40) == PLAIN
