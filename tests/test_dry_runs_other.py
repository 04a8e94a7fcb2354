"""A dry run is the real code at the runner seam: for doctor and the detached runs, the commands
``--dry-run`` prints are the commands ``-v`` shows a real run running, and a dry run leaves
nothing behind (no process, no file here or on the remote)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from conftest import JT
from helpers import dry_run_commands, procs_with, wait_for

from testsupport.rig import Rig

pytestmark = pytest.mark.integration

_TEMP_SOCKET = re.compile(r"(cm-[0-9a-f]+\.t)\d+")  # a temporary master's socket: its PID
_RUN_ID = re.compile(r"\b\d{8}-\d{6}-[0-9a-f]{4}\b")


def _normal(commands: list[list[str]]) -> list[list[str]]:
    """Run-time values only: a temporary socket's PID, a new run's id."""
    return [[_RUN_ID.sub("RUNID", _TEMP_SOCKET.sub(r"\1PID", word)) for word in argv] for argv in commands]


def _files(*folders: Path) -> dict[Path, bytes]:
    """Every file (not folder) under ``folders``, with its content: the real code may create
    its private folders, nothing else. A log only by its name: a run started before goes on
    writing to its own."""
    return {
        p: p.read_bytes() if p.is_file() and p.suffix != ".log" else b""
        for f in folders
        if f.exists()
        for p in f.rglob("*")
        if not p.is_dir()
    }


def _compare(jt: JT, *args: str, ok: bool = True) -> list[list[str]]:
    """Run ``args`` with --dry-run, then for real with -v; the two command lists, normalised,
    must be equal and not empty. The dry run must leave no file and no process."""
    folders = (jt.state_dir, jt.runtime_dir, jt.rig.home / ".local/state/jupytunnel")
    before = _files(*folders)
    dry = jt.run("--dry-run", *args)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert _files(*folders) == before
    # No master of the dry run's (one of the real run before may still be going away).
    wait_for(lambda: procs_with(str(jt.runtime_dir)) == [], 10, "no ssh on the runtime folder")
    real = jt.run("-v", *args)
    assert (real.returncode == 0) is ok, real.stdout + real.stderr
    planned = _normal(dry_run_commands(dry.stdout))
    ran = _normal(dry_run_commands(real.stderr))
    assert planned, dry.stdout
    assert planned == ran, f"--dry-run:\n{dry.stdout}\n-v:\n{real.stderr}"
    return planned


def test_doctor_name_dry_run_is_the_real_run(jt: JT) -> None:
    jt.profile("doc", launcher="tmux")
    commands = _compare(jt, "doctor", "doc")
    # ssh -V, rsync --version, ssh -G, the temporary master, the script, its exit.
    assert commands[0][1:] == ["-V"]
    assert commands[1][1:] == ["--version"]
    assert "-G" in commands[2]
    master, script, close = commands[3:]
    assert "-M" in master
    assert "BatchMode=yes" in master
    # doctor.plan's drift, gone: a temporary socket (cm-HASH.tPID) and a short ControlPersist.
    assert "ControlPersist=15" in master
    assert master[master.index("-S") + 1].endswith(".tPID")
    assert "==jupytunnel-doctor==" in script[-1]
    assert close[-3:-1] == ["-O", "exit"]


def test_doctor_without_name_dry_run_is_the_real_run(jt: JT) -> None:
    jt.profile("one")
    jt.profile("two")
    commands = _compare(jt, "doctor")
    assert sum("-G" in c for c in commands) == 2


def test_detached_run_runs_and_cancel_dry_runs_are_the_real_runs(rig: Rig, jt: JT, tmp_path: Path) -> None:
    folder = rig.home / "dryproj"
    folder.mkdir(exist_ok=True)
    name = jt.profile("dry", workdir="~/dryproj")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import time\ntime.sleep(300)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "python3", "language": "python"}
    path = tmp_path / "long.ipynb"
    nbformat.write(nb, path)

    # Start: the check, the start script (the notebook on stdin), through a temporary master.
    started = _compare(jt, "run", name, str(path))
    assert len(started) == 4
    assert "RUNID" in started[2][-1]
    [run_id] = [p.stem for p in (jt.state_dir / "runs").glob("*.json")]
    wait_for(lambda: bool(procs_with(run_id)), 60, "the run's nbconvert")

    # runs NAME: the listing through a master of its own; runs: only remotes with active runs.
    _compare(jt, "runs", name)
    _compare(jt, "runs")

    # cancel: the state, the cancel script, the state again.
    cancelled = _compare(jt, "run", "cancel", run_id)
    assert len(cancelled) == 5
    assert all("RUNID" in c[-1] for c in cancelled[1:4])
    wait_for(lambda: procs_with(run_id) == [], 30, "the run's processes to end")


_TEMP_CONFIG = re.compile(r"/jupytunnel-[^/]+/config$")  # write-ssh-config's candidate file


def test_write_ssh_config_dry_run_runs_the_same_ssh_g(jt: JT, tmp_path: Path) -> None:
    """Its dry run is a diff; the ``ssh -G`` checks behind it (read-only) run both ways alike."""
    jt.profile("w1")
    jt.profile("w2", port=2222)
    config = tmp_path / "ssh_config"
    config.write_text("# mine\nHost other\n    User ada\n")
    before = config.read_bytes()
    dry = jt.run("-v", "--dry-run", "write-ssh-config", "--file", str(config))
    assert dry.returncode == 0, dry.stderr
    assert "+Host w1" in dry.stdout  # the diff
    assert config.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ssh_config"]  # no backup, no temp file
    real = jt.run("-v", "write-ssh-config", "--file", str(config))
    assert real.returncode == 0, real.stderr
    assert config.read_bytes() != before

    def normal(text: str) -> list[list[str]]:
        echoed = "\n".join(line for line in text.splitlines() if line.startswith("+ "))  # not the notes
        return [[_TEMP_CONFIG.sub("/jupytunnel-TMP/config", w) for w in argv] for argv in dry_run_commands(echoed)]

    planned, ran = normal(dry.stderr), normal(real.stderr)
    assert len(planned) == 6
    assert all("-G" in argv for argv in planned)
    assert planned == ran
