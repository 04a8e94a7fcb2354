"""The Typer application: commands only parse arguments and format results."""

from __future__ import annotations

from typing import Annotated

import typer

from jupytunnel import __version__
from jupytunnel.cli import (
    completion_cmd,
    doctor_cmd,
    profile_cmd,
    run_cmd,
    server_cmd,
    sshconfig_cmd,
    sync_cmd,
    tunnel_cmd,
)

app = typer.Typer(
    name="jupytunnel",
    help=(
        "Reach Jupyter on machines you can only get to over SSH.\n\n"
        "Example: jupytunnel profile add aura --host aura.example.org --jump gw.example.org; "
        "jupytunnel connect aura"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"jupytunnel {__version__}")
        raise typer.Exit


@app.callback()
def _main(
    version: Annotated[  # noqa: ARG001 - handled by its eager callback
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the commands that would run; run none.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Print every ssh command before it runs.")] = False,
) -> None:
    from jupytunnel import runner

    # For the rest of this command (the callback and the command share one context).
    runner.OPTIONS.set(runner.Options(verbose=verbose, dry_run=dry_run))


app.add_typer(profile_cmd.app, name="profile", epilog="Example: jupytunnel profile add aura --host aura.example.org")
app.add_typer(server_cmd.app, name="server", epilog="Example: jupytunnel server list aura")
tunnel_cmd.register(app)
app.add_typer(completion_cmd.app, name="completion")
doctor_cmd.register(app)
sshconfig_cmd.register(app)
sync_cmd.register(app)
run_cmd.register(app)
