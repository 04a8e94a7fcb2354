"""Hostile or broken input (issue 11, 7): one clear line each, exit 2 or 1, no traceback."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import JT
from helpers import kill_pid, run_json, start_server_by_hand

from testsupport.rig import Rig, free_port

RLO = "\u202e"


def one_line(out: subprocess.CompletedProcess[str], code: int) -> str:
    assert out.returncode == code, out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    return out.stderr.strip()


def test_huge_profile_file_and_values_are_refused(jt: JT) -> None:
    folder = jt.config_dir / "profiles"
    folder.mkdir(parents=True)
    (folder / "huge.toml").write_text('host = "h"\njupyter = "' + "j" * (2 * 1024 * 1024) + '"\n')
    out = one_line(jt.run("connect", "huge", timeout=30), 2)
    assert out == f"jupytunnel: {folder / 'huge.toml'}: larger than 1024 KiB; not a profile"
    (folder / "huge.toml").unlink()
    (folder / "long.toml").write_text('host = "h"\nsetup = ["' + "x" * 20000 + '"]\n')
    out = one_line(jt.run("connect", "long", timeout=30), 2)
    assert out.endswith("key 'setup': longer than 16384 characters")
    listing = jt.run("profile", "list", "--json", timeout=30)
    assert listing.returncode in (0, 1), listing.stderr  # the listing goes on, marking it invalid
    assert "Traceback" not in listing.stderr


@pytest.mark.parametrize("key", ["host", "user", "jupyter", "setup", "workdir"])
def test_bidi_controls_are_refused(jt: JT, key: str) -> None:
    value: object = f"evil{RLO}txt.exe"
    keys = {key: [value] if key == "setup" else value}
    if key != "host":
        keys["host"] = "target"  # the rig (loopback), never reached: validation refuses first
    jt.profile("bidi", **keys)
    out = one_line(jt.run("connect", "bidi", timeout=30), 2)
    assert RLO not in out  # shown escaped, never raw
    assert "\\u202e" in out
    assert "text-direction" in out
    name = one_line(jt.run("connect", f"a{RLO}b", timeout=30), 2)
    assert RLO not in name


def test_relative_xdg_runtime_dir_is_ignored(jt: JT, tmp_path: Path) -> None:
    jt.profile("rel", host="h.example")
    env = {k: v for k, v in jt.env.items() if k != "JUPYTUNNEL_RUNTIME_DIR"}
    env["XDG_RUNTIME_DIR"] = "relative/run"
    out = subprocess.run(
        [sys.executable, "-m", "jupytunnel", "--dry-run", "connect", "rel"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=30, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert f" -S /tmp/jupytunnel-{os.getuid()}" in out.stdout
    assert "relative/run" not in out.stdout
    assert list(tmp_path.iterdir()) == []


def test_home_unset_and_no_passwd_entry_is_one_line() -> None:
    """A uid with no passwd entry and no HOME (a container's random uid): one line, exit 1."""
    import pwd

    uid = 54321
    with contextlib.suppress(KeyError):
        pwd.getpwuid(uid)
        pytest.skip(f"uid {uid} has a passwd entry here")
    if os.geteuid() != 0:
        pytest.skip("needs root to become a uid without a passwd entry")
    cwd = tempfile.mkdtemp(dir="/tmp")
    os.chmod(cwd, 0o777)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - reports through the pipe
        code = 99
        try:
            sys.stderr = os.fdopen(write, "w", buffering=1)
            os.chdir(cwd)
            os.setgid(uid)
            os.setuid(uid)
            for var in list(os.environ):
                if var == "HOME" or var.startswith(("JUPYTUNNEL_", "XDG_")):
                    del os.environ[var]
            from jupytunnel.__main__ import run

            code = run(["profile", "list"])
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        said = pipe.read()
    _, status = os.waitpid(child, 0)
    try:
        assert os.waitstatus_to_exitcode(status) == 1, said
        assert said == (
            f"jupytunnel: cannot find your home folder (HOME is not set and user id {uid} has no passwd entry); "
            "set HOME, or JUPYTUNNEL_CONFIG_DIR and JUPYTUNNEL_STATE_DIR\n"
        )
        assert os.listdir(cwd) == []  # no "~" folder made in the current directory
    finally:
        shutil.rmtree(cwd, ignore_errors=True)


@contextlib.contextmanager
def full_disk() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(dir="/tmp"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(folder)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        folder.rmdir()
        pytest.skip(f"cannot mount a small tmpfs: {mounted.stderr.strip()}")
    try:
        (folder / "profiles").mkdir(mode=0o700)
        with (folder / "filler").open("wb") as fh, contextlib.suppress(OSError):
            fh.write(b"\0" * (1024 * 1024))
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True, timeout=30, check=False)
        folder.rmdir()


def test_full_disk_names_the_file(jt: JT) -> None:
    with full_disk() as disk:
        env = {**jt.env, "JUPYTUNNEL_CONFIG_DIR": str(disk)}
        out = jt.run("profile", "add", "aura", "--host", "h.example", env=env)
        line = one_line(out, 1)
        assert line == f"jupytunnel: cannot write {disk / 'profiles' / 'aura.toml'}: No space left on device"
        assert sorted(p.name for p in (disk / "profiles").iterdir()) == []  # nothing half-written


@pytest.mark.integration
def test_ssh_config_path_with_a_space(rig: Rig, jt: JT, tmp_path: Path) -> None:
    folder = tmp_path / "my ssh configs"
    folder.mkdir()
    cfg = folder / "client config"
    cfg.write_text(rig.client_config_text())
    cfg.chmod(0o600)
    env = {**jt.env, "JUPYTUNNEL_SSH_CONFIG": str(cfg)}
    port = free_port()
    pid = start_server_by_hand(rig, port)
    try:
        jt.profile("spaced", remote_port=port, launcher="none", jump=["gateway"])
        out = run_json(jt.run("connect", "spaced", "--json", env=env))
        assert run_json(jt.run("status", "--json", env=env))[0]["state"] == "up"
        doctor = jt.run("doctor", "spaced", env=env, timeout=120)
        assert "Traceback" not in doctor.stderr
        assert jt.run("disconnect", "spaced", env=env).returncode == 0
        assert out["url"]
    finally:
        kill_pid(pid)
