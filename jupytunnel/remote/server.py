"""The remote Jupyter server, for every profile: find it, start it, stop it, read its log.
All through a master.

What differs between a server on the host and a batch job's is the profile's place's
(``places.place_of``), what starts it the launcher's (``launchers.for_profile``: None when
the profile starts none). This module only asks them; the work is ``host``'s (the ssh host:
nohup, tmux, screen, or a server started by hand) and ``jobs``' (a Slurm job). The names of
``host`` that every profile shares (discovery, the dry run's placeholders, the timeouts) are
imported here too, so that a caller needs this module only.

In a dry run (``runner.dry_run()``) the same code runs; each remote call says what to assume
of the output the next step depends on (``runner.Assume``), and nothing is written locally.
"""

from __future__ import annotations

from collections.abc import Callable

from jupytunnel import remote, runner
from jupytunnel.profiles import Profile
from jupytunnel.remote import Discovery, ServerInfo, host, launchers
from jupytunnel.remote.base import Found, Stopped
from jupytunnel.remote.host import (
    CLI_LIST_TIMEOUT,
    DRY_HOME,
    JUPYTER_DEFAULT_PORT,
    ROUND_TRIP_TIMEOUT,
    STOP_TIMEOUT,
    discover,
    not_startable,
    socket_for,
)
from jupytunnel.remote.places import place_of
from jupytunnel.ssh.master import Master

__all__ = [
    "CLI_LIST_TIMEOUT",
    "DRY_HOME",
    "JUPYTER_DEFAULT_PORT",
    "ROUND_TRIP_TIMEOUT",
    "STOP_TIMEOUT",
    "Found",
    "discover",
    "not_startable",
    "socket_for",
]


def _jobs(profile: Profile) -> bool:
    return place_of(profile).jobs


def assume_found(profile: Profile, *, running: bool, says: str) -> runner.Assume | None:
    """A dry run's discovery output (``host.assume_found``), for the profile's place."""
    return host.assume_found(profile, running=running, says=says, jobs=_jobs(profile))


def route(profile: Profile) -> str:
    """Where a remembered server's token would travel (``host.route``), for the profile's place."""
    return host.route(profile, jobs=_jobs(profile))


def remember(profile: Profile, srv: ServerInfo) -> None:
    host.remember(profile, srv, jobs=_jobs(profile))


def remote_port(profile: Profile) -> int | None:
    """The profile's remote port: fixed, or for ``auto`` the one its server took last time
    (remembered with the route it was reached by); None when not known yet."""
    return host.remote_port(profile, jobs=_jobs(profile))


def is_profiles(profile: Profile, server: ServerInfo, home: str) -> bool:
    return place_of(profile).owns(profile, server, home)


def find(
    master: Master,
    *,
    discovered: Discovery | None = None,
    timeout: float = ROUND_TRIP_TIMEOUT,
    cli_timeout: float = CLI_LIST_TIMEOUT,
    assume: runner.Assume | None = None,
) -> Found:
    """The profile's server, where its place says: from the runtime files (``discovered``,
    or read now; ``assume``: what a dry run takes them to say), and what else they show."""
    profile = master.profile
    place = place_of(profile)
    if discovered is not None:
        remote.refuse_csh(discovered.markers, profile)
    else:
        discovered = discover(master, extra=place.discovery_extra(profile), timeout=timeout, assume=assume)
    return place.find(master, discovered, cli_timeout=cli_timeout)


def start(
    master: Master,
    *,
    home: str,
    timeout: float,
    tick: Callable[..., None] = lambda *_: None,
    found: Found | None = None,
) -> ServerInfo:
    """Start the profile's server with its launcher and wait until it is ready.

    On any failure nothing is left running on the remote. ``found``: what the discovery just
    saw (a batch job already queued is then known without asking again). A profile without a
    launcher starts nothing: the error says how to start its server by hand.
    """
    launcher = launchers.for_profile(master.profile)
    if launcher is None:
        raise not_startable(master.profile)
    return launcher.start(master, found or Found(None, home, []), timeout=timeout, tick=tick)


def stop(master: Master, server: ServerInfo, *, timeout: float = STOP_TIMEOUT) -> None:
    """Stop ``server``, the profile's (a batch profile: its job goes)."""
    place_of(master.profile).stop(master, timeout=timeout, server=server)


def stop_profiles(master: Master, *, timeout: float = STOP_TIMEOUT) -> Stopped:
    """Stop the profile's server, whatever its place (a batch job: cancelled, running or
    still pending); what was stopped, nothing when none ran."""
    return place_of(master.profile).stop(master, timeout=timeout, server=None)


def logs(master: Master, lines: int) -> str:
    """The last ``lines`` of the server's log (a batch job: its output)."""
    return place_of(master.profile).logs(master, lines)


def follow_logs(master: Master, lines: int) -> int:
    """Stream the server's log through ``master`` until Ctrl-C; ssh's exit code."""
    return place_of(master.profile).follow_logs(master, lines)
