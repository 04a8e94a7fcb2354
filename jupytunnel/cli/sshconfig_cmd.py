"""``write-ssh-config``: managed ``Host`` blocks in the user's ssh config."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from jupytunnel import runner
from jupytunnel.cli.common import complete_profile
from jupytunnel.errors import UsageError


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
    from jupytunnel import profiles
    from jupytunnel.ssh import config_file as sshconfig_file

    path = (file.expanduser() if file is not None else sshconfig_file.default_path()).absolute()
    dry = dry_run or runner.dry_run()
    if remove and force:
        raise UsageError("--force applies to writing blocks, not to --remove")
    wanted = [profiles.validate_name(n) for n in names] if names else None
    chosen = []
    if not remove:
        chosen = [profiles.load(n) for n in (wanted or profiles.list_names())]
        if not chosen:
            print("no profiles yet; add one with: jupytunnel profile add NAME --host HOST")
            return
    target = sshconfig_file.resolve_target(path)

    def plan() -> sshconfig_file.Plan:
        if remove:
            return sshconfig_file.plan_remove(path, wanted)
        return sshconfig_file.plan_write(path, chosen, force=force)

    if dry:
        _report(plan(), dry=True)
        return
    sshconfig_file.check_writable(path, target)
    with sshconfig_file.locked(target):
        result = plan()
        written = sshconfig_file.commit(result, create_parent=sshconfig_file.is_default_location(path))
    _report(result, dry=False, written=written)
    if not remove and wanted is None:
        _orphans(result, {p.name for p in chosen})


def _report(plan: object, *, dry: bool, written: bool = False) -> None:
    from jupytunnel.ssh.config_file import Plan, backup_path

    assert isinstance(plan, Plan)
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


def _orphans(plan: object, names: set[str]) -> None:
    from jupytunnel.ssh import config as sshconfig
    from jupytunnel.ssh.config_file import Plan

    assert isinstance(plan, Plan)
    for name in sshconfig.managed_names(plan.new):
        if name not in names:
            print(
                f"jupytunnel: note: the managed block {name!r} has no profile; "
                f"remove it with: jupytunnel write-ssh-config --remove {name}",
                file=sys.stderr,
            )


def register(app: typer.Typer) -> None:
    app.command("write-ssh-config")(write_ssh_config)
