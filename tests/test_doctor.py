"""``jupytunnel doctor``: the pure parts, the remote script run by a local sh, and the real rig."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import JT

from jupytunnel import doctor
from jupytunnel.profiles import Profile

VENV_BIN = str(Path(sys.executable).parent)


def test_parse_ssh_version() -> None:
    assert doctor.parse_ssh_version("OpenSSH_9.2p1 Debian-2+deb12u6, OpenSSL 3.0.15 3 Sep 2024\n") == (
        (9, 2),
        "9.2p1",
    )
    assert doctor.parse_ssh_version("OpenSSH_7.3p1, LibreSSL 2.4.1") == ((7, 3), "7.3p1")
    assert doctor.parse_ssh_version("OpenSSH_for_Windows_8.1p1, LibreSSL 3.0.2") == ((8, 1), "8.1p1")
    assert doctor.parse_ssh_version("Sun_SSH_1.1") is None


def test_ssh_version_check() -> None:
    assert doctor.ssh_version_check("/usr/bin/ssh", "OpenSSH_9.2p1 Debian").status == "ok"
    assert doctor.ssh_version_check("/usr/bin/ssh", "OpenSSH_7.3p1").status == "ok"
    old = doctor.ssh_version_check("/usr/bin/ssh", "OpenSSH_7.2p2 Ubuntu-4")
    assert old.status == "warning"
    assert "-J" in old.detail
    assert "socket" not in old.detail
    older = doctor.ssh_version_check("/usr/bin/ssh", "OpenSSH_6.6.1p1")
    assert "socket" in older.detail
    assert doctor.ssh_version_check("/x/ssh", "dropbear").status == "warning"


def test_profile_checks_know_what_old_ssh_lacks() -> None:
    jump = Profile(name="j", host="h", jump=("gw",))
    sock = Profile(name="s", host="h", transport="socket")

    def load(name: str) -> Profile:
        return {"j": jump, "s": sock}[name]

    assert doctor.profile_check("j", load, (9, 2))[0].status == "ok"
    check, _ = doctor.profile_check("j", load, (7, 2))
    assert check.status == "failed"
    assert "proxy_command" in (check.hint or "")
    assert doctor.profile_check("s", load, (7, 2))[0].status == "ok"
    assert doctor.profile_check("s", load, (6, 6))[0].status == "failed"


def test_folder_check(tmp_path: Path) -> None:
    uid = os.getuid()
    folder = tmp_path / "f"
    assert doctor.folder_check("config", folder, None, uid=uid).status == "ok"
    folder.mkdir()
    for mode, status in ((0o700, "ok"), (0o750, "warning"), (0o755, "warning"), (0o770, "failed"), (0o777, "failed")):
        folder.chmod(mode)
        check = doctor.folder_check("config", folder, folder.stat(), uid=uid)
        assert check.status == status, oct(mode)
        if status != "ok":
            assert check.hint == f"chmod 700 {folder}"
    assert doctor.folder_check("config", folder, folder.stat(), uid=uid + 1).status == "failed"
    afile = tmp_path / "file"
    afile.write_text("")
    assert doctor.folder_check("config", afile, afile.stat(), uid=uid).status == "failed"


def test_control_path_check() -> None:
    assert doctor.control_path_check({"a": "/run/user/1000/jupytunnel/cm-0123456789abcdef"}).status == "ok"
    long = "/" + "x" * 80 + "/cm-0123456789abcdef"
    check = doctor.control_path_check({"a": long}, limit=104)
    assert check.status == "failed"
    assert "JUPYTUNNEL_RUNTIME_DIR" in (check.hint or "")


def test_parse_resolved_and_resolve_check() -> None:
    out = "user ada\nhostname 10.0.0.5\nport 2222\nproxyjump gw.example.org\nproxycommand none\n"
    check = doctor.resolve_check(Profile(name="a", host="aura"), 0, out, "")
    assert check.status == "ok"
    assert check.detail == "ada@10.0.0.5:2222 via gw.example.org"
    bad = doctor.resolve_check(
        Profile(name="a", host="aura"), 255, "", "/x/config line 3: Bad configuration option: foo"
    )
    assert bad.status == "failed"
    assert "Bad configuration option" in bad.detail


def test_batch_profile_forces_batch_mode() -> None:
    p = Profile(name="a", host="h", ssh_options={"batchmode": "no", "Compression": "yes"})
    assert doctor.batch_profile(p).ssh_options == {"Compression": "yes", "BatchMode": True}


def _run_locally(profile: Profile, tmp_path: Path, path: str) -> list[doctor.Check]:
    """The remote script, run by the local sh as ssh would have the remote shell run it."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    out = subprocess.run(
        ["/bin/sh", "-c", doctor.remote_script(profile)],
        capture_output=True,
        text=True,
        env={"HOME": str(home), "PATH": path},
        timeout=60,
        check=False,
    )
    return doctor.parse_remote(profile, out.stdout)


def by_name(checks: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {c.name.split()[0]: c for c in checks}


def test_remote_script_finds_jupyter_and_its_version(tmp_path: Path) -> None:
    import jupyter_server

    profile = Profile(name="p", host="h", jupyter="jupyter server", transport="socket", nice=5)
    checks = by_name(_run_locally(profile, tmp_path, f"{VENV_BIN}:/usr/bin:/bin"))
    assert checks["login"].status == "ok"
    assert checks["jupyter"].status == "ok", checks["jupyter"]
    assert jupyter_server.__version__ in checks["jupyter"].detail
    assert checks["jupyter_server"].status == "ok"
    assert "nice" not in checks


def test_remote_script_failures(tmp_path: Path) -> None:
    path = f"{VENV_BIN}:/usr/bin:/bin"
    missing = by_name(_run_locally(Profile(name="p", host="h", jupyter="nosuchjupyter lab"), tmp_path, path))
    assert missing["jupyter"].status == "failed"
    assert "nosuchjupyter not found" in missing["jupyter"].detail
    setup = Profile(name="p", host="h", jupyter="jupyter server", setup=("true", "module load nosuch # comment"))
    failed_setup = by_name(_run_locally(setup, tmp_path, path))
    assert failed_setup["jupyter"].status == "failed"
    assert "setup line 2: module load nosuch # comment failed" in failed_setup["jupyter"].detail
    # The setup lines run in the script's shell: an activate-style PATH change is seen.
    env_setup = Profile(name="p", host="h", jupyter="jupyter server", setup=(f'PATH="{VENV_BIN}:$PATH"',))
    assert by_name(_run_locally(env_setup, tmp_path, "/usr/bin:/bin"))["jupyter"].status == "ok"
    not_lab = by_name(_run_locally(Profile(name="p", host="h", jupyter="jupyter nosuchapp"), tmp_path, path))
    assert not_lab["jupyter"].status == "failed"
    assert "--version' failed" in not_lab["jupyter"].detail
    workdir = by_name(
        _run_locally(Profile(name="p", host="h", workdir="~/nope", jupyter="jupyter server"), tmp_path, path)
    )
    assert workdir["workdir"].status == "failed"


def test_remote_script_checks_the_launcher(tmp_path: Path) -> None:
    tmux = Profile(name="p", host="h", jupyter="jupyter server", launcher="tmux")
    found = by_name(_run_locally(tmux, tmp_path, f"{VENV_BIN}:/usr/bin:/bin"))
    assert found["launcher"].status == "ok"
    assert "tmux" in found["launcher"].detail
    # A PATH without tmux (and without jupyter, so the script ends early but still reports).
    empty = tmp_path / "empty"
    empty.mkdir()
    screen = Profile(name="p", host="h", launcher="screen")
    lacking = by_name(_run_locally(screen, tmp_path, str(empty)))
    assert lacking["launcher"].status == "failed"
    assert 'launcher = "nohup"' in (lacking["launcher"].hint or "")


# --- the real rig ---------------------------------------------------------------------------


@pytest.mark.integration
def test_doctor_passes_for_a_working_profile(jt: JT) -> None:
    jt.profile("good", launcher="tmux")
    out = jt.run("doctor", "good")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    for name in ("ssh client", "profile good", "ssh -G good", "login good", "launcher good", "jupyter good"):
        line = next(ln for ln in lines if f" {name}: " in ln)
        assert line.startswith("ok "), line
    assert "jupyter server 2." in out.stdout
    assert lines[-1].endswith(" 0 failed")
    assert "Traceback" not in out.stderr


@pytest.mark.integration
def test_doctor_json(jt: JT) -> None:
    jt.profile("good")
    out = jt.run("doctor", "good", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads(out.stdout)
    assert data["ok"] is True
    assert {tuple(sorted(c)) for c in data["checks"]} == {("detail", "hint", "name", "status")}
    assert {c["status"] for c in data["checks"]} <= {"ok", "warning"}
    assert any(c["name"] == "login good" for c in data["checks"])


@pytest.mark.integration
def test_doctor_fails_for_a_bad_host(jt: JT) -> None:
    jt.profile("bad", host="nosuchhost.invalid")
    out = jt.run("doctor", "bad", "--timeout", "20")
    assert out.returncode == 1
    login = next(ln for ln in out.stdout.splitlines() if " login bad: " in ln)
    assert login.startswith("failed ")
    assert "hint:" in login
    data = json.loads(jt.run("doctor", "bad", "--json", "--timeout", "20").stdout)
    assert data["ok"] is False


@pytest.mark.integration
def test_doctor_reports_a_failing_setup_line_and_missing_jupyter(jt: JT) -> None:
    jt.profile("setup", setup=["false"])
    out = jt.run("doctor", "setup")
    assert out.returncode == 1
    assert "setup line 1: false failed" in out.stdout
    jt.profile("nojup", jupyter="/nowhere/jupyter lab")
    out = jt.run("doctor", "nojup")
    assert out.returncode == 1
    assert "/nowhere/jupyter not found" in out.stdout


@pytest.mark.integration
def test_doctor_without_a_name_checks_every_profile(jt: JT) -> None:
    jt.profile("good")
    (jt.config_dir / "profiles" / "broken.toml").write_text('host = "x"\nnice = 99\n')
    out = jt.run("doctor")
    assert out.returncode == 1
    assert any(ln.startswith("failed ") and "profile broken:" in ln for ln in out.stdout.splitlines())
    assert any(ln.startswith("ok ") and "ssh -G good:" in ln for ln in out.stdout.splitlines())
    assert "login" not in out.stdout  # no remote check without a name
    jt.run("profile", "remove", "broken")
    (jt.config_dir / "profiles" / "broken.toml").unlink(missing_ok=True)
    assert jt.run("doctor").returncode == 0


@pytest.mark.integration
def test_doctor_usage_verbose_and_dry_run(jt: JT) -> None:
    jt.profile("good")
    missing = jt.run("doctor", "nosuch")
    assert missing.returncode == 2
    assert missing.stderr.startswith("jupytunnel: no profile 'nosuch'")
    assert len(missing.stderr.splitlines()) == 1
    dry = jt.run("--dry-run", "doctor", "good")
    assert dry.returncode == 0
    assert "BatchMode=yes" in dry.stdout
    # Nothing ran: no control socket (the dry run is the real code, which may make the folders).
    assert not [p for p in jt.runtime_dir.rglob("*") if not p.is_dir()] if jt.runtime_dir.exists() else True
    verbose = jt.run("-v", "doctor", "good")
    assert verbose.returncode == 0
    ssh_lines = [ln for ln in verbose.stderr.splitlines() if ln.startswith("+ ")]
    assert any(" -V" in ln for ln in ssh_lines)
    assert any(" -G " in ln for ln in ssh_lines)
    assert any("BatchMode=yes" in ln for ln in ssh_lines)


def test_login_hints_follow_ssh_message() -> None:
    p = Profile(name="a", host="aura")
    assert "host name" in doctor._login_hint(p, "ssh: Could not resolve hostname aura: Name or service not known")
    assert "ssh-agent" in doctor._login_hint(p, "Permission denied (publickey).")
    assert "accept the host key" in doctor._login_hint(p, "Host key verification failed.")
    assert "'ssh aura'" in doctor._login_hint(p, "something else")
