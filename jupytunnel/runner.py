"""The one module that starts processes. Every ssh command goes through here.

It never uses a shell, logs ``shlex.join(argv)`` when verbose, bounds every wait, and turns
failures into ``CommandError`` carrying argv, exit code and stderr.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, NoReturn

from jupytunnel.errors import CommandError, JupytunnelError, seconds

if TYPE_CHECKING:
    import selectors


class Options(NamedTuple):
    """The global flags, for the whole command: one context value, set by the CLI."""

    verbose: bool = False  # -v: every command on stderr before it runs
    dry_run: bool = False  # --dry-run: commands are recorded (see ``dry_running``), not run


OPTIONS: contextvars.ContextVar[Options] = contextvars.ContextVar("jupytunnel_options", default=Options())  # noqa: B039 - an immutable NamedTuple


def options() -> Options:
    return OPTIONS.get()


def dry_run() -> bool:
    return OPTIONS.get().dry_run


@contextlib.contextmanager
def using(opts: Options) -> Iterator[None]:
    """``opts`` for what runs inside (tests, and a command that runs another)."""
    token = OPTIONS.set(opts)
    try:
        yield
    finally:
        OPTIONS.reset(token)


class Assume(NamedTuple):
    """What a dry run takes a command it does not run to have done, said in its output."""

    stdout: str = ""
    returncode: int = 0
    says: str = ""  # the assumption in words (a ``#`` line before the command), if it matters


class Step(NamedTuple):
    """One line of a dry run (or of -v): a command, or a note (a ``#`` line) between them."""

    argv: list[str] | None
    note: str = ""

    def text(self) -> str:
        return display(self.argv) if self.argv is not None else f"# {self.note}"


def display(argv: list[str]) -> str:
    """A command as text that pastes into sh, bash and zsh (POSIX quoting, ``shlex.join``).

    An argument with newlines (a remote script) is shown as it is, in a quoted here-document
    read into a variable before the command, then passed as ``"$script"``: readable, and the
    same argument byte for byte (``$(...)`` drops trailing newlines; they are put back)."""
    if not any("\n" in arg for arg in argv):
        return shlex.join(argv)
    lines: list[str] = []
    words: list[str] = []
    many = sum("\n" in arg for arg in argv) > 1
    for arg in argv:
        if "\n" not in arg:
            words.append(shlex.quote(arg))
            continue
        var = f"script{len(lines) // 4 + 1}" if many else "script"
        tag = "JUPYTUNNEL_SCRIPT"
        while tag in arg.split("\n"):
            tag += "_"
        body = arg.rstrip("\n")
        lines += [f"{var}=$(cat <<'{tag}'", body, tag, ")"]
        if len(arg) > len(body):  # one line, so that every line after ")" is a command
            newlines = "\\n" * (len(arg) - len(body))
            lines[-1] += f'; {var}="${var}$(printf \'{newlines}.\')"; {var}="${{{var}%.}}"'
        words.append(f'"${var}"')
    return "\n".join([*lines, " ".join(words)])


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


@functools.cache
def rsync_binary() -> str:
    """The local rsync (``JUPYTUNNEL_RSYNC`` overrides PATH lookup)."""
    found = os.environ.get("JUPYTUNNEL_RSYNC") or _which("rsync")
    if not found:
        raise JupytunnelError(
            "rsync not found on PATH; install rsync (Debian/Ubuntu: apt-get install rsync, "
            "Fedora: dnf install rsync, macOS: brew install rsync)"
        )
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


_recorders: list[Callable[[Step], None]] = []


@contextlib.contextmanager
def recording(record: Callable[[Step], None], *, dry: bool = True) -> Iterator[None]:
    """Pass every command started meanwhile (and every ``note``) to ``record``.

    ``dry``: a dry run meanwhile (``--dry-run``): commands are recorded and not run, each
    giving back what its caller says to assume (``Assume``); only commands marked
    ``readonly`` run. The dry run is the real code, so it cannot disagree with a real run."""
    _recorders.append(record)
    try:
        if dry:
            with using(options()._replace(dry_run=True)):
                yield
        else:
            yield
    finally:
        _recorders.remove(record)


def note(text: str) -> None:
    """Say, in a dry run (and under -v), a step that is no command: a request to Jupyter, a
    file written, a wait. Nothing otherwise."""
    step = Step(None, text)
    if OPTIONS.get().verbose:
        print(step.text(), file=sys.stderr, flush=True)
    for record in _recorders:
        record(step)


def _log(argv: list[str], assume: Assume | None = None, *, readonly: bool = False) -> bool:
    """Record and echo ``argv``; True when it must not run (a dry run, not ``readonly``)."""
    skip = OPTIONS.get().dry_run and not readonly
    if skip and assume is not None and assume.says:
        note(assume.says)
    if OPTIONS.get().verbose:
        echo_command(argv)
    for record in _recorders:
        record(Step(argv))
    return skip


def _assumed(argv: list[str], assume: Assume | None) -> Result:
    a = assume or Assume()
    return Result(argv, a.returncode, a.stdout, "")


def _not_found(argv: list[str], exc: OSError) -> JupytunnelError:
    return JupytunnelError(f"cannot run {argv[0]}: {exc.strerror or exc}")


def run(
    argv: list[str],
    *,
    timeout: float,
    stdin_text: str | None = None,
    assume: Assume | None = None,
    readonly: bool = False,
) -> Result:
    """Run to completion with output captured; a time-out kills the process.

    In a dry run: recorded, not run (the ``assume``d result), unless ``readonly``."""
    if _log(argv, assume, readonly=readonly):
        return _assumed(argv, assume)
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


# How long a master's first session may be quiet before ``Forking.wait`` nudges it.
NUDGE_EVERY = 0.004


class Forking:
    """A command that puts an ssh master into the background, started now and waited for
    later, so the caller can do its own work during the handshake.

    stderr goes to ``log_path``, never a pipe: with ``-J`` or a ProxyCommand the helper
    process keeps the inherited stderr open, and a parent reading a pipe would hang until
    the tunnel closed. ``capture``: stdout is read through a pipe (the master's first
    session; OpenSSH points the backgrounded master's own stdio at /dev/null). The terminal
    stays reachable for password and 2FA prompts, which OpenSSH reads from /dev/tty.
    """

    def __init__(self, argv: list[str], *, log_path: Path, capture: bool = False, assume: Assume | None = None) -> None:
        self.argv = argv
        self.log_path = log_path
        self._dry: Result | None = _assumed(argv, assume) if _log(argv, assume) else None
        if self._dry is not None:
            return
        with log_path.open("wb") as log:
            os.fchmod(log.fileno(), 0o600)
            try:
                # The session's stdin is a pipe of ours, for ``wait``'s nudges (nothing else is sent).
                self._proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.PIPE if capture else subprocess.DEVNULL,
                    stdout=subprocess.PIPE if capture else log,
                    stderr=log,
                )
            except OSError as exc:
                raise _not_found(argv, exc) from None
        if self._proc.stdin is not None:
            os.set_blocking(self._proc.stdin.fileno(), False)

    def wait(self, *, timeout: float, nudge: Callable[[bool], bool | None] | None = None) -> Result:
        """Wait for ssh to exit (the master in the background); its session's output.

        ``nudge(output_started)``: called whenever the session has been quiet for
        ``NUDGE_EVERY`` s. True: one newline is written to the session's stdin (which the
        remote command never reads); each makes ssh send a packet, and so an ACK (see
        ``ssh.master.Nudge`` for why that saves 40 ms stalls). False: not now. None: no
        more, and the stdin is closed: a remote reader gets end-of-file, as from /dev/null.
        Without ``nudge`` the stdin is closed at once."""
        if self._dry is not None:
            return self._dry
        if self._proc.stdout is not None:
            out = self._read_session(timeout, nudge)
            return Result(self.argv, self._proc.returncode, out.decode(errors="replace"), _read_tail(self.log_path))
        if not wait_exit(self._proc, timeout):
            self._timed_out(timeout)
        return Result(self.argv, self._proc.returncode, "", _read_tail(self.log_path))

    def _read_session(self, timeout: float, nudge: Callable[[bool], bool | None] | None) -> bytes:
        """The session's stdout to its end, then ssh's exit, within ``timeout``."""
        import select
        import time

        assert self._proc.stdout is not None
        if nudge is None:
            self._close_pipes(stdout=False)  # end-of-file at once, as from /dev/null
        deadline = time.monotonic() + timeout
        out = self._proc.stdout.fileno()
        poller = select.poll()
        poller.register(out, select.POLLIN)
        chunks: list[bytes] = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._timed_out(timeout)
                if poller.poll(1000 * (min(left, NUDGE_EVERY) if nudge else left)):
                    data = os.read(out, 65536)
                    if not data:
                        break
                    chunks.append(data)
                elif nudge is not None:
                    due = nudge(bool(chunks))
                    if due is None:
                        nudge = None
                        self._close_pipes(stdout=False)
                    elif due:
                        self._write_stdin(b"\n")
        finally:
            self._close_pipes()
        if not wait_exit(self._proc, max(deadline - time.monotonic(), 0.0)):
            self._timed_out(timeout)
        return b"".join(chunks)

    def _write_stdin(self, data: bytes) -> None:
        if self._proc.stdin is None or self._proc.stdin.closed:
            return
        with contextlib.suppress(OSError):  # full (nobody reads yet), or ssh is gone: no matter
            os.write(self._proc.stdin.fileno(), data)

    def _close_pipes(self, *, stdout: bool = True) -> None:
        for pipe in (self._proc.stdin, self._proc.stdout if stdout else None):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def _timed_out(self, timeout: float) -> NoReturn:
        self._proc.kill()  # the ssh we started (the master it may have forked is the caller's)
        self._close_pipes()
        self._proc.wait()
        raise CommandError(
            f"ssh did not connect within {seconds(timeout)} s",
            argv=self.argv,
            returncode=None,
            stderr=_read_tail(self.log_path),
        )

    def kill(self) -> None:
        if self._dry is not None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._close_pipes()


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

    def __init__(self, argv: list[str], *, assume: Assume | None = None, readonly: bool = False) -> None:
        self.argv = argv
        self._dry: Result | None = _assumed(argv, assume) if _log(argv, assume, readonly=readonly) else None
        self._collected = self._dry is not None
        if self._dry is not None:
            return
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
        if self._dry is not None:
            return self._dry
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
    """Run attached to the terminal (an editor); returns the exit code (0 in a dry run)."""
    if _log(argv):
        return 0
    try:
        return subprocess.call(argv)
    except OSError as exc:
        raise _not_found(argv, exc) from None


STOP_GRACE = 5.0  # seconds a streaming command gets to end after SIGTERM


def stream(argv: list[str]) -> int:
    """Run ``argv`` with its output on our stdout until it ends or Ctrl-C; the exit code.

    Its stdin is a pipe we hold and never write: a remote command reading it sees the end
    when this ssh goes. On Ctrl-C the child (ours, by its Popen handle) is ended too,
    then KeyboardInterrupt goes on up. A dry run: recorded, 0.
    """
    if _log(argv):
        return 0
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE)
    except OSError as exc:
        raise _not_found(argv, exc) from None
    try:
        return proc.wait()
    except KeyboardInterrupt:
        if proc.poll() is None:
            proc.terminate()
            if not wait_exit(proc, STOP_GRACE):
                proc.kill()
        proc.wait()
        raise
    finally:
        if proc.stdin is not None:
            proc.stdin.close()


# After Ctrl-C, how long a relayed command gets to stop on its own (rsync renames its
# partial file and tells the remote end), before SIGTERM; SIGKILL follows 5 s later.
INTERRUPT_GRACE = 10.0
# A terminal's Ctrl-C reaches the whole foreground process group, the child too; a SIGINT
# sent to us alone is passed on after this long.
_FORWARD_AFTER = 1.0


class Relayed(NamedTuple):
    argv: list[str]
    returncode: int
    interrupted: bool  # Ctrl-C (KeyboardInterrupt) arrived while it ran


class _Stopper:
    """What Ctrl-C does to a relayed child: time to stop on its own, then SIGINT (a SIGINT
    sent to us alone), SIGTERM after ``grace``, SIGKILL 5 s later; a second Ctrl-C moves
    on at once. ``Popen.send_signal`` and friends only signal a child not reaped yet: the PID
    is still ours."""

    def __init__(self, proc: subprocess.Popen[bytes], grace: float) -> None:
        self.proc = proc
        self.grace = grace
        self.since: float | None = None
        self.step = 0  # 1: SIGINT passed on, 2: SIGTERM, 3: SIGKILL

    def interrupt(self) -> None:
        import time

        if self.since is None:
            self.since = time.monotonic()
        else:
            self.tick(now=True)

    def tick(self, *, now: bool = False) -> None:
        import signal
        import time

        if self.since is None or self.proc.poll() is not None:
            return
        waited = time.monotonic() - self.since
        if self.step == 0 and not now and waited >= _FORWARD_AFTER:
            self.proc.send_signal(signal.SIGINT)
            self.step = 1
        elif self.step < 2 and (now or waited >= self.grace):  # noqa: PLR2004 - the steps above
            self.proc.terminate()
            self.step = 2
        elif self.step == 2 and (now or waited >= self.grace + 5):  # noqa: PLR2004
            self.proc.kill()
            self.step = 3


def _pump(sel: selectors.BaseSelector) -> None:
    """Pass what the pipes hold to their callbacks; forget a pipe at its end."""
    if not sel.get_map():
        return
    for key, _ in sel.select(timeout=0.25):
        data = os.read(key.fd, 65536)
        if data:
            key.data(data)
        else:
            sel.unregister(key.fileobj)


def run_relayed(
    argv: list[str],
    *,
    on_stdout: Callable[[bytes], None],
    on_stderr: Callable[[bytes], None],
    grace: float = INTERRUPT_GRACE,
    readonly: bool = False,
) -> Relayed:
    """Run a long command attached: its output goes to the callbacks as it comes.

    No limit on the whole run: a transfer takes what it takes, and the command's own
    inactivity timeout (rsync ``--timeout``) ends a stalled one. Ctrl-C does not kill it
    outright, which would cut its clean-up short (see ``_Stopper``).
    """
    import selectors

    if _log(argv, readonly=readonly):
        return Relayed(argv, 0, interrupted=False)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        raise _not_found(argv, exc) from None
    assert proc.stdout is not None
    assert proc.stderr is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, on_stdout)
    sel.register(proc.stderr, selectors.EVENT_READ, on_stderr)
    stopper = _Stopper(proc, grace)
    try:
        while True:
            try:
                if not sel.get_map() and wait_exit(proc, 0.25):
                    break
                _pump(sel)
                stopper.tick()
            except KeyboardInterrupt:
                stopper.interrupt()
    finally:
        sel.close()
        if proc.poll() is None:  # a callback failed (a closed stdout): do not leave it running
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    return Relayed(argv, proc.returncode, stopper.since is not None)
