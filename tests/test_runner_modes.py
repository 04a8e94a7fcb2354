"""The runner's display (POSIX, scripts as here-documents) and its dry-run mode."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import dry_run_commands

from jupytunnel import runner

SCRIPTS = [
    "echo 'hi' \"$HOME\"\nexit 0",
    "trailing\n",
    "two trailing\n\n",
    "\nleading and $(not run) `nor this` \\ backslash\n",
    "JUPYTUNNEL_SCRIPT\nthe tag itself is a line\n",
    "tab\there\n# a comment line\n)\n",
]


@pytest.mark.parametrize("shell", [s for s in ("sh", "bash", "zsh", "dash") if shutil.which(s)])
@pytest.mark.parametrize("script", SCRIPTS)
def test_display_reads_back_byte_for_byte(shell: str, script: str) -> None:
    argv = ["/usr/bin/ssh", "-o", "SetEnv=A=b c", "-S", "/tmp/it's here/cm", "host", script]
    shown = runner.display(argv)
    assert "$'" not in shown  # POSIX: no bash-only quoting
    assert script.rstrip("\n").splitlines()[0] in shown.splitlines() or not script.strip()  # readable as is
    assert dry_run_commands(shown, shell=shell) == [argv]


def test_display_of_two_scripts_and_plain_commands() -> None:
    argv = ["ssh", "host", "a\nb", "--", "c\nd\n"]
    text = "\n".join(["# a note", runner.display(["ssh", "-O", "check", "x y"]), runner.display(argv)])
    assert dry_run_commands(text) == [["ssh", "-O", "check", "x y"], argv]


def test_plain_command_is_shlex_join() -> None:
    assert runner.display(["ssh", "-L", "1:a b:2", "h"]) == "ssh -L '1:a b:2' h"


def test_dry_run_records_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    steps: list[runner.Step] = []
    with runner.recording(steps.append):
        result = runner.run(
            ["touch", str(marker)], timeout=5, assume=runner.Assume(stdout="x", returncode=3, says="assumed")
        )
        started = runner.Started(["touch", str(marker)]).result(timeout=5)
        forked = runner.Forking(["touch", str(marker)], log_path=tmp_path / "log").wait(timeout=5)
        runner.note("a step that is no command")
        assert runner.stream(["touch", str(marker)]) == 0
    assert not marker.exists()
    assert not (tmp_path / "log").exists()
    assert (result.returncode, result.stdout) == (3, "x")
    assert (started.returncode, forked.returncode) == (0, 0)
    assert [s.text() for s in steps] == [
        "# assumed",
        f"touch {marker}",
        f"touch {marker}",
        f"touch {marker}",
        "# a step that is no command",
        f"touch {marker}",
    ]
    assert not runner.dry_run()  # the mode ends with the block


def test_readonly_commands_run_in_a_dry_run(tmp_path: Path) -> None:
    steps: list[runner.Step] = []
    with runner.recording(steps.append):
        result = runner.run(["echo", "real"], timeout=5, readonly=True)
    assert result.stdout == "real\n"
    assert [s.argv for s in steps] == [["echo", "real"]]


def test_recording_without_dry_runs_the_commands(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    steps: list[runner.Step] = []
    with runner.recording(steps.append, dry=False):
        runner.run(["touch", str(marker)], timeout=5)
    assert marker.exists()
    assert steps == [runner.Step(["touch", str(marker)])]


def test_verbose_echoes_on_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    with runner.using(runner.Options(verbose=True)):
        runner.run(["echo", "a\nb"], timeout=5)
    err = capfd.readouterr().err
    assert dry_run_commands(err) == [["echo", "a\nb"]]


def test_display_pastes_into_a_real_shell(tmp_path: Path) -> None:
    """Not only our reader: the text run as it is, with the program a real one."""
    out = tmp_path / "out"
    script = "line one\n'quoted' \"dq\" $HOME\n"
    text = runner.display(["sh", "-c", f'printf %s "$1" > {out}', "_", script])
    subprocess.run(["bash", "-c", text], check=True, timeout=10)
    assert out.read_text() == script
