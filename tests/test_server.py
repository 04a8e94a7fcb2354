"""The remote Jupyter server: started, found, reused, stopped; launchers; socket transport."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import psutil
import pytest
from conftest import JT
from helpers import api_status, jupyter_on_port, procs_with, run_json, wait_for, wait_gone

from testsupport.rig import Rig, free_port

pytestmark = pytest.mark.integration


def server_pid(jt: JT, name: str) -> int:
    return int(json.loads((jt.state_dir / "tunnels" / f"{name}.json").read_text())["server_pid"])


def test_cold_start_reuse_and_outlives_disconnect(jt: JT) -> None:
    port = free_port()
    jt.profile("aura", remote_port=port)
    first = run_json(jt.run("connect", "aura", "--json"))
    assert first["started_server"] is True
    assert api_status(first["url"]) == 200
    pid = server_pid(jt, "aura")
    assert [p.pid for p in jupyter_on_port(port)] == [pid]
    log = jt.rig.home / ".local/state/jupytunnel"
    assert stat.S_IMODE(log.stat().st_mode) == 0o700
    # The token is in no process's argv and not in the remote log.
    token = first["url"].split("token=")[1]
    assert procs_with(token) == []
    assert token not in (log / "aura.log").read_text()

    assert jt.run("disconnect", "aura").returncode == 0
    assert psutil.pid_exists(pid)  # the server outlives the tunnel
    again = run_json(jt.run("connect", "aura", "--json"))
    assert again["started_server"] is False
    assert server_pid(jt, "aura") == pid  # reused, not duplicated
    assert api_status(again["url"]) == 200

    listing = run_json(jt.run("server", "list", "aura", "--json"))
    ours = [s for s in listing if s["profile"]]
    assert [(s["pid"], s["port"]) for s in ours] == [(pid, port)]

    logs = jt.run("server", "logs", "aura", "--lines", "5")
    assert logs.returncode == 0
    assert 0 < len(logs.stdout.splitlines()) <= 5

    stop = jt.run("server", "stop", "aura")
    assert stop.returncode == 0, stop.stderr
    wait_for(lambda: jupyter_on_port(port) == [], 20, "server to stop")
    assert "no server running" in jt.run("server", "stop", "aura").stdout


def test_disconnect_stop_server_ends_both(jt: JT) -> None:
    port = free_port()
    jt.profile("aura", remote_port=port, nice=7)
    out = run_json(jt.run("connect", "aura", "--json"))
    master = psutil.Process(out["pid"])
    server = psutil.Process(server_pid(jt, "aura"))
    assert server.nice() == 7
    done = jt.run("disconnect", "aura", "--stop-server")
    assert done.returncode == 0, done.stderr
    assert wait_gone([master, server], timeout=20) == []


def test_server_start_command_and_user_started_server_is_reused(jt: JT) -> None:
    port = free_port()
    jt.profile("aura", remote_port=port)
    started = jt.run("server", "start", "aura")
    assert started.returncode == 0, started.stderr
    assert "started" in started.stdout
    assert "already running" in jt.run("server", "start", "aura").stdout
    assert len(jupyter_on_port(port)) == 1
    out = run_json(jt.run("connect", "aura", "--json"))
    assert out["started_server"] is False
    jt.run("disconnect", "aura", "--stop-server")
    wait_for(lambda: jupyter_on_port(port) == [], 20, "server to stop")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed (CI installs it)")
@pytest.mark.parametrize("name", ["tmx", "tm.x"])
def test_tmux_launcher(rig: Rig, jt: JT, name: str) -> None:
    from jupytunnel.profiles import Profile
    from jupytunnel.remote.launchers import session_name

    session = session_name(Profile(name=name, host="target"))
    port = free_port()
    jt.profile(name, remote_port=port, launcher="tmux")
    out = run_json(jt.run("connect", name, "--json"))
    assert api_status(out["url"]) == 200
    has = rig.ssh("target", f"tmux has-session -t ={session} && echo yes")
    assert has.stdout.strip() == "yes"
    pid = server_pid(jt, name)
    # The token is not left in the tmux server's environment, nor in a file.
    env = rig.ssh("target", "tmux show-environment -g JUPYTER_TOKEN 2>&1; ls ~/.local/state/jupytunnel")
    assert "JUPYTER_TOKEN=" not in env.stdout
    assert ".token" not in env.stdout
    assert jt.run("disconnect", name).returncode == 0
    again = run_json(jt.run("connect", name, "--json"))
    assert again["started_server"] is False
    assert server_pid(jt, name) == pid
    assert jt.run("disconnect", name, "--stop-server").returncode == 0
    wait_for(lambda: jupyter_on_port(port) == [], 20, "server to stop")
    gone = rig.ssh("target", f"tmux has-session -t ={session} 2>/dev/null || echo gone")
    assert gone.stdout.strip() == "gone"


@pytest.mark.skipif(shutil.which("screen") is None, reason="screen not installed (CI installs it)")
def test_screen_launcher(rig: Rig, jt: JT) -> None:
    port = free_port()
    jt.profile("scr", remote_port=port, launcher="screen")
    out = run_json(jt.run("connect", "scr", "--json"))
    assert api_status(out["url"]) == 200
    assert jt.run("disconnect", "scr", "--stop-server").returncode == 0
    wait_for(lambda: jupyter_on_port(port) == [], 20, "server to stop")


def test_socket_transport(rig: Rig, jt: JT) -> None:
    jt.profile("sock", transport="socket")
    out = run_json(jt.run("connect", "sock", "--json"))
    assert api_status(out["url"]) == 200
    sock = rig.home / ".local/state/jupytunnel/sock.sock"
    assert out["remote"] == f"target:{sock}"
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    pid = server_pid(jt, "sock")
    # No TCP port at all on the remote side.
    assert [c for c in psutil.Process(pid).net_connections("tcp") if c.status == psutil.CONN_LISTEN] == []
    listing = run_json(jt.run("server", "list", "sock", "--json"))
    assert [s["sock"] for s in listing if s["profile"]] == [str(sock)]
    assert jt.run("disconnect", "sock").returncode == 0
    again = run_json(jt.run("connect", "sock", "--json"))
    assert again["started_server"] is False
    assert jt.run("disconnect", "sock", "--stop-server").returncode == 0
    wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", 20, "server to stop")


def test_state_files_of_an_older_or_newer_format(rig: Rig, jt: JT) -> None:
    """The remembered server as jupytunnel wrote it before formats had a number is still
    tried first (its socket forwarded from the master's start); one of a newer format is
    ignored (discovery finds the server) and replaced by today's format."""
    jt.profile("sock", transport="socket")
    first = run_json(jt.run("connect", "sock", "--json"))
    assert jt.run("disconnect", "sock").returncode == 0
    path = jt.state_dir / "servers" / "sock.json"
    written = json.loads(path.read_text())
    assert written["version"] == 1
    sock = rig.home / ".local/state/jupytunnel/sock.sock"
    forward = f":{sock}"
    try:
        path.write_text(json.dumps({**written["server"], "route": written["route"]}) + "\n")  # format 0
        old = jt.run("-v", "connect", "sock", "--json")
        assert old.returncode == 0, old.stderr
        masters = [line for line in old.stderr.splitlines() if " -M " in line]
        assert any(forward in line for line in masters), old.stderr  # the remembered socket, at once
        assert json.loads(old.stdout)["url"] == first["url"]
        assert jt.run("disconnect", "sock").returncode == 0
        path.write_text(json.dumps({**written, "version": 2}) + "\n")
        newer = jt.run("-v", "connect", "sock", "--json")
        assert newer.returncode == 0, newer.stderr
        masters = [line for line in newer.stderr.splitlines() if " -M " in line]
        assert masters and not any(forward in line for line in masters), newer.stderr  # not trusted
        assert json.loads(newer.stdout)["started_server"] is False  # discovery found it
        assert json.loads(path.read_text()) == written  # replaced, in today's format
    finally:
        assert jt.run("disconnect", "sock", "--stop-server").returncode == 0


@pytest.mark.parametrize(
    ("keys", "fragment"),
    [
        ({"jupyter": "no-such-jupyter lab"}, "command not found on the remote: no-such-jupyter"),
        ({"setup": ["true", "exit 1"]}, "setup line 2 failed: exit 1"),
        ({"setup": ["false"], "launcher": "tmux"}, "setup line 1 failed: false"),
        ({"jupyter": "jupyter server --no-such-flag-xyz"}, "Jupyter failed to start on target"),
    ],
)
def test_failing_start_leaves_nothing(jt: JT, keys: dict[str, object], fragment: str) -> None:
    if keys.get("launcher") == "tmux" and shutil.which("tmux") is None:
        pytest.skip("tmux not installed")
    port = free_port()
    jt.profile("bad", remote_port=port, **keys)
    out = jt.run("connect", "bad", "--timeout", "40")
    assert out.returncode == 1
    assert fragment in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr
    assert jupyter_on_port(port) == []
    assert not (jt.state_dir / "tunnels" / "bad.json").exists()
    assert list(jt.runtime_dir.glob("cm-*")) == []
    assert procs_with(str(jt.runtime_dir)) == []


def test_remote_port_taken_names_the_failure(rig: Rig, jt: JT) -> None:
    import socket

    with socket.socket() as blocker:  # the rig's remote is this machine
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        jt.profile("busy", remote_port=port)
        out = jt.run("connect", "busy", "--timeout", "40")
    assert out.returncode == 1
    assert out.stderr == (
        f"jupytunnel: remote port {port} on target is already in use (another server, maybe another user's); "
        'set remote_port = "auto" in profile \'busy\' to pick a free one, or transport = "socket"\n'
    )
    assert not (jt.state_dir / "tunnels" / "busy.json").exists()
    assert procs_with(str(jt.runtime_dir)) == []
    assert jupyter_on_port(port) == []


def test_workdir_injection_stays_one_directory(rig: Rig, jt: JT) -> None:
    canary = rig.home / "canary"
    canary.write_text("still here")
    port = free_port()
    jt.profile("inj", remote_port=port, workdir="~/data; touch ~/pwned; rm -rf ~/canary")
    out = jt.run("connect", "inj", "--timeout", "30")
    assert out.returncode == 1
    assert "cannot cd to workdir" in out.stderr
    assert canary.read_text() == "still here"
    assert not (rig.home / "pwned").exists()
    assert jupyter_on_port(port) == []


def test_workdir_with_spaces(rig: Rig, jt: JT) -> None:
    folder = rig.home / "my notebooks"
    folder.mkdir(exist_ok=True)
    port = free_port()
    jt.profile("spc", remote_port=port, workdir="~/my notebooks")
    run_json(jt.run("connect", "spc", "--json"))
    listing = run_json(jt.run("server", "list", "spc", "--json"))
    assert [Path(s["root_dir"]) for s in listing if s["profile"]] == [folder]
    jt.run("disconnect", "spc", "--stop-server")
    wait_for(lambda: jupyter_on_port(port) == [], 20, "server to stop")


def test_setup_lines_take_effect(rig: Rig, jt: JT) -> None:
    """A setup line moves the runtime dir: only the setup environment can find the server,
    through the `jupyter server list --json` fallback."""
    port = free_port()
    jt.profile("env", remote_port=port, setup=['export JUPYTER_RUNTIME_DIR="$HOME/custom-runtime"'])
    out = run_json(jt.run("connect", "env", "--json"))
    assert api_status(out["url"]) == 200
    assert list((rig.home / "custom-runtime").glob("jpserver-*.json"))
    jt.run("disconnect", "env")
    again = run_json(jt.run("connect", "env", "--json"))
    assert again["started_server"] is False
    jt.run("disconnect", "env", "--stop-server")
    wait_for(lambda: jupyter_on_port(port) == [], 20, "server to stop")


def test_launcher_none_says_how_to_start(jt: JT) -> None:
    port = free_port()
    jt.profile("manual", remote_port=port, launcher="none")
    out = jt.run("connect", "manual")
    assert out.returncode == 1
    assert f"launcher is 'none': start it there (for example: jupyter server --no-browser --port={port})" in out.stderr
    assert "server start" not in out.stderr
    assert jt.run("server", "start", "manual").returncode == 1
