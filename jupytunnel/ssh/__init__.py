"""The OpenSSH client, driven by argv: argv builders, the ControlMaster, its socket protocol,
reading ``ssh -G`` and editing the user's ssh config file.

This module holds the vocabulary both the command line (``ssh.args``) and a written ``Host``
block (``ssh.config``) speak, so that the two cannot say it differently: the loopback address,
the keep-alive defaults, yes/no; and ``Ssh``, the client and its config file, resolved once.
"""

from __future__ import annotations

from typing import NamedTuple

from jupytunnel.net import LOOPBACK

__all__ = ["EXIT_ON_FORWARD_FAILURE", "LOOPBACK", "SERVER_ALIVE", "Ssh", "config_path", "resolve", "yes_no"]
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
    ``config_path``: a path with spaces becomes a link without them). The one place that
    reads the environment for them: everything below is given the result."""
    from jupytunnel import runner

    return Ssh(runner.ssh_binary(), config_path())


def config_path() -> str | None:
    """The ``-F`` file (``JUPYTUNNEL_SSH_CONFIG``), None for ssh's own default."""
    from jupytunnel import paths

    override = paths.ssh_config_override()
    if not override:
        return None
    text = str(override)
    return _spaceless(text) if any(c.isspace() for c in text) else text


def _spaceless(path: str) -> str:
    """A link without whitespace to the ssh config: OpenSSH passes ``-F`` on to the ssh it
    runs for each ``-J`` hop unquoted, so "my configs/ssh config" would become two words."""
    import contextlib
    import os

    from jupytunnel import paths
    from jupytunnel.errors import JupytunnelError

    try:
        from _blake2 import blake2b
    except ImportError:  # pragma: no cover - other Python implementations
        from hashlib import blake2b
    target = os.path.abspath(path)
    folder = paths.ensure_private_dir(paths.runtime_dir())
    link = folder / f"ssh-config-{blake2b(target.encode(), digest_size=6).hexdigest()}"
    if any(c.isspace() for c in str(link)):
        return path  # nowhere better to put it; ssh will say what it cannot open
    try:
        if os.readlink(link) == target:
            return str(link)
    except OSError:
        pass
    temp = link.with_name(f"{link.name}.{os.getpid()}")
    try:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        os.symlink(target, temp)
        os.replace(temp, link)
    except OSError as exc:
        raise JupytunnelError(f"cannot link {link} to the ssh config {path}: {exc.strerror}") from None
    return str(link)
