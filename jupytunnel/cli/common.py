"""What every command shares: global flags, the profile-name argument, output helpers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from jupytunnel.cli.parse import parse_local_port
from jupytunnel.cli.render import dry_run_lines, print_json, print_table
from jupytunnel.completion import complete_file, complete_profile

if TYPE_CHECKING:
    from jupytunnel.profiles import Profile
    from jupytunnel.ssh.master import Master


ProfileName = Annotated[str, typer.Argument(help="Profile name.", autocompletion=complete_profile, show_default=False)]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
WideFlag = Annotated[bool, typer.Option("--wide", help="Every column, whole, however wide the terminal.")]

__all__ = [
    "JsonFlag",
    "ProfileName",
    "WideFlag",
    "complete_file",
    "complete_profile",
    "dry_run_lines",
    "parse_local_port",
    "plan_session",
    "print_json",
    "print_table",
]


def plan_session(profile: Profile, scripts: list[str]) -> Master:
    """For the dry runs of ``run``'s commands (``cli/run_cmd.py``, not yet built from its real
    code): the real ``temporary_master`` in dry-run mode, the scripts run through it; each
    recorded step printed. The ``server`` commands no longer use it."""
    from jupytunnel import runner
    from jupytunnel.ssh import master

    with (
        runner.recording(lambda step: print(step.text(), flush=True)),
        master.temporary_master(profile, timeout=PLAN_TIMEOUT) as m,
    ):
        for script in scripts:
            m.run(script, timeout=PLAN_TIMEOUT)
    return m


PLAN_TIMEOUT = 30.0  # never waited for: nothing runs in a dry run
