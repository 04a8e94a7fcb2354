"""``jupytunnel sync``'s output: rsync's progress on a terminal, then one line (or ``--json``).

Free of Typer: the fast path (``jupytunnel.cli.fastpath``) prints through it too."""

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
    """Run ``commands.sync.transfer`` and print it. ``dry_run``: the commands as they run
    (read-only ones), rsync's listing of what would change, and nothing changed."""
    from jupytunnel import runner
    from jupytunnel import sync as sync_
    from jupytunnel.cli.parse import parse_timeout
    from jupytunnel.cli.render import print_json
    from jupytunnel.commands.sync import transfer

    timeout = parse_timeout(timeout)
    dry_run = dry_run or runner.dry_run()
    progress = not as_json and not dry_run and sys.stderr.isatty()
    stream = sys.stderr if progress else sys.stdout

    def echo(text: str) -> None:
        stream.write(text)
        stream.flush()

    def step(text: str) -> None:
        print(text, flush=True)

    if dry_run and not as_json:
        print("# --dry-run: these commands run (read-only); rsync lists what would change and changes nothing")
    done = transfer(
        name, local=local, remote=remote, pull=pull, delete=delete, exclude=exclude, timeout=timeout,
        dry_run=dry_run, echo=None if as_json else echo, progress=progress, on_step=None if as_json else step,
    )  # fmt: skip
    result = done.result
    if result.warnings:
        print(f"jupytunnel: rsync: {sync_.rsync_message(result.warnings)}", file=sys.stderr)
    if as_json:
        data = result.to_dict()
        if dry_run:
            data["commands"] = done.commands
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
