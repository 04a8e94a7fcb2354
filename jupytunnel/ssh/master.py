"""An OpenSSH master connection addressed by its control socket."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from jupytunnel import paths, runner
from jupytunnel.errors import CommandError, JupytunnelError
from jupytunnel.profiles import Profile
from jupytunnel.ssh import Ssh, mux
from jupytunnel.ssh import args as sshargs

_CHECK_PATTERN = r"Master running \(pid=(\d+)\)"
# Lines of ssh's stderr that are noise, not the reason for a failure.
_NOISE = ("Warning: Permanently added", "** ", "Pseudo-terminal")


def control_path(profile_name: str) -> Path:
    """Short, fixed-length socket name: a hash, so long names never overflow sun_path."""
    try:  # the C module behind hashlib.blake2b: 3 ms less start-up than importing hashlib
        from _blake2 import blake2b
    except ImportError:  # pragma: no cover - other Python implementations
        from hashlib import blake2b
    digest = blake2b(profile_name.encode(), digest_size=8).hexdigest()
    return paths.runtime_dir() / f"cm-{digest}"


# Lines that name a cause, for any hop: through a jump host the first hop's "connect to host
# ... refused" or the jump's "channel 0: open failed" is followed by lines that do not.
_CAUSES = (
    "connect to host", "open failed", "could not resolve", "not known", "permission denied",
    "host key verification failed", "identification has changed", "no route to host", "timed out",
    "refused", "unreachable", "bad configuration", "too many authentication", "no matching",
    "forwarding failed",
)  # fmt: skip
_MAX_LINES = 5


def ssh_message(stderr: str) -> str:
    """ssh's own explanation, in one line: every line that names a cause (each hop's), and
    the last line, in the order ssh printed them."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith(_NOISE)]
    if not lines:
        return "no message from ssh"
    causes = [i for i, ln in enumerate(lines) if any(c in ln.lower() for c in _CAUSES)]
    if not causes:
        return " / ".join(dict.fromkeys(lines[-3:]))
    keep = sorted({*causes[: _MAX_LINES - 1], len(lines) - 1})
    return " / ".join(dict.fromkeys(lines[i] for i in keep))


class Master(NamedTuple):
    """The profile's master on ``control_path``, driven with ``ssh`` (resolved once, by
    ``master_for`` or the caller: ``ssh.resolve()``)."""

    profile: Profile
    control_path: Path
    ssh: Ssh

    @property
    def ctl(self) -> str:
        return str(self.control_path)

    def remote_argv(self, script: str) -> list[str]:
        return sshargs.remote_argv(self.profile, script, ssh=self.ssh, control_path=self.ctl)

    def mux_argv(self) -> list[str]:
        """An ssh that rides this master only; the host and command follow (``rsync -e``)."""
        return sshargs.mux_client_args(ssh=self.ssh, control_path=self.ctl)

    def control_argv(self, operation: str, forward: str | None = None) -> list[str]:
        return sshargs.control_argv(self.profile, operation, ssh=self.ssh, control_path=self.ctl, forward=forward)

    def run(
        self, script: str, *, timeout: float, stdin_text: str | None = None, assume: runner.Assume | None = None
    ) -> runner.Result:
        """Run ``script`` on the remote; a dry run records it and gives back ``assume``."""
        return runner.run(self.remote_argv(script), timeout=timeout, stdin_text=stdin_text, assume=assume)

    def pid(self) -> int | None:
        """The master's PID if it answers on its socket (the native ``-O check``)."""
        if not self.control_path.exists():
            return None
        return mux.master_pid(self.ctl)

    def check_pid_with_ssh(self, *, timeout: float = 10) -> int | None:
        """``ssh -O check``: prints ``Master running (pid=N)`` on stderr."""
        result = runner.run(self.control_argv("check"), timeout=timeout)
        found = re.search(_CHECK_PATTERN, result.stderr)
        return int(found.group(1)) if result.ok and found else None

    def exit(self, *, timeout: float = 10) -> bool:
        try:
            result = runner.run(self.control_argv("exit"), timeout=timeout)
        except CommandError:
            return False
        return result.ok

    def forward(self, spec: str, *, timeout: float = 10) -> None:
        # -O forward exits 0 even when the forward fails: its stderr tells.
        result = runner.run(self.control_argv("forward", spec), timeout=timeout)
        if not result.ok or "failed" in result.stderr.lower():
            raise JupytunnelError(f"cannot forward {spec}: {ssh_message(result.stderr)}")

    def cancel_forward(self, spec: str, *, timeout: float = 10) -> None:
        """Drop a forward from the live master (``-O cancel``); best effort."""
        with contextlib.suppress(CommandError):
            runner.run(self.control_argv("cancel", spec), timeout=timeout)

    def remove_stale_socket(self) -> None:
        """A master killed by SIGKILL leaves its socket; a new master on that path would
        print "disabling multiplexing" and leave an ssh nobody can control."""
        if runner.dry_run():
            return  # a dry run opened no master, and removes nothing
        with contextlib.suppress(FileNotFoundError):
            self.control_path.unlink()


def master_for(profile: Profile, ssh: Ssh | None = None) -> Master:
    """The profile's master; ``ssh``: the client resolved by the caller, else resolved here."""
    if not runner.dry_run():  # a dry run creates no folder
        paths.ensure_private_dir(paths.runtime_dir())
    if ssh is None:
        from jupytunnel.ssh import resolve

        ssh = resolve()
    return Master(profile, control_path(profile.name), ssh)


def ssh_log_path(profile: str) -> Path:
    """Where the master's ssh writes its stderr (read on failure, then pruned)."""
    from jupytunnel.profiles import validate_name

    path = paths.ssh_log_file(validate_name(profile))
    if not runner.dry_run():  # no ssh runs in a dry run, so no log: the folder is not made either
        paths.ensure_state_dir(path.parent)
    return path


def prune_ssh_log(profile: str) -> None:
    """Remove the profile's ssh log once read, if ssh said nothing: empty files, one per
    host met, would otherwise pile up in the state folder."""
    from jupytunnel.profiles import validate_name

    path = paths.ssh_log_file(validate_name(profile))
    with contextlib.suppress(OSError):
        if path.stat().st_size == 0:
            path.unlink()


def start_master(
    master: Master,
    *,
    forward: str | None,
    persist: str = "yes",
    command: str | None = None,
    assume: runner.Assume | None = None,
) -> runner.Forking:
    """Start the background master; authentication prompts reach the terminal first.

    Returns at once: ``finish_master`` waits for it, so the caller can work meanwhile.
    ``command``: run in the master's first session; its output comes back from
    ``finish_master`` (a dry run: ``assume``'s).
    """
    argv = sshargs.tunnel_argv(
        master.profile,
        ssh=master.ssh,
        control_path=master.ctl,
        forward=forward,
        persist=persist,
        command=command,
    )
    log = ssh_log_path(master.profile.name)
    if runner.dry_run():  # recorded, not started: nothing is written to the log
        return runner.Forking(argv, log_path=log, capture=command is not None, assume=assume)
    from jupytunnel import prelaunch

    # The same argv started already, before the imports (a plain `connect NAME`): that one.
    early = prelaunch.take(argv, capture=command is not None)
    return early or runner.Forking(argv, log_path=log, capture=command is not None)


SSH_FAILED = 255  # ssh's own exit code for its own failures; others are the command's


class Nudge:
    """Packets from us while the master's first session runs, so that no side waits 40 ms.

    sshd leaves Nagle's algorithm on (no TCP_NODELAY) until it starts a session, and a jump
    host's sshd leaves it on for the forwarded connection for good. A small packet is then
    held back while an earlier one is unacknowledged, and the ssh client, having nothing to
    send, acknowledges only when Linux's delayed-ACK timer fires: 40 ms. It happens at the
    session's open (sshd's host-key announcement, sent just after authentication, crosses
    our request) and, through a jump host, between the session's reply and its output. Raw
    ``ssh -NfL`` pays the same stall on its first request. Any packet from us carries the
    ACK at once. From the moment the master has authenticated (its control socket exists;
    nothing happens during a password or 2FA prompt), for ``_WINDOW`` s:

    - a newline on the session's stdin after each quiet interval (the remote command never
      reads it); then the stdin is closed, so a login script that reads its stdin waits at
      most ``_WINDOW`` s for end-of-file;
    - before the session is open (its stdin is not read yet), up to ``_MAX_POKES``
      connections to our own forward's local port, closed at once: no byte goes through.
      Only when ``poke_port`` is given, which connect does when a server answered at that
      remote port, over the same route, at the last connect: a port where nothing listens
      would log each connection as failed on the remote.
    """

    _WINDOW = 0.5  # the whole of a first session on a quick link; a bound on a slow one
    _POKE_WINDOW = 0.05
    _MAX_POKES = 6

    def __init__(self, control_path: Path, poke_port: int | None) -> None:
        self.control_path = control_path
        self.poke_port = poke_port
        self.up_at: float | None = None
        self.pokes = 0

    def __call__(self, output_started: bool) -> bool | None:
        """True: write a newline; False: not yet; None: no more (see ``runner.Forking.wait``)."""
        import time

        now = time.monotonic()
        if self.up_at is None:
            if self.control_path.exists():
                self.up_at = now
            elif output_started:
                return None  # a session without our socket (ssh disabled multiplexing): leave it be
            else:
                return False  # still shaking hands (or at a password prompt)
        if now - self.up_at >= self._WINDOW:
            return None
        poke_due = not output_started and self.pokes < self._MAX_POKES and now - self.up_at < self._POKE_WINDOW
        if self.poke_port is not None and poke_due:
            self.pokes += 1
            _poke(self.poke_port)
        return True


def _poke(port: int) -> None:
    """Connect to ``port`` on the loopback address and close at once."""
    import socket

    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.05)
        sock.connect((sshargs.LOOPBACK, port))


def finish_master(
    master: Master, started: runner.Forking, *, timeout: float, poke_port: int | None = None
) -> runner.Result:
    """Wait until the master is in the background; ssh's own message on failure.

    ``poke_port``: the first forward's local port, when a server is expected behind it (see
    ``Nudge``)."""
    try:
        result = started.wait(timeout=timeout, nudge=Nudge(master.control_path, poke_port))
    except CommandError as exc:
        raise JupytunnelError(f"ssh to {master.profile.host}: {exc}: {ssh_message(exc.stderr)}") from None
    finally:
        if not runner.dry_run():
            prune_ssh_log(master.profile.name)  # read by now; an empty one says nothing
    if result.returncode == SSH_FAILED or (result.returncode != 0 and not result.stdout):
        raise JupytunnelError(
            f"ssh to {master.profile.host} failed (exit {result.returncode}): "
            f"{ssh_message(_hop_causes(master) + result.stderr)}"
        )
    return result


def _hop_causes(master: Master) -> str:
    """What the hops said, from a plain connection (see ``sshargs.diagnose_argv``); only for
    profiles with jump hosts or a ProxyCommand, and only after a failure."""
    profile = master.profile
    if not (profile.jump or profile.proxy_command):
        return ""
    argv = sshargs.diagnose_argv(profile, ssh=master.ssh)
    try:
        return runner.run(argv, timeout=15).stderr
    except CommandError as exc:
        return exc.stderr


def open_master(master: Master, *, forward: str | None, timeout: float, persist: str = "yes") -> None:
    finish_master(master, start_master(master, forward=forward, persist=persist), timeout=timeout)


TEMPORARY_PERSIST = "15"  # seconds a one-command master outlives its last use


@contextlib.contextmanager
def temporary_master(profile: Profile, *, timeout: float, ssh: Ssh | None = None) -> Iterator[Master]:
    """The profile's live master if there is one, else a master opened for this block only.

    The temporary one has a socket of its own (``cm-HASH.tPID``), so a ``connect`` running
    meanwhile never mistakes it for an orphan, and we never close a master we did not open.
    In a dry run its start and its exit are recorded, and no socket is looked for. ``ssh``:
    the client the caller resolved (else ``master_for`` resolves it).
    """
    master = master_for(profile, ssh)
    if master.pid() is not None:
        yield master
        return
    temp = _temporary(master)
    open_master(temp, forward=None, timeout=timeout, persist=TEMPORARY_PERSIST)
    try:
        yield temp
    finally:
        temp.exit()
        temp.remove_stale_socket()


def _temporary(master: Master) -> Master:
    import os

    temp = master._replace(control_path=master.control_path.with_name(f"{master.control_path.name}.t{os.getpid()}"))
    temp.remove_stale_socket()
    return temp


@contextlib.contextmanager
def session(
    profile: Profile, script: str, *, timeout: float, assume: runner.Assume | None = None
) -> Iterator[tuple[Master, runner.Result, bool]]:
    """``temporary_master`` that runs ``script`` first: through the live master, or in the
    temporary master's first session (the handshake and the round trip cost one process, as
    in ``connect``). Yields (master, the script's result, whether the master is the live one).
    ``assume``: the script's output in a dry run.
    """
    master = master_for(profile)
    if master.pid() is not None:
        yield master, master.run(script, timeout=timeout, assume=assume), True
        return
    temp = _temporary(master)
    started = start_master(temp, forward=None, persist=TEMPORARY_PERSIST, command=script, assume=assume)
    try:
        try:
            first = finish_master(temp, started, timeout=timeout)
        finally:
            started.kill()  # a no-op once ssh is done; else it was cut short
        yield temp, first, False
    finally:
        temp.exit()
        temp.remove_stale_socket()
