"""What every command shares: global flags, the profile-name argument, output helpers."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from jupytunnel.actions import parse_local_port
from jupytunnel.output import dry_run_lines, print_json, print_table


@dataclasses.dataclass
class Globals:
    dry_run: bool = False
    verbose: bool = False


GLOBALS = Globals()


def complete_profile(incomplete: str) -> list[str]:
    from jupytunnel.profiles import list_names

    return [n for n in list_names() if n.startswith(incomplete)]


ProfileName = Annotated[str, typer.Argument(help="Profile name.", autocompletion=complete_profile, show_default=False)]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

__all__ = [
    "GLOBALS",
    "Globals",
    "JsonFlag",
    "ProfileName",
    "complete_profile",
    "dry_run_lines",
    "parse_local_port",
    "print_json",
    "print_table",
]
