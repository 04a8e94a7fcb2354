"""The builders' argv, run for real against the rig's sshd: direct, -J, ProxyCommand."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import psutil
import pytest

from jupytunnel.profiles import Profile
from jupytunnel.ssh import Ssh
from jupytunnel.ssh import args as sshargs
from testsupport.rig import SSH, Rig, free_port, wait_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def http_server(rig: Rig) -> Iterator[int]:
    """A small HTTP server on the "target" side (loopback of this machine)."""
    site = rig.root / "site"
    site.mkdir(exist_ok=True)
    (site / "index.html").write_text("hello from the target\n")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port), "--directory", str(site)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port)
    yield port
    proc.kill()
    proc.wait()


def our_ssh_processes(ctl: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if cmd and ctl in cmd:
            found.append(p)
    return found


@pytest.mark.parametrize("route", ["direct", "jump", "proxy_command"])
def test_tunnel_argv_against_real_sshd(rig: Rig, http_server: int, route: str) -> None:
    if route == "jump":
        profile = Profile(name="t", host="target", jump=("gateway",))
    elif route == "proxy_command":
        profile = Profile(name="t", host="target", proxy_command=f"{SSH} -F {rig.ssh_config} -W %h:%p gateway")
    else:
        profile = Profile(name="t", host="target")
    ctl = str(rig.root / f"b-{route}")
    local = free_port()
    fwd = sshargs.forward_spec(local_port=local, remote_port=http_server)
    argv = sshargs.tunnel_argv(profile, ssh=Ssh(SSH, str(rig.ssh_config)), control_path=ctl, forward=fwd)
    log = rig.root / f"b-{route}.log"
    with log.open("wb") as out:  # never a pipe: the -W helper keeps stderr open
        code = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=30, check=False
        ).returncode
    assert code == 0, log.read_text()
    try:
        check = subprocess.run(
            sshargs.control_argv(profile, "check", ssh=Ssh(SSH, str(rig.ssh_config)), control_path=ctl),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert check.returncode == 0
        assert "Master running (pid=" in check.stderr
        with urllib.request.urlopen(f"http://127.0.0.1:{local}/index.html", timeout=10) as resp:
            assert resp.read() == b"hello from the target\n"
        remote = subprocess.run(
            sshargs.remote_argv(profile, "echo through-master", ssh=Ssh(SSH, str(rig.ssh_config)), control_path=ctl),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert remote.stdout == "through-master\n"
    finally:
        subprocess.run(
            sshargs.control_argv(profile, "exit", ssh=Ssh(SSH, str(rig.ssh_config)), control_path=ctl),
            capture_output=True,
            timeout=10,
            check=False,
        )
    gone = psutil.wait_procs(our_ssh_processes(ctl), timeout=5)[1]
    assert gone == []
    assert our_ssh_processes(ctl) == []


def test_resolve_argv_against_real_client(rig: Rig) -> None:
    profile = Profile(name="t", host="target", user="nobody", jump=("gateway",))
    out = subprocess.run(
        sshargs.resolve_argv(profile, ssh=Ssh(SSH, str(rig.ssh_config))),
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout.splitlines()
    assert "hostname 127.0.0.1" in out
    assert f"port {rig.target.port}" in out
    assert "user nobody" in out
    assert "proxyjump gateway" in out
