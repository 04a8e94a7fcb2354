"""The one module that starts processes. Every ssh command goes through here.

It never uses a shell, logs ``shlex.join(argv)`` when verbose, bounds every wait, and turns
failures into ``CommandError`` carrying argv, exit code and stderr.
"""

from __future__ import annotations

import functools
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple, NoReturn

from jupytunnel.errors import CommandError, JupytunnelError, seconds

_verbose = False


def set_verbose(on: bool) -> None:
    global _verbose  # noqa: PLW0603 - one process-wide switch set by the CLI callback
    _verbose = on


def display(argv: list[str]) -> str:
    """One line a command, for --dry-run and -v: like ``shlex.join``, but an argument with
    newlines (a remote script) is written in ``$'...'`` form, which bash and zsh read back
    exactly, so the line can be pasted."""
    return " ".join(_ansi_c(arg) if "\n" in arg else shlex.quote(arg) for arg in argv)


def _ansi_c(arg: str) -> str:
    escaped = arg.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\t", "\\t")
    return f"$'{escaped}'"


def echo_command(argv: list[str], *, prefix: str = "+ ") -> None:
    print(prefix + display(argv), file=sys.stderr, flush=True)


def _which(name: str) -> str | None:
    """``shutil.which`` for one plain name (shutil costs 2 ms of every command's start-up)."""
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(folder or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


@functools.cache
def ssh_binary() -> str:
    """The OpenSSH client, resolved once (``JUPYTUNNEL_SSH`` overrides PATH lookup)."""
    found = os.environ.get("JUPYTUNNEL_SSH") or _which("ssh")
    if not found:
        raise JupytunnelError("OpenSSH client 'ssh' not found on PATH; install openssh-client")
    return found


# NamedTuples, not dataclasses, on the connect path: dataclasses imports inspect (5-7 ms).
class Result(NamedTuple):
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _log(argv: list[str]) -> None:
    if _verbose:
        echo_command(argv)


def _not_found(argv: list[str], exc: OSError) -> JupytunnelError:
    return JupytunnelError(f"cannot run {argv[0]}: {exc.strerror or exc}")


def run(argv: list[str], *, timeout: float, stdin_text: str | None = None) -> Result:
    """Run to completion with output captured; a time-out kills the process."""
    _log(argv)
    try:
        proc = subprocess.run(
            argv,
            input=stdin_text,
            stdin=None if stdin_text is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandError(
            f"{Path(argv[0]).name} did not finish within {seconds(timeout)} s",
            argv=argv,
            returncode=None,
            stderr=_text(exc.stderr),
        ) from None
    except OSError as exc:
        raise _not_found(argv, exc) from None
    return Result(argv, proc.returncode, proc.stdout, proc.stderr)


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")


class Forking:
    """A command that puts an ssh master into the background, started now and waited for
    later, so the caller can do its own work during the handshake.

    stderr goes to ``log_path``, never a pipe: with ``-J`` or a ProxyCommand the helper
    process keeps the inherited stderr open, and a parent reading a pipe would hang until
    the tunnel closed. ``capture``: stdout is read through a pipe (the master's first
    session; OpenSSH points the backgrounded master's own stdio at /dev/null). The terminal
    stays reachable for password and 2FA prompts, which OpenSSH reads from /dev/tty.
    """

    def __init__(self, argv: list[str], *, log_path: Path, capture: bool = False) -> None:
        _log(argv)
        self.argv = argv
        self.log_path = log_path
        with log_path.open("wb") as log:
            os.fchmod(log.fileno(), 0o600)
            try:
                self._proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE if capture else log, stderr=log
                )
            except OSError as exc:
                raise _not_found(argv, exc) from None

    def wait(self, *, timeout: float) -> Result:
        if self._proc.stdout is not None:
            try:
                out, _ = self._proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._timed_out(timeout)
            return Result(self.argv, self._proc.returncode, out.decode(errors="replace"), _read_tail(self.log_path))
        if not wait_exit(self._proc, timeout):
            self._timed_out(timeout)
        return Result(self.argv, self._proc.returncode, "", _read_tail(self.log_path))

    def _timed_out(self, timeout: float) -> NoReturn:
        self._proc.kill()  # the ssh we started (the master it may have forked is the caller's)
        self._proc.communicate()
        raise CommandError(
            f"ssh did not connect within {seconds(timeout)} s",
            argv=self.argv,
            returncode=None,
            stderr=_read_tail(self.log_path),
        )

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.communicate()


def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait for ``proc`` to exit; False on time-out.

    ``Popen.wait(timeout=...)`` polls with sleeps that grow to 50 ms, which would add 25 ms
    on average to every connect; a pidfd (Linux) or a waiting thread wakes us at once.
    """
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is not None:
        import select

        try:
            fd = pidfd_open(proc.pid)
        except OSError:
            fd = None  # already reaped, or an old kernel
        if fd is not None:
            try:
                ready, _, _ = select.select([fd], [], [], timeout)
            finally:
                os.close(fd)
            if not ready:
                return False
            proc.wait()
            return True
    import threading

    waiter = threading.Thread(target=proc.wait, daemon=True)
    waiter.start()
    waiter.join(timeout)
    return not waiter.is_alive()


def _read_tail(path: Path, limit: int = 8192) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


class Started:
    """A process started now and collected later, so independent commands overlap."""

    def __init__(self, argv: list[str]) -> None:
        _log(argv)
        self.argv = argv
        self._collected = False
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
            )
        except OSError as exc:
            raise _not_found(argv, exc) from None

    def kill(self) -> None:
        """Stop and reap it, if not collected yet (a failure elsewhere made it moot)."""
        if self._collected:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.communicate()
        self._collected = True

    def result(self, *, timeout: float) -> Result:
        try:
            out, err = self._proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            out, err = self._proc.communicate()
            self._collected = True
            raise CommandError(
                f"{Path(self.argv[0]).name} did not finish within {seconds(timeout)} s",
                argv=self.argv,
                returncode=None,
                stderr=err,
            ) from None
        self._collected = True
        return Result(self.argv, self._proc.returncode, out, err)


def run_interactive(argv: list[str]) -> int:
    """Run attached to the terminal (an editor); returns the exit code."""
    _log(argv)
    try:
        return subprocess.call(argv)
    except OSError as exc:
        raise _not_found(argv, exc) from None
