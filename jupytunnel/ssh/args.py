"""Pure builders of OpenSSH argument lists. Nothing here runs anything.

OpenSSH keeps the *first* value it obtains for an option (command line before config files,
and among ``-o`` flags the first one), so a user's ``ssh_options`` replace our defaults by
removing them rather than by coming later.

Every builder takes ``ssh``, an ``Ssh`` (the client and its ``-F`` file, resolved once by the
caller with ``ssh.resolve()``): nothing here reads the environment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from jupytunnel.profiles import Profile, SshOptionValue
from jupytunnel.ssh import EXIT_ON_FORWARD_FAILURE, LOOPBACK, SERVER_ALIVE, Ssh, yes_no

__all__ = ["LOOPBACK", "TUNNEL_DEFAULTS", "Ssh", "option_value"]

TUNNEL_DEFAULTS: tuple[tuple[str, str], ...] = (("ControlPersist", "yes"), EXIT_ON_FORWARD_FAILURE, *SERVER_ALIVE)


def option_value(value: SshOptionValue) -> str:
    return yes_no(value)


def _options(defaults: Iterable[tuple[str, str]], user: Mapping[str, SshOptionValue]) -> list[str]:
    overridden = {k.lower() for k in user}
    out: list[str] = []
    for key, value in defaults:
        if key.lower() not in overridden:
            out += ["-o", f"{key}={value}"]
    for key, uvalue in user.items():
        out += ["-o", f"{key}={option_value(uvalue)}"]
    return out


def connection_args(profile: Profile) -> list[str]:
    """How to reach the host: jump hosts or ProxyCommand, port, user, identity."""
    out: list[str] = []
    if profile.jump:
        out += ["-J", ",".join(profile.jump)]
    if profile.proxy_command:
        out += ["-o", f"ProxyCommand={profile.proxy_command}"]
    if profile.port is not None:
        out += ["-p", str(profile.port)]
    if profile.user:
        out += ["-l", profile.user]
    if profile.identity_file:
        out += ["-i", expand_user(profile.identity_file)]
    return out


def expand_user(path: str) -> str:
    import os.path

    return os.path.expanduser(path)


def forward_spec(
    *,
    local_port: int,
    remote_port: int | None = None,
    remote_socket: str | None = None,
    remote_host: str | None = None,
) -> str:
    """The ``-L`` value; the local end always binds 127.0.0.1, never all interfaces.

    Without an explicit bind address ssh may "succeed" on [::1] when 127.0.0.1 is taken.
    ``remote_host``: where the remote end connects from the ssh server (a compute node's
    address); the server's own loopback by default. An IPv6 address goes in brackets.
    """
    if remote_socket is not None:
        return f"{LOOPBACK}:{local_port}:{remote_socket}"
    if remote_port is None:
        raise ValueError("forward_spec needs remote_port or remote_socket")
    host = remote_host or LOOPBACK
    if ":" in host:
        host = f"[{host}]"
    return f"{LOOPBACK}:{local_port}:{host}:{remote_port}"


def tunnel_argv(
    profile: Profile,
    *,
    ssh: Ssh,
    control_path: str,
    forward: str | None,
    persist: str = "yes",
    command: str | None = None,
) -> list[str]:
    """The background master that holds the tunnel (``forward`` None: no ``-L`` yet).

    ``persist``: ControlPersist; a master opened for one command only gets a short one, so
    that even a killed jupytunnel leaves nothing running for long.

    ``command``: run it in the first session instead of ``-N -f``. With ControlPersist,
    OpenSSH then forks the master into the background once authenticated and the
    foreground process becomes a client of it that runs the command and exits with its
    output: the handshake and the first round trip cost one process, as ``ssh -NfL`` and a
    first request through it do.
    """
    head = ["-N", "-f"] if command is None else ["-T"]
    argv = [*ssh.head(), *head, "-M", "-S", control_path]
    defaults = tuple((k, persist if k == "ControlPersist" else v) for k, v in TUNNEL_DEFAULTS)
    argv += _options(defaults, profile.ssh_options)
    if forward is not None:
        argv += ["-L", forward]
    return [*argv, *connection_args(profile), profile.host, *([command] if command is not None else [])]


def diagnose_argv(profile: Profile, *, ssh: Ssh) -> list[str]:
    """One plain connection, no multiplexing, that only logs in and exits: run after a
    master failed through jump hosts or a ProxyCommand, because a ControlPersist master
    sends its proxy's stderr (where each hop's cause is) to /dev/null."""
    plain = ("-o", "BatchMode=yes", "-o", "ControlMaster=no", "-o", "ControlPath=none", "-o", "ControlPersist=no")
    return [*ssh.head(), "-T", *plain, *connection_args(profile), profile.host, "exit"]


def remote_argv(
    profile: Profile,
    command: str,
    *,
    ssh: Ssh,
    control_path: str,
) -> list[str]:
    """Run ``command`` (one string for the remote shell) through the existing master.

    Should the master be gone, ssh falls back to a fresh connection of its own, without the
    profile's jump hosts, and maybe to another machine: ``ProxyCommand=false`` makes that
    fallback fail at once instead (a command-line option beats any config), and BatchMode
    keeps it from prompting.
    """
    return [*mux_client_args(ssh=ssh, control_path=control_path), "-T", profile.host, command]


def mux_client_args(*, ssh: Ssh, control_path: str) -> list[str]:
    """An ssh that only ever rides the master on ``control_path`` (see ``remote_argv``);
    the host and command follow. ``rsync -e`` is given exactly this."""
    return [
        *ssh.head(), "-S", control_path, "-o", "ControlMaster=no",
        "-o", "ProxyCommand=false", "-o", "BatchMode=yes",
    ]  # fmt: skip


def control_argv(
    profile: Profile,
    operation: str,
    *,
    ssh: Ssh,
    control_path: str,
    forward: str | None = None,
) -> list[str]:
    """``ssh -O check|exit|forward|cancel``, addressed to the master by its socket."""
    argv = [*ssh.head(), "-S", control_path, "-O", operation]
    if forward is not None:
        argv += ["-L", forward]
    return [*argv, profile.host]


def resolve_argv(profile: Profile, *, ssh: Ssh) -> list[str]:
    """``ssh -G``: what OpenSSH resolves for this profile, without connecting."""
    argv = [*ssh.head(), "-G"]
    argv += _options((), profile.ssh_options)
    return [*argv, *connection_args(profile), profile.host]
