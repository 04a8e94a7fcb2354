"""The one error boundary: failures, usage errors, interrupts and bugs each get their exit
code and one line on stderr; a bug's traceback goes to a private log file, never the terminal."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from jupytunnel import __main__ as entry
from jupytunnel.commands import status
from jupytunnel.errors import EXIT_BUG, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, JupytunnelError


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("JUPYTUNNEL_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("JUPYTUNNEL_STATE_DIR", str(tmp_path / "st"))
    monkeypatch.setenv("JUPYTUNNEL_RUNTIME_DIR", str(tmp_path / "rt"))
    monkeypatch.delenv("JUPYTUNNEL_DEBUG", raising=False)
    return tmp_path


def _raising(exc: BaseException) -> Callable[..., None]:
    def status(*_: object, **__: object) -> None:
        raise exc

    return status


@pytest.mark.parametrize(
    ("exc", "code", "fragment"),
    [
        (JupytunnelError("ssh said no"), EXIT_FAILURE, "jupytunnel: ssh said no"),
        (KeyboardInterrupt(), EXIT_INTERRUPTED, "jupytunnel: interrupted"),
        (OSError(28, "No space left on device", "/st/tunnels/x.json"), EXIT_FAILURE, "No space left on device: /st"),
    ],
)
def test_known_failures_are_one_line(
    dirs: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    exc: BaseException,
    code: int,
    fragment: str,
) -> None:
    monkeypatch.setattr(status, "status", _raising(exc))
    assert entry.run(["status"]) == code
    err = capsys.readouterr().err
    assert fragment in err
    assert err.count("\n") == 1
    assert not (dirs / "st" / "crash.log").exists()


def test_a_bug_exits_3_with_its_traceback_in_a_private_log(
    dirs: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(status, "status", _raising(ZeroDivisionError("division by zero")))
    assert entry.run(["status"]) == EXIT_BUG
    err = capsys.readouterr().err
    log = dirs / "st" / "crash.log"
    assert err == (
        "jupytunnel: an unexpected error has occurred, a bug (ZeroDivisionError: division by zero); "
        f"the traceback is in {log}\n"
    )
    text = log.read_text()
    assert "Traceback (most recent call last)" in text
    assert "ZeroDivisionError: division by zero" in text
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    # A second bug appends: the first traceback is kept.
    assert entry.run(["status"]) == EXIT_BUG
    assert log.read_text().count("Traceback") == 2


def test_usage_errors_exit_2(dirs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert entry.run(["profile", "show", "--no-such-option"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("jupytunnel: No such option: --no-such-option")
    assert err.count("\n") == 1
