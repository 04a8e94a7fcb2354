"""``jupytunnel doctor``: the checks of ``jupytunnel.doctor``, for the set-up or one profile."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jupytunnel.doctor import Check


def doctor(name: str | None = None, *, timeout: float = 30.0) -> list[Check]:
    """Every check (ssh, rsync, folders, profiles, ``ssh -G``); with ``name``, that profile
    only, and its remote end to end. An unknown ``name`` is a ``UsageError``.

    A dry run (``runner.dry_run()``) runs the same code: read-only commands run, the remote
    ones are recorded, and the remote checks are missing from the result."""
    from jupytunnel import doctor as checks
    from jupytunnel import profiles

    if name is not None and not profiles.profile_path(name).exists():
        profiles.load(name)  # raises the usual "no profile" error, with a did-you-mean
    return checks.run_checks(name, timeout=timeout)


def failures(checks: list[Check]) -> int:
    return sum(c.status == "failed" for c in checks)
