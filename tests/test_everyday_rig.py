"""Everyday use against the real rig: a first run without a profile, remove of a busy profile,
open, logs --follow, Ctrl-C, doctor's setup stderr, the state folder kept tidy."""

from __future__ import annotations

import contextlib
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
from helpers import api_status, procs_with, run_json, wait_for, wait_gone

from testsupport.rig import Rig, free_port

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

pytestmark = pytest.mark.integration


def _defaults(jt: JT, port: int) -> None:
    """What a user on the rig would have: the rig's Jupyter is `jupyter server` on ``port``."""
    jt.config_dir.mkdir(parents=True, exist_ok=True)
    (jt.config_dir / "defaults.toml").write_text(f'jupyter = "jupyter server"\nremote_port = {port}\n')


@pytest.mark.parametrize("host", ["target", "behind"])
def test_first_run_connects_to_an_ssh_alias_without_a_profile(jt: JT, server: int, host: str) -> None:
    """``behind`` is the target reached only through the gateway (ProxyJump in the rig's config)."""
    _defaults(jt, server)
    accepted = jt.rig.gateway.log.read_text().count("Accepted publickey")
    out = jt.run("connect", host, "--json", "--no-browser")
    assert out.returncode == 0, out.stderr
    first = json.loads(out.stdout)
    assert api_status(first["url"]) == 200
    assert first["profile"] == host
    assert out.stderr.splitlines() == [
        (
            f"jupytunnel: {host!r} is no profile (default settings used); keep it with: "
            f"jupytunnel profile add {host} --host {host}  (or: jupytunnel connect --save {host})"
        )
    ]
    assert not (jt.config_dir / "profiles").exists()  # nothing written without --save
    # "behind" goes through the gateway's sshd (ProxyJump in the rig's config); "target" not.
    logins = jt.rig.gateway.log.read_text().count("Accepted publickey") - accepted
    assert logins == (1 if host == "behind" else 0)
    status = run_json(jt.run("status", host, "--json"))
    assert [(s["profile"], s["state"]) for s in status] == [(host, "up")]
    again = run_json(jt.run("connect", host, "--json", "--no-browser"))
    assert (again["pid"], again["reused"]) == (first["pid"], True)
    assert jt.run("disconnect", host).returncode == 0
    assert wait_gone([psutil.Process(first["pid"])]) == []


def test_first_run_user_at_host_port_and_save(rig: Rig, jt: JT, server: int) -> None:
    _defaults(jt, server)
    dest = f"{rig.user}@127.0.0.1:{rig.target.port}"
    out = jt.run("connect", dest, "--json", "--no-browser", "--save")
    assert out.returncode == 0, out.stderr
    assert api_status(json.loads(out.stdout)["url"]) == 200
    saved = jt.config_dir / "profiles" / "127.0.0.1.toml"
    assert f"saved the profile '127.0.0.1' ({saved})" in out.stderr
    # As `profile add` writes it: the destination's keys; defaults.toml stays where it is.
    assert tomllib.loads(saved.read_text()) == {"host": "127.0.0.1", "user": rig.user, "port": rig.target.port}
    assert oct(saved.stat().st_mode & 0o777) == "0o600"
    assert jt.run("disconnect", "127.0.0.1").returncode == 0
    # The saved profile connects by its name now.
    back = jt.run("connect", "127.0.0.1", "--json", "--no-browser")
    assert back.returncode == 0, back.stderr
    assert "no profile" not in back.stderr


def test_first_run_unknown_name_is_exit_2_with_the_closest_profiles(jt: JT) -> None:
    jt.profile("targe1")
    out = jt.run("connect", "targte")
    assert (out.returncode, out.stderr) == (2, "jupytunnel: no profile 'targte'; did you mean 'targe1'?\n")
    assert procs_with(str(jt.runtime_dir)) == []


def test_profile_remove_of_a_busy_profile_closes_tunnel_and_server(rig: Rig, jt: JT) -> None:
    port = free_port()
    jt.profile("busy", remote_port=port)
    first = run_json(jt.run("connect", "busy", "--json"))
    assert first["started_server"] is True
    master = psutil.Process(first["pid"])
    server_pid = json.loads((jt.state_dir / "tunnels" / "busy.json").read_text())["server_pid"]
    server = psutil.Process(server_pid)
    path = jt.config_dir / "profiles" / "busy.toml"

    refused = jt.run("profile", "remove", "busy")
    assert refused.returncode == 2
    assert "live tunnel" in refused.stderr
    assert "Jupyter server" in refused.stderr
    assert "--force" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1
    assert path.exists()
    assert master.is_running()
    assert psutil.pid_exists(server_pid)

    done = jt.run("profile", "remove", "busy", "--force")
    assert done.returncode == 0, done.stderr
    assert "disconnected; server stopped" in done.stdout
    assert not path.exists()
    assert wait_gone([master, server], timeout=20) == []
    assert not (jt.state_dir / "servers" / "busy.json").exists()
    assert not (jt.state_dir / "tunnels" / "busy.json").exists()


def test_profile_remove_after_plain_disconnect_still_minds_the_server(jt: JT) -> None:
    port = free_port()
    jt.profile("left", remote_port=port)
    run_json(jt.run("connect", "left", "--json"))
    server = psutil.Process(json.loads((jt.state_dir / "tunnels" / "left.json").read_text())["server_pid"])
    assert jt.run("disconnect", "left").returncode == 0
    refused = jt.run("profile", "remove", "left")
    assert refused.returncode == 2
    assert "Jupyter server" in refused.stderr
    assert "live tunnel" not in refused.stderr
    done = jt.run("profile", "remove", "left", "--force")
    assert done.returncode == 0, done.stderr
    assert "left: stopped" in done.stdout
    assert wait_gone([server], timeout=20) == []


def test_open_show_token_and_no_browser_noise_after_it_returns(jt: JT, server: int, tmp_path: Path) -> None:
    jt.profile("aura", remote_port=server, launcher="none")
    url = run_json(jt.run("connect", "aura", "--json", "--no-browser"))["url"]
    noisy = tmp_path / "browser"
    # A browser that returns at once and complains on stderr a moment later.
    noisy.write_text("#!/bin/sh\n( sleep 1; echo BROWSER-NOISE >&2 ) &\nexit 0\n")
    noisy.chmod(0o755)
    env = {**jt.env, "BROWSER": str(noisy)}
    hidden = jt.run("open", "aura", env=env)
    assert hidden.returncode == 0, hidden.stderr
    assert hidden.stdout.strip() == url.split("?token=")[0] + "?token=…"
    # subprocess.run reads stderr to its end: the noise would be there had the browser our stderr.
    assert "BROWSER-NOISE" not in hidden.stderr
    shown = jt.run("open", "aura", "--show-token", env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == url
    assert "BROWSER-NOISE" not in shown.stderr


def test_server_logs_follow_streams_until_ctrl_c(rig: Rig, jt: JT) -> None:
    port = free_port()
    jt.profile("logs", remote_port=port)
    run_json(jt.run("connect", "logs", "--json"))
    log = rig.home / ".local/state/jupytunnel/logs.log"
    listing = jt.run("server", "list", "logs")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines()[0].split() == ["PID", "ENDPOINT", "FOLDER", "VERSION", "PROFILE"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupytunnel", "server", "logs", "logs", "--follow", "-n", "3"],
        env=jt.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: Ctrl-C reaches the group, as a terminal's does
    )
    try:
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        seen = b""

        def streamed(marker: str) -> bool:
            nonlocal seen
            with contextlib.suppress(BlockingIOError):
                seen += os.read(proc.stdout.fileno(), 65536)  # type: ignore[union-attr]
            return marker.encode() in seen

        wait_for(lambda: streamed("\n"), 30, "the last lines of the log")
        with log.open("a") as fh:
            fh.write("a line written after --follow started\n")
        wait_for(lambda: streamed("a line written after --follow started"), 30, "the new line to stream")
        tails = [p for p in procs_with(str(log)) if p.name() == "tail"]
        assert len(tails) == 1
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=20) == 130
        _, err = proc.communicate(timeout=10)
        assert err == b"jupytunnel: interrupted\n", (err, seen)
        assert wait_gone(tails, timeout=20) == []  # the remote tail ended with the channel
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
    jt.run("disconnect", "logs", "--stop-server")


def test_server_logs_without_a_log_is_one_line(jt: JT) -> None:
    jt.profile("nolog", remote_port=free_port())
    out = jt.run("server", "logs", "nolog", "--follow", timeout=60)
    assert (out.returncode, out.stderr) == (1, "jupytunnel: nolog: no log yet\n")
    out = jt.run("server", "logs", "nolog", timeout=60)
    assert (out.returncode, out.stdout, out.stderr) == (1, "", "jupytunnel: nolog: no log yet\n")


def test_server_logs_names_an_ssh_failure(rig: Rig, jt: JT, tmp_path: Path) -> None:
    closed = free_port()
    cfg = tmp_path / "ssh_config"
    cfg.write_text(f"Host deadhost\n    HostName 127.0.0.1\n    Port {closed}\n\n" + rig.client_config_text())
    cfg.chmod(0o600)
    jt.profile("dead", host="deadhost")
    out = jt.run("server", "logs", "dead", "--timeout", "20", env={**jt.env, "JUPYTUNNEL_SSH_CONFIG": str(cfg)})
    assert out.returncode == 1
    assert out.stderr.startswith("jupytunnel: ssh to deadhost failed")
    assert f"connect to host 127.0.0.1 port {closed}: Connection refused" in out.stderr
    assert len(out.stderr.splitlines()) == 1


def test_server_logs_through_a_master_that_is_gone_is_sshs_failure(
    jt: JT, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session after the master went away: ssh exits 255 (its fallback is ProxyCommand=false),
    which is ssh's failure, not a missing log."""
    from jupytunnel import profiles, ssh
    from jupytunnel.errors import JupytunnelError
    from jupytunnel.remote import server
    from jupytunnel.ssh.master import Master

    for key, value in jt.env.items():
        monkeypatch.setenv(key, value)
    master = Master(profiles.Profile(name="gone", host="target"), tmp_path / "cm-gone", ssh.resolve())
    with pytest.raises(JupytunnelError) as caught:
        server.logs(master, 5)
    assert str(caught.value).startswith("ssh to target failed: ")
    assert "no log" not in str(caught.value)


def test_watch_says_each_change_once_and_ctrl_c_is_130(jt: JT, server: int) -> None:
    jt.profile("aura", remote_port=server, launcher="none")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupytunnel", "connect", "aura", "--watch", "--no-browser"],
        env=jt.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    record = jt.state_dir / "tunnels" / "aura.json"
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("http://127.0.0.1:")
        first = json.loads(record.read_text())["pid"]
        os.kill(first, signal.SIGKILL)  # the tunnel drops

        def back() -> bool:
            try:
                return bool(json.loads(record.read_text())["pid"] != first)
            except (OSError, ValueError):
                return False

        wait_for(back, 30, "--watch to reconnect")
        time.sleep(5)  # two more monitoring periods: nothing more to say while it is up
        second = psutil.Process(json.loads(record.read_text())["pid"])
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
        _, err = proc.communicate(timeout=10)
        lines = err.splitlines()
        assert lines[0] == "watching aura; Ctrl-C closes the tunnel"
        assert lines.count("aura: tunnel down; reconnecting") == 1
        ups = [ln for ln in lines if ln.startswith("aura: up again after ")]
        assert len(ups) == 1
        assert ups[0].endswith(" s")
        assert lines[-2:] == ["aura: disconnected", "jupytunnel: interrupted"]
        assert wait_gone([second]) == []
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_doctor_shows_the_stderr_of_a_failing_setup_line(jt: JT) -> None:
    jt.profile("mods", setup=["true", "echo 'Lmod: module python/9 not found' >&2; false"])
    out = jt.run("doctor", "mods", "--json")
    assert out.returncode == 1
    checks = {c["name"]: c for c in json.loads(out.stdout)["checks"]}
    detail = checks["jupyter mods"]["detail"]
    assert detail.startswith("setup line 2: ")
    assert detail.endswith("failed: Lmod: module python/9 not found")


def test_no_empty_ssh_logs_pile_up(jt: JT, server: int) -> None:
    for name in ("one", "two", "three"):
        jt.profile(name, remote_port=server, launcher="none")
        assert jt.run("connect", name, "--no-browser").returncode == 0
        assert jt.run("server", "list", name).returncode == 0
        assert jt.run("disconnect", name).returncode == 0
    logs = list((jt.state_dir / "tunnels").glob("*.ssh.log"))
    assert [p for p in logs if p.stat().st_size == 0] == []


def _on_terminal(jt: JT, args: list[str], answer: bytes) -> tuple[int, str]:
    """Run jupytunnel on a pseudo-terminal, answer its question, return (code, screen)."""
    import pty
    import select

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupytunnel", *args], stdin=slave, stdout=slave, stderr=slave, env=jt.env
    )
    os.close(slave)
    screen = b""
    answered = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                screen += chunk
                if not answered and b"[y/N]" in screen:
                    os.write(master, answer + b"\n")
                    answered = True
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=20), screen.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        os.close(master)


def test_profile_remove_asks_on_a_terminal(jt: JT) -> None:
    """A server it may have left running: the question, then no (kept) or yes (stopped, removed)."""
    jt.profile("asked")
    servers = jt.state_dir / "servers"
    servers.mkdir(parents=True)
    # The shape written before state files had a format version: still read.
    old = {
        "pid": 2**22 + 5, "port": free_port(), "sock": None, "base_url": "/", "token": "t" * 48, "root_dir": "/h",
        "version": "2.14.2", "classic": False, "host": None, "job": None, "node": None, "password": False,
        "file": "", "ui": None, "route": "[]",
    }  # fmt: skip
    (servers / "asked.json").write_text(json.dumps(old))
    path = jt.config_dir / "profiles" / "asked.toml"
    code, screen = _on_terminal(jt, ["profile", "remove", "asked"], b"n")
    assert code == 2, screen
    assert "may still run" in screen
    assert "[y/N]" in screen
    assert "profile 'asked' kept" in screen
    assert path.exists()
    code, screen = _on_terminal(jt, ["profile", "remove", "asked"], b"y")
    assert code == 0, screen
    assert "asked: no server running" in screen  # it looked, through ssh, before removing
    assert not path.exists()
    assert not (servers / "asked.json").exists()
