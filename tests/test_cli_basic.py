"""The CLI as a user runs it: version, help, profiles, dry runs, errors without tracebacks."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import dry_run_commands

from jupytunnel import __version__, remote


def bash_words(line: str) -> list[str]:
    """How bash reads a printed command line back into words."""
    out = subprocess.run(
        ["bash", "-c", 'eval "set -- $1"; printf "%s\\0" "$@"', "_", line],
        capture_output=True, text=True, timeout=10, check=True,
    )  # fmt: skip
    return out.stdout.split("\0")[:-1]


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {
        **os.environ,
        "JUPYTUNNEL_CONFIG_DIR": str(tmp_path / "cfg"),
        "JUPYTUNNEL_STATE_DIR": str(tmp_path / "st"),
        "JUPYTUNNEL_RUNTIME_DIR": str(tmp_path / "rt"),
    }
    base.pop("JUPYTUNNEL_SSH_CONFIG", None)
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "jupytunnel", *args],
        capture_output=True,
        text=True,
        env=base,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_version_and_help(tmp_path: Path) -> None:
    assert run(tmp_path, "--version").stdout == f"jupytunnel {__version__}\n"
    out = run(tmp_path, "--help")
    assert out.returncode == 0
    for cmd in ("connect", "disconnect", "status", "open", "profile", "server"):
        assert cmd in out.stdout
    assert "--dry-run" in out.stdout


def test_profile_lifecycle(tmp_path: Path) -> None:
    add = run(
        tmp_path,
        "profile",
        "add",
        "aura",
        "--host",
        "aura.example.org",
        "--user",
        "ada",
        "--jump",
        "gw.example.org",
        "--setup",
        "module load python/3.11",
        "--nice",
        "10",
        "--ssh-option",
        "Compression=yes",
        "--local-port",
        "9999",
    )
    assert add.returncode == 0, add.stderr
    path = tmp_path / "cfg" / "profiles" / "aura.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert run(tmp_path, "profile", "path", "aura").stdout.strip() == str(path)
    again = run(tmp_path, "profile", "add", "aura", "--host", "x")
    assert again.returncode == 2
    assert "--force" in again.stderr
    assert run(tmp_path, "profile", "add", "aura", "--host", "x", "--force").returncode == 0
    listing = run(tmp_path, "profile", "list", "--json")
    assert '"name": "aura"' in listing.stdout
    assert '"host": "x"' in listing.stdout
    assert run(tmp_path, "profile", "remove", "aura").returncode == 0
    assert not path.exists()
    gone = run(tmp_path, "profile", "show", "aura")
    assert gone.returncode == 2
    assert "no profile 'aura'" in gone.stderr


@pytest.mark.parametrize(
    ("defaults", "args", "fragment"),
    [
        ('proxy_command = "nc %h %p"\n', ["--jump", "gw"], "key 'proxy_command': 'jump' and 'proxy_command' cannot"),
        ('launcher = "slurm"\n', ["--transport", "socket"], "key 'transport': 'socket' cannot reach a compute node"),
    ],
)
def test_profile_add_refuses_a_clash_with_the_defaults(
    tmp_path: Path, defaults: str, args: list[str], fragment: str
) -> None:
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "defaults.toml").write_text(defaults)
    out = run(tmp_path, "profile", "add", "aura", "--host", "x", *args)
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr.startswith("jupytunnel: profile add: profile 'aura': ")
    assert fragment in out.stderr
    assert len(out.stderr.splitlines()) == 1
    assert not (tmp_path / "cfg" / "profiles").exists()
    # Without the clash it is saved, and the defaults stay in defaults.toml.
    assert run(tmp_path, "profile", "add", "aura", "--host", "x").returncode == 0
    assert (tmp_path / "cfg" / "profiles" / "aura.toml").read_text() == 'host = "x"\n'
    assert run(tmp_path, "profile", "show", "aura").returncode == 0


def test_profile_edit_keeps_old_file_when_invalid(tmp_path: Path) -> None:
    run(tmp_path, "profile", "add", "aura", "--host", "aura")
    path = tmp_path / "cfg" / "profiles" / "aura.toml"
    before = path.read_bytes()
    bad_editor = tmp_path / "bad-editor"
    bad_editor.write_text("#!/bin/sh\nprintf 'host = 42\\n' > \"$1\"\n")
    bad_editor.chmod(0o755)
    out = run(tmp_path, "profile", "edit", "aura", env={"EDITOR": str(bad_editor), "VISUAL": ""})
    assert out.returncode == 2
    assert "key 'host'" in out.stderr
    assert path.read_bytes() == before
    good_editor = tmp_path / "good-editor"
    good_editor.write_text('#!/bin/sh\nprintf \'host = "other"\\n\' > "$1"\n')
    good_editor.chmod(0o755)
    out = run(tmp_path, "profile", "edit", "aura", env={"EDITOR": str(good_editor), "VISUAL": ""})
    assert out.returncode == 0, out.stderr
    assert path.read_text() == 'host = "other"\n'


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["connect", "nope"], 2, "no profile 'nope'"),
        (["connect"], 2, "Missing argument"),
        (["connect", "aura", "--bogus"], 2, "No such option"),
        (["profile", "add", "-bad", "--host", "x"], 2, "No such option: -b"),
        (["profile", "add", "--host", "x", "--", "-bad"], 2, "invalid profile name '-bad'"),
        (["profile", "add", "a/b", "--host", "x"], 2, "invalid profile name"),
        (["profile", "add", "ok", "--host", "-oProxyCommand=evil"], 2, "starts with '-'"),
        (["profile", "add", "ok", "--host", "h", "--transport", "udp"], 2, "'tcp', 'socket'"),
        (["connect", "aura", "--local-port", "http"], 2, "--local-port"),
        (["disconnect", "--all", "--stop-server"], 2, "--stop-server needs a profile name"),
        (["disconnect"], 2, "give a profile name or --all"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], code: int, fragment: str) -> None:
    run(tmp_path, "profile", "add", "aura", "--host", "aura")
    empty = tmp_path / "ssh_config"  # connect NAME asks ssh -G whether NAME is a host: not the user's config
    empty.write_text("")
    out = run(tmp_path, *args, env={"JUPYTUNNEL_SSH_CONFIG": str(empty)})
    assert out.returncode == code
    assert "Traceback" not in out.stderr
    assert fragment in out.stderr
    assert len(out.stderr.strip().splitlines()) <= 3  # click's usage line may precede


def test_dry_run_connect_prints_commands_and_runs_none(tmp_path: Path) -> None:
    run(
        tmp_path,
        "profile",
        "add",
        "aura",
        "--host",
        "aura.example.org",
        "--user",
        "ada",
        "--jump",
        "gw.example.org",
        "--remote-port",
        "8890",
        "--local-port",
        "9999",
    )
    out = run(tmp_path, "--dry-run", "connect", "aura", env={"JUPYTUNNEL_SSH_CONFIG": "/etc/jt_cfg"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    commands = dry_run_commands(out.stdout)
    first = commands[0]  # the text reads back, in bash, as the exact argv
    ctl = first[first.index("-S") + 1]
    assert first[1:] == [
        "-F", "/etc/jt_cfg", "-T", "-M", "-S", ctl, "-o", "ControlPersist=yes", "-o", "ExitOnForwardFailure=yes",
        "-o", "ServerAliveInterval=30", "-o", "ServerAliveCountMax=3", "-L", "127.0.0.1:9999:127.0.0.1:8890",
        "-J", "gw.example.org", "-l", "ada", "aura.example.org", remote.discovery_script(),
    ]  # fmt: skip
    assert ctl.startswith(str(tmp_path / "rt" / "cm-"))
    assert all(len(c) > 3 for c in commands)  # whole commands
    assert any("-O check" in ln for ln in lines)
    assert any("jpserver-" in ln for ln in lines)
    assert not (tmp_path / "st" / "tunnels").exists()
    assert len(first[7]) < 100


@pytest.mark.parametrize(
    "args",
    [
        ["server", "start", "aura"],
        ["server", "stop", "aura"],
        ["server", "list", "aura"],
        ["server", "logs", "aura", "-n", "5"],
        ["disconnect", "aura"],
        ["connect", "aura"],
    ],
)
def test_every_dry_run_prints_commands_and_runs_none(tmp_path: Path, args: list[str]) -> None:
    run(tmp_path, "profile", "add", "aura", "--host", "aura.example.org", "--setup", "module load x")
    calls = tmp_path / "calls"
    spy = tmp_path / "ssh"
    spy.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 1\n')
    spy.chmod(0o755)
    out = run(tmp_path, "--dry-run", *args, env={"JUPYTUNNEL_SSH": str(spy)})
    assert out.returncode == 0, out.stderr
    commands = dry_run_commands(out.stdout)
    if args[0] == "disconnect":  # no tunnel: the real run runs nothing, and so does its dry run
        assert commands == []
        assert out.stdout == "# aura: no tunnel to close\n"
    else:
        assert commands
    for words in commands:
        assert words[0] == str(spy)
        assert words[-1] == "aura.example.org" or "aura.example.org" in words
    assert not calls.exists()
    assert not (tmp_path / "st" / "tunnels").exists()
