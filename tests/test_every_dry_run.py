"""Every command of the CLI, run both ways: with ``--dry-run`` and for real with ``-v``.

``COMPARED`` names, for each command, the tests that run it both ways and compare the
command sequences (tests/test_dry_runs*.py, test_server_dry_runs.py, test_sync_cli.py). The
rest run here against the rig. A command added to the CLI without being run both ways makes
``test_every_command_is_run_both_ways`` fail.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from conftest import JT
from helpers import kill_pid, procs_with, run_json, wait_for
from test_dry_runs import echoed, normalise

from jupytunnel import completion
from jupytunnel.cli.app import app as cli_app
from testsupport.rig import free_port

COMPARED = {
    "connect": ["test_dry_runs.test_connect_to_a_running_server", "test_dry_runs.test_connect_that_starts_the_server"],
    "disconnect": ["test_dry_runs.test_disconnect_and_all", "test_dry_runs.test_disconnect_stop_server"],
    "open": ["test_dry_runs.test_open"],
    "server start": ["test_server_dry_runs.test_server_commands_dry_run_what_they_run"],
    "server stop": ["test_server_dry_runs.test_server_commands_dry_run_what_they_run"],
    "server list": ["test_server_dry_runs.test_server_commands_dry_run_what_they_run"],
    "server logs": ["test_server_dry_runs.test_server_commands_dry_run_what_they_run"],
    "server password": ["test_server_dry_runs.test_password_dry_run_what_it_runs"],
    "doctor": ["test_dry_runs_other.test_doctor_name_dry_run_is_the_real_run"],
    "runs": ["test_dry_runs_other.test_detached_run_runs_and_cancel_dry_runs_are_the_real_runs"],
    "run cancel": ["test_dry_runs_other.test_detached_run_runs_and_cancel_dry_runs_are_the_real_runs"],
    "write-ssh-config": ["test_dry_runs_other.test_write_ssh_config_dry_run_runs_the_same_ssh_g"],
    # Run here:
    "status": ["test_every_dry_run.test_status_both_ways"],
    "profile add": ["test_every_dry_run.test_profile_commands_both_ways"],
    "profile list": ["test_every_dry_run.test_profile_commands_both_ways"],
    "profile show": ["test_every_dry_run.test_profile_commands_both_ways"],
    "profile path": ["test_every_dry_run.test_profile_commands_both_ways"],
    "profile edit": ["test_every_dry_run.test_profile_commands_both_ways"],
    "profile remove": ["test_every_dry_run.test_profile_remove_of_a_busy_profile_both_ways"],
    "completion show": ["test_every_dry_run.test_completion_both_ways"],
    "completion install": ["test_every_dry_run.test_completion_both_ways"],
    "sync": ["test_every_dry_run.test_sync_both_ways"],
    "run fetch": ["test_every_dry_run.test_run_fetch_and_logs_both_ways"],
    "run logs": ["test_every_dry_run.test_run_fetch_and_logs_both_ways"],
}


def test_every_command_is_run_both_ways() -> None:
    leaves = {" ".join(n.path) for n in completion.command_tree(cli_app).walk() if not n.children}
    # `run NAME NOTEBOOK` is the group's own command (a leaf in click's tree: "run" has children).
    leaves |= {"run"} if "run cancel" in leaves else set()
    COMPARED.setdefault("run", ["test_dry_runs_other.test_detached_run_runs_and_cancel_dry_runs_are_the_real_runs"])
    assert sorted(leaves - set(COMPARED)) == []  # a new command: run it both ways
    assert sorted(set(COMPARED) - leaves) == []  # a command gone: drop its line
    for tests in COMPARED.values():
        for test in tests:
            module, name = test.split(".")
            assert callable(getattr(importlib.import_module(module), name)), test


def both_ways(
    jt: JT, *args: str, env: dict[str, str] | None = None, pid: int | None = None
) -> tuple[list[list[str]], list[list[str]], str]:
    """(the real run's commands, the dry run's, the dry run's output). Both run with -v, which
    echoes each command on stderr as it is recorded or run (stdout is the command's own
    output: a profile's TOML, a completion script). The dry run goes first and must leave
    every file as it was."""
    before = _files(jt)
    dry = jt.run("-v", "--dry-run", *args, env=env)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert _files(jt) == before
    real = jt.run("-v", *args, env=env)
    assert real.returncode == 0, real.stdout + real.stderr
    home = str(jt.rig.home)
    return (
        normalise(echoed(real.stderr), home=home, pid=pid),
        normalise(echoed(dry.stderr), home=home, pid=pid),
        dry.stdout + dry.stderr,
    )


def _files(jt: JT) -> dict[str, bytes]:
    folders = (jt.config_dir, jt.state_dir, jt.runtime_dir, jt.rig.home / ".local/state/jupytunnel")
    return {
        str(p): p.read_bytes() if p.is_file() and p.suffix != ".log" else b""
        for f in folders
        if f.exists()
        for p in f.rglob("*")
        if not p.is_dir()
    }


def test_status_both_ways(jt: JT, server: int) -> None:
    """status asks the control socket in-process and Jupyter by HTTP: no command either way."""
    jt.profile("aura", remote_port=server, launcher="none")
    run_json(jt.run("connect", "aura", "--json"))
    for args in (["status"], ["status", "aura", "--json"]):
        real, dry, _ = both_ways(jt, *args)
        assert real == dry == []
    assert jt.run("disconnect", "aura").returncode == 0


def test_profile_commands_both_ways(jt: JT, tmp_path: Path) -> None:
    """add/list/show/path start nothing; edit starts the editor, in the dry run only shown."""
    editor = tmp_path / "editor"
    marker = tmp_path / "edited"
    editor.write_text(f'#!/bin/sh\necho "$1" >> {marker}\n')
    editor.chmod(0o755)
    env = {**jt.env, "VISUAL": str(editor)}
    real, dry, out = both_ways(jt, "profile", "add", "aura", "--host", "aura.example.org")
    assert real == dry == []
    assert "# write " in out
    for args in (["profile", "list"], ["profile", "show", "aura"], ["profile", "path", "aura"]):
        real, dry, _ = both_ways(jt, *args)
        assert real == dry == []
    real, dry, _ = both_ways(jt, "profile", "edit", "aura", env=env)
    assert len(real) == len(dry) == 1
    assert real[0][0] == dry[0][0] == str(editor)
    assert len(marker.read_text().splitlines()) == 1  # the real run's; the dry run started none


def test_profile_remove_of_a_busy_profile_both_ways(jt: JT) -> None:
    """A live tunnel and the server it started are closed first (the server found through the
    tunnel's master, stopped, then the master's exit): the same commands both ways; the dry
    run keeps the profile."""
    jt.profile("busy", remote_port=free_port())
    started = run_json(jt.run("connect", "busy", "--json"))
    assert started["started_server"] is True
    pid = json.loads((jt.state_dir / "tunnels" / "busy.json").read_text())["server_pid"]
    try:
        real, dry, out = both_ways(jt, "profile", "remove", "busy", "--force", pid=pid)
        assert real[-1][-3:] == ["-O", "exit", "target"]
        assert len(real) >= 3
        assert dry == real
        assert "# remove " in out
        assert not (jt.config_dir / "profiles" / "busy.toml").exists()  # the real run's
    finally:
        kill_pid(pid)


def test_completion_both_ways(jt: JT, tmp_path: Path) -> None:
    env = {**jt.env, "HOME": str(tmp_path), "SHELL": "/bin/bash", "XDG_DATA_HOME": str(tmp_path / "share")}
    real, dry, _ = both_ways(jt, "completion", "show", "bash", env=env)
    assert real == dry == []
    before = sorted(tmp_path.rglob("*"))
    dry_out = jt.run("-v", "--dry-run", "completion", "install", "bash", env=env)
    assert dry_out.returncode == 0, dry_out.stderr
    assert sorted(tmp_path.rglob("*")) == before
    assert echoed(dry_out.stderr) == []
    real_out = jt.run("-v", "completion", "install", "bash", env=env)
    assert real_out.returncode == 0, real_out.stderr
    assert echoed(real_out.stderr) == []
    assert sorted(tmp_path.rglob("*")) != before


def test_sync_both_ways(jt: JT, tmp_path: Path) -> None:
    """sync's dry run is rsync's own: the same commands run, rsync with --dry-run."""
    jt.profile("aura")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    dry = jt.run("-v", "--dry-run", "sync", "aura", str(src), "~/both")
    assert dry.returncode == 0, dry.stderr
    assert not (jt.rig.home / "both").exists()
    real = jt.run("-v", "sync", "aura", str(src), "~/both")
    assert real.returncode == 0, real.stderr
    planned, ran = _tpid(echoed(dry.stderr)), _tpid(echoed(real.stderr))
    assert len(ran) >= 3
    rsync_flags = ("--dry-run", "--itemize-changes")
    assert any(set(rsync_flags) <= set(argv) for argv in planned)
    # The dry run creates no remote folder: its check script says so (and nothing else differs).
    same = [[w for w in argv if w not in rsync_flags] for argv in planned]
    assert [len(a) for a in same] == [len(a) for a in ran]
    assert [a for a in same if "\n" not in a[-1]] == [a for a in ran if "\n" not in a[-1]]
    assert (jt.rig.home / "both" / "a.txt").read_text() == "a"


def test_run_fetch_and_logs_both_ways(jt: JT, tmp_path: Path) -> None:
    """A run that ended: its log and its results, shown and fetched both ways alike."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print('both ways')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "python3", "language": "python"}
    path = tmp_path / "short.ipynb"
    nbformat.write(nb, path)
    jt.profile("aura")
    out = jt.run("run", "aura", str(path), "--wait", "--timeout", "120", cwd=tmp_path, timeout=180)
    assert out.returncode == 0, out.stderr
    [run_id] = [p.stem for p in (jt.state_dir / "runs").glob("*.json")]
    wait_for(lambda: procs_with(run_id) == [], 30, "the run's processes to end")
    for args in (["run", "logs", run_id], ["run", "fetch", run_id, "--to", str(tmp_path / "got")]):
        real, dry, _ = both_ways(jt, *args)
        assert real, args
        assert dry == real, args
    assert json.loads((jt.state_dir / "runs" / f"{run_id}.json").read_text())["state"] == "done"


def _tpid(commands: list[list[str]]) -> list[list[str]]:
    """A temporary master's socket is named for its PID, in rsync's -e too."""
    import re

    return [[re.sub(r"(cm-[0-9a-f]+)\.t\d+", r"\1.tPID", w) for w in argv] for argv in commands]
