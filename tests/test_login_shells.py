"""Setup lines in the login shell's environment under every launcher; csh login shells
(issue 11, 1). The README's walk-through 3: a `module` shell function from the rc files and
`source .../bin/activate`."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from conftest import JT
from helpers import api_status, run_json, wait_for

from jupytunnel import remote
from jupytunnel.profiles import Profile
from jupytunnel.remote import launchers
from testsupport.rig import Rig, free_port

SETUP = ("module load python/3.11", "source ~/venvs/lab/bin/activate")
# As Lmod does: `module` is a shell function the login shell's rc files define.
MODULE_FUNCTION = (
    'module() { [ "$1" = load ] || return 1; JT_MODULE="$2"; export JT_MODULE; '
    'PATH="$HOME/modules/bin:$PATH"; export PATH; }\n'
)


def lab_home(home: Path, jupyter: str) -> None:
    """rc files that define `module` (bash reads ~/.bashrc under sshd, zsh ~/.zshenv), a
    module folder with `jupyter` in it, and a virtual environment's activate script."""
    for rc in (".bashrc", ".zshenv"):
        (home / rc).write_text(MODULE_FUNCTION)
    bin_dir = home / "modules" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "jupyter").write_text(jupyter)
    (bin_dir / "jupyter").chmod(0o755)
    venv = home / "venvs" / "lab" / "bin"
    venv.mkdir(parents=True, exist_ok=True)
    (venv / "activate").write_text(f'VIRTUAL_ENV="{home}/venvs/lab"; export VIRTUAL_ENV\n')


@pytest.fixture
def walkthrough_home(rig: Rig) -> Iterator[Path]:
    # The module's `jupyter` is the real one (the rig's venv), reached only through the module.
    lab_home(rig.home, f'#!/bin/sh\nexec {Path(sys.executable).parent}/jupyter "$@"\n')
    yield rig.home
    for rc in (".bashrc", ".zshenv"):
        (rig.home / rc).unlink()


@pytest.mark.integration
@pytest.mark.parametrize("launcher", ["nohup", "tmux", "screen"])
def test_walkthrough_setup_lines_under_every_launcher(rig: Rig, jt: JT, walkthrough_home: Path, launcher: str) -> None:
    name = f"uni-{launcher}"
    jt.profile(name, remote_port=free_port(), launcher=launcher, setup=list(SETUP), jupyter="jupyter server")
    doctor = jt.run("doctor", name, "--json", timeout=120)
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert all(c["status"] != "failed" for c in checks.values()), checks
    out = jt.run("connect", name, "--json", "--timeout", "60")
    try:
        assert out.returncode == 0, out.stderr
        url = json.loads(out.stdout)["url"]
        assert api_status(url) == 200
        pid = json.loads((jt.state_dir / "tunnels" / f"{name}.json").read_text())["server_pid"]
        environ = dict(
            item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item
        )
        assert environ["JT_MODULE"] == "python/3.11"
        assert environ["VIRTUAL_ENV"] == f"{walkthrough_home}/venvs/lab"
        assert not list((walkthrough_home / ".local/state/jupytunnel").glob("*.env"))  # read and removed
    finally:
        jt.run("server", "stop", name, timeout=60)


# The same start scripts under the login shells themselves, without ssh: bash (which reads
# ~/.bashrc under sshd; here through BASH_ENV) and zsh (~/.zshenv). `jupyter` is a stand-in
# that records its environment: only the module puts it on PATH.
_RECORDER = '#!/bin/sh\nenv > "$HOME/jupyter.env"\nexec sleep 60\n'


@pytest.mark.parametrize("shell", ["bash", "zsh"])
@pytest.mark.parametrize("launcher", ["nohup", "tmux", "screen"])
def test_setup_lines_in_the_login_shell(tmp_path: Path, shell: str, launcher: str) -> None:
    path = shutil.which(shell)
    if path is None or (shutil.which(launcher) is None and launcher != "nohup"):
        pytest.skip(f"{shell} or {launcher} is not installed")
    home = tmp_path / "home"
    home.mkdir()
    lab_home(home, _RECORDER)
    (tmp_path / "screens").mkdir(mode=0o700)
    env = {
        "HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin", "BASH_ENV": str(home / ".bashrc"),
        "TMUX_TMPDIR": str(tmp_path), "SCREENDIR": str(tmp_path / "screens"), "TERM": "dumb",
    }  # fmt: skip
    profile = Profile(name="uni", host="h", launcher=launcher, setup=SETUP, jupyter="jupyter server")  # type: ignore[arg-type]
    scripted = launchers.scripted(profile)
    assert scripted is not None
    script = scripted.start_script(profile, sock=None)
    out = subprocess.run(
        [path, "-c", script], input="t" * 48 + "\n", capture_output=True, text=True, env=env, timeout=60, check=False
    )
    try:
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"{remote.MARK} started" in out.stdout, out.stdout
        recorded = home / "jupyter.env"
        wait_for(recorded.exists, 20, "the stand-in jupyter to start")
        wait_for(lambda: "VIRTUAL_ENV" in recorded.read_text(), 10, "its environment")
        lines = recorded.read_text().splitlines()
        assert "JT_MODULE=python/3.11" in lines
        assert f"VIRTUAL_ENV={home}/venvs/lab" in lines
        assert f"JUPYTER_TOKEN={'t' * 48}" in lines
    finally:
        subprocess.run(["tmux", "kill-server"], env=env, capture_output=True, timeout=10, check=False)
        subprocess.run(
            ["screen", "-S", "jupytunnel-uni", "-X", "quit"], env=env, capture_output=True, timeout=10, check=False
        )
        for proc in psutil.process_iter(["cmdline"]):
            cmd = proc.info["cmdline"] or []
            if cmd[:2] == ["sleep", "60"] and str(home) in (proc.environ().get("HOME", "") if proc.pid else ""):
                proc.kill()


@pytest.mark.parametrize("shell", ["tcsh", "csh"])
def test_csh_login_shell_is_detected_by_the_first_read_only_script(shell: str, tmp_path: Path) -> None:
    path = shutil.which(shell)
    if path is None:
        pytest.skip(f"{shell} is not installed")
    out = subprocess.run(
        [path, "-c", remote.discovery_script()], capture_output=True, text=True, timeout=30,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, check=False,
    )  # fmt: skip
    assert "error csh" in remote.parse_discovery(out.stdout).markers
    for sh in ("sh", "bash", "zsh", "dash"):
        if shutil.which(sh):
            plain = subprocess.run(
                [sh, "-c", remote.discovery_script()], capture_output=True, text=True, timeout=30,
                env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, check=False,
            )  # fmt: skip
            assert "error csh" not in remote.parse_discovery(plain.stdout).markers, sh


@pytest.fixture
def tcsh_user(rig: Rig) -> Iterator[str]:
    """A second user whose login shell is tcsh, allowed into this worker's rig."""
    name = "jttcsh"
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("tcsh"):
        pytest.skip("needs root (useradd) and tcsh")
    try:
        pwd.getpwnam(name)
    except KeyError:
        made = subprocess.run(
            ["useradd", "--no-create-home", "--shell", shutil.which("tcsh") or "/usr/bin/tcsh", name],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if made.returncode not in (0, 9):
            pytest.skip(f"useradd failed: {made.stderr.strip()}")
    # Not locked ("!"): sshd without PAM refuses locked accounts even with a key.
    subprocess.run(["usermod", "-p", "*", name], capture_output=True, timeout=30, check=False)
    keys = rig.root / "authorized_keys"
    rig.root.chmod(0o711)  # sshd reads the keys file as the user
    keys.chmod(0o644)
    try:
        yield name
    finally:
        keys.chmod(0o600)
        rig.root.chmod(0o700)


@pytest.mark.integration
def test_connect_refuses_a_csh_login_shell_before_starting_anything(jt: JT, tcsh_user: str) -> None:
    jt.profile("csh", user=tcsh_user, remote_port=free_port())
    out = jt.run("connect", "csh", "--timeout", "30")
    assert out.returncode == 1
    assert out.stderr.strip() == (
        f"jupytunnel: the login shell on {tcsh_user}@target is csh or tcsh; jupytunnel's remote scripts need a "
        "POSIX login shell (sh, bash, zsh, ksh): change it there (for example: chsh -s /bin/bash); nothing was started"
    )
    leftover = [p for p in psutil.process_iter(["username", "name"]) if p.info["username"] == tcsh_user]
    wait_for(lambda: not [p for p in leftover if p.is_running()], 10, "nothing of the tcsh user to run")
    assert run_json(jt.run("status", "--json")) == []
