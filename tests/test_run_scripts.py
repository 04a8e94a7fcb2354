"""Detached runs without the rig: argv and launcher lines pinned, the remote scripts run for
real under each login shell, the local checks, the CLI's dry run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from helpers import alive, dry_run_commands
from test_cli_basic import run
from test_remote_scripts import SHELLS, run_in

from jupytunnel import runs
from jupytunnel.errors import UsageError
from jupytunnel.profiles import Profile
from jupytunnel.remote import run_launchers, run_scripts

RID = "20261130-011107-ab12"
VENV_BIN = str(Path(sys.executable).parent)


def test_nbconvert_argv() -> None:
    base = ["jupyter", "nbconvert", "--to", "notebook", "--execute", "--ExecutePreprocessor.timeout=-1"]
    assert run_scripts.nbconvert_argv(Profile(name="p", host="h"), kernel=None) == base
    assert run_scripts.nbconvert_argv(Profile(name="p", host="h", jupyter="/opt/bin/jupyter lab", nice=5), kernel="ir") == [
        "nice", "-n", "5", "/opt/bin/jupyter", *base[1:], "--ExecutePreprocessor.kernel_name=ir",
    ]  # fmt: skip


def test_launcher_lines() -> None:
    assert run_launchers.NohupRun().start_lines(RID) == (
        f'nohup "$JT_SH" ./job.sh {RID} </dev/null >/dev/null 2>&1 &\n'
    )
    assert run_launchers.TmuxRun().start_lines(RID) == (
        f'tmux new-session -d -s jupytunnel-run-{RID} -c "$PWD" "$JT_SH ./job.sh {RID}"\n'
    )
    assert run_launchers.ScreenRun().start_lines(RID) == f'screen -dmS jupytunnel-run-{RID} "$JT_SH" ./job.sh {RID}\n'
    assert run_launchers.TmuxRun().cleanup_lines(RID) == f"tmux kill-session -t =jupytunnel-run-{RID} 2>/dev/null\n"
    assert run_launchers.NohupRun().cleanup_lines(RID) == ""
    # launcher = "none": the server is started elsewhere, but a run still needs keeping alive
    assert run_launchers.for_profile(Profile(name="p", host="h", launcher="none")).name == "nohup"
    assert run_launchers.for_profile(Profile(name="p", host="h", launcher="screen")).needs == "screen"


def test_run_ids_are_checked_before_any_script() -> None:
    for bad in ["", "x", f"{RID}; rm -rf ~", "../x", f"{RID}\n"]:
        with pytest.raises(ValueError, match="not a run id"):
            run_scripts.cancel_script(bad, launcher=run_launchers.NohupRun())
        with pytest.raises(ValueError, match="not a run id"):
            run_scripts.log_script(bad, lines=5)
    assert RID in run_scripts.list_script(RID)
    assert run_scripts.RUN_ID_RE.fullmatch(runs.new_id())


def test_hooks_are_valid_python() -> None:
    compile(run_scripts.HOOKS, "hooks.py", "exec")


def test_parse_check() -> None:
    out = (
        "motd noise\n==jupytunnel== nbconvert 7.16.4\n==jupytunnel== kernels\n"
        '{"kernelspecs": {"python3": {"resource_dir": "/x"}, "ir": {}}}\n'
    )
    assert run_scripts.parse_check(out) == run_scripts.Check(None, "7.16.4", ["ir", "python3"])
    assert run_scripts.parse_check("==jupytunnel== error nbconvert is not installed\n").error == (
        "nbconvert is not installed"
    )


def test_error_name_from_log() -> None:
    log = (
        "nbclient.exceptions.CellExecutionError: An error occurred while executing the following cell:\n"
        "------------------\n1/0\n------------------\n\n"
        "\x1b[31mZeroDivisionError\x1b[39m                         Traceback (most recent call last)\n"
        "\x1b[31mZeroDivisionError\x1b[39m: division by zero\n"
    )
    assert run_scripts.error_name_from_log(log) == "ZeroDivisionError"
    assert run_scripts.error_name_from_log("all fine\n") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"cells": [', "not a notebook: invalid JSON"),
        ("[]", "not a notebook: no 'cells' list"),
        ('{"cells": [], "nbformat": 4}', "the notebook has no cells"),
        ('{"worksheets": [], "nbformat": 3}', "not a notebook: no 'cells' list"),
        ('{"cells": [{}], "nbformat": 3}', "nbformat 3 is not supported"),
    ],
)
def test_read_notebook_refuses(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "n.ipynb"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        runs.read_notebook(path)


def test_record_json_round_trip() -> None:
    rec = runs.RunRecord(id=RID, profile="aura", host="h", notebook="a.ipynb", state="failed", failed_cell=2)
    raw = json.loads(json.dumps(rec.to_json()))
    assert raw["remote_dir"] == f"~/.local/state/jupytunnel/runs/{RID}"
    assert runs.RunRecord.from_json(raw) == rec
    assert runs.RunRecord.from_json({**raw, "id": "../../x"}) is None
    assert runs.RunRecord.from_json([1]) is None


# --- the remote scripts, run for real under each shell -----------------------------------------


def job_env(home: Path) -> dict[str, str]:
    return {"PATH": f"{VENV_BIN}:{os.environ['PATH']}", "JUPYTER_PLATFORM_DIRS": "1", "IPYTHONDIR": str(home / "ipy")}


def make_run(home: Path, profile: Profile, cells: list[str]) -> Path:
    import nbformat

    d = home / ".local/state/jupytunnel/runs" / RID
    d.mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, d / "input.ipynb")
    (d / "hooks.py").write_text(run_scripts.HOOKS)
    (d / "job.sh").write_text(run_scripts.job_script(profile, kernel=None))
    return d


@pytest.mark.parametrize("shell", SHELLS)
def test_job_runs_in_the_workdir_and_records_done(shell: str, tmp_path: Path) -> None:
    (tmp_path / "work dir").mkdir()
    profile = Profile(name="p", host="h", workdir="~/work dir", setup=("export JT_X=7",))
    d = make_run(tmp_path, profile, ["import os\nprint(os.getcwd(), os.environ['JT_X'])"])
    out = run_in(shell, f"cd {d} && . ./job.sh {RID}", tmp_path, **job_env(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    state = json.loads((d / "state.json").read_text())
    assert (state["state"], state["exit_code"]) == ("done", 0)
    assert state["ended_at"] >= state["started_at"]
    assert isinstance(state["pid"], int)
    import nbformat

    executed = nbformat.read(d / "executed.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"] == f"{tmp_path / 'work dir'} 7\n"
    assert json.loads((d / "progress.json").read_text()) == {"cell": 1, "cells": 1}
    listed, complete = run_scripts.parse_list(run_in(shell, run_scripts.list_script(), tmp_path).stdout)
    assert complete
    assert [(r.id, r.alive) for r in listed] == [(RID, False)]  # the job has ended
    assert listed[0].json_file("state.json")["state"] == "done"


@pytest.mark.parametrize("shell", SHELLS)
def test_job_records_a_failing_setup_line(shell: str, tmp_path: Path) -> None:
    profile = Profile(name="p", host="h", setup=("true", "false"))
    d = make_run(tmp_path, profile, ["print(1)"])
    run_in(shell, f"cd {d} && . ./job.sh {RID}", tmp_path, **job_env(tmp_path))
    assert json.loads((d / "state.json").read_text())["state"] == "failed"
    [listed], _ = run_scripts.parse_list(run_in(shell, run_scripts.list_script(RID), tmp_path).stdout)
    assert listed.setup_error == "setup line 2 failed: false"


def fake_run_state(d: Path, *, pid: int | None, pid_start: str, job_pid: int, job_start: str) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "state.json").write_text(
        f'{{"version": 1, "state": "running", "started_at": 1, "ended_at": null, "exit_code": null, '
        f'"pid": {pid or "null"}, "pid_start": "{pid_start}", "job_pid": {job_pid}, "job_start": "{job_start}"}}\n'
    )


def start_ticks(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]


@pytest.mark.parametrize("shell", SHELLS)
def test_list_tells_a_live_job_from_a_reused_pid(shell: str, tmp_path: Path) -> None:
    runs_dir = tmp_path / ".local/state/jupytunnel/runs"
    me = os.getpid()
    fake_run_state(runs_dir / RID, pid=None, pid_start="", job_pid=me, job_start=start_ticks(me))
    other = "20261130-011107-cd34"
    fake_run_state(runs_dir / other, pid=None, pid_start="", job_pid=me, job_start="12345")  # not its start time
    listed, complete = run_scripts.parse_list(run_in(shell, run_scripts.list_script(), tmp_path).stdout)
    assert complete
    assert sorted((r.id, r.alive) for r in listed) == [(RID, True), (other, False)]


TREE = """\
import subprocess, sys, time
# a kernel-like child in a session of its own (as jupyter_client starts kernels), and its child
subprocess.Popen([sys.executable, "-c", "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"],
                 start_new_session=True)
time.sleep(300)
"""


def no_ps_path(tmp_path: Path) -> str:
    """A PATH with what the scripts use but ``ps`` (a remote without procps)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("sed", "awk", "cut", "tr", "sleep", "mv", "date", "cat", "rm"):
        (folder / tool).symlink_to(shutil.which(tool) or tool)
    return str(folder)


@pytest.mark.parametrize("shell", [*SHELLS, "bash-without-ps"])
def test_cancel_stops_the_whole_tree_and_nothing_else(shell: str, tmp_path: Path) -> None:
    env = {"PATH": no_ps_path(tmp_path)} if shell == "bash-without-ps" else {}
    shell = shell.removesuffix("-without-ps")
    d = tmp_path / ".local/state/jupytunnel/runs" / RID
    d.mkdir(parents=True)
    root = subprocess.Popen([sys.executable, "-c", TREE, "nbconvert", str(d)])
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        deadline = time.monotonic() + 20
        while len(psutil.Process(root.pid).children(recursive=True)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        tree = [psutil.Process(root.pid), *psutil.Process(root.pid).children(recursive=True)]
        assert len(tree) == 3
        dead_job = subprocess.Popen(["true"])
        dead_job.wait()
        fake_run_state(d, pid=root.pid, pid_start=start_ticks(root.pid), job_pid=dead_job.pid, job_start="1")
        out = run_in(shell, run_scripts.cancel_script(RID, launcher=run_launchers.NohupRun()), tmp_path, **env)
        assert out.stdout.strip().endswith("final cancelled"), out.stdout + out.stderr
        root.wait(timeout=10)
        deadline = time.monotonic() + 10
        while alive(tree[1:]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert alive(tree[1:]) == []
        assert bystander.poll() is None
        state = json.loads((d / "state.json").read_text())
        assert state["state"] == "cancelled"
        assert isinstance(state["ended_at"], int)
    finally:
        for p in (root, bystander):
            p.kill()
            p.wait()


@pytest.mark.parametrize("shell", SHELLS)
def test_cancel_never_signals_a_reused_pid(shell: str, tmp_path: Path) -> None:
    d = tmp_path / ".local/state/jupytunnel/runs" / RID
    # The recorded PID now names another process (its start time differs), even one whose
    # command line holds the run id.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", RID])
    try:
        fake_run_state(d, pid=other.pid, pid_start="1", job_pid=other.pid, job_start="1")
        run_in(shell, run_scripts.cancel_script(RID, launcher=run_launchers.NohupRun()), tmp_path)
        time.sleep(0.2)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


# --- the CLI, no remote needed ------------------------------------------------------------------


def test_dry_run_prints_every_command_and_runs_none(tmp_path: Path) -> None:
    import nbformat

    run(tmp_path, "profile", "add", "aura", "--host", "aura.example.org", "--setup", "module load x")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(1)")]
    nbformat.write(nb, tmp_path / "a.ipynb")
    calls = tmp_path / "calls"
    spy = tmp_path / "ssh"
    spy.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 1\n')
    spy.chmod(0o755)
    for args in (
        ["--dry-run", "run", "aura", str(tmp_path / "a.ipynb"), "--wait"],
        ["run", "aura", str(tmp_path / "a.ipynb"), "--dry-run"],
        ["--dry-run", "runs", "aura"],
    ):
        out = run(tmp_path, *args, env={"JUPYTUNNEL_SSH": str(spy)})
        assert out.returncode == 0, out.stderr
        commands = dry_run_commands(out.stdout)
        assert len(commands) >= 3
        for words in commands:
            assert words[0] == str(spy)
            assert "aura.example.org" in words
    assert not calls.exists()
    assert not (tmp_path / "st" / "runs").exists()


def test_start_script_in_the_dry_run_is_the_real_one(tmp_path: Path) -> None:
    import nbformat

    run(tmp_path, "profile", "add", "aura", "--host", "aura.example.org", "--launcher", "tmux")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(1)")]
    nbformat.write(nb, tmp_path / "a.ipynb")
    out = run(tmp_path, "--dry-run", "run", "aura", str(tmp_path / "a.ipynb"), "--kernel", "ir")
    scripts = [words[-1] for words in dry_run_commands(out.stdout)]
    assert any(
        "--ExecutePreprocessor.kernel_name=ir" in s and "tmux new-session -d -s jupytunnel-run-" in s for s in scripts
    )
    assert any("kernelspec list --json" in s for s in scripts)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["run", "aura", "missing.ipynb"], 2, "missing.ipynb: no such notebook"),
        (["run", "aura", "bad.ipynb"], 2, "bad.ipynb: not a notebook: invalid JSON"),
        (["run", "aura", "good.ipynb", "--kernel", "a b"], 2, "--kernel: not a kernel name"),
        (["run", "fetch", RID], 2, f"no run '{RID}' known here"),
        (["run", "cancel", "2026"], 2, "no run '2026' known here"),
        (["run", "logs", RID], 2, f"no run '{RID}' known here"),
        (["run", "nosuchprofile", "good.ipynb"], 2, "nosuchprofile"),
        (["run", "aura", "good.ipynb", "--timeout", "nan"], 2, "--timeout"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    run(tmp_path, "profile", "add", "aura", "--host", "aura.example.org")
    (tmp_path / "bad.ipynb").write_text("{")
    (tmp_path / "good.ipynb").write_text(
        '{"cells": [{"cell_type": "code", "source": "", "metadata": {}}], "nbformat": 4}'
    )
    calls = tmp_path / "calls"
    spy = tmp_path / "ssh"
    spy.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 1\n')
    spy.chmod(0o755)
    args = [str(tmp_path / a) if a.endswith(".ipynb") else a for a in args]
    out = run(tmp_path, *args, env={"JUPYTUNNEL_SSH": str(spy)})
    assert out.returncode == code, out.stderr
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr
    assert not calls.exists()


def test_run_group_shape(tmp_path: Path) -> None:
    """`run NAME NB` and `run fetch ID` side by side; `run -- NAME` for a profile named like a subcommand."""
    helped = run(tmp_path, "run", "--help")
    assert helped.returncode == 0
    assert "jupytunnel run NAME NOTEBOOK" in helped.stdout
    assert "fetch|logs|cancel ID" in helped.stdout
    run(tmp_path, "profile", "add", "fetch", "--host", "fetch.example.org")
    (tmp_path / "n.ipynb").write_text('{"cells": [{"cell_type": "code", "source": "", "metadata": {}}], "nbformat": 4}')
    out = run(tmp_path, "--dry-run", "run", "--", "fetch", str(tmp_path / "n.ipynb"))
    assert out.returncode == 0, out.stderr
    assert "fetch.example.org" in out.stdout


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_scripts_pass_shellcheck(tmp_path: Path) -> None:
    profile = Profile(name="p", host="h", setup=("module load x",), nice=3)
    launcher = run_launchers.TmuxRun()
    scripts = {
        "check": run_scripts.check_script(profile),
        "start": run_scripts.start_script(profile, RID, meta={"a": "it's"}, launcher=launcher, kernel="k"),
        "job": run_scripts.job_script(profile, kernel="k"),
        "list": run_scripts.list_script(),
        "cancel": run_scripts.cancel_script(RID, launcher=launcher),
        "logs": run_scripts.log_script(RID, offset=10),
    }
    for name, script in scripts.items():
        path = tmp_path / f"{name}.sh"
        path.write_text(script)
        # SC2086: word splitting of our own PID lists is meant; SC3028/SC2039: ZSH_VERSION test.
        out = subprocess.run(
            ["shellcheck", "-s", "sh", "-S", "warning", "-e", "SC2086", str(path)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert out.returncode == 0, f"{name}: {out.stdout}"


def test_a_job_gone_without_a_result_is_failed() -> None:
    profile = Profile(name="aura", host="h")
    state = '{"version": 1, "state": "running", "started_at": 5, "ended_at": null, "exit_code": null}\n'
    meta = json.dumps({"notebook": "a.ipynb", "profile": "laptop2", "cells": 3})
    remote = run_scripts.RemoteRun(RID, False, {"state.json": state, "meta.json": meta})
    rec = runs._record(profile, remote, None)
    assert (rec.state, rec.profile, rec.started_by, rec.notebook, rec.cells) == (
        "failed",
        "aura",
        "laptop2",
        "a.ipynb",
        3,
    )
    assert "without recording a result" in (rec.error or "")
    assert runs._record(profile, remote._replace(alive=True), None).state == "running"
    err = json.dumps({"cell": 2, "ename": "KeyError", "evalue": "'x'"})
    done = state.replace('"running"', '"failed"').replace('"exit_code": null', '"exit_code": 1')
    failed = runs._record(profile, remote._replace(files={"state.json": done, "error.json": err}), None)
    assert (failed.state, failed.failed_cell, failed.error, failed.exit_code) == ("failed", 2, "KeyError", 1)


@pytest.mark.parametrize("args", [["run", "fetch", RID], ["run", "logs", RID, "-f"], ["run", "cancel", RID[:-2]]])
def test_dry_run_of_a_known_run_runs_nothing(tmp_path: Path, args: list[str]) -> None:
    run(tmp_path, "profile", "add", "aura", "--host", "aura.example.org", "--launcher", "tmux")
    record = runs.RunRecord(id=RID, profile="aura", host="aura.example.org", notebook="a.ipynb", state="running",
                            launcher="tmux")  # fmt: skip
    (tmp_path / "st" / "runs").mkdir(parents=True)
    (tmp_path / "st" / "runs" / f"{RID}.json").write_text(json.dumps(record.to_json()))
    calls = tmp_path / "calls"
    spy = tmp_path / "ssh"
    spy.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 1\n')
    spy.chmod(0o755)
    out = run(tmp_path, "--dry-run", *args, env={"JUPYTUNNEL_SSH": str(spy)})
    assert out.returncode == 0, out.stderr
    commands = dry_run_commands(out.stdout)
    assert commands
    assert all(words[0] == str(spy) for words in commands)
    assert any(RID in words[-1] for words in commands)
    if args[1] == "cancel":
        assert any(f"tmux kill-session -t =jupytunnel-run-{RID}" in words[-1] for words in commands)
    assert not calls.exists()


@pytest.mark.parametrize("shell", SHELLS)
def test_start_script_under_each_login_shell(shell: str, tmp_path: Path) -> None:
    """The start script runs in the user's login shell: the notebook comes on stdin, the job
    goes into the background with nohup, and the script returns once the job has begun."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print('from', 'stdin')")]
    profile = Profile(name="p", host="h")
    script = run_scripts.start_script(
        profile, RID, meta={"notebook": "it's.ipynb"}, launcher=run_launchers.NohupRun(), kernel=None
    )
    env = {"HOME": str(tmp_path), **job_env(tmp_path)}
    out = subprocess.run(
        [shutil.which(shell) or shell, "-c", script], input=nbformat.writes(nb), capture_output=True, text=True,
        env=env, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[-1] == f"==jupytunnel== started {RID}"
    d = tmp_path / ".local/state/jupytunnel/runs" / RID
    assert json.loads((d / "meta.json").read_text()) == {"notebook": "it's.ipynb"}
    assert (d / "hooks.py").read_text() == run_scripts.HOOKS
    assert oct(d.stat().st_mode & 0o777) == "0o700"
    deadline = time.monotonic() + 90
    while json.loads((d / "state.json").read_text())["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert json.loads((d / "state.json").read_text())["state"] == "done", (d / "run.log").read_text()
    # A second start with the same id refuses, and touches nothing.
    again = subprocess.run(
        [shutil.which(shell) or shell, "-c", script], input="{}", capture_output=True, text=True,
        env=env, timeout=60, check=False,
    )  # fmt: skip
    assert again.returncode == 1
    assert f"run {RID} exists on the remote" in again.stdout
    assert nbformat.read(d / "input.ipynb", as_version=4).cells[0].source == "print('from', 'stdin')"


@pytest.mark.parametrize("shell", SHELLS)
def test_cancel_never_takes_a_pid_reused_since_its_snapshot(shell: str, tmp_path: Path) -> None:
    """The parent links come from one `ps` snapshot: a child listed there may have ended and
    its PID gone to someone else by the time we look. A `ps` that lists a bystander as the
    run's child stands in for that race (it cannot be timed for real)."""
    d = tmp_path / ".local/state/jupytunnel/runs" / RID
    root = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "nbconvert", str(d)])
    bystander = subprocess.Popen(["sleep", "300"])
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "ps").write_text(f"#!/bin/sh\nprintf '%s %s\\n' {root.pid} 1 {bystander.pid} {root.pid}\n")
    (folder / "ps").chmod(0o755)
    try:
        fake_run_state(d, pid=root.pid, pid_start=start_ticks(root.pid), job_pid=root.pid, job_start="1")
        env = {"PATH": f"{folder}:{os.environ['PATH']}"}
        out = run_in(shell, run_scripts.cancel_script(RID, launcher=run_launchers.NohupRun()), tmp_path, **env)
        assert out.stdout.strip().endswith("final cancelled"), out.stdout + out.stderr
        assert root.wait(timeout=10) != 0
        time.sleep(0.2)
        assert bystander.poll() is None
        assert psutil.Process(bystander.pid).status() != psutil.STATUS_STOPPED
    finally:
        for p in (root, bystander):
            p.kill()
            p.wait()
