"""``jupytunnel sync`` against the real rig: real sshd (gateway + target), real rsync.

The rig's "remote" is this machine with HOME set to ``rig.home`` by sshd, so remote paths
under ``~`` land there.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from conftest import JT
from helpers import run_json, wait_for, wait_gone

from testsupport.rig import SSH, Rig, Sshd

pytestmark = pytest.mark.integration

FILES = {
    "top.txt": b"top\n",
    "a b.txt": b"with spaces\n",
    "sub/ünï cödé.txt": "unicode ✓\n".encode(),
    "sub/deeper/data.bin": bytes(range(256)) * 40,
    "sub/it's $HOME;*.txt": b"shell characters\n",
}


def make_tree(root: Path, files: dict[str, bytes] = FILES) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (not rsync's partial folder), by relative path."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".rsync-partial" not in p.parts
    }


def sync(
    jt: JT, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return jt.run(*args, cwd=cwd, env=env, timeout=timeout)


def accepted(d: Sshd) -> int:
    """Logins the sshd accepted so far (its log, LogLevel INFO)."""
    return d.log.read_text(errors="replace").count("Accepted publickey")


def one_line_error(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert result.returncode == code, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("jupytunnel: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def test_push_pull_round_trip(rig: Rig, jt: JT, tmp_path: Path) -> None:
    jt.profile("aura")
    src = make_tree(tmp_path / "proj")
    pushed = run_json(sync(jt, "sync", "aura", str(src), "~/rt/proj", "--json"))
    assert tree(rig.home / "rt" / "proj") == FILES
    assert (pushed["direction"], pushed["remote"]) == ("push", f"target:{rig.home}/rt/proj")
    assert (pushed["files"], pushed["through_tunnel"]) == (len(FILES), False)
    assert pushed["transferred_size"] == sum(len(v) for v in FILES.values())
    assert pushed["bytes_sent"] > pushed["transferred_size"]
    # A second sync transfers nothing.
    again = run_json(sync(jt, "sync", "aura", str(src), "~/rt/proj", "--json"))
    assert (again["files"], again["created"], again["deleted"], again["transferred_size"]) == (0, 0, 0, 0)
    assert again["total_files"] == pushed["total_files"]
    # Back again, into a folder that does not exist yet.
    back = tmp_path / "back" / "proj"
    pulled = run_json(sync(jt, "sync", "aura", str(back), "~/rt/proj", "--pull", "--json"))
    assert tree(back) == FILES
    assert pulled["files"] == len(FILES)
    assert pulled["direction"] == "pull"
    # Modes and times came along (-a).
    assert (back / "top.txt").stat().st_mtime == pytest.approx((src / "top.txt").stat().st_mtime, abs=1)


def test_defaults_cwd_workdir_and_the_profile_table(rig: Rig, jt: JT, tmp_path: Path) -> None:
    jt.profile("aura", workdir="~/work")
    src = make_tree(tmp_path / "thesis")
    out = sync(jt, "sync", "aura", cwd=src)
    assert out.returncode == 0, out.stderr
    assert tree(rig.home / "work" / "thesis") == FILES
    assert out.stdout.startswith(f"aura: pushed {len(FILES)} files (")
    assert f" to target:{rig.home}/work/thesis in " in out.stdout
    assert out.stderr == ""  # piped: no progress meter
    # A [sync] table: `jupytunnel sync NAME` alone, anywhere, with its excludes.
    (src / "model.ckpt").write_bytes(b"big")
    (src / "cache").mkdir()
    (src / "cache" / "x").write_bytes(b"x")
    jt.profile(
        "tabled",
        sync={"local": str(src), "remote": "~/tabled", "exclude": ["*.ckpt"]},
    )
    out = sync(jt, "sync", "tabled", "--exclude", "cache/", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert tree(rig.home / "tabled") == FILES
    shown = run_json(sync(jt, "profile", "show", "tabled", "--json"))
    assert shown["sync"] == {"local": str(src), "remote": "~/tabled", "exclude": ["*.ckpt"]}


def test_dry_run_lists_changes_and_changes_nothing(rig: Rig, jt: JT, tmp_path: Path) -> None:
    jt.profile("aura")
    src = make_tree(tmp_path / "dry")
    out = sync(jt, "--dry-run", "sync", "aura", str(src), "~/dry")
    assert out.returncode == 0, out.stderr
    assert not (rig.home / "dry").exists()  # not even the folder
    lines = out.stdout.splitlines()
    rsync_line = next(ln for ln in lines if ln.startswith("/usr/bin/rsync -a -s "))
    assert "--dry-run --itemize-changes" in rsync_line
    assert any(ln.startswith("<f+++++++++ a b.txt") for ln in lines)
    assert "<f+++++++++ sub/ünï cödé.txt" in lines
    assert lines[-1] == f"dry run: {len(FILES) + 3} changes listed above; nothing was changed"  # + ./ sub/ deeper/
    # Pulling into a folder that does not exist: it is not made either.
    run_json(sync(jt, "sync", "aura", str(src), "~/dry", "--json"))
    back = tmp_path / "nothere"
    data = run_json(sync(jt, "sync", "aura", str(back), "~/dry", "--pull", "--json", "--dry-run"))  # after it too
    assert not back.exists()
    assert data["dry_run"] is True
    assert ">f+++++++++ a b.txt" in data["changes"]
    assert any("--dry-run --itemize-changes" in c for c in data["commands"])


def test_delete_only_with_the_flag_and_newer_files_stay(rig: Rig, jt: JT, tmp_path: Path) -> None:
    jt.profile("aura")
    src = make_tree(tmp_path / "del")
    run_json(sync(jt, "sync", "aura", str(src), "~/del", "--json"))
    (src / "top.txt").unlink()
    kept = run_json(sync(jt, "sync", "aura", str(src), "~/del", "--json"))
    assert kept["deleted"] == 0
    assert (rig.home / "del" / "top.txt").exists()
    dry = run_json(sync(jt, "--dry-run", "sync", "aura", str(src), "~/del", "--delete", "--json"))
    assert dry["changes"] == ["*deleting   top.txt"]
    assert (rig.home / "del" / "top.txt").exists()
    gone = run_json(sync(jt, "sync", "aura", str(src), "~/del", "--delete", "--json"))
    assert gone["deleted"] == 1
    assert not (rig.home / "del" / "top.txt").exists()
    # --update: a file newer on the receiving side is never overwritten.
    remote_copy = rig.home / "del" / "a b.txt"
    remote_copy.write_bytes(b"edited there\n")
    later = time.time() + 60
    os.utime(remote_copy, (later, later))
    (src / "a b.txt").write_bytes(b"edited here\n")
    run_json(sync(jt, "sync", "aura", str(src), "~/del", "--json"))
    assert remote_copy.read_bytes() == b"edited there\n"


def test_through_a_jump_host(rig: Rig, jt: JT, tmp_path: Path) -> None:
    jt.profile("jumpy", jump=["gateway"])
    src = make_tree(tmp_path / "jumped")
    before = accepted(rig.gateway)
    out = run_json(sync(jt, "sync", "jumpy", str(src), "~/jumped", "--json"))
    assert tree(rig.home / "jumped") == FILES
    assert out["files"] == len(FILES)
    assert accepted(rig.gateway) == before + 1  # one login on the gateway: the master's


def test_over_a_live_tunnel_no_new_login(rig: Rig, jt: JT, server: int, tmp_path: Path) -> None:
    jt.profile("aura", remote_port=server, launcher="none")
    src = make_tree(tmp_path / "live")
    # No tunnel: exactly one login (the master's; the remote check and rsync ride it).
    before = accepted(rig.target)
    cold = run_json(sync(jt, "sync", "aura", str(src), "~/live", "--json"))
    assert cold["through_tunnel"] is False
    wait_for(lambda: accepted(rig.target) == before + 1, 10, "the sync's one login in the sshd log")
    assert not list(jt.runtime_dir.glob("cm-*.t*"))  # the temporary master is gone
    run_json(jt.run("connect", "aura", "--json"))
    logins = accepted(rig.target)
    (src / "new.txt").write_bytes(b"new\n")
    warm = run_json(sync(jt, "sync", "aura", str(src), "~/live", "--json"))
    back = run_json(sync(jt, "sync", "aura", str(tmp_path / "back"), "~/live", "--pull", "--json"))
    assert (warm["through_tunnel"], warm["files"]) == (True, 1)
    assert back["through_tunnel"] is True
    assert tree(tmp_path / "back") == {**FILES, "new.txt": b"new\n"}
    time.sleep(0.5)  # a login would be in the log by now
    assert accepted(rig.target) == logins
    status = run_json(jt.run("status", "--json"))
    assert [s["state"] for s in status] == ["up"]  # the tunnel is still there


def test_pull_of_a_missing_remote_folder(rig: Rig, jt: JT, tmp_path: Path) -> None:
    jt.profile("aura")
    dest = tmp_path / "dest"
    line = one_line_error(sync(jt, "sync", "aura", str(dest), "~/no such", "--pull"))
    assert line == f"jupytunnel: remote folder ~/no such ({rig.home}/no such) does not exist on target"
    assert not dest.exists()


def test_usage_and_local_errors(rig: Rig, jt: JT, tmp_path: Path) -> None:
    jt.profile("aura")
    assert "no profile 'nosuch'" in one_line_error(sync(jt, "sync", "nosuch"), code=2)
    assert "only '~' and '~/...'" in one_line_error(sync(jt, "sync", "aura", str(tmp_path), "~bob/x"), code=2)
    line = one_line_error(sync(jt, "sync", "aura", str(tmp_path / "missing")))
    assert line == f"jupytunnel: local folder {tmp_path / 'missing'} does not exist"
    (tmp_path / "broken.toml").write_text("")
    (jt.config_dir / "profiles" / "bad.toml").write_text('host = "target"\n[sync]\nlocl = "/x"\n')
    assert "did you mean 'sync.local'?" in one_line_error(sync(jt, "sync", "bad"), code=2)


def test_ssh_failure_is_sshs_own_message(jt: JT, tmp_path: Path) -> None:
    jt.profile("nohost", host="nosuchhost.invalid")
    line = one_line_error(sync(jt, "sync", "nohost", str(tmp_path), "--timeout", "20"))
    assert "ssh to nosuchhost.invalid failed" in line
    assert "Could not resolve hostname" in line


def test_missing_local_rsync(jt: JT, tmp_path: Path) -> None:
    jt.profile("aura")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").symlink_to(SSH)
    env = {**jt.env, "PATH": str(bin_dir)}
    line = one_line_error(sync(jt, "sync", "aura", str(tmp_path), env=env))
    assert line.startswith("jupytunnel: rsync not found on PATH; install rsync (Debian/Ubuntu: apt-get install rsync")


# --- a remote without rsync -------------------------------------------------------------------


class NoRsyncSshd(Sshd):
    """A third sshd whose sessions get a PATH without rsync (nor anything else but the shell's
    builtins): a remote where rsync is not installed."""

    def _write_config(self) -> None:
        super()._write_config()
        empty = self.rig.root / "empty-bin"
        empty.mkdir(exist_ok=True)
        text = self.config.read_text().replace(f"PATH={self.rig.remote_env['PATH']}", f"PATH={empty}")
        assert f"PATH={empty}" in text
        self.config.write_text(text)


@pytest.fixture(scope="module")
def norsync(rig: Rig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The sshd, and an ssh config that knows it as host ``norsync``."""
    d = NoRsyncSshd(rig, "norsync")
    d.start()
    folder = tmp_path_factory.mktemp("norsync")
    known = folder / "known_hosts"
    pub = Path(f"{d.host_key}.pub").read_text().split()
    known.write_text(f"[127.0.0.1]:{d.port} {pub[0]} {pub[1]}\n")
    config = folder / "ssh_config"
    config.write_text(
        f"Host norsync\n    HostName 127.0.0.1\n    Port {d.port}\n    UserKnownHostsFile {known}\n\n"
        + rig.client_config_text()
    )
    config.chmod(0o600)
    try:
        yield config
    finally:
        d.kill()


def test_missing_remote_rsync(jt: JT, norsync: Path, tmp_path: Path) -> None:
    jt.profile("bare", host="norsync")
    env = {**jt.env, "JUPYTUNNEL_SSH_CONFIG": str(norsync)}
    src = make_tree(tmp_path / "src")
    line = one_line_error(sync(jt, "sync", "bare", str(src), "~/never", env=env))
    assert line == (
        "jupytunnel: rsync is not installed on norsync (not on its PATH): "
        "install it there (Debian/Ubuntu: apt-get install rsync, Fedora/RHEL: dnf install rsync)"
    )
    assert not (Path(jt.rig.home) / "never").exists()
    doctor = sync(jt, "doctor", "bare", "--json", env=env)
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["rsync bare"]["status"] == "warning"
    assert "not found on the remote" in checks["rsync bare"]["detail"]
    assert checks["rsync (local)"]["status"] == "ok"


def test_doctor_checks_rsync_on_both_ends(jt: JT) -> None:
    jt.profile("good", sync={"remote": "~/x"})
    out = sync(jt, "doctor", "good")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    local = next(ln for ln in lines if " rsync (local): " in ln)
    remote = next(ln for ln in lines if " rsync good: " in ln)
    assert local.startswith("ok ")
    assert "/rsync" in local
    assert remote.startswith("ok ")
    assert "version" in remote


# --- Ctrl-C -----------------------------------------------------------------------------------


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def remote_rsyncs(rig: Rig) -> list[psutil.Process]:
    """rsync processes under the target sshd (the remote ends of transfers)."""
    assert rig.target.proc is not None
    try:
        children = psutil.Process(rig.target.proc.pid).children(recursive=True)
    except psutil.Error:
        return []
    out = []
    for p in children:
        try:
            if p.name() == "rsync" and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:  # noqa: PERF203 - gone meanwhile
            continue
    return out


def test_ctrl_c_keeps_the_partial_file_and_a_rerun_resumes(rig: Rig, jt: JT, tmp_path: Path) -> None:
    jt.profile("aura")
    src = tmp_path / "big"
    src.mkdir()
    block = os.urandom(1 << 20)
    with (src / "big.bin").open("wb") as fh:
        for _ in range(600):
            fh.write(block)
    dest = rig.home / "bigdest"
    # A session of its own, so that the SIGINT goes to its process group as a terminal's would.
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupytunnel", "sync", "aura", str(src), "~/bigdest"],
        env=jt.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:

        def receiving() -> bool:
            return any(p.name.startswith(".big.bin.") and p.stat().st_size > 0 for p in dest.glob(".big.bin.*"))

        wait_for(receiving, 60, "rsync to start writing big.bin on the remote")
        local = [p for p in psutil.Process(proc.pid).children(recursive=True) if p.name() in ("rsync", "ssh")]
        assert local
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [
        (
            "jupytunnel: interrupted; partly sent files are kept in .rsync-partial on the receiving side; "
            "run the same command again to resume"
        )
    ]
    assert wait_gone(local) == []
    wait_for(lambda: not remote_rsyncs(rig), 15, "the remote rsync to end")
    partial = dest / ".rsync-partial" / "big.bin"
    assert partial.exists()
    assert 0 < partial.stat().st_size < (src / "big.bin").stat().st_size
    assert not (dest / "big.bin").exists()  # never a truncated file in place
    again = run_json(sync(jt, "sync", "aura", str(src), "~/bigdest", "--json", timeout=300))
    assert again["files"] == 1
    assert sha256(dest / "big.bin") == sha256(src / "big.bin")
    assert not partial.exists()


def test_progress_on_a_terminal(rig: Rig, jt: JT, tmp_path: Path) -> None:
    """stderr a terminal: rsync's overall progress there (``\\r`` updates up to 100%);
    stdout, a pipe, still gets the one summary line."""
    import pty

    jt.profile("aura")
    src = make_tree(tmp_path / "prog", {f"f{i}.bin": os.urandom(50_000) for i in range(40)})
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupytunnel", "sync", "aura", str(src), "~/prog"],
            env=jt.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=secondary,
            text=True,
        )
        os.close(secondary)
        seen = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not chunk:
                break
            seen += chunk
        out, _ = proc.communicate(timeout=120)
    finally:
        os.close(primary)
    assert proc.returncode == 0, seen
    assert b"\r" in seen
    assert b"100%" in seen
    assert b"to-chk=0/" in seen
    assert out.startswith("aura: pushed 40 files (2.0 MB) to target:")
