"""The Typer-free fast path must do exactly what the Typer commands do, or step aside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jupytunnel import __main__ as entry
from jupytunnel.cli import fastpath


@pytest.fixture(autouse=True)
def private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands run in this process: nothing of theirs (a crash log) in the real home."""
    for name in ("CONFIG", "STATE", "RUNTIME"):
        monkeypatch.setenv(f"JUPYTUNNEL_{name}_DIR", str(tmp_path / name.lower()))


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    """What each entry point passes on, its options parsed: connect and status go through
    ``show_connect``/``show_status`` (the command and its output) from both."""
    seen: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(fastpath, "show_connect", lambda *a, **k: seen.append(("connect", a, k)))
    monkeypatch.setattr(fastpath, "show_status", lambda *a, **k: seen.append(("status", a, k)))
    monkeypatch.setattr(fastpath, "show_sync", lambda *a, **k: seen.append(("sync", a, k)))
    return seen


FORMS = [
    ["connect", "aura"],
    ["connect", "aura", "--json", "--no-browser"],
    ["connect", "--no-start", "aura", "--local-port", "9000", "--timeout", "12.5"],
    ["connect", "aura", "--local-port=auto", "--watch"],
    ["status"],
    ["status", "aura", "--json", "--show-token"],
    ["sync", "aura"],
    ["sync", "aura", "./data", "~/data", "--pull", "--delete", "--json", "--timeout", "5"],
    ["sync", "aura", "--exclude", "*.ckpt", "x", "--exclude=-odd dir/", "--timeout=9"],
]


@pytest.mark.parametrize("argv", FORMS)
def test_fast_path_matches_typer(
    argv: list[str], calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert entry.run(argv) == 0
    fast = calls.pop()
    monkeypatch.setattr(fastpath, "run", lambda _argv: False)
    assert entry.run(argv) == 0
    slow = calls.pop()
    slow[2].pop("dry_run", None)
    assert fast == slow


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--help"],
        ["connect"],
        ["connect", "a", "b"],
        ["connect", "aura", "--help"],
        ["connect", "aura", "--bogus"],
        ["connect", "aura", "--timeout", "soon"],
        ["connect", "../etc", "--json"],
        ["-v", "connect", "aura"],
        ["--dry-run", "connect", "aura"],
        ["status", "a", "b"],
        ["sync"],
        ["sync", "aura", "a", "b", "c"],
        ["sync", "aura", "--exclude"],
        ["sync", "aura", "--bogus"],
        ["--dry-run", "sync", "aura"],
        ["sync", "aura", "--dry-run"],
        ["profile", "list"],
    ],
)
def test_fast_path_steps_aside(argv: list[str], calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]]) -> None:
    assert fastpath.run(argv) is False
    assert calls == []


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert fastpath.run(["--version"]) is True
    assert capsys.readouterr().out.startswith("jupytunnel ")
