"""The early ssh of a plain ``connect NAME``: started from the plan of the last connect, used
only when the code builds the same argv, and never left behind."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import JT
from helpers import api_status, procs_with, wait_for, wait_gone

from jupytunnel import prelaunch
from jupytunnel.ssh.master import control_path


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["connect", "aura"], "aura"),
        (["connect", "aura", "--no-browser", "--json"], "aura"),
        (["connect", "--timeout", "40", "aura", "--watch"], "aura"),
        (["connect", "--timeout=40", "aura"], "aura"),
        (["connect", "aura", "--local-port", "9000"], None),  # changes the forward
        (["connect", "aura", "--save"], None),
        (["--dry-run", "connect", "aura"], None),
        (["-v", "connect", "aura"], None),
        (["connect"], None),
        (["connect", "a", "b"], None),
        (["connect", "../etc"], None),
        (["connect", ".hidden"], None),
        (["status"], None),
    ],
)
def test_only_plain_connects_start_early(args: list[str], name: str | None) -> None:
    assert prelaunch._connect_name(args) == name


@pytest.fixture
def in_process(jt: JT, monkeypatch: pytest.MonkeyPatch) -> Iterator[JT]:
    """jupytunnel's environment for code run in this process; no early ssh left after."""
    for key, value in jt.env.items():
        monkeypatch.setenv(key, value)
    yield jt
    prelaunch.dispose()


def _masters(jt: JT) -> list[int]:
    ctl = str(control_path_of(jt))
    return [p.pid for p in procs_with(ctl) if p.name() == "ssh"]


def control_path_of(jt: JT) -> Path:
    return jt.runtime_dir / control_path("aura").name


def _connect_in_process() -> str:
    from jupytunnel import profiles, tunnel

    return tunnel.connect(profiles.load("aura"), timeout=30).record.url


def _first_connect(jt: JT, port: int) -> dict[str, object]:
    jt.profile("aura", remote_port=port, launcher="none")
    out = jt.run("connect", "aura", "--no-browser")
    assert out.returncode == 0, out.stderr
    plan_file = jt.state_dir / "plans" / "aura.json"
    assert stat.S_IMODE(plan_file.stat().st_mode) == 0o600
    assert jt.run("disconnect", "aura").returncode == 0
    wait_for(lambda: not _masters(jt), 10, "the first master to go")
    plan: dict[str, object] = json.loads(plan_file.read_text())
    return plan


def test_next_connect_hands_the_early_ssh_over(in_process: JT, server: int) -> None:
    jt = in_process
    plan = _first_connect(jt, server)
    prelaunch.start(["connect", "aura", "--no-browser"])
    assert prelaunch.pending("aura")
    # The early ssh holds the profile's lock for this connect: no other jupytunnel gets in.
    fd = os.open(jt.state_dir / "locks" / "aura.lock", os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    early = prelaunch._early
    assert early is not None
    url = _connect_in_process()
    assert early.taken  # the argv the code built is the planned one
    assert early.started.argv == plan["argv"]
    assert api_status(url) == 200
    assert len(_masters(jt)) == 1
    prelaunch.dispose()  # a taken ssh is the connect's: left running
    assert len(_masters(jt)) == 1
    assert jt.run("disconnect", "aura").returncode == 0


def test_changed_profile_starts_nothing_early(in_process: JT, server: int) -> None:
    jt = in_process
    _first_connect(jt, server)
    jt.profile("aura", remote_port=server, launcher="none", local_port="auto")
    prelaunch.start(["connect", "aura"])
    assert not prelaunch.pending("aura")
    assert not _masters(jt)


def test_other_argv_ends_the_early_ssh_and_connects_normally(in_process: JT, server: int) -> None:
    jt = in_process
    plan = _first_connect(jt, server)
    argv = list(plan["argv"])  # type: ignore[call-overload]
    argv[1:1] = ["-o", "Compression=no"]  # what an older jupytunnel might have planned
    plan_file = jt.state_dir / "plans" / "aura.json"
    plan_file.write_text(json.dumps({**plan, "argv": argv}))
    prelaunch.start(["connect", "aura"])
    early = prelaunch._early
    assert early is not None
    early_pid = early.started._proc.pid
    url = _connect_in_process()
    assert prelaunch._early is None  # ended by take(), not handed over
    assert not psutil_alive(early_pid)
    assert api_status(url) == 200
    masters = _masters(jt)
    assert len(masters) == 1  # the early one's background master (if any) was closed
    assert "Compression=no" not in " ".join(procs_with(str(control_path_of(jt)))[0].cmdline())
    assert jt.run("disconnect", "aura").returncode == 0


def psutil_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("when", ["at once", "after the handshake"])
def test_failure_before_handover_leaves_nothing(in_process: JT, server: int, when: str) -> None:
    jt = in_process
    _first_connect(jt, server)
    prelaunch.start(["connect", "aura"])
    assert prelaunch.pending("aura")
    if when != "at once":
        wait_for(lambda: control_path_of(jt).exists(), 20, "the early master's socket")
    prelaunch.dispose()  # what __main__ does on an error or Ctrl-C before the hand-over
    wait_gone([p for p in procs_with(str(control_path_of(jt))) if p.name() == "ssh"])
    assert not _masters(jt)
    assert not control_path_of(jt).exists()
    fd = os.open(jt.state_dir / "locks" / "aura.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the lock is free again
    finally:
        os.close(fd)


def test_no_early_ssh_when_busy_taken_or_connected(in_process: JT, server: int) -> None:
    jt = in_process
    plan = _first_connect(jt, server)
    # Another jupytunnel holds the lock.
    fd = os.open(jt.state_dir / "locks" / "aura.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        prelaunch.start(["connect", "aura"])
        assert not prelaunch.pending("aura")
    finally:
        os.close(fd)
    # The local port is taken.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", int(plan["local_port"])))  # type: ignore[call-overload]
        sock.listen()
        prelaunch.start(["connect", "aura"])
        assert not prelaunch.pending("aura")
    # A tunnel is up: reuse is the normal path's (and costs no ssh).
    assert jt.run("connect", "aura", "--no-browser").returncode == 0
    masters = _masters(jt)
    prelaunch.start(["connect", "aura"])
    assert not prelaunch.pending("aura")
    assert _masters(jt) == masters
    assert jt.run("disconnect", "aura").returncode == 0


def test_cli_connects_through_the_early_ssh(jt: JT, server: int) -> None:
    """The whole command as a user runs it, twice: the second uses the plan (same argv), and
    the result is the same tunnel as the first."""
    _first_connect(jt, server)
    out = jt.run("connect", "aura", "--no-browser", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert api_status(str(data["url"])) == 200
    assert len(_masters(jt)) == 1
    assert jt.run("disconnect", "aura").returncode == 0


def test_sigterm_before_handover_leaves_nothing(in_process: JT, server: int) -> None:
    """SIGTERM (a closed session, a service manager) in the early window unwinds like Ctrl-C."""
    import signal

    jt = in_process
    _first_connect(jt, server)
    before = signal.getsignal(signal.SIGTERM)
    prelaunch.start(["connect", "aura"])
    assert prelaunch.pending("aura")
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises at once
    prelaunch.dispose()  # what __main__'s finally does
    assert signal.getsignal(signal.SIGTERM) == before
    wait_gone([p for p in procs_with(str(control_path_of(jt))) if p.name() == "ssh"])
    assert not _masters(jt)
    assert not control_path_of(jt).exists()
