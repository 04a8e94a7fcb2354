"""The remote scripts run for real under each POSIX-ish login shell a remote may have."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jupytunnel import remote
from jupytunnel.profiles import Profile
from jupytunnel.remote import launchers

SHELLS = [s for s in ("sh", "dash", "bash", "zsh") if shutil.which(s)]


def run_in(shell: str, script: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"HOME": str(home), "PATH": os.environ["PATH"]}
    return subprocess.run(
        [shutil.which(shell) or shell, "-c", script], capture_output=True, text=True, env={**base, **env},
        timeout=30, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("shell", SHELLS)
def test_discovery_finds_live_servers_only(shell: str, tmp_path: Path) -> None:
    runtime = tmp_path / ".local/share/jupyter/runtime"
    runtime.mkdir(parents=True)
    live = {"pid": os.getpid(), "port": 8888, "token": "t0k", "base_url": "/", "root_dir": "/r", "version": "2"}
    (runtime / f"jpserver-{os.getpid()}.json").write_text(json.dumps(live, indent=2))
    gone = {**live, "pid": dead_pid(), "port": 9999}
    (runtime / f"jpserver-{gone['pid']}.json").write_text(json.dumps(gone, indent=2))
    # no nbserver-*.json at all: a glob that matches nothing must not abort (zsh)
    out = run_in(shell, remote.discovery_script(), tmp_path)
    assert out.returncode == 0, out.stderr
    found = remote.parse_discovery(out.stdout)
    assert found.home == str(tmp_path)
    assert [(s.pid, s.port, s.token) for s in found.servers] == [(os.getpid(), 8888, "t0k")]


@pytest.mark.parametrize("shell", SHELLS)
def test_discovery_honours_runtime_dir_variables(shell: str, tmp_path: Path) -> None:
    custom = tmp_path / "elsewhere"
    custom.mkdir()
    info = {"pid": os.getpid(), "sock": "/x/a.sock", "port": 0, "token": "t", "base_url": "/b/"}
    (custom / f"jpserver-{os.getpid()}.json").write_text(json.dumps(info, indent=2))
    out = run_in(shell, remote.discovery_script(), tmp_path, JUPYTER_RUNTIME_DIR=str(custom))
    servers = remote.parse_discovery(out.stdout).servers
    assert [(s.sock, s.port, s.base_url) for s in servers] == [("/x/a.sock", None, "/b/")]
    out = run_in(shell, remote.discovery_script(runtime_dir=str(custom)), tmp_path)
    assert len(remote.parse_discovery(out.stdout).servers) == 1


WORKDIRS = ["~", "~/a b", "~/it's", "~/data; touch pwned", "-dash", "~/$HOME`id`", "~/back\\slash"]


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("workdir", WORKDIRS)
def test_workdir_is_one_directory_name(shell: str, workdir: str, tmp_path: Path) -> None:
    expected = tmp_path if workdir == "~" else tmp_path / workdir.removeprefix("~/")
    if workdir == "-dash":
        expected = tmp_path / "-dash"
    expected.mkdir(exist_ok=True)
    profile = Profile(name="p", host="h", workdir=workdir)
    script = (
        remote.PRELUDE + (f"cd {tmp_path}\n" if workdir == "-dash" else "") + remote.cd_line(profile, fd="1") + "pwd\n"
    )
    out = run_in(shell, script, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == str(expected)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("shell", SHELLS)
def test_missing_workdir_is_reported_verbatim(shell: str, tmp_path: Path) -> None:
    profile = Profile(name="p", host="h", workdir="~/no\\such dir")
    out = run_in(shell, remote.PRELUDE + remote.cd_line(profile, fd="1") + "echo not-reached\n", tmp_path)
    assert out.returncode == 1
    assert f"{remote.MARK} error cannot cd to workdir: ~/no\\such dir" in out.stdout.splitlines()


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    ("setup", "line"), [(["true", "false"], 2), (["export A=1", "exit 3"], 2), (["(exit 1)  # a comment"], 1)]
)
def test_failing_setup_line_is_named(shell: str, setup: list[str], line: int, tmp_path: Path) -> None:
    profile = Profile(name="p", host="h", setup=tuple(setup))
    out = run_in(shell, remote.PRELUDE + remote.setup_lines(profile, fd="1") + "echo not-reached\n", tmp_path)
    assert out.returncode != 0
    assert out.stdout.splitlines() == [f"{remote.MARK} error setup line {line} failed: {setup[line - 1]}"]


@pytest.mark.parametrize("shell", SHELLS)
def test_setup_lines_change_the_environment(shell: str, tmp_path: Path) -> None:
    profile = Profile(name="p", host="h", setup=('export JT_A="x y"', "JT_B=2; export JT_B  # comment"))
    out = run_in(shell, remote.setup_lines(profile, fd="1") + 'printf "%s|%s\\n" "$JT_A" "$JT_B"\n', tmp_path)
    assert out.stdout == "x y|2\n"


@pytest.mark.parametrize("shell", SHELLS)
def test_signal_only_a_jupyter(shell: str, tmp_path: Path) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    fake = tmp_path / "jupyter-lab"
    fake.write_text(f"#!{sys.executable}\nimport time; time.sleep(60)\n")
    fake.chmod(0o755)
    jupyter = subprocess.Popen([str(fake)])
    try:
        script = remote.PRELUDE + remote.signal_if_jupyter(bystander.pid) + remote.signal_if_jupyter(jupyter.pid)
        run_in(shell, script, tmp_path)
        assert jupyter.wait(timeout=10) != 0
        assert bystander.poll() is None
    finally:
        for p in (bystander, jupyter):
            p.kill()
            p.wait()


def test_tilde_in_the_jupyter_command_means_the_remote_home() -> None:
    assert remote.command_line(["~/venv/bin/jupyter", "lab", "--x=~"]) == "\"$HOME\"/venv/bin/jupyter lab '--x=~'"


def test_session_names_tmux_keeps() -> None:
    dotted = launchers.session_name(Profile(name="a.b", host="h"))
    underscored = launchers.session_name(Profile(name="a_b", host="h"))
    assert "." not in dotted
    assert ":" not in dotted
    assert dotted != underscored
    assert launchers.session_name(Profile(name="aura", host="h")) == "jupytunnel-aura"


def test_socket_path_too_long_is_refused() -> None:
    from jupytunnel.errors import JupytunnelError

    with pytest.raises(JupytunnelError, match="longer than Unix sockets allow"):
        remote.socket_path("/home/" + "u" * 40, "p" * 60)


@pytest.mark.parametrize("shell", SHELLS)
def test_auto_remote_port_is_chosen_with_jupyters_python(shell: str, tmp_path: Path) -> None:
    """remote_port = "auto": the interpreter named by `jupyter`'s first line picks a free
    port, which lands in the private port file and a marker, and in the Jupyter command line."""
    fake = tmp_path / "bin" / "jupyter"
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\n")
    fake.chmod(0o755)
    (tmp_path / ".local/state/jupytunnel").mkdir(parents=True)
    profile = Profile(name="p", host="h", remote_port="auto", jupyter="jupyter server")
    script = launchers.choose_port(profile, "1") + f"echo {launchers.jupyter_line(profile, sock=None)}\n"
    out = run_in(shell, remote.PRELUDE + script, tmp_path, PATH=f"{fake.parent}:{os.environ['PATH']}")
    marker, line = out.stdout.splitlines()
    port = int(marker.removeprefix(f"{remote.MARK} port "))
    assert 1024 <= port <= 65535
    assert line == f"jupyter server --no-browser --ip=127.0.0.1 --port={port} --ServerApp.port_retries=0"
    assert (tmp_path / ".local/state/jupytunnel/p.port").read_text() == f"{port}\n"
    fixed = Profile(name="p", host="h", remote_port=9999)
    assert launchers.choose_port(fixed, "1") == ""
