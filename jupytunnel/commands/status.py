"""``jupytunnel status``: every recorded tunnel (and orphan master), checked."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jupytunnel.tunnel import Status


def status(name: str | None = None) -> list[Status]:
    """The tunnel of ``name`` (a profile, or a host connected without one), or every
    recorded tunnel and every master left without a record, each with its state."""
    from jupytunnel import tunnel

    if name is not None:
        require_known(name)
    return tunnel.status(name)


def require_known(name: str) -> None:
    """A name with a profile or a tunnel record (a first-run host has only the record)."""
    from jupytunnel import profiles, state

    if not profiles.profile_path(name).exists() and state.load(name) is None:
        raise profiles.unknown(name)
