"""``write-ssh-config`` as a user runs it, checked with the real OpenSSH client.

Every test edits a file of its own (``--file`` or ``JUPYTUNNEL_SSH_CONFIG``); the real
``~/.ssh`` is never touched.
"""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from conftest import JT

from jupytunnel.ssh import config as sshconfig
from jupytunnel.ssh import config_file as sshconfig_file
from jupytunnel.state import TunnelRecord
from testsupport.rig import SSH, Rig, free_port, wait_port

ROOT = os.geteuid() == 0


class Env:
    """Private jupytunnel dirs, profiles and an ssh config file for one test."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.config = base / "ssh" / "config"
        self.config.parent.mkdir(mode=0o700)
        self.env = {
            **os.environ,
            "JUPYTUNNEL_CONFIG_DIR": str(base / "cfg"),
            "JUPYTUNNEL_STATE_DIR": str(base / "st"),
            "JUPYTUNNEL_RUNTIME_DIR": str(base / "rt"),
            "NO_COLOR": "1",
        }
        self.env.pop("JUPYTUNNEL_SSH_CONFIG", None)

    def profile(self, name: str, **keys: Any) -> str:
        folder = self.base / "cfg" / "profiles"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        (folder / f"{name}.toml").write_text(tomli_w.dumps(keys))
        return name

    def run(
        self, *args: str, file: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        extra = ["--file", str(file or self.config)] if "--no-file" not in args else []
        argv = [a for a in args if a != "--no-file"]
        return subprocess.run(
            [sys.executable, "-m", "jupytunnel", *argv, *extra],
            capture_output=True,
            text=True,
            errors="replace",
            env=env or self.env,
            timeout=60,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def run_raw(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        """Output as bytes: CRLF and non-UTF-8 in a diff are shown as they are."""
        return subprocess.run(
            [sys.executable, "-m", "jupytunnel", *args, "--file", str(self.config)],
            capture_output=True,
            env=self.env,
            timeout=60,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def write(self, data: bytes, mode: int = 0o600) -> None:
        self.config.write_bytes(data)
        self.config.chmod(mode)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def ssh_g(config: Path, host: str) -> dict[str, list[str]]:
    proc = subprocess.run(
        [SSH, "-F", str(config), "-G", host],
        capture_output=True,
        text=True,
        timeout=20,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return sshconfig.parse_resolved(proc.stdout)


def snapshot(path: Path) -> tuple[bytes, int, int]:
    st = path.stat()
    return path.read_bytes(), st.st_mtime_ns, st.st_ino


# --- what ssh -G resolves ----------------------------------------------------------------


def test_blocks_resolve_with_ssh_g_and_global_lines_still_apply(env: Env) -> None:
    preamble = b"# mine\nCompression yes\nServerAliveInterval 60\n\n"
    env.write(preamble + b"Host web\n  HostName 10.1.1.1\n")
    env.profile("aura", host="aura.example.org", user="ada", port=2200, jump=["gw.example.org"], remote_port=8890)
    env.profile("uni", host="compute.uni.example", proxy_command="ssh -W %h:%p bastion", local_port=9100)
    out = env.run("write-ssh-config")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[:2] == ["aura: added", "uni: added"]
    text = env.config.read_bytes()
    assert text.startswith(preamble + b"# >>> jupytunnel aura >>>")
    aura = ssh_g(env.config, "aura")
    assert aura["hostname"] == ["aura.example.org"]
    assert aura["user"] == ["ada"]
    assert aura["port"] == ["2200"]
    assert aura["proxyjump"] == ["gw.example.org"]
    assert aura["localforward"] == ["[127.0.0.1]:8890 [127.0.0.1]:8890"]
    assert aura["exitonforwardfailure"] == ["yes"]
    assert aura["compression"] == ["yes"]  # the user's global line
    assert aura["serveraliveinterval"] == ["60"]  # the global line comes first and wins
    uni = ssh_g(env.config, "uni")
    assert uni["proxycommand"] == ["ssh -W %h:%p bastion"]
    assert uni["localforward"] == ["[127.0.0.1]:9100 [127.0.0.1]:8888"]
    assert ssh_g(env.config, "web")["hostname"] == ["10.1.1.1"]


def test_host_alias_is_resolved_not_shadowed(env: Env) -> None:
    user = (
        b"Host lab\n"
        b"    HostName 10.1.2.3\n"
        b"    Port 2222\n"
        b"    User labuser\n"
        b"    ProxyJump gw\n"
        b"    IdentityFile ~/.ssh/lab_key\n"
        b"Host *.corp.example\n"
        b"    ProxyJump bastion\n"
        b"Host a*\n"  # matches the profile name 'aura' but not its host
        b"    ProxyJump evil\n"
        b"    Port 1\n"
    )
    env.write(user)
    env.profile("aura", host="plain.example.org")
    env.profile("labby", host="lab")
    env.profile("db", host="db.corp.example", user="ada")
    out = env.run("write-ssh-config")
    assert out.returncode == 0, out.stderr
    assert "'lab' is an alias" in out.stderr
    labby = ssh_g(env.config, "labby")
    assert labby["hostname"] == ["10.1.2.3"]
    assert labby["port"] == ["2222"]
    assert labby["user"] == ["labuser"]
    assert labby["proxyjump"] == ["gw"]
    assert "~/.ssh/lab_key" in labby["identityfile"]
    db = ssh_g(env.config, "db")
    assert db["proxyjump"] == ["bastion"]
    assert db["user"] == ["ada"]
    assert "ProxyJump bastion copied from 'ssh -G db.corp.example'" in out.stderr
    aura = ssh_g(env.config, "aura")
    assert "proxyjump" not in aura
    assert "proxycommand" not in aura
    assert aura["port"] == ["22"]
    # The user's own blocks read as before.
    assert ssh_g(env.config, "lab")["hostname"] == ["10.1.2.3"]


def test_socket_profile_uses_the_recorded_remote_path(env: Env) -> None:
    env.profile("nb", host="h.example.org", transport="socket", local_port=9200)
    out = env.run("write-ssh-config")
    assert out.returncode == 0, out.stderr
    assert "nb: no LocalForward" in out.stderr
    assert "localforward" not in ssh_g(env.config, "nb")
    sock = "/home/a b/.local/state/jupytunnel/nb.sock"
    record = TunnelRecord(
        profile="nb",
        pid=1,
        create_time=0.0,
        control_path="/x",
        local_port=1234,
        remote=f"h.example.org:{sock}",
        host="h.example.org",
        started_at=0.0,
        url="http://127.0.0.1:1234/",
    )
    tunnels = env.base / "st" / "tunnels"
    tunnels.mkdir(parents=True)
    (tunnels / "nb.json").write_bytes(record.to_json())
    out = env.run("write-ssh-config")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("nb: updated\n")
    assert f'LocalForward 127.0.0.1:9200 "{sock}"' in env.config.read_text()
    assert ssh_g(env.config, "nb")["localforward"] == [f"[127.0.0.1]:9200 {sock}"]


# --- refusals ----------------------------------------------------------------------------


def test_conflict_is_refused_with_its_line_unless_forced(env: Env) -> None:
    original = b"User bob\n\nHost web aura\n    HostName 10.0.0.9\n"
    env.write(original)
    env.profile("aura", host="10.0.0.9")
    out = env.run("write-ssh-config")
    assert out.returncode == 1
    assert f"{env.config}:3:" in out.stderr
    assert "--force" in out.stderr
    assert "Traceback" not in out.stderr
    assert env.config.read_bytes() == original
    forced = env.run("write-ssh-config", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "warning" in forced.stderr
    assert "ours comes first and wins" in forced.stderr
    text = env.config.read_bytes()
    assert text.index(b"Host aura\n") < text.index(b"Host web aura\n")
    assert ssh_g(env.config, "aura")["hostname"] == ["10.0.0.9"]


def test_a_profile_whose_host_is_its_own_name_needs_force(env: Env) -> None:
    env.write(b"Host web\n")
    env.profile("aura", host="AURA")
    out = env.run("write-ssh-config")
    assert out.returncode == 1
    assert "would also apply to jupytunnel's own ssh commands" in out.stderr
    assert env.config.read_bytes() == b"Host web\n"
    forced = env.run("write-ssh-config", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "warning" in forced.stderr
    assert ssh_g(env.config, "aura")["hostname"] == ["aura"]


def test_an_earlier_global_line_that_defeats_the_block_is_refused(env: Env) -> None:
    original = b"User bob\nHost *\n  Port 22\n"
    env.write(original)
    env.profile("aura", host="aura.example.org", user="ada")
    out = env.run("write-ssh-config")
    assert out.returncode == 1
    assert "line 1 'User bob' applies to every host" in out.stderr
    assert "nothing written" in out.stderr
    assert env.config.read_bytes() == original
    assert not sshconfig_file.backup_path(env.config).exists()


def test_what_ssh_rejects_is_never_written(env: Env) -> None:
    env.write(b"Host web\n")
    env.profile("aura", host="aura.example.org", ssh_options={"NoSuchOption": "x"})
    out = env.run("write-ssh-config")
    assert out.returncode == 1
    assert "NoSuchOption" in out.stderr or "Bad configuration option" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert env.config.read_bytes() == b"Host web\n"


def test_broken_markers_are_refused(env: Env) -> None:
    original = b"Host web\n# >>> jupytunnel aura >>>\nHost aura\n"
    env.write(original)
    env.profile("aura", host="a.example.org")
    for args in (("write-ssh-config",), ("write-ssh-config", "--remove")):
        out = env.run(*args)
        assert out.returncode == 1
        assert f"{env.config}:2: managed block 'aura' has no end marker" in out.stderr
    assert env.config.read_bytes() == original


def test_read_only_file_is_refused_and_kept(env: Env) -> None:
    original = b"Host web\n  Port 1\n"
    env.write(original, mode=0o444)
    env.profile("aura", host="a.example.org")
    out = env.run("write-ssh-config")
    assert out.returncode == 1
    assert "read-only (mode 0444)" in out.stderr
    assert "Traceback" not in out.stderr
    assert env.config.read_bytes() == original
    assert stat.S_IMODE(env.config.stat().st_mode) == 0o444
    assert not sshconfig_file.backup_path(env.config).exists()


@pytest.mark.skipif(ROOT, reason="root may write into any folder")
def test_read_only_folder_is_a_clear_error(env: Env) -> None:
    env.write(b"Host web\n")
    env.profile("aura", host="a.example.org")
    env.config.parent.chmod(0o500)
    try:
        out = env.run("write-ssh-config")
    finally:
        env.config.parent.chmod(0o700)
    assert out.returncode == 1
    assert "cannot write" in out.stderr
    assert env.config.read_bytes() == b"Host web\n"


def test_unknown_profile_is_a_usage_error(env: Env) -> None:
    out = env.run("write-ssh-config", "nope")
    assert out.returncode == 2
    assert "no profile 'nope'" in out.stderr
    assert not env.config.exists()


# --- dry run, remove, idempotence, file handling -----------------------------------------


@pytest.mark.parametrize("form", ["local", "global"])
def test_dry_run_prints_a_diff_and_writes_nothing(env: Env, form: str) -> None:
    env.write(b"# caf\xe9\r\nUser bob\r\nHost web\r\n  Port 1")
    env.profile("aura", host="a.example.org")
    before = snapshot(env.config)
    args = ("write-ssh-config", "--dry-run") if form == "local" else ("--dry-run", "write-ssh-config")
    out = env.run_raw(*args)
    assert out.returncode == 0, out.stderr
    assert f"--- {env.config}\n".encode() in out.stdout
    assert b" # caf\xe9\r\n" in out.stdout
    assert b"+Host aura\r\n" in out.stdout
    assert b"\\ No newline at end of file\n" in out.stdout
    assert b"nothing written" in out.stdout
    assert snapshot(env.config) == before
    assert not sshconfig_file.backup_path(env.config).exists()


def test_remove_named_and_all(env: Env) -> None:
    original = b"# mine\nUser bob\n\nHost web\n\tPort 1\n"
    env.write(original)
    env.profile("aura", host="a.example.org")
    env.profile("lab", host="l.example.org")
    assert env.run("write-ssh-config").returncode == 0
    out = env.run("write-ssh-config", "--remove", "aura", "ghost")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[:2] == ["aura: removed", "ghost: no managed block"]
    assert sshconfig.managed_names(env.config.read_bytes()) == ["lab"]
    dry = env.run("write-ssh-config", "--remove", "--dry-run")
    assert "-Host lab\n" in dry.stdout
    assert sshconfig.managed_names(env.config.read_bytes()) == ["lab"]
    out = env.run("write-ssh-config", "--remove")
    assert out.returncode == 0, out.stderr
    assert env.config.read_bytes() == original


def test_second_run_changes_nothing_and_backup_keeps_the_previous_version(env: Env) -> None:
    original = b"Host web\n  Port 1\n"
    env.write(original, mode=0o640)
    env.profile("aura", host="a.example.org")
    assert env.run("write-ssh-config").returncode == 0
    backup = sshconfig_file.backup_path(env.config)
    assert backup.read_bytes() == original
    assert stat.S_IMODE(env.config.stat().st_mode) == 0o640
    assert stat.S_IMODE(backup.stat().st_mode) == 0o640
    first, first_backup = snapshot(env.config), snapshot(backup)
    time.sleep(0.01)
    again = env.run("write-ssh-config")
    assert again.returncode == 0, again.stderr
    assert again.stdout.endswith("aura: unchanged\n" + f"{env.config} unchanged\n")
    assert snapshot(env.config) == first
    assert snapshot(backup) == first_backup
    env.profile("aura", host="b.example.org")
    assert env.run("write-ssh-config").returncode == 0
    assert backup.read_bytes() == first[0]


def test_symlinked_config_is_written_through(env: Env) -> None:
    real = env.base / "dotfiles" / "ssh_config"
    real.parent.mkdir()
    real.write_bytes(b"Host web\n")
    link = env.base / "ssh" / "link"
    link.symlink_to(real)
    env.profile("aura", host="a.example.org")
    out = env.run("write-ssh-config", file=link)
    assert out.returncode == 0, out.stderr
    assert link.is_symlink()
    assert b"Host aura\n" in real.read_bytes()
    assert (real.parent / "ssh_config.jupytunnel.bak").read_bytes() == b"Host web\n"


@pytest.mark.skipif(not ROOT, reason="only root can give a file to another user")
def test_owner_and_group_are_kept(env: Env) -> None:
    env.write(b"Host web\n")
    os.chown(env.config, 65534, 65534)
    env.profile("aura", host="a.example.org")
    assert env.run("write-ssh-config").returncode == 0
    st = env.config.stat()
    assert (st.st_uid, st.st_gid) == (65534, 65534)


def test_env_var_names_the_default_file_and_a_new_file_is_private(env: Env) -> None:
    target = env.base / "ssh" / "new_config"
    env.profile("aura", host="a.example.org")
    out = env.run("write-ssh-config", "--no-file", env={**env.env, "JUPYTUNNEL_SSH_CONFIG": str(target)})
    assert out.returncode == 0, out.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_bytes().startswith(b"# >>> jupytunnel aura >>>")
    assert not sshconfig_file.backup_path(target).exists()
    missing = env.run("write-ssh-config", file=env.base / "nowhere" / "config")
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr


def test_a_missing_default_folder_is_created_private(tmp_path: Path) -> None:
    # In-process: ~/.ssh itself is never touched by the tests.
    target = tmp_path / "home" / ".ssh" / "config"
    plan = sshconfig_file.Plan(target, target, None, b"Host a\n", {}, [], [])
    assert sshconfig_file.commit(plan, create_parent=True)
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_concurrent_runs_lose_no_block(env: Env) -> None:
    env.write(b"Host web\n")
    names = [env.profile(f"p{i}", host=f"h{i}.example.org") for i in range(6)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "jupytunnel", "write-ssh-config", name, "--file", str(env.config)],
            env=env.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert sorted(sshconfig.managed_names(env.config.read_bytes())) == names
    assert sshconfig.remove_all(env.config.read_bytes()) == b"Host web\n"


# --- kills -------------------------------------------------------------------------------

WRITER = """
import sys
from pathlib import Path
from jupytunnel.ssh import config_file as sshconfig_file
target = Path(sys.argv[1])
a, b = Path(sys.argv[2]).read_bytes(), Path(sys.argv[3]).read_bytes()
print("ready", flush=True)
while True:
    old = target.read_bytes()
    sshconfig_file.replace_file(target, old, b if old == a else a)
"""


def test_sigkill_in_a_loop_of_writes_never_leaves_a_partial_file(env: Env) -> None:
    filler = b"".join(b"# line %d of a long user config\n" % i for i in range(20000))
    a = filler + b"Host web\n"
    b = sshconfig.apply(a, {"aura": b"Host aura\n    HostName a.example.org\n"})
    (env.base / "a").write_bytes(a)
    (env.base / "b").write_bytes(b)
    env.write(a)
    rng = random.Random(1234)
    seen: set[bytes] = set()
    mid_write = 0
    for _ in range(200):
        if seen == {a, b} and mid_write >= 3:
            break
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(env.config), str(env.base / "a"), str(env.base / "b")],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
        data = env.config.read_bytes()
        assert data in (a, b)
        seen.add(data)
        backup = sshconfig_file.backup_path(env.config)
        if backup.exists():
            assert backup.read_bytes() in (a, b)
        leftovers = list(env.config.parent.glob(".config.*.tmp"))
        if leftovers:  # this kill landed inside a write
            mid_write += 1
            for leftover in leftovers:
                leftover.unlink()
    assert seen == {a, b}
    # Kills did land inside writes, so the loop tested what it claims to.
    assert mid_write >= 3
    # A later run cleans what a killed writer left beside the config.
    (env.config.parent / ".config.abc123.tmp").write_bytes(b"partial")
    env.profile("zeta", host="zeta.example.org")  # not "aura": the file may end as b, which has it
    out = env.run("write-ssh-config")
    assert out.returncode == 0, out.stderr
    assert list(env.config.parent.glob(".config.*.tmp")) == []


def test_sigkill_of_the_command_leaves_a_whole_file(env: Env) -> None:
    original = b"User bob\n\nHost web\n  Port 1\n"
    env.write(original)
    env.profile("aura", host="a.example.org")
    assert env.run("write-ssh-config").returncode == 0
    written = env.config.read_bytes()
    rng = random.Random(99)
    for i in range(8):
        args = ["write-ssh-config", "--remove"] if i % 2 else ["write-ssh-config"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupytunnel", *args, "--file", str(env.config)],
            env=env.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.1, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert env.config.read_bytes() in (original, written)


# --- end to end: plain ssh, no jupytunnel ------------------------------------------------


@pytest.fixture(scope="module")
def http_server(rig: Rig) -> Iterator[int]:
    """A small HTTP server on the "target" side (loopback of this machine)."""
    site = rig.root / "sshcfg-site"
    site.mkdir(exist_ok=True)
    (site / "index.html").write_text("hello through ssh_config\n")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port), "--directory", str(site)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        yield port
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.mark.integration
@pytest.mark.parametrize("route", ["direct", "jump"])
def test_plain_ssh_opens_the_tunnel(rig: Rig, jt: JT, http_server: int, route: str) -> None:
    work = rig.root / f"wsc-{route}"
    work.mkdir()
    (work / "cm").mkdir(mode=0o700)
    config = work / "config"
    # The user's existing file: global lines (a control socket, so the test can close what
    # it opens), then the rig's Host blocks, identity and known hosts.
    user = f"ControlMaster auto\nControlPath {work}/cm/%C\n\n" + rig.client_config_text()
    config.write_text(user)
    config.chmod(0o600)
    name = f"wsc-{route}"
    local = free_port()
    jt.profile(
        name,
        host="target",
        remote_port=http_server,
        local_port=local,
        **({"jump": ["gateway"]} if route == "jump" else {}),
    )
    out = jt.run("write-ssh-config", name, "--file", str(config))
    assert out.returncode == 0, out.stderr
    text = config.read_text()
    # The managed block alone: the rig's own blocks (Host behind) have a ProxyJump of their own.
    block = text.split(f"# >>> jupytunnel {name} >>>")[1].split(f"# <<< jupytunnel {name} <<<")[0]
    assert "HostName 127.0.0.1" in block
    assert f"Port {rig.target.port}" in block
    assert ("ProxyJump gateway" in block) == (route == "jump")
    log = work / "ssh.log"
    with log.open("wb") as fh:  # never a pipe: ssh -f and the jump helper keep it open
        up = subprocess.run(
            [SSH, "-F", str(config), "-N", "-f", name],
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=fh,
            timeout=30,
            check=False,
        )
    try:
        assert up.returncode == 0, log.read_text()
        with urllib.request.urlopen(f"http://127.0.0.1:{local}/index.html", timeout=10) as resp:
            assert resp.read() == b"hello through ssh_config\n"
    finally:
        subprocess.run(
            [SSH, "-F", str(config), "-O", "exit", name],
            capture_output=True,
            timeout=10,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and list((work / "cm").iterdir()):
        time.sleep(0.05)
    assert list((work / "cm").iterdir()) == []
    # The rest of the user's file is as it was.
    assert sshconfig.remove_all(config.read_bytes()) == user.encode()
