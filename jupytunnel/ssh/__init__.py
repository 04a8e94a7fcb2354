"""The OpenSSH client, driven by argv: argv builders, the ControlMaster, its socket protocol,
reading ``ssh -G`` and editing the user's ssh config file.

This module holds the vocabulary both the command line (``ssh.args``) and a written ``Host``
block (``ssh.config``) speak, so that the two cannot say it differently: the loopback address,
the keep-alive defaults, yes/no; and ``Ssh``, the client and its config file, resolved once.
"""

from __future__ import annotations

from typing import NamedTuple

# Both ends of every forward bind this address: without it ssh may "succeed" on [::1] when
# 127.0.0.1 is taken, and never all interfaces.
LOOPBACK = "127.0.0.1"
# Keep-alive probes: a dead path ends the master after 30 s x 3 instead of a TCP timeout.
SERVER_ALIVE: tuple[tuple[str, str], ...] = (
    ("ServerAliveInterval", "30"),
    ("ServerAliveCountMax", "3"),
)
# A forward that cannot bind must fail the master (``-L``) or the login (``LocalForward``).
EXIT_ON_FORWARD_FAILURE = ("ExitOnForwardFailure", "yes")


def yes_no(value: str | int | bool) -> str:
    """An option's value as ssh_config(5) and ``-o`` spell it (``True`` -> ``yes``)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


class Ssh(NamedTuple):
    """The OpenSSH client and the config file it reads (``-F``; None: ssh's own default).

    Resolved once per command (``resolve``) and passed to every argv builder, which then
    reads no environment of its own."""

    binary: str
    config_file: str | None = None

    def head(self) -> list[str]:
        """``ssh [-F FILE]``: how every command of ours begins."""
        return [self.binary, *(["-F", self.config_file] if self.config_file else [])]


def resolve() -> Ssh:
    """``JUPYTUNNEL_SSH`` or ``ssh`` on PATH, and ``JUPYTUNNEL_SSH_CONFIG`` (see
    ``ssh.master.config_file``: a path with spaces becomes a link without them)."""
    from jupytunnel import runner
    from jupytunnel.ssh import master

    return Ssh(runner.ssh_binary(), master.config_file())
