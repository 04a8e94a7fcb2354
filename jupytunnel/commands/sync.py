"""``jupytunnel sync``: rsync through the tunnel's master (see ``jupytunnel.sync``)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from jupytunnel.sync import SyncResult


def sync(
    name: str,
    *,
    local: str | None = None,
    remote: str | None = None,
    pull: bool = False,
    delete: bool = False,
    exclude: Sequence[str] = (),
    as_json: bool = False,
    timeout: float = 30.0,
    dry_run: bool = False,
) -> None:
    """``jupytunnel sync``: rsync's progress on a terminal, then one line (or ``--json``).

    ``dry_run``: the commands as they run (read-only ones), rsync's listing of what would
    change, and nothing changed.
    """
    import contextlib

    from jupytunnel import profiles, runner
    from jupytunnel import sync as sync_
    from jupytunnel.cli.render import print_json

    profile = profiles.load(name)
    from jupytunnel.cli.parse import parse_timeout

    timeout = parse_timeout(timeout)
    commands: list[str] = []
    progress = not as_json and not dry_run and sys.stderr.isatty()
    stream = sys.stderr if progress else sys.stdout

    def echo(text: str) -> None:
        stream.write(text)
        stream.flush()

    def record(step: runner.Step) -> None:
        commands.append(step.text())
        if not as_json:
            print(commands[-1], flush=True)

    if dry_run and not as_json:
        print("# --dry-run: these commands run (read-only); rsync lists what would change and changes nothing")
    # sync's dry run is rsync's own (--dry-run --itemize-changes): the read-only commands run.
    live = runner.using(runner.options()._replace(dry_run=False))
    with live, runner.recording(record, dry=False) if dry_run else contextlib.nullcontext():
        result = sync_.sync(
            profile, local=local, remote=remote, pull=pull, delete=delete, exclude=exclude, dry_run=dry_run,
            echo=None if as_json else echo, progress=progress, timeout=timeout,
        )  # fmt: skip
    if result.warnings:
        print(f"jupytunnel: rsync: {sync_.rsync_message(result.warnings)}", file=sys.stderr)
    if as_json:
        data = result.to_dict()
        if dry_run:
            data["commands"] = commands
        print_json(data)
        return
    print(sync_summary(result))


def _size(n: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def sync_summary(result: SyncResult) -> str:
    """One line for people: what moved, where, how long."""
    if result.dry_run:
        n = len(result.changes)
        return f"dry run: {n} change{'' if n == 1 else 's'} listed above; nothing was changed"
    s = result.stats
    files = s.files if s else 0
    moved = f" ({_size(s.transferred_size)})" if s and files else ""
    verb, prep = ("pushed", "to") if result.direction == "push" else ("pulled", "from")
    deleted = f", deleted {s.deleted}" if s and s.deleted else ""
    took = f"{result.seconds:.2f}" if result.seconds < 10 else f"{result.seconds:.0f}"  # noqa: PLR2004
    return (
        f"{result.profile}: {verb} {files} file{'' if files == 1 else 's'}{moved} {prep} "
        f"{result.host}:{result.remote_path}{deleted} in {took} s"
    )
