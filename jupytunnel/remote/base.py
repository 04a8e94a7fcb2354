"""The shapes every part of ``remote`` shares, and nothing of their work: what a stop ended
(``Stopped``), what a look for the profile's server found (``Found``), and the interfaces of a
place (``Place``: where a server runs), of a launcher (``Launcher``: what starts it) and of a
host launcher's scripts (``ScriptLauncher``).

The implementations (``places``, ``launchers``, ``jobs``, ``host``) import these; this module
imports none of them, so that no part of ``remote`` needs another to name a type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from jupytunnel.profiles import Profile
    from jupytunnel.remote import Discovery, ServerInfo
    from jupytunnel.remote.slurm import Job
    from jupytunnel.ssh.master import Master

# A start's --timeout when none is given: a cold start (setup lines, imports) on a busy host.
START_TIMEOUT = 60.0


class Stopped(NamedTuple):
    """What a stop ended: a server (its PID), a job (its id), or nothing (both None)."""

    pid: int | None = None
    job: str | None = None

    @property
    def anything(self) -> bool:
        return self.pid is not None or self.job is not None


class Found(NamedTuple):
    server: ServerInfo | None
    home: str
    all_servers: list[ServerInfo]
    ended: str | None = None  # a batch profile's recorded job that has ended: how it ended
    queued: Job | None = None  # a batch profile's job still queued or starting
    asked_queue: bool = False  # whether the queue was asked at all (``queued`` is then the answer)


class Place(Protocol):
    """Where a profile's server runs (``places.place_of``): the ssh host, or a job's node."""

    # Its servers are batch jobs: found through their job (never by reading runtime files
    # on the login node), and a job's record says so.
    jobs: bool

    def discovery_extra(self, profile: Profile) -> str:
        """What discovery must also ask (a job's state), in the same round trip."""
        ...

    def private_route(self, profile: Profile) -> bool:
        """Whether the way to its server ends where only we can listen (our private socket,
        a job's node): a remembered server may then be tried first, with its token."""
        ...

    def owns(self, profile: Profile, server: ServerInfo, home: str) -> bool:
        """Whether ``server`` (from discovery) is the profile's."""
        ...

    def matches(self, profile: Profile, known: ServerInfo) -> bool:
        """Whether a remembered server still fits the profile as it is now."""
        ...

    def first_forward(self, profile: Profile, port: int, known: ServerInfo | None) -> str | None:
        """The ``-L`` a master starts with; None when the far end is not known yet."""
        ...

    def find(self, master: Master, discovered: Discovery, *, cli_timeout: float) -> Found: ...

    def stop(self, master: Master, *, timeout: float, server: ServerInfo | None = None) -> Stopped:
        """Stop the profile's server (``server``: the one found already, else it is looked for)."""
        ...

    def logs(self, master: Master, lines: int) -> str: ...

    def follow_logs(self, master: Master, lines: int) -> int:
        """Stream the log until Ctrl-C; ssh's exit code."""
        ...


class Launcher(Protocol):
    """What starts a profile's server (a process on the host, a batch job)."""

    name: str

    def start(self, master: Master, found: Found, *, timeout: float, tick: Callable[[str], None]) -> ServerInfo:
        """Start the server and wait until it is ready; on any failure nothing is left
        running (or queued). ``found``: what discovery just saw."""
        ...

    def start_timeout(self, profile: Profile) -> float:
        """How long a start may take when the user gives no --timeout."""
        ...


class ScriptLauncher(Protocol):
    """A launcher on the ssh host itself, as remote scripts (``host.start_on_host`` runs them)."""

    name: str

    def start_script(self, profile: Profile, *, sock: str | None) -> str: ...
    def probe_script(self, profile: Profile, started: str) -> str: ...
    def abort_script(self, profile: Profile) -> str: ...
    def session(self, profile: Profile) -> str | None: ...
