"""``jupytunnel completion …``: print or install the shell completion scripts."""

from __future__ import annotations

import enum
import sys
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from jupytunnel.cli import dry_run

if TYPE_CHECKING:
    from jupytunnel import completion

app = typer.Typer(
    help=(
        "Shell completion for bash, zsh and fish: subcommands, options and profile names. "
        "The scripts are plain shell, so a TAB starts no Python.\n\n"
        "Example: jupytunnel completion install"
    ),
    no_args_is_help=True,
)


class Shell(str, enum.Enum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


@app.command("show")
def show(
    ctx: typer.Context, shell: Annotated[Shell, typer.Argument(help="bash, zsh or fish.", show_default=False)]
) -> None:
    """Print the completion script for SHELL.

    Example: jupytunnel completion show bash > ~/.local/share/bash-completion/completions/jupytunnel
    """
    from jupytunnel.commands import completion as command

    sys.stdout.write(command.show(shell.value, _tree(ctx)))


@app.command("install")
def install(
    ctx: typer.Context,
    shell: Annotated[
        Optional[Shell], typer.Argument(help="bash, zsh or fish (default: from $SHELL).", show_default=False)
    ] = None,
) -> None:
    """Install the completion script where SHELL looks for it; print the path and any rc line.

    Example: jupytunnel completion install zsh
    """
    from jupytunnel.commands import completion as command

    with dry_run.printed() as dry:
        done = command.install(shell.value if shell is not None else None, _tree(ctx))
    if dry:
        return
    print(f"{'installed' if done.changed else 'up to date'}: {done.target.path}")
    print(done.target.note)


def _tree(ctx: typer.Context) -> completion.Node:
    """The completion model of the CLI this command belongs to (its root command)."""
    from jupytunnel import completion

    return completion.command_tree(ctx.find_root().command)
