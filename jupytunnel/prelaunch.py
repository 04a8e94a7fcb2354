"""Start the ssh master of ``jupytunnel connect NAME`` before the heavy imports.

A connect of a running server is timed against a raw ``ssh -NfL`` plus one request. Python
spends about 40 ms on imports and checks before it could spawn ssh, which then shakes hands
for 150-300 ms while Python waits. So each connect that opened a master keeps a *plan*
(``plans/NAME.json`` in the state folder): the master's argv and what it was built from
(the profile file, defaults.toml, the remembered server, the ssh config, the environment).
The next ``connect NAME`` checks, with a few ``stat`` calls, that nothing of that changed,
that no tunnel or socket of NAME exists, that the local port is free and that no other
jupytunnel holds NAME's lock; then it takes the lock and spawns the same argv at once. The
normal code runs meanwhile and builds its own argv: ``take`` hands the running ssh over
only when the two are equal; otherwise the early one is ended and nothing is lost but the
time. The plan is a hint, never trusted: the argv that runs is always the one the code
would build now.

This module is imported before anything else of a connect: keep its imports light.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from jupytunnel import runner

FORMAT = 1
# Flags of the fast path's connect that do not change the master's argv (--local-port does).
_PLAIN_FLAGS = {"--no-browser", "--json", "--no-start", "--watch"}
_VALUE_FLAGS = {"--timeout"}
# The environment a plan depends on: where files are, which ssh, which config.
_ENV_PREFIXES = ("JUPYTUNNEL_", "XDG_")
_ENV_NAMES = ("PATH", "HOME")
_MUX_TIMEOUT = 1.0  # a master on a local socket answers at once, or not at all


class _Early:
    """The ssh started early, the profile's lock held for it, and its control socket."""

    def __init__(self, name: str, started: runner.Forking, lock_fd: int, control_path: str, *, capture: bool) -> None:
        self.name = name
        self.capture = capture
        self.started = started
        self.lock_fd = lock_fd
        self.control_path = control_path
        self.taken = False


_early: _Early | None = None


def start(args: list[str]) -> None:
    """Spawn the planned master if ``args`` is a plain ``connect NAME`` and its plan holds.

    Never fails the command: any doubt, and the normal path does everything itself."""
    global _early  # noqa: PLW0603 - one early ssh per process, handed over by ``take``
    name = _connect_name(args)
    if name is None:
        return
    try:
        _early = _spawn(name)
    except Exception:  # noqa: BLE001 - a hint that did not hold: the normal path follows
        _early = None
    if _early is not None:
        _sigterm_unwinds()


def _interrupt(_sig: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _sigterm_unwinds() -> None:
    """From now on SIGTERM unwinds like Ctrl-C, so ``dispose`` ends the early ssh (connect's
    own transaction does the same once it runs)."""
    import signal

    global _previous_sigterm  # noqa: PLW0603 - put back by ``dispose``
    with contextlib.suppress(ValueError):  # not the main thread: its own handling applies
        _previous_sigterm = signal.signal(signal.SIGTERM, _interrupt)


_previous_sigterm: object = None


def _connect_name(args: list[str]) -> str | None:
    if len(args) < 2 or args[0] != "connect":  # noqa: PLR2004
        return None
    names = []
    i = 1
    while i < len(args):
        arg = args[i]
        if arg in _VALUE_FLAGS:
            i += 2
            continue
        if arg.split("=", 1)[0] in _VALUE_FLAGS:
            i += 1
            continue
        if arg.startswith("-"):
            if arg not in _PLAIN_FLAGS:
                return None
        else:
            names.append(arg)
        i += 1
    if len(names) != 1:
        return None
    name = names[0]
    # The name becomes a file name: the profile-name rule, checked without importing profiles.
    if not name or len(name) > 64 or name[0] in ".-" or not all(c.isalnum() or c in "._-" for c in name):  # noqa: PLR2004
        return None
    return name


def plan_path(name: str) -> Path:
    from jupytunnel import paths

    return paths.plans_dir() / f"{name}.json"


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES) or k in _ENV_NAMES}


def _stamp(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size, st.st_ino]


def _spawn(name: str) -> _Early | None:
    import json

    from jupytunnel import paths, runner

    path = plan_path(name)
    with path.open("rb") as fh:
        plan = json.load(fh)
    if (
        plan.get("version") != FORMAT
        or plan.get("name") != name
        or plan.get("env") != _environment()
        or any(_stamp(p) != stamp for p, stamp in plan["inputs"])
    ):
        return None
    argv: list[str] = plan["argv"]
    control_path: str = plan["control_path"]
    record = paths.tunnels_dir() / f"{name}.json"
    if record.exists() or os.path.lexists(control_path) or not _port_free(plan.get("local_port")):
        return None  # a tunnel to reuse, an orphan to clean, a port taken: the normal path's work
    fd = _try_lock(paths.locks_dir() / f"{name}.lock")
    if fd is None:
        return None  # another jupytunnel works on this profile
    try:
        log = paths.ssh_log_file(name)
        started = runner.Forking(argv, log_path=log, capture=bool(plan.get("capture")))
    except BaseException:
        os.close(fd)
        raise
    return _Early(name, started, fd, control_path, capture=bool(plan.get("capture")))


def _port_free(port: object) -> bool:
    if port is None:
        return True  # a socket forward, or none at start
    if not isinstance(port, int):
        return False
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _try_lock(path: Path) -> int | None:
    import fcntl

    if not path.parent.is_dir():
        return None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def holds_lock(name: str) -> bool:
    """This process took ``name``'s lock for an early ssh (``state.profile_lock`` then
    takes it from us instead of waiting for itself)."""
    return _early is not None and _early.name == name and _early.lock_fd >= 0


def release_lock(name: str) -> None:
    if _early is not None and _early.name == name and _early.lock_fd >= 0:
        os.close(_early.lock_fd)
        _early.lock_fd = -1


def pending(name: str) -> bool:
    """An early master of ``name`` runs and was not handed over yet (its socket is ours)."""
    return _early is not None and _early.name == name and not _early.taken


def take(argv: list[str], *, capture: bool) -> runner.Forking | None:
    """The early ssh, if it runs exactly ``argv`` (its output read or not, as asked); else
    None (the early one is ended)."""
    if _early is None or _early.taken:
        return None
    if _early.started.argv != argv or _early.capture != capture:
        dispose()
        return None
    _early.taken = True
    return _early.started


def dispose() -> None:
    """End an early ssh nobody took (a failure, Ctrl-C, another argv): the process we
    started, and the master it may have put in the background, by its socket."""
    global _early, _previous_sigterm  # noqa: PLW0603
    early, _early = _early, None
    if _previous_sigterm is not None:
        import signal

        with contextlib.suppress(ValueError, TypeError):
            signal.signal(signal.SIGTERM, _previous_sigterm)  # type: ignore[arg-type]
        _previous_sigterm = None
    if early is None:
        return
    try:
        if not early.taken:
            early.started.kill()
            if os.path.lexists(early.control_path):
                # On the way out: what cannot be closed now, the next connect cleans as an orphan.
                with contextlib.suppress(Exception):
                    _exit_master(early)
    finally:
        if early.lock_fd >= 0:
            os.close(early.lock_fd)


def _exit_master(early: _Early) -> None:
    """The early ssh got as far as its background master: end it, by the PID its socket
    gives, once psutil proves it ours (our uid, this control path in its command line)."""
    from jupytunnel import procs
    from jupytunnel.ssh import mux

    proven = mux.proven_master(early.control_path, timeout=_MUX_TIMEOUT)
    if proven is not None:
        procs.terminate_verified(*proven, early.control_path)
    with contextlib.suppress(OSError):  # a socket its master left (ssh removes it on exit)
        os.unlink(early.control_path)


def save(
    name: str, *, argv: list[str], control_path: str, local_port: int | None, capture: bool, inputs: list[str]
) -> None:
    """Keep the plan of the master just started (0600, atomic); failures are not the user's."""
    import json

    from jupytunnel import fsutil, paths

    data = {
        "version": FORMAT,
        "name": name,
        "argv": argv,
        "control_path": control_path,
        "local_port": local_port,
        "capture": capture,
        "env": _environment(),
        "inputs": [[p, _stamp(p)] for p in inputs],
    }
    try:
        folder = paths.ensure_state_dir(paths.plans_dir())
        path = folder / f"{name}.json"
        text = json.dumps(data)
        if not path.exists() or path.read_text() != text:
            fsutil.atomic_write(path, text.encode())
    except OSError:
        pass


def forget(name: str) -> None:
    """Drop the plan (the profile was removed or changed in a way the stamps cannot see)."""
    with contextlib.suppress(OSError):
        plan_path(name).unlink()
