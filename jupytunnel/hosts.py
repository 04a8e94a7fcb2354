"""A first run without a profile: ``jupytunnel connect myhost`` where ``myhost`` is a host.

A NAME that is no profile is taken as an ssh destination when the user's own ssh reaches
it: an alias (or a ``Host`` pattern with a ProxyJump/ProxyCommand) that ``ssh -G``
resolves, a name the resolver knows, or an explicit ``user@host[:port]``. It gets the
default profile values (and ``defaults.toml``). Anything else is the usual unknown-name
error, with the closest profile names.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from jupytunnel import profiles
from jupytunnel.errors import UsageError
from jupytunnel.profiles import Profile

# [user@]host[:port]; the host a plain name or an IPv4 address (what a profile name may be).
# Compiled on first use (re caches it): connect of a profile never needs it.
_DESTINATION = (
    r"(?:(?P<user>[A-Za-z0-9._][A-Za-z0-9._-]*)@)?(?P<host>[A-Za-z0-9][A-Za-z0-9._-]*)(?::(?P<port>[0-9]{1,5}))?"
)
RESOLVE_TIMEOUT = 5.0  # ssh -G reads only config files; the name lookup is bounded by this too


class Destination(NamedTuple):
    host: str
    user: str | None = None
    port: int | None = None

    @property
    def explicit(self) -> bool:
        """``user@host`` or ``host:port``: the user said it is a host, not a profile."""
        return self.user is not None or self.port is not None


def parse_destination(text: str) -> Destination | None:
    """``[user@]host[:port]``, or None when ``text`` is not of that form."""
    found = re.fullmatch(_DESTINATION, text)
    if found is None or len(found["host"]) > profiles.MAX_NAME_LEN:
        return None
    port = int(found["port"]) if found["port"] else None
    if port is not None and not 1 <= port <= 65535:  # noqa: PLR2004
        return None
    return Destination(found["host"], found["user"], port)


def host_profile(dest: Destination, *, with_defaults: bool = True) -> Profile:
    """The profile a destination gets: its host, user and port, the defaults for the rest.

    ``with_defaults=False``: as ``profile add`` writes it (defaults.toml stays where it is).
    """
    raw: dict[str, object] = {"host": dest.host}
    if dest.user is not None:
        raw["user"] = dest.user
    if dest.port is not None:
        raw["port"] = dest.port
    defaults = profiles.load_defaults() if with_defaults else {}
    return profiles.build(dest.host, raw, defaults, f"host {dest.host}")


def keep_command(dest: Destination) -> str:
    """The ``profile add`` line that keeps this destination as a profile."""
    words = ["jupytunnel", "profile", "add", dest.host, "--host", dest.host]
    if dest.user is not None:
        words += ["--user", dest.user]
    if dest.port is not None:
        words += ["--port", str(dest.port)]
    return " ".join(words)


def profile_or_host(name: str, *, check: bool = True) -> tuple[Profile, Destination | None]:
    """Profile ``name``, else the host ``name`` names (with the destination it came from).

    ``check``: ask ``ssh -G`` (and the resolver) whether ssh reaches a bare name; a dry run
    passes False, as it runs nothing.
    """
    plain = profiles.NAME_RE.fullmatch(name) is not None and len(name) <= profiles.MAX_NAME_LEN
    if plain and profiles.profile_path(name).exists():
        return profiles.load(name), None
    dest = parse_destination(name)
    if dest is None:
        if plain:
            raise profiles.unknown(name)
        profiles.validate_name(name)  # the usual words for a name that cannot be a profile
        raise profiles.unknown(name)
    if dest.explicit and profiles.profile_path(dest.host).exists():
        raise UsageError(
            f"{dest.host!r} is a profile; connect it with: jupytunnel connect {dest.host} "
            "(or change its user and port with: jupytunnel profile edit)"
        )
    if check and not dest.explicit and not reachable(dest.host):
        raise profiles.unknown(name)
    return host_profile(dest), dest


def reachable(host: str) -> bool:
    """Whether the user's ssh knows ``host``: an alias or a pattern with a proxy in its
    config (``ssh -G``), or a name the resolver finds."""
    from jupytunnel import runner, ssh
    from jupytunnel.errors import JupytunnelError
    from jupytunnel.ssh import args as sshargs
    from jupytunnel.ssh.config import parse_resolved

    stub = Profile(name=host, host=host)
    argv = sshargs.resolve_argv(stub, ssh=ssh.resolve())
    try:
        result = runner.run(argv, timeout=RESOLVE_TIMEOUT, readonly=True)  # ssh -G changes nothing
    except JupytunnelError:
        return False
    if not result.ok:
        return False
    resolved = parse_resolved(result.stdout)
    hostname = resolved.one("hostname") or host
    if hostname.lower() != host.lower():
        return True  # an alias: HostName says where it goes
    if any((resolved.one(key) or "none").lower() != "none" for key in ("proxyjump", "proxycommand")):
        return True  # a pattern that reaches hosts through a gateway
    return _resolves(hostname)


def _resolves(hostname: str) -> bool:
    """A name lookup, bounded: a resolver that hangs must not hang the command."""
    import socket
    import threading

    answer: list[bool] = []

    def lookup() -> None:
        try:
            socket.getaddrinfo(hostname, None)
            answer.append(True)
        except (OSError, UnicodeError):
            answer.append(False)

    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(RESOLVE_TIMEOUT)
    return bool(answer and answer[0])
