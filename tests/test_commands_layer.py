"""The commands as plain functions: plain values in, data out (or a ``JupytunnelError``), and
their dry runs recorded at the runner seam, nothing written. No daemon needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupytunnel import runner
from jupytunnel.commands import completion as completion_cmd
from jupytunnel.commands import doctor as doctor_cmd
from jupytunnel.commands import profile as profile_cmd
from jupytunnel.commands import run as run_cmd
from jupytunnel.commands import sshconfig as sshconfig_cmd
from jupytunnel.errors import EXIT_INTERRUPTED, JupytunnelError, ProfileError, UsageError


@pytest.fixture(autouse=True)
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var, sub in (("CONFIG", "cfg"), ("STATE", "st"), ("RUNTIME", "rt")):
        monkeypatch.setenv(f"JUPYTUNNEL_{var}_DIR", str(tmp_path / sub))
    monkeypatch.delenv("JUPYTUNNEL_SSH_CONFIG", raising=False)
    return tmp_path


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if not p.is_dir())


def test_profile_add_list_show_path_remove(dirs: Path) -> None:
    added = profile_cmd.add("aura", {"host": "aura.example.org", "user": "ada"})
    assert added.written
    assert added.path == dirs / "cfg" / "profiles" / "aura.toml"
    assert added.path.read_bytes() == added.text
    assert profile_cmd.path("aura") == added.path
    assert profile_cmd.path() == added.path.parent
    with pytest.raises(UsageError, match="exists"):
        profile_cmd.add("aura", {"host": "x"})
    assert profile_cmd.add("aura", {"host": "aura2"}, force=True).written
    (added.path.parent / "bad.toml").write_text("host = 3\n")
    listed = profile_cmd.list_profiles()
    assert [(x.name, x.profile.host if x.profile else None) for x in listed] == [("aura", "aura2"), ("bad", None)]
    assert listed[1].error is not None
    assert listed[1].to_dict()["valid"] is False
    shown = profile_cmd.show("aura")
    assert shown.own == {"host": "aura2"}
    assert shown.to_dict()["path"] == str(added.path)
    assert profile_cmd.remove("aura") == [f"removed {added.path}"]
    assert not added.path.exists()
    with pytest.raises(UsageError, match="no profile 'aura'"):
        profile_cmd.show("aura")


def test_profile_add_refuses_a_clash_with_defaults_before_writing(dirs: Path) -> None:
    (dirs / "cfg").mkdir()
    (dirs / "cfg" / "defaults.toml").write_text('proxy_command = "nc %h %p"\n')
    with pytest.raises(ProfileError):
        profile_cmd.add("aura", {"host": "aura", "jump": ["gw"]})
    assert _files(dirs / "cfg") == [dirs / "cfg" / "defaults.toml"]


def test_profile_dry_runs_write_nothing(dirs: Path) -> None:
    steps: list[runner.Step] = []
    with runner.recording(steps.append):
        added = profile_cmd.add("aura", {"host": "aura"})
    assert not added.written
    assert b'host = "aura"' in added.text
    assert [s.text() for s in steps] == [f"# write {added.path}"]
    assert _files(dirs) == []
    profile_cmd.add("aura", {"host": "aura"})
    steps.clear()
    with runner.recording(steps.append):
        assert profile_cmd.edit("aura", ["nano", "-w"]) == ""
        assert profile_cmd.remove("aura") == []
    assert steps[0].argv == ["nano", "-w", str(added.path.with_name(".aura.XXXX.toml"))]
    assert steps[1].text() == f"# remove {added.path}"
    assert added.path.exists()


def test_editor_argv() -> None:
    assert profile_cmd.editor_argv({"VISUAL": "code --wait", "EDITOR": "nano"}) == ["code", "--wait"]
    assert profile_cmd.editor_argv({"EDITOR": "nano"}) == ["nano"]
    assert profile_cmd.editor_argv({}) == ["vi"]
    with pytest.raises(UsageError, match="cannot split"):
        profile_cmd.editor_argv({"EDITOR": "vim 'unclosed"})
    with pytest.raises(UsageError, match="empty"):
        profile_cmd.editor_argv({"EDITOR": "   "})


def test_completion_install_and_its_dry_run(dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jupytunnel import completion

    monkeypatch.setenv("HOME", str(dirs / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(dirs / "data"))
    monkeypatch.delenv("BASH_COMPLETION_USER_DIR", raising=False)
    tree = completion.Node(path=("jupytunnel",), help="", options=(), arguments=(), children=())
    assert completion_cmd.show("bash", tree) == completion.render("bash", tree)
    steps: list[runner.Step] = []
    with runner.recording(steps.append):
        dry = completion_cmd.install("bash", tree)
    assert not dry.changed
    assert [s.text() for s in steps] == [f"# would write {dry.target.path}"]
    assert not dry.target.path.exists()
    done = completion_cmd.install("bash", tree)
    assert done.changed
    assert done.target.path.read_text() == completion.render("bash", tree)
    assert not completion_cmd.install("bash", tree).changed
    monkeypatch.setenv("SHELL", "/bin/tcsh")
    with pytest.raises(UsageError, match=r"\$SHELL"):
        completion_cmd.install(None, tree)


def test_write_ssh_config_without_profiles_and_bad_flags(dirs: Path) -> None:
    assert sshconfig_cmd.write_ssh_config(file=dirs / "ssh_config").plan is None
    with pytest.raises(UsageError, match="--force"):
        sshconfig_cmd.write_ssh_config(remove=True, force=True, file=dirs / "ssh_config")
    removed = sshconfig_cmd.write_ssh_config(remove=True, file=dirs / "ssh_config", dry_run=True)
    assert removed.plan is not None
    assert not removed.plan.changed
    assert not removed.written
    assert not (dirs / "ssh_config").exists()


def test_run_commands_need_a_known_run() -> None:
    with pytest.raises(UsageError, match="no run '2026'"):
        run_cmd.cancel("2026")
    with pytest.raises(UsageError, match="no run"):
        run_cmd.logs("x")
    assert run_cmd.list_runs() == []
    stopped = run_cmd.StoppedFollowingError("x")
    assert isinstance(stopped, JupytunnelError)
    assert stopped.exit_code == EXIT_INTERRUPTED


def test_run_refuses_a_bad_notebook_before_any_command(dirs: Path) -> None:
    profile_cmd.add("aura", {"host": "aura"})
    bad = dirs / "bad.ipynb"
    bad.write_text("{}")
    steps: list[runner.Step] = []
    with runner.recording(steps.append), pytest.raises(UsageError, match="not a notebook"):
        run_cmd.run("aura", bad)
    assert steps == []


def test_doctor_dry_run_records_the_remote_and_reports_no_remote_check(dirs: Path) -> None:
    profile_cmd.add("aura", {"host": "aura.invalid"})
    with pytest.raises(UsageError, match="no profile 'nosuch'"):
        doctor_cmd.doctor("nosuch")
    steps: list[runner.Step] = []
    with runner.recording(steps.append):
        checks = doctor_cmd.doctor("aura", timeout=5)
    names = [c.name for c in checks]
    assert "profile aura" in names
    assert not any(n.startswith(("login", "jupyter")) for n in names)  # nothing ran there
    argvs = [s.argv for s in steps if s.argv is not None]
    assert argvs[0][1:] == ["-V"]
    assert any("-M" in a and "BatchMode=yes" in a for a in argvs)
    assert argvs[-1][-3:] == ["-O", "exit", "aura.invalid"]
    assert not [p for p in _files(dirs) if p.suffix != ".toml"]  # no lock, no record, no socket


def _notebook(path: Path) -> Path:
    import json

    cell: dict[str, object] = {
        "cell_type": "code",
        "source": "1",
        "metadata": {},
        "outputs": [],
        "execution_count": None,
    }
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [cell]}))
    return path


def test_run_dry_runs_record_every_step_and_write_nothing(dirs: Path) -> None:
    """Every step of run --wait, run cancel and runs, recorded without a connection."""
    from jupytunnel import runs

    profile_cmd.add("aura", {"host": "aura.invalid"})
    nb = _notebook(dirs / "nb.ipynb")
    before = _files(dirs)
    steps: list[runner.Step] = []
    with runner.recording(steps.append):
        outcome = run_cmd.run("aura", nb, wait=True, timeout=60)
    assert not outcome.ended
    assert outcome.record.state == "running"
    texts = [s.text() for s in steps]
    commands = [s.argv for s in steps if s.argv is not None]
    assert "-M" in commands[0]
    assert len(commands) == 5
    assert commands[-1][-3:] == ["-O", "exit", "aura.invalid"]
    assert any(t.startswith("# the same every 2 s until the run ends") for t in texts)
    assert any(t == f"# write {runs.mirror_path(outcome.record.id)}" for t in texts)
    assert _files(dirs) == before

    # A run seen before (the mirror): its cancel is the state, the cancel, the state.
    runs.save(outcome.record)
    steps.clear()
    with runner.recording(steps.append):
        cancelled = run_cmd.cancel(outcome.record.id[:15])
        listed = run_cmd.list_runs()
    assert cancelled.record == outcome.record
    assert not cancelled.already
    scripts = [s.argv[-1] for s in steps if s.argv is not None and "-T" in s.argv]
    assert len(scripts) == 4
    assert all(outcome.record.id in script for script in scripts[:3])
    assert listed == [outcome.record]

    # fetch: the state, the log, the notebook; both files said, neither written, no folder made.
    steps.clear()
    with runner.recording(steps.append):
        got = run_cmd.fetch(outcome.record.id, to=dirs / "out")
    texts = [s.text() for s in steps]
    assert f"# assume run {outcome.record.id} has ended (it was running when last seen here)" in texts
    assert f"# write {got.notebook}" in texts
    assert f"# write {got.log}" in texts
    assert got.notebook == dirs / "out" / f"nb.{outcome.record.id}.ipynb"
    assert not (dirs / "out").exists()
