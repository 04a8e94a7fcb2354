"""Shared hosts (issue 11, 4): the token goes only to our own forward and our own server;
automatic local ports that collide; a runtime folder planted by another user."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import JT
from helpers import kill_pid, run_json, start_server_by_hand, wait_for

from testsupport.rig import SSH, Rig, free_port

RECORDER = Path(__file__).with_name("recorder.py")
# The other user cannot enter our home, where the venv's interpreter may live; the recorder
# needs only the standard library.
SYSTEM_PYTHON = "/usr/bin/python3"


@contextmanager
def colleague_listens(user: str, port: int) -> Iterator[list[str]]:
    """Another local user listens on ``port``; yields what it received (filled at the end)."""
    received: list[str] = []
    proc = subprocess.Popen(
        ["runuser", "-u", user, "--", SYSTEM_PYTHON, "-I", str(RECORDER), str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        yield received
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
        received.append(out)


@pytest.mark.integration
def test_remote_port_taken_over_never_receives_the_token(rig: Rig, jt: JT, other_user: str) -> None:
    """Our server died; a colleague now listens on its port: connect must not send it the
    remembered token."""
    port = free_port()
    pid = start_server_by_hand(rig, port)
    jt.profile("aura", remote_port=port, launcher="none")
    first = run_json(jt.run("connect", "aura", "--json"))
    token = first["url"].split("token=")[1]
    assert jt.run("disconnect", "aura").returncode == 0
    kill_pid(pid)
    with colleague_listens(other_user, port) as received:
        again = jt.run("connect", "aura", "--timeout", "20")
        status = jt.run("status", "--json")
    assert again.returncode == 1
    assert "launcher is 'none'" in again.stderr
    assert token not in "".join(received)
    assert run_json(status) == []


@pytest.mark.integration
def test_a_listener_that_is_not_our_master_never_receives_the_token(rig: Rig, jt: JT, other_user: str) -> None:
    """The master lost its forward (cancelled) and a colleague took the local port:
    status and open must not send it the token, and say stale."""
    port = free_port()
    pid = start_server_by_hand(rig, port)
    try:
        jt.profile("aura", remote_port=port, launcher="none")
        out = run_json(jt.run("connect", "aura", "--json"))
        token = out["url"].split("token=")[1]
        local = out["local_port"]
        spec = f"127.0.0.1:{local}:127.0.0.1:{port}"
        cancel = subprocess.run(
            [SSH, "-F", str(rig.ssh_config), "-S", out["control_path"], "-O", "cancel", "-L", spec, "target"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert cancel.returncode == 0, cancel.stderr
        with colleague_listens(other_user, local) as received:
            status = run_json(jt.run("status", "--json"))
            opened = jt.run("open", "aura", env={**jt.env, "BROWSER": "true"})
        assert [s["state"] for s in status] == ["stale"]
        assert opened.returncode == 1
        assert token not in "".join(received)
    finally:
        kill_pid(pid)


def test_remembered_server_is_tied_to_its_route(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jupytunnel import tunnel
    from jupytunnel.profiles import Profile
    from jupytunnel.remote import ServerInfo, server

    monkeypatch.setenv("JUPYTUNNEL_STATE_DIR", str(tmp_path))
    base = Profile(name="aura", host="aura.example", user="ada", transport="socket")
    srv = ServerInfo(
        pid=7, port=None, sock="/home/ada/.local/state/jupytunnel/aura.sock", base_url="/",
        token="t" * 48, root_dir="/home/ada", version="2", classic=False,
    )  # fmt: skip
    server.remember(base, srv)
    assert tunnel._remembered(base) is not None
    for changed in (
        base._replace(host="other.example"),
        base._replace(user="bob"),
        base._replace(port=2222),
        base._replace(jump=("gw",)),
        base._replace(proxy_command="ssh -W %h:%p gw"),
        base._replace(transport="tcp"),
    ):
        assert tunnel._remembered(changed) is None, changed
    # A TCP port on a shared host: never trusted from memory, the runtime files decide.
    tcp = base._replace(transport="tcp")
    server.remember(tcp, srv._replace(sock=None, port=8888))
    assert tunnel._remembered(tcp) is None


@pytest.mark.integration
def test_three_auto_port_profiles_connect_at_once(rig: Rig, jt: JT) -> None:
    """Each would take the same automatic local port (their remote_port); the losers of the
    race choose another and retry."""
    folder = rig.home / ".local/state/jupytunnel"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    names = [f"auto{i}" for i in range(3)]
    same = free_port()
    pids = []
    for name in names:
        sock = folder / f"{name}.sock"
        cmd = f"nohup jupyter server --no-browser --sock={sock} --sock-mode=0600 </dev/null >/dev/null 2>&1 & echo $!"
        pids.append(int(rig.ssh("target", cmd).stdout.strip()))
        jt.profile(name, transport="socket", launcher="none", remote_port=same, local_port="auto")
    try:
        wait_for(lambda: all((folder / f"{n}.sock").exists() for n in names), 60, "three socket servers")
        with ThreadPoolExecutor(max_workers=3) as pool:
            results = list(pool.map(lambda n: jt.run("connect", n, "--json", "--timeout", "60"), names))
        for r in results:
            assert r.returncode == 0, r.stderr
        ports = {json.loads(r.stdout)["local_port"] for r in results}
        assert len(ports) == 3
        assert same in ports
        assert {s["state"] for s in run_json(jt.run("status", "--json"))} == {"up"}
    finally:
        for pid in pids:
            kill_pid(pid)


def test_planted_runtime_folder_gets_a_private_fallback(other_user: str) -> None:
    """As the other user (a forked child that drops to its uid), whose /tmp/jupytunnel-UID
    we planted: jupytunnel uses a private fallback, says where, and never the planted one."""
    from jupytunnel import paths
    from jupytunnel.profiles import Profile
    from jupytunnel.ssh import master

    info = pwd.getpwnam(other_user)
    planted = Path(f"/tmp/jupytunnel-{info.pw_uid}")
    fallback = Path(f"/tmp/jupytunnel-{info.pw_uid}.1")
    for p in (fallback, planted):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
    planted.mkdir(mode=0o755)  # owned by us: another user, for them
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            sys.stderr = os.fdopen(write, "w", buffering=1)  # pytest captures the usual one
            os.setgid(info.pw_gid)
            os.setuid(info.pw_uid)
            for var in ("XDG_RUNTIME_DIR", "JUPYTUNNEL_RUNTIME_DIR"):
                os.environ.pop(var, None)
            m = master.master_for(Profile(name="aura", host="h.example"))
            sys.stderr.write(f"CTL {m.ctl}\n")
            sys.stderr.flush()
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        said = pipe.read()
    _, status = os.waitpid(child, 0)
    try:
        assert os.waitstatus_to_exitcode(status) == 0, said
        assert f"jupytunnel: {planted} belongs to another user; using {fallback} instead\n" in said
        assert f"CTL {fallback}/cm-" in said
        st = fallback.lstat()
        assert (st.st_uid, st.st_mode & 0o777) == (info.pw_uid, 0o700)
        assert list(planted.iterdir()) == []
        assert paths.runtime_dir() != fallback  # ours (root's) is untouched
    finally:
        shutil.rmtree(planted, ignore_errors=True)
        shutil.rmtree(fallback, ignore_errors=True)


@pytest.mark.integration
@pytest.mark.parametrize("launcher", ["nohup", "tmux"])
def test_remote_port_auto_picks_a_free_port_remembers_and_reuses_it(rig: Rig, jt: JT, launcher: str) -> None:
    name = f"free-{launcher}"
    jt.profile(name, remote_port="auto", launcher=launcher)
    first = run_json(jt.run("connect", name, "--json", "--timeout", "60"))
    try:
        assert first["started_server"] is True
        chosen = int(first["remote"].rsplit(":", 1)[1])
        assert chosen != 8888
        rec = json.loads((jt.state_dir / "tunnels" / f"{name}.json").read_text())
        runtime = [json.loads(f.read_text()) for f in rig.runtime_files()]
        assert {"pid": rec["server_pid"], "port": chosen} in [{"pid": r["pid"], "port": r["port"]} for r in runtime]
        assert run_json(jt.run("status", "--json"))[0]["state"] == "up"
        assert jt.run("disconnect", name).returncode == 0
        again = run_json(jt.run("connect", name, "--json"))
        assert again["started_server"] is False  # the remembered port finds the same server
        assert again["remote"] == first["remote"]
        listed = run_json(jt.run("server", "list", name, "--json"))
        assert [s["port"] for s in listed if s["profile"]] == [chosen]
    finally:
        stop = jt.run("server", "stop", name)
    assert stop.returncode == 0, stop.stderr
    assert "stopped" in stop.stdout


def test_listener_check_agrees_with_psutil() -> None:
    import socket

    from jupytunnel import procs

    with socket.socket() as mine, socket.socket() as elsewhere:
        mine.bind(("127.0.0.1", 0))
        mine.listen()
        elsewhere.bind(("127.0.0.2", 0))  # loopback, but not the address our forwards bind
        elsewhere.listen()
        port, other = mine.getsockname()[1], elsewhere.getsockname()[1]
        pairs = [(os.getpid(), port), (os.getppid(), port), (os.getpid(), other), (os.getpid(), free_port())]
        assert (
            procs.our_listeners(pairs) == [procs.listens_on(pid, p) for pid, p in pairs] == [True, False, False, False]
        )
