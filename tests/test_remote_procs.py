"""Remote processes: stop only what we started, undo what failed (issue 11, 5)."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import JT
from helpers import kill_pid, procs_with, run_json, start_server_by_hand, wait_for, wait_gone

from jupytunnel import remote
from jupytunnel.profiles import Profile
from jupytunnel.remote import launchers
from testsupport.rig import Rig, free_port

pytestmark = pytest.mark.integration


def decoy(rig: Rig) -> subprocess.Popen[bytes]:
    """A kernel-like process (its command line names ipykernel_launcher and a jupyter path)."""
    kernel = rig.home / ".local/share/jupyter/runtime/kernel-decoy.json"
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "ipykernel_launcher", "-f", str(kernel)]
    )


def plant_pid_file(rig: Rig, name: str, text: str) -> Path:
    folder = rig.home / ".local/state/jupytunnel"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{name}.pid"
    path.write_text(text)
    return path


def lstart(pid: int) -> str:
    return subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("kind", ["bare pid", "same start time, other command"])
def test_a_decoy_on_the_recorded_pid_is_never_signalled(rig: Rig, kind: str) -> None:
    proc = decoy(rig)
    try:
        text = f"{proc.pid}\n" if kind == "bare pid" else f"{proc.pid}\n{lstart(proc.pid)}--port=1\n"
        pidfile = plant_pid_file(rig, "decoy", text)
        profile = Profile(name="decoy", host="target", remote_port=1)
        out = rig.ssh("target", launchers.Nohup().abort_script(profile))
        assert out.returncode == 0, out.stderr
        server = remote.ServerInfo(
            pid=proc.pid, port=1, sock=None, base_url="/", token="", root_dir="", version="", classic=False
        )
        pidfile.write_text(text)
        stop = rig.ssh("target", remote.stop_script(profile, server, session=None, multiplexer="nohup"), timeout=60)
        assert stop.returncode == 0, stop.stderr
        assert proc.poll() is None  # the kernel-like process lives
    finally:
        proc.kill()
        proc.wait()


def test_pid_file_records_start_time_and_command_and_goes_with_the_server(rig: Rig, jt: JT) -> None:
    port = free_port()
    jt.profile("pidf", remote_port=port)
    run_json(jt.run("connect", "pidf", "--json"))
    pidfile = rig.home / ".local/state/jupytunnel/pidf.pid"
    pid_line, started, signature = pidfile.read_text().splitlines()
    server_pid = json.loads((jt.state_dir / "tunnels/pidf.json").read_text())["server_pid"]
    assert int(pid_line) == server_pid
    assert started + "\n" == lstart(server_pid)
    assert signature == f"--port={port}"
    assert oct(pidfile.stat().st_mode & 0o777) == "0o600"
    stop = jt.run("server", "stop", "pidf")
    assert stop.returncode == 0, stop.stderr
    assert not psutil.pid_exists(server_pid) or psutil.Process(server_pid).status() == psutil.STATUS_ZOMBIE
    assert not pidfile.exists()


def test_master_without_a_record_is_shown_and_closed(jt: JT, rig: Rig) -> None:
    """A connect SIGKILLed between starting its master and saving the record."""
    port = free_port()
    pid = start_server_by_hand(rig, port)
    try:
        jt.profile("lost", remote_port=port, launcher="none")
        out = run_json(jt.run("connect", "lost", "--json"))
        (jt.state_dir / "tunnels/lost.json").unlink()
        rows = run_json(jt.run("status", "--json"))
        assert [(r["profile"], r["state"], r["pid"], r["control_path"]) for r in rows] == [
            ("lost", "orphan", out["pid"], out["control_path"])
        ]
        closed = jt.run("disconnect", "--all")
        assert closed.returncode == 0, closed.stderr
        assert "lost: disconnected" in closed.stdout
        assert wait_gone(procs_with(out["control_path"])) == []
        assert run_json(jt.run("status", "--json")) == []
    finally:
        kill_pid(pid)


def test_disconnect_stop_server_without_a_tunnel(jt: JT) -> None:
    port = free_port()
    jt.profile("gone", remote_port=port)
    run_json(jt.run("connect", "gone", "--json"))
    server_pid = json.loads((jt.state_dir / "tunnels/gone.json").read_text())["server_pid"]
    assert jt.run("disconnect", "gone").returncode == 0
    assert psutil.pid_exists(server_pid)
    out = jt.run("disconnect", "gone", "--stop-server")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "gone: no tunnel to close; server stopped"
    wait_for(lambda: not psutil.pid_exists(server_pid), 20, "the server to stop")
    assert list(jt.runtime_dir.glob("cm-*")) == []  # the short master is gone too


def test_disconnect_stop_server_on_a_dead_link_gives_up_in_time_and_closes_the_tunnel(jt: JT, rig: Rig) -> None:
    port = free_port()
    pid = start_server_by_hand(rig, port)
    try:
        jt.profile("dead", remote_port=port, launcher="none")
        out = run_json(jt.run("connect", "dead", "--json"))
        master = psutil.Process(out["pid"])
        # The link dies: the master stops answering, and a new connection never gets through.
        master.send_signal(signal.SIGSTOP)
        jt.profile("dead", remote_port=port, launcher="none", proxy_command="sleep 20")
        began = time.monotonic()
        off = jt.run("disconnect", "dead", "--stop-server", "--timeout", "5", timeout=60)
        took = time.monotonic() - began
        assert off.returncode == 1
        assert off.stderr.startswith("jupytunnel: dead: disconnected, but the server was not stopped: ")
        assert len(off.stderr.strip().splitlines()) == 1
        assert took < 25  # bounded by --timeout and the verified teardown, not by ssh
        assert wait_gone([master]) == []
        assert not (jt.state_dir / "tunnels/dead.json").exists()
    finally:
        kill_pid(pid)


def test_waiting_for_the_lock_counts_against_timeout(jt: JT) -> None:
    jt.profile("busy")
    locks = jt.state_dir / "locks"
    locks.mkdir(parents=True, mode=0o700)
    fd = os.open(locks / "busy.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another connect of this profile is busy
        out = jt.run("connect", "busy", "--timeout", "3", timeout=30)
    finally:
        os.close(fd)
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "jupytunnel: timed out after 3 s waiting for another jupytunnel (profile 'busy' is busy)"
    )


@pytest.mark.parametrize("launcher", ["nohup", "tmux"])
def test_a_start_cut_off_leaves_nothing_and_a_retry_succeeds(rig: Rig, jt: JT, launcher: str) -> None:
    """--timeout ends connect during a slow setup line: the remote start script must not go
    on to start Jupyter after we gave up; a retry right after starts exactly one."""
    from helpers import jupyter_on_port

    port = free_port()
    name = f"cut-{launcher}"
    jt.profile(name, remote_port=port, launcher=launcher, setup=["sleep 12"])
    out = jt.run("connect", name, "--timeout", "3", timeout=60)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    time.sleep(14)  # past the slow line: an unstopped start script would launch Jupyter now
    assert jupyter_on_port(port) == []
    assert procs_with(f"jupytunnel-start-{name}") == []
    assert not (rig.home / f".local/state/jupytunnel/{name}.starting").exists()
    jt.profile(name, remote_port=port, launcher=launcher)
    again = run_json(jt.run("connect", name, "--json", "--timeout", "60"))
    try:
        assert again["started_server"] is True
        ports = [json.loads(f.read_text()).get("port") for f in rig.runtime_files()]
        assert ports.count(port) == 1  # exactly one server, not a duplicate
    finally:
        jt.run("server", "stop", name, timeout=60)
