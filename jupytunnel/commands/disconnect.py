"""``jupytunnel disconnect``: close a tunnel (or every one), optionally stop its server."""

from __future__ import annotations

from jupytunnel.errors import UsageError


def disconnect(
    name: str | None = None, *, every: bool = False, stop_server: bool = False, timeout: float = 30.0
) -> list[str]:
    """Close the tunnel of ``name``, or with ``every`` each recorded tunnel and each master
    left without a record; the lines that say what happened. Only what jupytunnel started
    is ended (verified by PID, start time and command line).

    ``stop_server``: stop the profile's server too (a Slurm job: cancelled), through the
    tunnel's master or a short master of its own. In a dry run (the runner's mode) the same
    code runs: the commands are recorded, no signal is sent, no file changes.
    """
    from jupytunnel import hosts, tunnel
    from jupytunnel.commands.status import require_known

    if every == (name is not None):
        raise UsageError("give a profile name or --all")
    if name is None:
        if stop_server:
            raise UsageError("--stop-server needs a profile name")
        return tunnel.disconnect_all() or ["no tunnels to close"]
    require_known(name)
    # A host connected without a profile (a first run) is addressed as connect took it.
    profile = hosts.profile_or_host(name, check=False)[0] if stop_server else None
    return [tunnel.disconnect(name, stop_server=stop_server, profile=profile, timeout=timeout)]
