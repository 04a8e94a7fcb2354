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


def complete_file(incomplete: str) -> list[str]:
    """A marker for the completion scripts: this value is a file name (the shell lists them)."""
    del incomplete
    return []


ProfileName = Annotated[str, typer.Argument(help="Profile name.", autocompletion=complete_profile, show_default=False)]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
WideFlag = Annotated[bool, typer.Option("--wide", help="Every column, whole, however wide the terminal.")]

__all__ = [
    "GLOBALS",
    "Globals",
    "JsonFlag",
    "ProfileName",
    "WideFlag",
    "complete_file",
    "complete_profile",
    "dry_run_lines",
    "parse_local_port",
    "print_json",
    "print_table",
]
