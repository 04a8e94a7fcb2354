"""Detached notebook runs against the rig: real sshd, real nbconvert and ipykernel on the target."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
from conftest import JT
from helpers import alive, procs_with, wait_for

from testsupport.rig import Rig

pytestmark = pytest.mark.integration

LAUNCHERS = [
    "nohup",
    pytest.param("tmux", marks=pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")),
    pytest.param("screen", marks=pytest.mark.skipif(shutil.which("screen") is None, reason="screen not installed")),
]
_n = itertools.count()


def notebook(path: Path, *sources: str, kernel: str | None = "python3") -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    if kernel:
        nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    nbformat.write(nb, path)
    return path


def project(rig: Rig) -> tuple[str, Path]:
    """A workdir of its own on the target: the notebook's relative paths land there."""
    name = f"proj{next(_n)}"
    folder = rig.home / name
    folder.mkdir()
    return f"~/{name}", folder


def remote_runs(rig: Rig) -> set[str]:
    folder = rig.home / ".local/state/jupytunnel/runs"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def runs_json(jt: JT, name: str) -> list[dict[str, Any]]:
    out = jt.run("runs", name, "--json")
    assert out.returncode == 0, out.stderr
    runs: list[dict[str, Any]] = json.loads(out.stdout)
    return runs


def run_of(jt: JT, name: str, run_id: str) -> dict:  # type: ignore[type-arg]
    [rec] = [r for r in runs_json(jt, name) if r["id"] == run_id]
    return rec


def wait_state(jt: JT, name: str, run_id: str, timeout: float = 90) -> dict:  # type: ignore[type-arg]
    seen: dict = {}  # type: ignore[type-arg]

    def ended() -> bool:
        seen.update(run_of(jt, name, run_id))
        return bool(seen["state"] != "running")

    wait_for(ended, timeout, f"run {run_id} to end")
    return seen


def run_processes(run_id: str) -> list[psutil.Process]:
    """nbconvert of this run and every process under it (the kernel, what cells started)."""
    out = []
    for p in procs_with(run_id):
        try:
            if "nbconvert" in " ".join(p.cmdline()):
                out += [p, *p.children(recursive=True)]
        except psutil.Error:  # noqa: PERF203 - it went meanwhile
            continue
    return out


def start(jt: JT, name: str, nb: Path, *extra: str) -> str:
    out = jt.run("run", name, str(nb), *extra)
    assert out.returncode == 0, out.stderr
    run_id = out.stdout.strip()
    assert len(run_id.split("-")) == 3, out.stdout
    return run_id


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_detached_run_survives_disconnect_and_is_fetched(rig: Rig, jt: JT, tmp_path: Path, launcher: str) -> None:
    workdir, folder = project(rig)
    (folder / "data.txt").write_text("21\n")
    name = jt.profile(f"r{launcher}", workdir=workdir, launcher=launcher)
    nb = notebook(
        tmp_path / "analysis.ipynb",
        "n = int(open('data.txt').read())\nopen('result.txt', 'w').write(str(2 * n))\nprint('wrote', 2 * n)",
        "import time\ntime.sleep(3)\nprint('slept')",
        "print('done', n)",
    )
    began = time.monotonic()
    run_id = start(jt, name, nb)
    assert time.monotonic() - began < 30  # prints the id at once, does not wait for the run
    # Disconnected: the command's own master is gone while the run goes on.
    assert procs_with(str(jt.runtime_dir)) == []
    assert run_of(jt, name, run_id)["state"] == "running"
    rec = wait_state(jt, name, run_id)
    assert rec["state"] == "done", rec
    assert rec["exit_code"] == 0
    assert rec["cells"] == 3
    assert rec["notebook"] == "analysis.ipynb"
    assert (folder / "result.txt").read_text() == "42"  # ran in the workdir
    assert not (folder / "analysis.ipynb").exists()  # no copy among the user's files
    remote = rig.home / ".local/state/jupytunnel/runs" / run_id
    assert stat.S_IMODE(remote.stat().st_mode) == 0o700
    assert stat.S_IMODE((jt.state_dir / "runs" / f"{run_id}.json").stat().st_mode) == 0o600

    dest = tmp_path / "results"
    fetched = jt.run("run", "fetch", run_id, "--to", str(dest))
    assert fetched.returncode == 0, fetched.stderr
    executed = nbformat.read(dest / f"analysis.{run_id}.ipynb", as_version=4)
    texts = ["".join(o.get("text", "") for o in c.outputs) for c in executed.cells]
    assert texts == ["wrote 42\n", "slept\n", "done 21\n"]
    assert (dest / f"analysis.{run_id}.log").read_text()

    # Another laptop (no local mirror) sees the run on the remote.
    other = JT(rig)
    other.profile(name, workdir=workdir, launcher=launcher)
    assert run_of(other, name, run_id)["state"] == "done"
    assert other.run("runs").stdout.count(run_id) == 1  # and remembers it
    assert procs_with(str(jt.runtime_dir)) == []
    assert run_processes(run_id) == []
    if launcher != "nohup":
        assert wait_for_no_session(rig, launcher, run_id)


def wait_for_no_session(rig: Rig, launcher: str, run_id: str) -> bool:
    session = f"jupytunnel-run-{run_id}"
    check = f"tmux has-session -t ={session} 2>/dev/null" if launcher == "tmux" else f"screen -ls | grep -q {session}"
    wait_for(lambda: rig.ssh("target", f"{check} || echo gone").stdout.strip() == "gone", 20, "session to end")
    return True


def test_failed_run_names_the_cell_and_is_fetched(rig: Rig, jt: JT, tmp_path: Path) -> None:
    workdir, _ = project(rig)
    name = jt.profile("rfail", workdir=workdir)
    nb = notebook(tmp_path / "bad.ipynb", "x = 1\nprint('first')", "1 / 0", "print('never')")
    out = jt.run("run", name, str(nb), "--wait", "--json", cwd=tmp_path, timeout=120)
    assert out.returncode == 1, out.stderr
    assert "failed in cell 2 of 3 (ZeroDivisionError)" in out.stderr.splitlines()[-1]
    rec = json.loads(out.stdout)
    assert (rec["state"], rec["failed_cell"], rec["error"]) == ("failed", 2, "ZeroDivisionError")
    executed = nbformat.read(rec["fetched"]["notebook"], as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "first\n"
    assert [o["output_type"] for o in executed.cells[1].outputs] == ["error"]
    assert executed.cells[1].outputs[0]["ename"] == "ZeroDivisionError"
    assert executed.cells[2].outputs == []
    table = jt.run("runs", name)
    assert "2: ZeroDivisionError" in table.stdout
    # fetch again, by a unique prefix of the id
    again = jt.run("run", "fetch", rec["id"][:-1], "--to", str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr
    assert "failed in cell 2 of 3" in again.stdout


def test_wait_done_exits_0_and_fetches(rig: Rig, jt: JT, tmp_path: Path) -> None:
    workdir, _ = project(rig)
    name = jt.profile("rwait", workdir=workdir)
    nb = notebook(tmp_path / "ok.ipynb", "print(6 * 7)", kernel=None)  # no kernelspec: the default kernel
    out = jt.run("run", name, str(nb), "--wait", cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "cell 1 of 1" in out.stderr
    [fetched] = tmp_path.glob("ok.*.ipynb")
    assert nbformat.read(fetched, as_version=4).cells[0].outputs[0]["text"] == "42\n"
    assert ": done in " in out.stdout


def test_wait_timeout_and_ctrl_c_never_stop_the_run(rig: Rig, jt: JT, tmp_path: Path) -> None:
    workdir, _ = project(rig)
    name = jt.profile("rint", workdir=workdir)
    nb = notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(6)", "print('end')")
    out = jt.run("run", name, str(nb), "--wait", "--timeout", "1", cwd=tmp_path, timeout=120)
    assert out.returncode == 1
    assert "still running after 1 s" in out.stderr
    first = out.stderr.split(":")[0].split()[-1]
    err_file = tmp_path / "stderr"
    with err_file.open("w") as err_fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupytunnel", "run", name, str(nb), "--wait"],
            env=jt.env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err_fh, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_for(lambda: "cell 1 of 2" in err_file.read_text(), 90, "the second run to be followed")
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C at a terminal: the whole process group
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = err_file.read_text()
    assert proc.returncode == 130, err
    assert "keeps running" in err.strip().splitlines()[-1]
    # `runs NAME` lists every run on the remote, other tests' too: these are this test's.
    ours = [r for r in runs_json(jt, name) if r["started_by"] == name]
    assert len(ours) == 2
    assert first in {r["id"] for r in ours}
    for rec in ours:
        end = wait_state(jt, name, rec["id"])
        assert end["state"] == "done", (end, jt.run("run", "logs", rec["id"]).stdout)


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_cancel_leaves_no_process(rig: Rig, jt: JT, tmp_path: Path, launcher: str) -> None:
    workdir, _ = project(rig)
    name = jt.profile(f"c{launcher}", workdir=workdir, launcher=launcher)
    nb = notebook(
        tmp_path / "long.ipynb",
        "import subprocess\nchild = subprocess.Popen(['sleep', '300'])",  # a process the kernel started
        "import time\ntime.sleep(300)",
    )
    run_id = start(jt, name, nb)
    wait_for(lambda: run_of(jt, name, run_id).get("cell") == 2, 60, "the second cell to run")
    procs = run_processes(run_id)
    cmdlines = [" ".join(p.cmdline()) for p in procs]
    assert any("ipykernel" in c for c in cmdlines), cmdlines
    assert any(c == "sleep 300" for c in cmdlines), cmdlines
    out = jt.run("run", "cancel", run_id)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{run_id}: cancelled"
    assert psutil.wait_procs(alive(procs), timeout=10)[1] == []
    assert alive(procs) == []
    assert run_processes(run_id) == []
    assert run_of(jt, name, run_id)["state"] == "cancelled"
    assert jt.run("run", "cancel", run_id).stdout.strip() == f"{run_id}: already cancelled"
    if launcher != "nohup":
        assert wait_for_no_session(rig, launcher, run_id)


def test_logs(rig: Rig, jt: JT, tmp_path: Path) -> None:
    workdir, _ = project(rig)
    name = jt.profile("rlogs", workdir=workdir)
    nb = notebook(tmp_path / "l.ipynb", "import time\ntime.sleep(3)")
    run_id = start(jt, name, nb)
    followed = jt.run("run", "logs", run_id, "--follow", timeout=120)
    assert followed.returncode == 0, followed.stderr
    assert f"jupytunnel: run {run_id} started" in followed.stdout
    assert f"jupytunnel: run {run_id} ended" in followed.stdout
    assert followed.stderr.strip() == f"{run_id}: done"
    tail = jt.run("run", "logs", run_id, "-n", "1")
    assert tail.stdout.startswith(f"jupytunnel: run {run_id} ended")


def test_invalid_notebook_is_exit_2_and_starts_nothing(rig: Rig, jt: JT, tmp_path: Path) -> None:
    name = jt.profile("rbad")
    bad = tmp_path / "broken.ipynb"
    bad.write_text('{"cells": [')
    before = remote_runs(rig)
    out = jt.run("run", name, str(bad))
    assert out.returncode == 2
    assert out.stderr.startswith(f"jupytunnel: {bad}: not a notebook: invalid JSON")
    assert len(out.stderr.strip().splitlines()) == 1
    assert remote_runs(rig) == before


@pytest.mark.parametrize(
    ("keys", "args", "fragment"),
    [
        ({}, ("--kernel", "nosuch"), "kernel 'nosuch' is not installed on target (kernels there: "),
        ({"jupyter": "/no/such/bin/jupyter lab"}, (), "jupyter is not on the remote (looked for /no/such/bin/jupyter)"),
        ({"setup": ["false"]}, (), "setup line 1 failed: false"),
    ],
)
def test_missing_kernel_or_nbconvert_starts_nothing(
    rig: Rig, jt: JT, tmp_path: Path, keys: dict[str, object], args: tuple[str, ...], fragment: str
) -> None:
    name = jt.profile("rmiss", **keys)
    nb = notebook(tmp_path / "n.ipynb", "print(1)")
    before = remote_runs(rig)
    out = jt.run("run", name, str(nb), *args)
    assert out.returncode == 1
    assert fragment in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert remote_runs(rig) == before
    assert procs_with(str(jt.runtime_dir)) == []
    assert not (jt.state_dir / "runs").exists()


def test_run_through_a_live_tunnel_then_disconnect(rig: Rig, jt: JT, tmp_path: Path) -> None:
    """With the tunnel up, the run goes through its master (no second login); closing the
    tunnel and stopping the server leaves the run going."""
    from testsupport.rig import free_port

    workdir, folder = project(rig)
    name = jt.profile("rlive", workdir=workdir, remote_port=free_port())
    up = jt.run("connect", name, "--json")
    assert up.returncode == 0, up.stderr
    master_pid = json.loads(up.stdout)["pid"]
    nb = notebook(tmp_path / "live.ipynb", "import time\ntime.sleep(4)\nopen('live.txt', 'w').write('yes')")
    out = jt.run("-v", "run", name, str(nb))
    assert out.returncode == 0, out.stderr
    run_id = out.stdout.strip()
    shown = [ln for ln in out.stderr.splitlines() if ln.startswith("+ ")]
    assert shown
    assert all(" -M " not in ln for ln in shown)  # no master of its own: the tunnel's
    assert psutil.pid_exists(master_pid)
    assert jt.run("disconnect", name, "--stop-server").returncode == 0
    assert procs_with(str(jt.runtime_dir)) == []
    assert wait_state(jt, name, run_id)["state"] == "done"
    assert (folder / "live.txt").read_text() == "yes"
