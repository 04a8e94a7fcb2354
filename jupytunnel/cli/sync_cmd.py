"""``jupytunnel sync``: parse the arguments, format the outcome; the work is ``jupytunnel.sync``."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from jupytunnel.cli.common import GLOBALS, JsonFlag, ProfileName, print_json

if TYPE_CHECKING:
    from jupytunnel.sync import SyncResult


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
    from jupytunnel import profiles, runner
    from jupytunnel import sync as sync_
    from jupytunnel.actions import parse_timeout

    profile = profiles.load(name)
    timeout = parse_timeout(timeout)
    dry_run = GLOBALS.dry_run
    commands: list[str] = []
    progress = not json_ and not dry_run and sys.stderr.isatty()
    echo = None if json_ else _writer(sys.stderr if progress else sys.stdout)

    def record(argv: list[str]) -> None:
        line = runner.display(argv)
        commands.append(line)
        if not json_:
            print(line, flush=True)

    if dry_run and not json_:
        print("# --dry-run: these commands run (read-only); rsync lists what would change and changes nothing")
    with runner.recording(record) if dry_run else _nothing():
        result = sync_.sync(
            profile,
            local=local,
            remote=remote,
            pull=pull,
            delete=delete,
            exclude=exclude or (),
            dry_run=dry_run,
            echo=echo,
            progress=progress,
            timeout=timeout,
        )
    if result.warnings:
        print(f"jupytunnel: rsync: {sync_.rsync_message(result.warnings)}", file=sys.stderr)
    if json_:
        data = result.to_dict()
        if dry_run:
            data["commands"] = commands
        print_json(data)
        return
    print(summary(result))


def _writer(stream: TextIO) -> Callable[[str], None]:
    def write(text: str) -> None:
        stream.write(text)
        stream.flush()

    return write


def _nothing() -> contextlib.nullcontext[None]:
    return contextlib.nullcontext()


def _size(n: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def summary(result: SyncResult) -> str:
    """One line for people: what moved, where, how long."""
    where = f"{result.host}:{result.remote_path}"
    if result.dry_run:
        n = len(result.changes)
        return f"dry run: {n} change{'' if n == 1 else 's'} listed above; nothing was changed"
    s = result.stats
    files = s.files if s else 0
    moved = f" ({_size(s.transferred_size)})" if s and files else ""
    verb, prep = ("pushed", "to") if result.direction == "push" else ("pulled", "from")
    deleted = f", deleted {s.deleted}" if s and s.deleted else ""
    return (
        f"{result.profile}: {verb} {files} file{'' if files == 1 else 's'}{moved} {prep} {where}"
        f"{deleted} in {result.seconds:.1f} s"
    )


def register(app: typer.Typer) -> None:
    app.command("sync")(sync)
