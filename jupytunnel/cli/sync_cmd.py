"""``jupytunnel sync``: its arguments; the body is ``commands.sync.transfer``, printed by
``cli.sync_render.sync`` (reached through ``cli.fastpath.show_sync``, as the fast path reaches it)."""

from __future__ import annotations

from typing import Annotated

import typer

from jupytunnel import runner
from jupytunnel.cli.common import JsonFlag, ProfileName


def sync(
    name: ProfileName,
    local: Annotated[
        str | None,
        typer.Argument(
            help="Local folder (default: the profile's sync.local, else the current folder).", show_default=False
        ),
    ] = None,
    remote: Annotated[
        str | None,
        typer.Argument(
            help="Remote folder: ~/..., an absolute path, or one relative to the remote home "
            "(default: sync.remote, else the local folder's name under the profile's workdir).",
            show_default=False,
        ),
    ] = None,
    pull: Annotated[bool, typer.Option("--pull", help="Copy from the remote to LOCAL (default: push).")] = False,
    delete: Annotated[
        bool, typer.Option("--delete", help="Delete files on the receiving side that the sending side lacks.")
    ] = False,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="rsync exclude PATTERN; repeatable.", show_default=False)
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="As the global --dry-run: list what would change, change nothing.")
    ] = False,
    json_: JsonFlag = False,
    timeout: Annotated[
        float, typer.Option(help="Give up on the login and the remote check after this many seconds.")
    ] = 30.0,
) -> None:
    """Copy a folder to the remote (or back with --pull) with rsync, over the profile's ssh.

    Goes through the live tunnel when there is one (no new login). Never deletes without
    --delete and never overwrites files that are newer on the receiving side; an interrupted
    transfer resumes on the next run. With the global --dry-run, rsync lists what would change.

    Example: jupytunnel sync aura ~/projects/thesis --exclude '*.ckpt'
    """
    # As the fast path does: tests/test_fastpath.py checks both call it alike.
    from jupytunnel.cli import fastpath

    fastpath.show_sync(
        name,
        local=local,
        remote=remote,
        pull=pull,
        delete=delete,
        exclude=exclude or [],
        as_json=json_,
        timeout=timeout,
        dry_run=dry_run or runner.dry_run(),
    )


def register(app: typer.Typer) -> None:
    app.command("sync")(sync)
