"""A dry run is the real code with the runner recording instead of running: each command here
runs for real with -v (every command on stderr, ``+ ``) and with --dry-run, and the two command
sequences are compared. A dry run leaves nothing: no file, no lock, no socket, no process."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import JT
from helpers import dry_run_commands, kill_pid, procs_with, run_json

from testsupport.rig import Rig, free_port

pytestmark = pytest.mark.integration

_DOC_START = re.compile(r"^(?:\+ )?\w+=\$\(cat <<'(\w+)'$")
# Where a dry run ends because the next step depends on an answer it does not get.
DRY_END = "# the dry run ends here"


def echoed(stderr: str) -> list[list[str]]:
    """The commands -v echoed (``+ `` lines, with their here-documents), as argv lists; the
    other lines on stderr (messages) are left out."""
    kept: list[str] = []
    tag = ""
    command_follows = False  # after its scripts' here-documents, the command line itself
    for line in stderr.splitlines():
        if tag:
            kept.append(line)
            tag = "" if line == tag else tag
        elif (start := _DOC_START.match(line)) is not None:
            kept.append(line)
            tag = start.group(1)
        elif line.startswith(")"):
            kept.append(line)
            command_follows = True
        elif line.startswith("+ ") or command_follows:
            kept.append(line)
            command_follows = False
    return dry_run_commands("\n".join(kept))


def normalise(commands: list[list[str]], *, home: str = "", pid: int | None = None) -> list[list[str]]:
    """What must differ between two runs: a temporary master's socket is named for its PID;
    what a dry run cannot know it says with placeholders (the remote home, a server's PID)."""
    from jupytunnel.remote.server import DRY_HOME

    def word(w: str) -> str:
        w = re.sub(r"(/cm-[0-9a-f]+)\.t\d+$", r"\1.tPID", w)
        w = w.replace(home, DRY_HOME) if home else w
        return re.sub(rf"\b{pid}\b", "0", w) if pid is not None else w

    return [[word(w) for w in argv] for argv in commands]


class Snapshot(NamedTuple):
    """Every file and folder under the test's folders, and the processes that name the
    runtime folder (our masters)."""

    files: list[str]
    procs: list[int]


def snapshot(jt: JT) -> Snapshot:
    folders = [f for f in (jt.state_dir, jt.runtime_dir, jt.config_dir) if f.exists()]
    return Snapshot(
        sorted(str(p) for folder in folders for p in folder.rglob("*")),
        sorted(p.pid for p in procs_with(str(jt.runtime_dir))),
    )


def both_ways(
    jt: JT, *args: str, env: dict[str, str] | None = None, pid: Callable[[], int | None] = lambda: None
) -> tuple[list[list[str]], list[list[str]], str]:
    """The dry run first (it must leave everything as it was), then the real run with -v:
    their commands, normalised (``pid``: the server's, known once the real run is done), and
    the dry run's output."""
    before = snapshot(jt)
    dry = jt.run("--dry-run", *args, env=env)
    assert dry.returncode == 0, dry.stderr
    assert snapshot(jt) == before  # nothing written, no lock, no socket, no process
    real = jt.run("-v", *args, env=env)
    assert real.returncode == 0, real.stderr
    home, known = str(jt.rig.home), pid()
    return (
        normalise(echoed(real.stderr), home=home, pid=known),
        normalise(dry_run_commands(dry.stdout), home=home, pid=known),
        dry.stdout,
    )


def shown_before_the_end(dry_out: str) -> list[list[str]]:
    """The commands a dry run showed before it ended (see ``DRY_END``)."""
    return normalise(dry_run_commands(dry_out.split(DRY_END, 1)[0]))


def collapse(commands: list[list[str]]) -> list[list[str]]:
    """A poll repeated until the server answers is one step (a dry run takes it to answer at once)."""
    return [argv for i, argv in enumerate(commands) if i == 0 or argv != commands[i - 1]]


def route(rig: Rig, kind: str) -> dict[str, object]:
    return {"jump": ["gateway"]} if kind == "jump" else {}


@pytest.mark.parametrize("kind", ["direct", "jump"])
def test_connect_to_a_running_server(rig: Rig, jt: JT, server: int, kind: str) -> None:
    """The master whose first session finds the server, with its forward: nothing else runs.
    The dry run takes the discovery to find no server: with launcher 'none' that is its end."""
    jt.profile("aura", remote_port=server, launcher="none", **route(rig, kind))
    real, dry, out = both_ways(jt, "connect", "aura")
    assert len(real) == 1
    assert real[0][real[0].index("-L") + 1].endswith(f":127.0.0.1:{server}")
    assert dry == real
    assert DRY_END in out
    assert "no Jupyter server for profile 'aura'" in out.split(DRY_END, 1)[1]


def test_connect_socket_transport_to_the_remembered_server(jt: JT) -> None:
    """A socket's server met before is tried first through the master's forward: one command
    (the master with its -L to the socket), then one request with the remembered token."""
    jt.profile("sock", transport="socket")
    first = run_json(jt.run("connect", "sock", "--json"))
    try:
        assert first["started_server"] is True
        assert jt.run("disconnect", "sock").returncode == 0
        real, dry, out = both_ways(jt, "connect", "sock")
        assert len(real) == 1
        assert real[0][real[0].index("-L") + 1].endswith("/.local/state/jupytunnel/sock.sock")
        assert dry == real
        assert "remembered server's token" in out
        assert "# the URL: http://127.0.0.1:" in out
        assert first["url"].split("token=")[1] not in out  # the dry run shows no token
    finally:
        jt.run("disconnect", "sock", "--stop-server", timeout=60)


@pytest.mark.parametrize("remote_port", ["auto", "fixed"])
def test_connect_that_starts_the_server(jt: JT, remote_port: str) -> None:
    """Nothing runs on the remote: the discovery finds none and the server is started. The
    dry run shows the same commands; what the real run then learns from the started server
    (its port, when it answers) the dry run can only assume."""
    jt.profile("fresh", remote_port="auto" if remote_port == "auto" else free_port())
    try:
        record = jt.state_dir / "tunnels" / "fresh.json"
        real, dry, out = both_ways(jt, "connect", "fresh", pid=lambda: json.loads(record.read_text())["server_pid"])
        real = collapse(real)
        if remote_port == "auto":  # the port the server took, which a dry run takes to be Jupyter's default
            from jupytunnel.remote.server import JUPYTER_DEFAULT_PORT

            took = json.loads(record.read_text())["remote"].rsplit(":", 1)[1]
            real = [[re.sub(rf":{took}$", f":{JUPYTER_DEFAULT_PORT}", w) for w in argv] for argv in real]
        shown = shown_before_the_end(out)
        # The master with the discovery, then the start script (with no forward yet for an
        # automatic port: it is learnt from the server).
        assert len(real) >= 2
        assert shown[:2] == real[:2]
        assert ("-L" in real[0]) == (remote_port == "fixed")
        assert DRY_END not in out  # the start's answer is assumed: the dry run goes to the end
        assert collapse(dry) == real
    finally:
        jt.run("disconnect", "fresh", "--stop-server", timeout=60)


def test_disconnect_and_all(jt: JT, server: int) -> None:
    jt.profile("aura", remote_port=server, launcher="none")
    jt.profile("bora", remote_port=server, launcher="none")
    for name in ("aura", "bora"):
        run_json(jt.run("connect", name, "--json"))
    real, dry, out = both_ways(jt, "disconnect", "aura")
    assert [argv[-3:] for argv in real] == [["-O", "exit", "target"]]
    assert dry == real
    assert "SIGTERM, SIGKILL" in out
    assert "# aura: disconnected" in out
    run_json(jt.run("connect", "aura", "--json"))
    real, dry, out = both_ways(jt, "disconnect", "--all")
    assert len(real) == 2
    assert dry == real
    assert run_json(jt.run("status", "--json")) == []


def test_disconnect_stop_server(rig: Rig, jt: JT) -> None:
    """The server is found through the tunnel's master and stopped, then the master goes."""
    jt.profile("stop", remote_port=free_port())
    out = run_json(jt.run("connect", "stop", "--json"))
    assert out["started_server"] is True
    pid = json.loads((jt.state_dir / "tunnels" / "stop.json").read_text())["server_pid"]
    try:
        real, dry, _ = both_ways(jt, "disconnect", "stop", "--stop-server", pid=lambda: pid)
        assert real[-1][-3:] == ["-O", "exit", "target"]
        assert len(real) == 3  # the discovery, the stop script, the master's exit
        assert dry[0] == real[0]
        assert dry[-1] == real[-1]
        assert dry == real
    finally:
        kill_pid(pid)


def test_open(jt: JT, server: int, tmp_path: Path) -> None:
    """No command: the tunnel is checked in-process and the browser gets a private page."""
    jt.profile("aura", remote_port=server, launcher="none")
    run_json(jt.run("connect", "aura", "--json"))
    log = tmp_path / "browser.log"
    recorder = tmp_path / "browser"
    recorder.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> {log}\n')
    recorder.chmod(0o755)
    env = {**jt.env, "BROWSER": str(recorder)}
    page = jt.runtime_dir / "open-aura.html"
    dry = jt.run("--dry-run", "open", "aura", env=env)
    assert dry.returncode == 0, dry.stderr
    assert dry_run_commands(dry.stdout) == []
    assert f"in the browser ($BROWSER honoured), through the private page {page}" in dry.stdout
    assert "token=…" in dry.stdout
    assert not log.exists()
    assert not page.exists()
    real = jt.run("-v", "open", "aura", env=env)
    assert real.returncode == 0, real.stderr
    assert echoed(real.stderr) == []
    assert log.read_text().strip() == page.as_uri()
