"""``jupytunnel sync``: rsync through the tunnel's master (see ``jupytunnel.sync``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from jupytunnel.runner import Step
    from jupytunnel.sync import SyncResult


class Synced(NamedTuple):
    result: SyncResult
    commands: list[str]  # a dry run's commands (they ran: read-only), as printed


def transfer(
    name: str,
    *,
    local: str | None = None,
    remote: str | None = None,
    pull: bool = False,
    delete: bool = False,
    exclude: Sequence[str] = (),
    timeout: float = 30.0,
    dry_run: bool = False,
    echo: Callable[[str], None] | None = None,
    progress: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> Synced:
    """Push (or ``pull``) a folder with rsync over the profile's ssh; the outcome.

    ``dry_run`` (the global ``--dry-run`` or sync's own): sync's dry run is rsync's own
    (``--dry-run --itemize-changes``), so the read-only commands run and are returned (and
    passed to ``on_step`` as they start); nothing changes. ``echo``: where rsync's listing or
    progress lines go as they come; ``progress``: rsync's progress lines (a terminal)."""
    import contextlib

    from jupytunnel import profiles, runner
    from jupytunnel import sync as sync_

    profile = profiles.load(name)
    commands: list[str] = []

    def record(step: Step) -> None:
        commands.append(step.text())
        if on_step is not None:
            on_step(commands[-1])

    live = runner.using(runner.options()._replace(dry_run=False))
    with live, runner.recording(record, dry=False) if dry_run else contextlib.nullcontext():
        result = sync_.sync(
            profile, local=local, remote=remote, pull=pull, delete=delete, exclude=exclude, dry_run=dry_run,
            echo=echo, progress=progress, timeout=timeout,
        )  # fmt: skip
    return Synced(result, commands)
