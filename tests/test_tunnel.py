"""Tunnel lifecycle against the real rig: connect, status, disconnect, open, watch."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from conftest import JT
from helpers import (
    api_status,
    dry_run_commands,
    kill_pid,
    procs_with,
    run_json,
    start_server_by_hand,
    wait_for,
    wait_gone,
)

from testsupport.rig import SSH, Rig, free_port

pytestmark = pytest.mark.integration


def route_keys(rig: Rig, route: str) -> dict[str, object]:
    if route == "jump":
        return {"jump": ["gateway"]}
    if route == "proxy_command":
        return {"proxy_command": f"{SSH} -F {rig.ssh_config} -W %h:%p gateway"}
    return {}


@pytest.mark.parametrize("route", ["direct", "jump", "proxy_command"])
def test_connect_status_disconnect(rig: Rig, jt: JT, server: int, route: str) -> None:
    jt.profile("aura", remote_port=server, launcher="none", **route_keys(rig, route))
    out = run_json(jt.run("connect", "aura", "--json"))
    assert set(out) >= {"profile", "url", "local_port", "remote", "pid", "control_path"}
    # A bare `jupyter server` (what the rig runs) serves neither /lab nor /tree: the URL is its root.
    assert out["url"].startswith(f"http://127.0.0.1:{out['local_port']}/?token=")
    assert api_status(out["url"]) == 200
    # The local listener binds 127.0.0.1 only, never all interfaces.
    listeners = [c.laddr for c in psutil.Process(out["pid"]).net_connections("tcp") if c.status == psutil.CONN_LISTEN]
    assert listeners
    assert {a.ip for a in listeners} == {"127.0.0.1"}
    record = json.loads((jt.state_dir / "tunnels" / "aura.json").read_text())
    assert record["pid"] == out["pid"]
    assert oct((jt.state_dir / "tunnels" / "aura.json").stat().st_mode & 0o777) == "0o600"

    status = run_json(jt.run("status", "--json"))
    assert [(s["profile"], s["state"], s["pid"]) for s in status] == [("aura", "up", out["pid"])]
    assert "token=" in status[0]["url"]
    assert out["url"].split("token=")[1] not in status[0]["url"]  # hidden unless asked
    shown = run_json(jt.run("status", "--json", "--show-token"))
    assert shown[0]["url"] == out["url"]

    off = jt.run("disconnect", "aura")
    assert off.returncode == 0, off.stderr
    assert wait_gone(procs_with(out["control_path"])) == []
    assert not Path(out["control_path"]).exists()
    assert run_json(jt.run("status", "--json")) == []
    again = jt.run("disconnect", "aura")
    assert again.returncode == 0
    assert "no tunnel" in again.stdout


def test_reconnect_reuses_live_tunnel(jt: JT, server: int) -> None:
    jt.profile("aura", remote_port=server, launcher="none")
    first = run_json(jt.run("connect", "aura", "--json"))
    second = run_json(jt.run("connect", "aura", "--json"))
    assert second["pid"] == first["pid"]
    assert second["url"] == first["url"]
    assert second["reused"] is True


def test_explicit_port_taken_fails_and_auto_picks_another(jt: JT, server: int) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        jt.profile("aura", remote_port=server, launcher="none", local_port=taken)
        out = jt.run("connect", "aura")
        assert out.returncode == 1
        assert str(taken) in out.stderr
        assert "Traceback" not in out.stderr
        assert not (jt.state_dir / "tunnels" / "aura.json").exists()
        assert list(jt.runtime_dir.glob("cm-*")) == []
        assert procs_with(str(jt.runtime_dir)) == []
        # auto: the remote port (taken here: the rig's remote is this machine) -> another one
        jt.profile("aura", remote_port=server, launcher="none", local_port="auto")
        auto = run_json(jt.run("connect", "aura", "--json"))
        assert auto["local_port"] not in (taken, server)
        assert api_status(auto["url"]) == 200


def test_concurrent_connects_end_with_one_tunnel(jt: JT, server: int) -> None:
    jt.profile("aura", remote_port=server, launcher="none")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: jt.run("connect", "aura", "--json"), range(8)))
    outs = [run_json(r) for r in results]
    assert len({o["url"] for o in outs}) == 1
    assert len({o["pid"] for o in outs}) == 1
    masters = [p for p in procs_with(outs[0]["control_path"]) if p.status() != psutil.STATUS_ZOMBIE]
    assert [p.pid for p in masters] == [outs[0]["pid"]]
    assert sorted(p.name for p in (jt.state_dir / "tunnels").glob("*.json")) == ["aura.json"]


def test_sigkilled_master_is_replaced(jt: JT, server: int) -> None:
    jt.profile("aura", remote_port=server, launcher="none")
    first = run_json(jt.run("connect", "aura", "--json"))
    os.kill(first["pid"], signal.SIGKILL)
    wait_for(
        lambda: not psutil.pid_exists(first["pid"]) or psutil.Process(first["pid"]).status() == "zombie",
        10,
        "master death",
    )
    assert Path(first["control_path"]).exists()  # SIGKILL leaves the socket behind
    assert run_json(jt.run("status", "--json"))[0]["state"] == "down"
    second = run_json(jt.run("connect", "aura", "--json"))
    assert second["pid"] != first["pid"]
    assert api_status(second["url"]) == 200
    check = subprocess.run(
        [SSH, "-S", second["control_path"], "-O", "check", "target"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert f"pid={second['pid']}" in check.stderr  # multiplexing works: not "disabling multiplexing"


def test_disconnect_never_touches_decoys_or_recycled_pids(jt: JT, server: int) -> None:
    jt.profile("aura", remote_port=server, launcher="none")
    jt.profile("bora", remote_port=server, launcher="none")
    real = run_json(jt.run("connect", "aura", "--json"))
    real_master = psutil.Process(real["pid"])
    ctl = real["control_path"]
    # A decoy whose command line imitates our master exactly (but is not it).
    decoy = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "ssh", "-N", "-f", "-M", "-S", ctl, "target"]
    )
    # A record whose PID now belongs to another process: the decoy itself, same uid, our
    # control path in its command line. Only the create time tells it apart.
    record = json.loads((jt.state_dir / "tunnels" / "aura.json").read_text())
    record.update(profile="bora", pid=decoy.pid, control_path=ctl)
    (jt.state_dir / "tunnels" / "bora.json").write_text(json.dumps(record))
    # And one whose PID is a bystander with nothing of ours in its command line.
    bogus_pid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    record.update(profile="cora", pid=bogus_pid.pid, create_time=psutil.Process(bogus_pid.pid).create_time())
    (jt.state_dir / "tunnels" / "cora.json").write_text(json.dumps(record))
    try:
        out = jt.run("disconnect", "--all")
        assert out.returncode == 0, out.stderr
        assert decoy.poll() is None
        assert bogus_pid.poll() is None
        assert wait_gone([real_master]) == []
        assert not (jt.state_dir / "tunnels" / "bora.json").exists()
        assert not (jt.state_dir / "tunnels" / "cora.json").exists()
    finally:
        decoy.kill()
        bogus_pid.kill()
        decoy.wait()
        bogus_pid.wait()


def test_no_server_found_leaves_nothing(jt: JT) -> None:
    jt.profile("aura", remote_port=free_port())
    out = jt.run("connect", "aura", "--no-start")
    assert out.returncode == 1
    assert "jupytunnel server start aura" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert list(jt.runtime_dir.glob("cm-*")) == []
    assert procs_with(str(jt.runtime_dir)) == []
    assert not (jt.state_dir / "tunnels" / "aura.json").exists()


def test_unknown_host_is_ssh_message_not_traceback(jt: JT) -> None:
    jt.profile("aura", host="no-such-host.invalid")
    out = jt.run("connect", "aura", "--timeout", "20")
    assert out.returncode == 1
    assert "no-such-host.invalid" in out.stderr
    assert "Traceback" not in out.stderr


def test_dry_run_runs_nothing(jt: JT, server: int, tmp_path: Path) -> None:
    jt.profile("aura", remote_port=server, jump=["gateway"], setup=["module load x"])
    calls = tmp_path / "calls"
    spy = tmp_path / "ssh"
    spy.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 1\n')
    spy.chmod(0o755)
    out = jt.run("--dry-run", "connect", "aura", env={**jt.env, "JUPYTUNNEL_SSH": str(spy)})
    assert out.returncode == 0, out.stderr
    commands = dry_run_commands(out.stdout)
    assert commands[0][:6] == [str(spy), "-F", str(jt.rig.ssh_config), "-T", "-M", "-S"]
    assert all(words[0] == str(spy) for words in commands)
    assert not calls.exists()  # nothing ran
    assert not (jt.state_dir / "tunnels").exists()


def test_open_uses_browser_without_token_in_argv(jt: JT, server: int, tmp_path: Path) -> None:
    jt.profile("aura", remote_port=server, launcher="none")
    log = tmp_path / "browser.log"
    recorder = tmp_path / "browser"
    recorder.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> {log}\n')
    recorder.chmod(0o755)
    env = {**jt.env, "BROWSER": str(recorder)}
    missing = jt.run("open", "aura", env=env)
    assert missing.returncode == 1
    assert "jupytunnel connect aura" in missing.stderr
    out = jt.run("connect", "aura", "--json", "--no-browser", env=env)
    url = run_json(out)["url"]
    assert not log.exists()
    opened = jt.run("open", "aura", env=env)
    assert opened.returncode == 0, opened.stderr
    argv = log.read_text().split()
    assert len(argv) == 1
    token = url.split("token=")[1]
    assert token not in argv[0]  # the browser gets a private redirect file, not the token
    page = Path(argv[0].removeprefix("file://"))
    assert url in page.read_text()
    assert oct(page.stat().st_mode & 0o777) == "0o600"


def test_browser_opens_on_connect(jt: JT, server: int, tmp_path: Path) -> None:
    jt.profile("aura", remote_port=server, launcher="none", browser=True)
    log = tmp_path / "browser.log"
    recorder = tmp_path / "browser"
    recorder.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> {log}\n')
    recorder.chmod(0o755)
    out = jt.run("connect", "aura", env={**jt.env, "BROWSER": str(recorder)})
    assert out.returncode == 0, out.stderr
    assert log.read_text().startswith("file://")
    assert jt.run("connect", "aura", "--no-browser", env={**jt.env, "BROWSER": str(recorder)}).returncode == 0
    assert len(log.read_text().splitlines()) == 1


def test_target_down_then_back(rig: Rig, jt: JT, server: int) -> None:
    jt.profile(
        "aura", remote_port=server, launcher="none", ssh_options={"ServerAliveInterval": 1, "ServerAliveCountMax": 2}
    )
    first = run_json(jt.run("connect", "aura", "--json"))
    rig.target.kill()
    try:
        wait_for(lambda: run_json(jt.run("status", "--json"))[0]["state"] == "down", 15, "status down")
        failed = jt.run("connect", "aura", "--timeout", "10")
        assert failed.returncode == 1
        assert "Traceback" not in failed.stderr
    finally:
        rig.target.start()
    server_back = server
    if not any(p for p in procs_with(f"--port={server_back}")):
        pytest.fail("the Jupyter server died with sshd; it should outlive it (nohup)")
    second = run_json(jt.run("connect", "aura", "--json"))
    assert second["pid"] != first["pid"]
    assert api_status(second["url"]) == 200


def test_watch_reconnects_and_ctrl_c_closes(jt: JT, server: int) -> None:
    jt.profile("aura", remote_port=server, launcher="none")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupytunnel", "connect", "aura", "--watch", "--no-browser"],
        env=jt.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        first = json.loads((jt.state_dir / "tunnels" / "aura.json").read_text())["pid"]
        os.kill(first, signal.SIGKILL)  # the tunnel drops

        def reconnected() -> bool:
            try:
                pid = json.loads((jt.state_dir / "tunnels" / "aura.json").read_text())["pid"]
            except (OSError, ValueError):
                return False
            return pid != first and api_status(url) == 200

        wait_for(reconnected, 30, "--watch to reconnect")
        second = psutil.Process(json.loads((jt.state_dir / "tunnels" / "aura.json").read_text())["pid"])
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130  # Ctrl-C, as the README's exit codes say
        assert wait_gone([second]) == []
        assert not (jt.state_dir / "tunnels" / "aura.json").exists()
        _, err = proc.communicate(timeout=10)
        assert "Traceback" not in err
        assert "up again after" in err
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_status_without_tunnels(jt: JT) -> None:
    out = jt.run("status", timeout=30)
    assert out.returncode == 0
    assert out.stdout == "no tunnels\n"
    assert run_json(jt.run("status", "--json")) == []


def test_reuse_notices_a_stopped_server(rig: Rig, jt: JT) -> None:
    port = free_port()
    pid = start_server_by_hand(rig, port)
    jt.profile("aura", remote_port=port, launcher="none")
    first = run_json(jt.run("connect", "aura", "--json"))
    kill_pid(pid)
    again = jt.run("connect", "aura")
    assert again.returncode == 1
    assert "launcher is 'none'" in again.stderr
    assert wait_gone(procs_with(first["control_path"])) == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["connect", "aura", "--timeout", "nan"], "--timeout"),
        (["connect", "aura", "--timeout", "inf"], "--timeout"),
        (["disconnect", "a/b"], "invalid profile name"),
        (["status", "../x"], "invalid profile name"),
        (["open", "../x"], "invalid profile name"),
        (["server", "start", "aura", "--timeout", "nan"], "--timeout"),
    ],
)
def test_bad_names_and_timeouts_are_one_line(jt: JT, args: list[str], fragment: str) -> None:
    jt.profile("aura")
    out = jt.run(*args, timeout=30)
    assert out.returncode == 2
    assert fragment in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_damaged_records_are_ignored(jt: JT) -> None:
    folder = jt.state_dir / "tunnels"
    folder.mkdir(parents=True)
    (folder / "a.json").write_text('{"pid": "12", "control_path": 5}')
    (folder / "b.json").write_bytes(b"\xff\x00junk")
    (folder / "c.json").write_text("[" * 100000)
    out = jt.run("status", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []
    assert jt.run("disconnect", "--all").returncode == 0


def test_remembered_server_replaced_by_another(rig: Rig, jt: JT) -> None:
    """connect tries the server it met last (its token); a new server on that port, with a
    new token, answers 403 to that, and discovery finds the new one."""
    port = free_port()
    first_pid = start_server_by_hand(rig, port)
    jt.profile("aura", remote_port=port, launcher="none")
    first = run_json(jt.run("connect", "aura", "--json"))
    remembered = jt.state_dir / "servers" / "aura.json"
    assert oct(remembered.stat().st_mode & 0o777) == "0o600"
    assert jt.run("disconnect", "aura").returncode == 0
    again = run_json(jt.run("connect", "aura", "--json"))  # the remembered one, no discovery
    assert again["url"] == first["url"]
    jt.run("disconnect", "aura")
    kill_pid(first_pid)
    second_pid = start_server_by_hand(rig, port)
    try:
        third = run_json(jt.run("connect", "aura", "--json"))
        assert third["url"] != first["url"]
        assert api_status(third["url"]) == 200
        assert json.loads((jt.state_dir / "tunnels" / "aura.json").read_text())["server_pid"] == second_pid
    finally:
        jt.run("disconnect", "aura")
        kill_pid(second_pid)


@pytest.mark.parametrize(("sig", "name"), [(signal.SIGINT, "ctrlc"), (signal.SIGTERM, "term")])
def test_an_interrupted_start_undoes_the_whole_connect(rig: Rig, jt: JT, sig: signal.Signals, name: str) -> None:
    """Ctrl-C, or SIGTERM (a closed session, a service manager), which connect unwinds the
    same way: the half-started server (its start script as a unit), the master and the
    record all go."""
    from helpers import jupyter_on_port

    starting = rig.home / f".local/state/jupytunnel/{name}.starting"
    port = free_port()
    jt.profile(name, remote_port=port, setup=["sleep 6.5"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupytunnel", "connect", name, "--no-browser"],
        env=jt.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        # The server list (in the setup lines' environment) runs the slow line first; then
        # the start script records itself and runs it again: interrupt it there.
        wait_for(starting.exists, 40, "the remote start script to run")
        time.sleep(0.5)
        masters = procs_with(str(jt.runtime_dir))
        assert masters  # the master is up: there is something to undo
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 130
    assert err.strip() == "jupytunnel: interrupted"
    assert wait_gone(procs_with(f"jupytunnel-start-{name}")) == []
    assert not starting.exists()
    assert wait_gone(masters) == []
    assert list(jt.runtime_dir.glob("cm-*")) == []
    assert not (jt.state_dir / "tunnels" / f"{name}.json").exists()
    time.sleep(7.5)  # past the slow line: an unstopped start script would launch Jupyter now
    assert jupyter_on_port(port) == []
