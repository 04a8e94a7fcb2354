"""Everyday use without the rig: names and typos, edits never lost, TOML out, tables that fit."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]


def run(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    empty = tmp_path / "ssh_config"
    if not empty.exists():
        empty.write_text("")  # never the user's own ~/.ssh/config
        empty.chmod(0o600)
    base = {
        **os.environ,
        "JUPYTUNNEL_CONFIG_DIR": str(tmp_path / "cfg"),
        "JUPYTUNNEL_STATE_DIR": str(tmp_path / "st"),
        "JUPYTUNNEL_RUNTIME_DIR": str(tmp_path / "rt"),
        "JUPYTUNNEL_SSH_CONFIG": str(empty),
    }
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "jupytunnel", *args],
        capture_output=True,
        text=True,
        env=base,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def add(tmp_path: Path, name: str, *args: str) -> None:
    out = run(tmp_path, "profile", "add", name, *args)
    assert out.returncode == 0, out.stderr


NAME_COMMANDS = [
    ["connect", "unii"],
    ["status", "unii"],
    ["disconnect", "unii"],
    ["disconnect", "unii", "--stop-server"],
    ["open", "unii"],
    ["profile", "show", "unii"],
    ["profile", "edit", "unii"],
    ["profile", "remove", "unii"],
    ["server", "start", "unii"],
    ["server", "stop", "unii"],
    ["server", "list", "unii"],
    ["server", "logs", "unii"],
    ["server", "logs", "unii", "--follow"],
    ["write-ssh-config", "unii"],
    ["doctor", "unii"],
]


@pytest.mark.parametrize("args", NAME_COMMANDS, ids=" ".join)
def test_unknown_name_is_answered_the_same_everywhere(tmp_path: Path, args: list[str]) -> None:
    add(tmp_path, "uni", "--host", "compute.uni.example")
    add(tmp_path, "aura", "--host", "aura.example.org")
    out = run(tmp_path, *args, env={"EDITOR": "true"})
    assert (out.returncode, out.stderr, out.stdout) == (2, "jupytunnel: no profile 'unii'; did you mean 'uni'?\n", "")
    assert (tmp_path / "cfg" / "profiles" / "uni.toml").exists()


@pytest.mark.parametrize("args", [["status", "zzz"], ["profile", "show", "zzz"], ["connect", "zzz"]], ids=" ".join)
def test_unknown_name_without_a_close_one_says_how_to_add_it(tmp_path: Path, args: list[str]) -> None:
    add(tmp_path, "uni", "--host", "compute.uni.example")
    out = run(tmp_path, *args)
    assert out.returncode == 2
    assert out.stderr == "jupytunnel: no profile 'zzz'; add one with: jupytunnel profile add zzz --host HOST\n"


def test_several_close_names_are_all_offered(tmp_path: Path) -> None:
    for name in ("uni", "unix", "union"):
        add(tmp_path, name, "--host", "h")
    out = run(tmp_path, "status", "unio")
    assert out.returncode == 2
    assert out.stderr.startswith("jupytunnel: no profile 'unio'; did you mean 'union'")


def test_a_name_with_only_a_tunnel_record_is_known(tmp_path: Path) -> None:
    """A host connected without a profile has a record: status and disconnect take its name."""
    tunnels = tmp_path / "st" / "tunnels"
    tunnels.mkdir(parents=True)
    (tunnels / "myhost.json").write_text(json.dumps(_record("myhost", remote="myhost:8888")))
    out = run(tmp_path, "status", "myhost", "--json")
    assert out.returncode == 0, out.stderr
    assert [r["profile"] for r in json.loads(out.stdout)] == ["myhost"]
    gone = run(tmp_path, "disconnect", "myhost")
    assert gone.returncode == 0, gone.stderr
    assert not (tunnels / "myhost.json").exists()


# --- profile edit ---------------------------------------------------------------------


def _editor(tmp_path: Path, *versions: str) -> Path:
    """An editor that writes ``versions[i]`` on its i-th run and logs what it was given."""
    folder = tmp_path / "editor"
    folder.mkdir(exist_ok=True)
    for i, text in enumerate(versions):
        (folder / f"v{i}").write_text(text)
    script = folder / "edit"
    script.write_text(
        "#!/bin/sh\n"
        f"n=$(cat {folder}/count 2>/dev/null || echo 0)\n"
        f'cp "$1" {folder}/seen$n\n'
        f'if [ -f {folder}/v$n ]; then cp {folder}/v$n "$1"; fi\n'
        f"echo $((n + 1)) > {folder}/count\n"
    )
    script.chmod(0o755)
    return script


def test_profile_edit_reopens_on_the_users_text_with_the_error(tmp_path: Path) -> None:
    add(tmp_path, "aura", "--host", "aura")
    path = tmp_path / "cfg" / "profiles" / "aura.toml"
    invalid = 'host = "aura"\nlauncher = "tmuxx"\n# my note\n'
    editor = _editor(tmp_path, invalid, 'host = "aura"\nlauncher = "tmux"\n# my note\n')
    out = run(tmp_path, "profile", "edit", "aura", env={"EDITOR": str(editor), "VISUAL": ""})
    assert out.returncode == 0, out.stderr
    assert "reopening the editor" in out.stderr
    assert "'tmuxx'" in out.stderr
    assert out.stdout == f"saved {path}\n"
    assert path.read_text() == 'host = "aura"\nlauncher = "tmux"\n# my note\n'
    # The second run of the editor had the user's text, with the error as a comment on top.
    second = (tmp_path / "editor" / "seen1").read_text()
    head, _, body = second.partition("\n")
    assert head.startswith("# jupytunnel: ")
    assert "launcher" in head
    assert body.endswith(invalid)
    assert tomllib.loads(second)["launcher"] == "tmuxx"  # the comment keeps it TOML
    assert [p.name for p in path.parent.iterdir()] == ["aura.toml"]  # no temp file left


def test_profile_edit_given_up_keeps_the_text_and_starts_from_it(tmp_path: Path) -> None:
    add(tmp_path, "aura", "--host", "aura")
    path = tmp_path / "cfg" / "profiles" / "aura.toml"
    before = path.read_bytes()
    invalid = 'host = "aura"\nnice = 99\n'
    # Writes the invalid text, then leaves the reopened file as it is: the user gives up.
    editor = _editor(tmp_path, invalid)
    out = run(tmp_path, "profile", "edit", "aura", env={"EDITOR": str(editor), "VISUAL": ""})
    assert out.returncode == 2
    kept = tmp_path / "st" / "edits" / "aura.toml"
    assert str(kept) in out.stderr
    assert out.stderr.count("\n") == 2  # the "reopening" line, then the error
    assert kept.read_text() == invalid
    assert oct(kept.stat().st_mode & 0o777) == "0o600"
    assert path.read_bytes() == before
    # The next edit starts from the kept text; a valid result is saved and the copy goes.
    editor2 = tmp_path / "fix"
    editor2.write_text(f'#!/bin/sh\ncp "$1" {tmp_path}/given\nsed -i "s/99/5/" "$1"\n')
    editor2.chmod(0o755)
    again = run(tmp_path, "profile", "edit", "aura", env={"EDITOR": str(editor2), "VISUAL": ""})
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "given").read_text() == invalid
    assert path.read_text() == 'host = "aura"\nnice = 5\n'
    assert not kept.exists()


def test_profile_edit_failing_editor_keeps_changed_text(tmp_path: Path) -> None:
    add(tmp_path, "aura", "--host", "aura")
    editor = tmp_path / "crash"
    editor.write_text('#!/bin/sh\nprintf \'host = "b"\\n# half done\\n\' > "$1"\nexit 3\n')
    editor.chmod(0o755)
    out = run(tmp_path, "profile", "edit", "aura", env={"EDITOR": str(editor), "VISUAL": ""})
    assert out.returncode == 2
    kept = tmp_path / "st" / "edits" / "aura.toml"
    assert str(kept) in out.stderr
    assert kept.read_text() == 'host = "b"\n# half done\n'


# --- profile show -----------------------------------------------------------------------


def test_profile_show_prints_toml_that_parses_back_to_the_file(tmp_path: Path) -> None:
    add(
        tmp_path, "uni", "--host", "compute.uni.example", "--user", "ada", "--jump", "gw", "--setup", "module load x",
        "--ssh-option", "ServerAliveInterval=10", "--nice", "5", "--local-port", "9000", "--no-browser",
    )  # fmt: skip
    (tmp_path / "cfg" / "defaults.toml").write_text('workdir = "~/work"\n')
    out = run(tmp_path, "profile", "show", "uni")
    assert out.returncode == 0, out.stderr
    path = tmp_path / "cfg" / "profiles" / "uni.toml"
    assert tomllib.loads(out.stdout) == tomllib.loads(path.read_text())
    assert "['" not in out.stdout
    assert "True" not in out.stdout
    assert "{}" not in out.stdout.replace("# ssh_options = {}", "")
    lines = out.stdout.splitlines()
    assert 'ssh_options = { ServerAliveInterval = "10" }' in lines
    assert "browser = false" in lines
    assert "# remote_port = 8888  # default" in lines
    assert f'# workdir = "~/work"  # from {tmp_path / "cfg" / "defaults.toml"}' in lines
    assert "# port is not set (ssh's own)" in lines
    # Uncommented, the defaults are TOML too: the whole profile, every key.
    uncommented = "\n".join(
        ln[2:].split("  # ")[0] for ln in lines if ln.startswith("# ") and " = " in ln and "jupytunnel" not in ln
    )
    assert set(tomllib.loads(uncommented)) == {
        "jump", "remote_port", "transport", "jupyter", "workdir", "launcher", "ssh_options", "browser", "local_port", "slurm", "sync",
    } - set(tomllib.loads(path.read_text()))  # fmt: skip


# --- tables -----------------------------------------------------------------------------


def test_fit_shortens_then_drops_and_ellipsize_keeps_both_ends() -> None:
    from jupytunnel.cli.render import ellipsize, fit

    assert ellipsize("abcdefghij", 5) == "ab…ij"
    assert ellipsize("abc", 5) == "abc"
    headers = ["name", "where", "pid"]
    rows = [["a" * 10, "x" * 60, "12345"]]
    h, r = fit(headers, rows, 40, shrink={"where": 10})
    assert h == headers
    assert len("  ".join(r[0])) == 40
    h, r = fit(headers, rows, 20, shrink={"where": 10}, drop=("pid",))
    assert h == ["name", "where"]
    assert len("  ".join(r[0])) <= 22


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_in_pty(tmp_path: Path, *args: str, env: dict[str, str]) -> list[str]:
    """The command's output as a terminal of 80 columns shows it."""
    empty = tmp_path / "ssh_config"
    full = {
        **{k: v for k, v in os.environ.items() if k != "NO_COLOR"},
        "JUPYTUNNEL_CONFIG_DIR": str(tmp_path / "cfg"),
        "JUPYTUNNEL_STATE_DIR": str(tmp_path / "st"),
        "JUPYTUNNEL_RUNTIME_DIR": str(tmp_path / "rt"),
        "JUPYTUNNEL_SSH_CONFIG": str(empty),
        "COLUMNS": "80",
        "LINES": "50",
        "TERM": "xterm-256color",
        **env,
    }
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupytunnel", *args], stdin=slave, stdout=slave, stderr=slave, env=full
    )
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the other end is closed
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        assert proc.wait(timeout=20) == 0, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        os.close(master)
    return ANSI.sub("", out.decode()).replace("\r\n", "\n").splitlines()


def _record(name: str, *, remote: str, port: int = 8888) -> dict[str, object]:
    return {
        "profile": name, "pid": 2**22 + 17, "create_time": 1.0, "control_path": f"/tmp/none/cm-{name}",
        "local_port": port, "remote": remote, "host": "h", "started_at": time.time() - 4000,
        "url": f"http://127.0.0.1:{port}/lab?token=" + "f" * 48,
    }  # fmt: skip


@pytest.mark.parametrize("color", ["rich", "plain"])
def test_tables_fit_80_columns_in_a_terminal(tmp_path: Path, color: str) -> None:
    env = {"NO_COLOR": "1"} if color == "plain" else {}
    long_host = "compute-node-0042.hpc.department-of-physics.university.example.org"
    add(tmp_path, "uni", "--host", long_host)
    add(tmp_path, "a-rather-long-profile-name-for-the-gpu-partition", "--host", long_host, "--transport", "socket")
    tunnels = tmp_path / "st" / "tunnels"
    tunnels.mkdir(parents=True)
    sock = f"{long_host}:/home/ada-lovelace/.local/state/jupytunnel/a-rather-long-profile-name.sock"
    (tunnels / "uni.json").write_text(json.dumps(_record("uni", remote=sock, port=18888)))
    for args in (["status"], ["profile", "list"]):
        lines = run_in_pty(tmp_path, *args, env=env)
        assert lines, args
        assert max(len(ln) for ln in lines) <= 80, (args, lines)
        assert not [ln for ln in lines if ln.strip().startswith(("'", "PROFILE'S"))]
    narrow = run_in_pty(tmp_path, "status", env=env)
    assert any("────" in ln for ln in narrow) == (color == "rich")  # rich draws it, and fits
    assert any(":18888" in ln for ln in narrow)
    wide = run_in_pty(tmp_path, "status", "--wide", env=env)
    assert any("http://127.0.0.1:18888/lab?token=…" in ln for ln in wide)
    assert any(sock in ln for ln in wide)
    listing = run_in_pty(tmp_path, "profile", "list", "--wide", env=env)
    assert any(long_host in ln for ln in listing)


def test_status_table_fits_when_piped_too(tmp_path: Path) -> None:
    add(tmp_path, "uni", "--host", "h")
    tunnels = tmp_path / "st" / "tunnels"
    tunnels.mkdir(parents=True)
    (tunnels / "uni.json").write_text(json.dumps(_record("uni", remote="h:" + "/very/long/path" * 8)))
    out = run(tmp_path, "status", env={"COLUMNS": "80"})
    assert out.returncode == 0, out.stderr
    assert max(len(ln) for ln in out.stdout.splitlines()) <= 80
    assert out.stdout.splitlines()[0].split() == ["PROFILE", "STATE", "URL", "REMOTE", "PID", "UPTIME"]


# --- doctor and defaults.toml -------------------------------------------------------------


def test_doctor_names_a_broken_defaults_toml_as_the_culprit(tmp_path: Path) -> None:
    add(tmp_path, "uni", "--host", "h")
    add(tmp_path, "aura", "--host", "h")
    defaults = tmp_path / "cfg" / "defaults.toml"
    defaults.write_text("launcher = 'tmuxx'\n")
    out = run(tmp_path, "doctor", "--json")
    assert out.returncode == 1
    checks = {c["name"]: c for c in json.loads(out.stdout)["checks"]}
    assert checks["defaults.toml"]["status"] == "failed"
    for name in ("profile uni", "profile aura", "defaults.toml"):
        assert str(defaults) in checks[name]["hint"], checks[name]
        assert "profile edit" not in checks[name]["hint"]
    # A profile's own error still points at the profile.
    defaults.unlink()
    (tmp_path / "cfg" / "profiles" / "uni.toml").write_text("host = 42\n")
    own = {c["name"]: c for c in json.loads(run(tmp_path, "doctor", "--json").stdout)["checks"]}
    assert own["profile uni"]["hint"] == "fix it with: jupytunnel profile edit uni"


# --- first run: names that are hosts ------------------------------------------------------


def test_first_run_rejects_a_name_ssh_does_not_know(tmp_path: Path) -> None:
    add(tmp_path, "uni", "--host", "h")
    out = run(tmp_path, "connect", "unii")
    assert out.returncode == 2
    assert out.stderr == "jupytunnel: no profile 'unii'; did you mean 'uni'?\n"


def test_first_run_dry_run_of_a_host(tmp_path: Path) -> None:
    out = run(tmp_path, "--dry-run", "connect", "ada@ws42.example.org:2222", "--save")
    assert out.returncode == 0, out.stderr
    assert "is no profile" in out.stdout
    assert "-p 2222 -l ada ws42.example.org" in out.stdout
    assert not (tmp_path / "cfg" / "profiles").exists()


def test_profile_add_does_not_complete_existing_names_in_help(tmp_path: Path) -> None:
    """``profile add NAME`` takes a new name: its argument has no profile completer."""
    from jupytunnel import completion
    from jupytunnel.cli.app import app as cli_app

    tree = completion.command_tree(cli_app)
    add_node = next(n for n in tree.walk() if n.path == ("profile", "add"))
    assert [a.values.kind for a in add_node.arguments] == ["none"]
    opts = {name: o.values.kind for o in add_node.options for name in o.names}
    assert opts["--identity-file"] == "files"


def test_server_list_rows_sort_pids_as_numbers() -> None:
    from jupytunnel.cli.server_cmd import table_rows

    rows = [
        {"pid": pid, "port": 8888 + i, "sock": None, "root_dir": "/h", "version": "2.1", "profile": pid == 100}
        for i, pid in enumerate([10000, 9, 100, 25])
    ]
    assert table_rows(rows, "aura") == [
        ["9", "8889", "/h", "2.1", ""],
        ["25", "8891", "/h", "2.1", ""],
        ["100", "8890", "/h", "2.1", "aura"],
        ["10000", "8888", "/h", "2.1", ""],
    ]
