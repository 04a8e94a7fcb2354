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
    """For dry runs of commands that work through a master: a master of their own (unless
    the profile's tunnel is up, whose master they then use), the scripts through it, its exit."""
    from jupytunnel import runner
    from jupytunnel.ssh import args as sshargs
    from jupytunnel.ssh import master

    live = master.master_for(profile)
    temp = master.Master(profile, live.control_path.with_name(f"{live.control_path.name}.tPID"))
    print(f"# through the tunnel's master if it is up, else a master of its own ({temp.ctl}):")
    print(
        runner.display(
            sshargs.tunnel_argv(
                profile, ssh=runner.ssh_binary(), control_path=temp.ctl, forward=None,
                config_file=master.config_file(), persist=master.TEMPORARY_PERSIST,
            )
        )
    )  # fmt: skip
    for script in scripts:
        print(runner.display(temp.remote_argv(script)))
    print(runner.display(temp.control_argv("exit")))
    return temp
