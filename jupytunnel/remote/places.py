"""Where a profile's server runs, and how it is found, stopped, read and reached there.

Two places: the ssh host itself (``OnHost``: the server listens on the profile's port or
socket there, whoever started it: nohup, tmux, screen, or the user for ``launcher = "none"``)
and a batch job's compute node (``jobs.InJob``: a job id, a node address, a port the node
chose). Every caller asks the profile's place (``place_of``) instead of testing the
launcher's name; what *starts* a server is the launcher's (``launchers.for_profile``).

Light on purpose: connect asks the place before ssh is spawned, so the heavy parts
(``host``, ``jobs``) are imported by the methods that need them, and the interface
(``base.Place``) is only imported for type checking. Nothing below imports this module:
``host`` and ``jobs`` are the work, this is the choice between them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jupytunnel.profiles import Profile
    from jupytunnel.remote import Discovery, ServerInfo
    from jupytunnel.remote.base import Found, Place, Stopped
    from jupytunnel.ssh.master import Master


class OnHost:
    """The server runs on the ssh host, on the profile's port or socket."""

    jobs = False

    def discovery_extra(self, profile: Profile) -> str:  # noqa: ARG002 - the runtime files say all
        return ""

    def private_route(self, profile: Profile) -> bool:
        # A TCP port on a shared host may have been taken over by another user since.
        return profile.transport == "socket"

    def owns(self, profile: Profile, server: ServerInfo, home: str) -> bool:
        from jupytunnel.remote import host

        return host.owns(profile, server, home)

    def matches(self, profile: Profile, known: ServerInfo) -> bool:
        if known.job:
            return False  # a job's server, and the profile is no longer a batch one
        if profile.transport == "tcp":
            return known.sock is None and known.port == profile.remote_port
        from jupytunnel import paths

        folder = paths.REMOTE_STATE_DIR.removeprefix("~")  # the remote home is not known here
        return known.sock is not None and known.sock.endswith(f"{folder}/{profile.name}.sock")

    def first_forward(self, profile: Profile, port: int, known: ServerInfo | None) -> str | None:
        from jupytunnel.ssh import args as sshargs

        if profile.transport == "tcp":
            from jupytunnel.remote import host

            far = host.remote_port(profile, jobs=self.jobs)  # None: "auto", and no port remembered yet
            return sshargs.forward_spec(local_port=port, remote_port=far) if far is not None else None
        return sshargs.forward_spec(local_port=port, remote_socket=known.sock) if known and known.sock else None

    def find(self, master: Master, discovered: Discovery, *, cli_timeout: float) -> Found:
        from jupytunnel.remote import host

        return host.find_on_host(master, discovered, cli_timeout=cli_timeout)

    def stop(self, master: Master, *, timeout: float, server: ServerInfo | None = None) -> Stopped:
        from jupytunnel.remote import host, launchers

        launcher = launchers.scripted(master.profile)
        return host.stop_on_host(master, launcher=launcher, timeout=timeout, server=server)

    def logs(self, master: Master, lines: int) -> str:
        from jupytunnel.remote import host

        return host.logs_on_host(master, lines)

    def follow_logs(self, master: Master, lines: int) -> int:
        from jupytunnel import remote, runner

        return runner.stream(master.remote_argv(remote.follow_logs_script(master.profile.name, lines)))


ON_HOST = OnHost()


def place_of(profile: Profile) -> Place:
    """The profile's place: a batch launcher's own (its jobs), else the ssh host."""
    if profile.launcher == "slurm":  # the one batch launcher so far; the lookup of its place
        from jupytunnel.remote import jobs

        return jobs.IN_JOB
    return ON_HOST


def discovery_extra(profile: Profile) -> str:
    """What discovery must also ask for this profile (a batch job's state), in the same trip."""
    return place_of(profile).discovery_extra(profile)
