"""Shared checks for the integration tests."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:
    from conftest import JT

    from testsupport.rig import Rig


def procs_with(fragment: str) -> list[psutil.Process]:
    """Processes whose command line contains ``fragment`` (a control path, a port flag)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            cmd = p.info["cmdline"] or []
        except psutil.Error:
            continue
        if any(fragment in part for part in cmd):
            found.append(p)
    return found


def jupyter_on_port(port: int) -> list[psutil.Process]:
    return [p for p in procs_with(f"--port={port}") if _is_jupyter(p)]


def _is_jupyter(p: psutil.Process) -> bool:
    try:
        return any("jupyter" in part for part in p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def api_status(url: str, timeout: float = 10) -> int:
    """GET /api/status?token=... through the printed URL; the HTTP status code."""
    base, _, token = url.partition("?token=")
    root = base.rsplit("/", 1)[0]
    try:
        with urllib.request.urlopen(f"{root}/api/status?token={token}", timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running; a zombie has ended (nothing may reap it where PID 1 is not init)."""
    left = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(p)
        except psutil.Error:  # noqa: PERF203 - it went meanwhile
            continue
    return left


def wait_gone(procs: list[psutil.Process], timeout: float = 10) -> list[psutil.Process]:
    return psutil.wait_procs(procs, timeout=timeout)[1]


def start_server_by_hand(rig: Rig, port: int, *, extra: str = "") -> int:
    """A Jupyter server started on the target the way a user would, over plain ssh."""
    cmd = (
        f"nohup jupyter server --no-browser --ip=127.0.0.1 --port={port} --ServerApp.port_retries=0 {extra}"
        " </dev/null >/dev/null 2>&1 & echo $!"
    )
    out = rig.ssh("target", cmd)
    assert out.returncode == 0, out.stderr
    pid = int(out.stdout.strip())
    wait_for(lambda: _runtime_file_for(rig, pid) is not None, 60, f"jupyter pid {pid} to be ready")
    return pid


def _runtime_file_for(rig: Rig, pid: int) -> Path | None:
    for f in rig.runtime_files():
        try:
            if json.loads(f.read_text())["pid"] == pid:
                return f
        except (OSError, ValueError, KeyError):  # noqa: PERF203 - a file being written
            continue
    return None


def kill_pid(pid: int) -> None:
    try:
        p = psutil.Process(pid)
        p.kill()
        p.wait(10)
    except psutil.Error:
        pass


def run_json(result: subprocess.CompletedProcess[str]) -> Any:  # an object or a list, as printed
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


_DOC_START = re.compile(r"^\w+=\$\(cat <<'(\w+)'$")


def dry_run_commands(text: str, *, shell: str = "bash") -> list[list[str]]:
    """The commands in a dry run's (or -v's) output, read back by ``shell`` exactly as a
    user pasting them would get them: each command line is run with a function in place of
    the program, which prints its words. ``#`` lines are notes; here-documents are scripts."""
    script = ["jt_words() { printf '%s\\0' \"$@\"; printf '\\001'; }"]
    tag = ""
    for line in text.splitlines():
        if tag:
            script.append(line)
            tag = "" if line == tag else tag
            continue
        line = line.removeprefix("+ ")  # noqa: PLW2901 - -v's prefix
        if (start := _DOC_START.match(line)) is not None:
            script.append(line)
            tag = start.group(1)
        elif line.startswith((")", "#")) or not line.strip():
            script.append(line)
        else:
            script.append(f"jt_words {line}")
    out = subprocess.run([shell, "-c", "\n".join(script)], capture_output=True, text=True, timeout=10, check=True)
    return [record.split("\0")[:-1] for record in out.stdout.split("\001")[:-1]]


def _tree(*folders: Path) -> list[str]:
    """Every path under ``folders`` (what a dry run must not add to or remove)."""
    return sorted(str(p) for folder in folders if folder.exists() for p in [folder, *folder.rglob("*")])


def normalised_commands(text: str, *, pid: int | None, home: str) -> list[list[str]]:
    """The commands of a dry run's output or -v's, run-time values replaced (the temporary
    master's PID suffix, the server's ``pid``, the remote ``home``); a command repeated (a
    poll) once."""
    from jupytunnel.remote.server import DRY_HOME

    out: list[list[str]] = []
    for words in dry_run_commands(text):
        norm = [re.sub(r"(cm-[0-9a-f]+)\.t\d+", r"\1.tPID", w).replace(home, DRY_HOME) for w in words]
        if pid is not None:
            norm = [re.sub(rf"\b{pid}\b", "0", w) for w in norm]
        if not out or out[-1] != norm:
            out.append(norm)
    return out


def dry_and_real(jt: JT, *args: str, stdin: str = "") -> tuple[str, str]:
    """``args`` as a dry run (its stdout: nothing written anywhere), then for real with -v
    (its stderr)."""
    before = _tree(jt.state_dir, jt.runtime_dir)
    dry = jt.run("--dry-run", *args)
    assert dry.returncode == 0, dry.stderr
    assert _tree(jt.state_dir, jt.runtime_dir) == before
    real = subprocess.run(
        [sys.executable, "-m", "jupytunnel", "-v", *args],
        input=stdin, capture_output=True, text=True, timeout=120, env=jt.env, check=False,
    )  # fmt: skip
    assert real.returncode == 0, real.stderr
    return dry.stdout, real.stderr
