"""``jupytunnel server …``: start, stop, list, logs and password as plain functions.

Each takes plain values and returns data (or raises ``JupytunnelError``); ``cli/server_cmd.py``
parses and formats. Each works through the profile's live master, else a temporary master of
its own, under the profile's lock. A dry run (``runner.dry_run()``) is this same code with the
runner recording the commands: the remote calls say what they assume, and nothing is written
(no lock file, no state, no socket).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

from jupytunnel import runner

if TYPE_CHECKING:
    from jupytunnel.profiles import Profile
    from jupytunnel.remote import ServerInfo
    from jupytunnel.remote.launchers import Stopped

# Another command of the profile may hold its lock for the whole of its own --timeout.
LOCK_MARGIN = 60.0
# The lock wait of the commands without a --timeout of their own: longer than a connect's
# default 30 s plus its clean-up.
LOCK_TIMEOUT = 90.0
# How long stop, list, logs and password give ssh to connect (and logs' --timeout default).
CONNECT_TIMEOUT = 30.0


def profile_for(name: str) -> Profile:
    """The profile, or the ssh host NAME names (as ``connect`` takes it on a first run)."""
    from jupytunnel import hosts

    return hosts.profile_or_host(name, check=not runner.dry_run())[0]


@contextlib.contextmanager
def _locked(name: str, *, timeout: float) -> Iterator[None]:
    """The profile's lock; none in a dry run, which writes no lock file and races nobody."""
    if runner.dry_run():
        yield
        return
    from jupytunnel import state

    with state.profile_lock(name, timeout=timeout):
        yield


class StartResult(NamedTuple):
    server: ServerInfo
    started: bool  # False: it was running already


def start(profile: Profile, *, timeout: float | None = None) -> StartResult:
    """Start the profile's server, unless one runs. ``timeout``: None for the launcher's default."""
    from jupytunnel.remote import launchers, server
    from jupytunnel.ssh import master

    launcher = launchers.for_profile(profile)
    if timeout is None:
        timeout = launcher.start_timeout(profile) if launcher is not None else launchers.START_TIMEOUT
    with _locked(profile.name, timeout=timeout + LOCK_MARGIN), master.temporary_master(profile, timeout=timeout) as m:
        found = server.find(m, assume=server.assume_found(profile, running=False, says="assume no server runs yet"))
        if found.server is not None:
            return StartResult(found.server, started=False)
        return StartResult(server.start(m, home=found.home, timeout=timeout, found=found), started=True)


def stop(profile: Profile) -> Stopped:
    """Stop the profile's server (a batch profile: cancel its job, running or pending)."""
    from jupytunnel.remote import server
    from jupytunnel.ssh import master

    with _locked(profile.name, timeout=LOCK_TIMEOUT), master.temporary_master(profile, timeout=CONNECT_TIMEOUT) as m:
        return server.stop_profiles(m)


class Listed(NamedTuple):
    servers: list[ServerInfo]  # every server of the remote user the runtime files show
    mine: list[bool]  # for each: whether it is the profile's


def list_servers(profile: Profile) -> Listed:
    from jupytunnel.remote import server
    from jupytunnel.ssh import master

    with _locked(profile.name, timeout=LOCK_TIMEOUT), master.temporary_master(profile, timeout=CONNECT_TIMEOUT) as m:
        found = server.find(
            m, assume=server.assume_found(profile, running=True, says="assume the profile's server runs")
        )
    return Listed(found.all_servers, [server.is_profiles(profile, s, found.home) for s in found.all_servers])


def logs(profile: Profile, *, lines: int, timeout: float = CONNECT_TIMEOUT) -> str:
    """The last ``lines`` of the server's log (a batch job: its output)."""
    from jupytunnel.errors import JupytunnelError
    from jupytunnel.remote import server
    from jupytunnel.ssh import master

    with _locked(profile.name, timeout=LOCK_TIMEOUT), master.temporary_master(profile, timeout=timeout) as m:
        text = server.logs(m, lines)
    if not text:
        raise JupytunnelError(f"{profile.name}: no log yet")
    return text


def follow_logs(profile: Profile, *, lines: int, timeout: float = CONNECT_TIMEOUT) -> None:
    """Print the log's last lines and what follows, until Ctrl-C."""
    from jupytunnel import remote
    from jupytunnel.errors import JupytunnelError
    from jupytunnel.remote import server
    from jupytunnel.ssh import master

    # No profile lock: a stream until Ctrl-C must not hold up connect or disconnect.
    # The connection is bounded by --timeout; Ctrl-C ends the local ssh, whose channel
    # closing ends the remote tail (see remote.follow_logs_script).
    with master.temporary_master(profile, timeout=timeout) as m:
        code = server.follow_logs(m, lines)
    if code != 0:
        name = profile.name
        raise JupytunnelError(f"{name}: no log yet" if code == remote.NO_LOG else f"{name}: ssh ended with exit {code}")


def password(profile: Profile, secret: str) -> str:
    """Hash and write ``secret`` as the profile's Jupyter password; the config file it went into."""
    from jupytunnel.remote import password as remote_password
    from jupytunnel.ssh import master

    with _locked(profile.name, timeout=LOCK_TIMEOUT), master.temporary_master(profile, timeout=CONNECT_TIMEOUT) as m:
        return remote_password.set_remote(m, secret)


def stopped_line(profile: Profile, stopped: Stopped) -> str:
    """What ``server stop`` did, in a line (``profile remove`` says it too)."""
    name = profile.name
    if stopped.job is not None:
        return f"{name}: cancelled job {stopped.job}"
    if stopped.pid is not None:
        return f"{name}: stopped (pid {stopped.pid})"
    from jupytunnel.remote.places import place_of

    return f"{name}: no job in the queue" if place_of(profile).jobs else f"{name}: no server running"
