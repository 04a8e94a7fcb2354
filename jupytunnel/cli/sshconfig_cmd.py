"""``write-ssh-config``: managed ``Host`` blocks in the user's ssh config."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from jupytunnel import runner
from jupytunnel.cli.common import complete_profile

if TYPE_CHECKING:
    from jupytunnel.ssh.config_file import Plan


def write_ssh_config(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Profile names (default: every profile).",
            metavar="NAME",
            autocompletion=complete_profile,
            show_default=False,
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="The ssh config to edit (default: $JUPYTUNNEL_SSH_CONFIG, else ~/.ssh/config).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print a diff of what would change; write nothing.")
    ] = False,
    remove: Annotated[
        bool, typer.Option("--remove", help="Take out the named managed blocks (every one, with no NAME).")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Write a block even when the file has its own 'Host NAME' block.")
    ] = False,
) -> None:
    """Add managed Host blocks for profiles to your ssh config.

    Plain ssh, scp, rsync and editors then reach each machine the way jupytunnel does, and
    'ssh -N NAME' alone opens the Jupyter tunnel. Only the lines between jupytunnel's markers
    are ever changed; the new file is checked with 'ssh -G' first, then written atomically,
    with the previous version kept as CONFIG.jupytunnel.bak.

    Example: jupytunnel write-ssh-config aura --dry-run
    """
    from jupytunnel.commands import sshconfig as command

    dry = dry_run or runner.dry_run()
    done = command.write_ssh_config(names, file=file, remove=remove, force=force, dry_run=dry)
    if done.plan is None:
        print("no profiles yet; add one with: jupytunnel profile add NAME --host HOST")
        return
    _report(done.plan, dry=dry, written=done.written)
    for name in done.orphans:
        print(
            f"jupytunnel: note: the managed block {name!r} has no profile; "
            f"remove it with: jupytunnel write-ssh-config --remove {name}",
            file=sys.stderr,
        )


def _report(plan: Plan, *, dry: bool, written: bool = False) -> None:
    from jupytunnel.ssh.config_file import backup_path

    for warning in plan.warnings:
        print(f"jupytunnel: warning: {warning}", file=sys.stderr)
    for note in plan.notes:
        print(f"jupytunnel: note: {note}", file=sys.stderr)
    if dry:
        sys.stdout.flush()
        sys.stdout.buffer.write(plan.diff())
        sys.stdout.buffer.flush()
        print(f"# dry run: {plan.path} {'would change' if plan.changed else 'would not change'}; nothing written")
        return
    for name, state in plan.status.items():
        print(f"{name}: {'no managed block' if state == 'absent' else state}")
    if written:
        backup = f" (previous version: {backup_path(plan.target)})" if plan.old is not None else ""
        print(f"wrote {plan.path}{backup}")
    else:
        print(f"{plan.path} unchanged")


def register(app: typer.Typer) -> None:
    app.command("write-ssh-config")(write_ssh_config)
