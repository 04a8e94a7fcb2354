"""``jupytunnel doctor``: check the set-up, and one profile's remote end to end."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from jupytunnel import runner
from jupytunnel.cli import dry_run
from jupytunnel.cli.common import JsonFlag, complete_profile, print_json
from jupytunnel.errors import EXIT_FAILURE

if TYPE_CHECKING:
    from jupytunnel.doctor import Check

_COLORS = {"ok": "32", "warning": "33", "failed": "31"}


def doctor(
    name: Annotated[
        str | None,
        typer.Argument(
            help="Profile to check end to end (login, Jupyter, launcher).",
            autocompletion=complete_profile,
            show_default=False,
        ),
    ] = None,
    json_: JsonFlag = False,
    timeout: Annotated[float, typer.Option(help="Give up on the remote after this many seconds.")] = 30.0,
) -> None:
    """Check ssh, folders and profiles; with NAME, log in and check Jupyter there. Exit 1 if a check fails.

    Example: jupytunnel doctor aura
    """
    from jupytunnel.cli.parse import parse_timeout
    from jupytunnel.commands import doctor as command

    timeout = parse_timeout(timeout)
    if runner.dry_run():
        with dry_run.printed():  # the real checks, their commands printed, the remote ones not run
            command.doctor(name, timeout=timeout)
        return
    checks = command.doctor(name, timeout=timeout)
    if json_:
        print_json({"ok": command.failures(checks) == 0, "checks": [c.to_dict() for c in checks]})
    else:
        _print(checks)
    if command.failures(checks):
        raise typer.Exit(EXIT_FAILURE)


def _print(checks: Sequence[Check]) -> None:
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    counts = {"ok": 0, "warning": 0, "failed": 0}
    for check in checks:
        counts[check.status] += 1
        word = f"{check.status:<7}"
        if color:
            word = f"\033[{_COLORS[check.status]}m{word}\033[0m"
        hint = f"  (hint: {check.hint})" if check.hint and check.status != "ok" else ""
        print(f"{word}  {check.name}: {check.detail}{hint}")
    print(f"{counts['ok']} ok, {counts['warning']} warning(s), {counts['failed']} failed")


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
