"""A server that is not there any more: status asks Jupyter through the tunnel (issue 11, 2)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import JT
from helpers import _runtime_file_for, api_status, kill_pid, run_json, start_server_by_hand, wait_for

from testsupport.rig import Rig, free_port

pytestmark = pytest.mark.integration


def record(jt: JT, name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((jt.state_dir / "tunnels" / f"{name}.json").read_text())
    return loaded


def states(jt: JT) -> dict[str, str]:
    return {r["profile"]: r["state"] for r in run_json(jt.run("status", "--json"))}


def browser_recorder(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    log = tmp_path / "browser.log"
    recorder = tmp_path / "browser"
    recorder.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> {log}\n')
    recorder.chmod(0o755)
    return log, {"BROWSER": str(recorder)}


def test_status_stale_when_jupyter_dies_and_open_refuses(rig: Rig, jt: JT, tmp_path: Path) -> None:
    port = free_port()
    pid = start_server_by_hand(rig, port)
    jt.profile("aura", remote_port=port, launcher="none")
    out = run_json(jt.run("connect", "aura", "--json"))
    try:
        assert states(jt) == {"aura": "up"}
    finally:
        kill_pid(pid)
    assert states(jt) == {"aura": "stale"}  # the master answers, Jupyter does not
    log, extra = browser_recorder(tmp_path)
    opened = jt.run("open", "aura", env={**jt.env, **extra})
    assert opened.returncode == 1
    assert opened.stderr.startswith("jupytunnel: aura: the tunnel is open but Jupyter does not answer")
    assert len(opened.stderr.strip().splitlines()) == 1
    assert not log.exists()
    assert record(jt, "aura")["pid"] == out["pid"]  # status and open change nothing


def test_restarted_server_with_new_token_is_followed(rig: Rig, jt: JT, tmp_path: Path) -> None:
    """A 403 to the recorded token means: read the runtime info again (not "up", not "ready")."""
    port = free_port()
    first_pid = start_server_by_hand(rig, port)
    jt.profile("aura", remote_port=port, launcher="none")
    first = run_json(jt.run("connect", "aura", "--json"))
    kill_pid(first_pid)
    second_pid = start_server_by_hand(rig, port)
    try:
        runtime = _runtime_file_for(rig, second_pid)
        assert runtime is not None
        new_token = json.loads(runtime.read_text())["token"]
        assert new_token not in first["url"]
        shown = run_json(jt.run("status", "--json", "--show-token"))
        assert [(s["state"], s["pid"]) for s in shown] == [("up", first["pid"])]  # same tunnel
        assert shown[0]["url"].endswith(f"?token={new_token}")
        assert api_status(shown[0]["url"]) == 200
        assert record(jt, "aura")["server_pid"] == second_pid
        remembered = json.loads((jt.state_dir / "servers" / "aura.json").read_text())
        assert remembered["server"]["token"] == new_token
        log, extra = browser_recorder(tmp_path)
        opened = jt.run("open", "aura", env={**jt.env, **extra})
        assert opened.returncode == 0, opened.stderr
        page = Path(log.read_text().strip().removeprefix("file://"))
        assert new_token in page.read_text()
    finally:
        kill_pid(second_pid)


def test_two_profiles_share_a_server_and_one_stops_it(jt: JT) -> None:
    port = free_port()
    jt.profile("owner", remote_port=port)
    jt.profile("guest", remote_port=port, launcher="none")
    owner = run_json(jt.run("connect", "owner", "--json"))
    assert owner["started_server"] is True
    guest = run_json(jt.run("connect", "guest", "--json"))
    assert guest["started_server"] is False
    assert states(jt) == {"owner": "up", "guest": "up"}
    assert jt.run("server", "stop", "owner").returncode == 0
    assert states(jt) == {"owner": "stale", "guest": "stale"}


def _watch(jt: JT, name: str, err: Path) -> subprocess.Popen[str]:
    with err.open("w") as sink:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "jupytunnel", "connect", name, "--watch", "--no-browser"],
            env=jt.env,
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
            stdin=subprocess.DEVNULL,
        )


def _end(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(2)  # SIGINT: the watcher closes its tunnel
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.communicate(timeout=10)


def test_watch_restarts_a_dead_server(jt: JT) -> None:
    port = free_port()
    jt.profile("aura", remote_port=port)
    err = Path(tempfile.mkdtemp(dir=jt.rig.root)) / "err"
    proc = _watch(jt, "aura", err)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert api_status(url) == 200
        first = int(record(jt, "aura")["server_pid"])  # type: ignore[call-overload]
        kill_pid(first)

        def restarted() -> bool:
            try:
                rec = record(jt, "aura")
            except (OSError, ValueError):
                return False
            return rec["server_pid"] not in (first, None) and api_status(str(rec["url"])) == 200

        wait_for(restarted, 60, "--watch to start the server again")
        assert "Jupyter no longer answers through the tunnel; starting it again" in err.read_text()
    finally:
        _end(proc)
        server = record(jt, "aura").get("server_pid") if (jt.state_dir / "tunnels/aura.json").exists() else None
        jt.run("server", "stop", "aura")
        if isinstance(server, int):
            kill_pid(server)
    assert "Traceback" not in err.read_text()


def test_watch_with_launcher_none_says_so_and_waits(rig: Rig, jt: JT) -> None:
    port = free_port()
    pid = start_server_by_hand(rig, port)
    jt.profile("aura", remote_port=port, launcher="none")
    err = Path(tempfile.mkdtemp(dir=jt.rig.root)) / "err"
    proc = _watch(jt, "aura", err)
    again = None
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        kill_pid(pid)
        wait_for(lambda: "waiting for it" in err.read_text(), 30, "--watch to notice the dead server")
        assert proc.poll() is None  # it keeps waiting
        again = start_server_by_hand(rig, port)
        wait_for(lambda: "up again after" in err.read_text(), 60, "--watch to reconnect to the new server")
        assert api_status(str(record(jt, "aura")["url"])) == 200
    finally:
        _end(proc)
        if again is not None:
            kill_pid(again)
    assert "Traceback" not in err.read_text()
