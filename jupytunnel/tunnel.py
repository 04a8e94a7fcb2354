"""Tunnel lifecycle: connect, disconnect, status. Plain functions; the CLI only formats."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, NamedTuple

from jupytunnel import procs, state
from jupytunnel.errors import JupytunnelError, seconds
from jupytunnel.net import LOOPBACK
from jupytunnel.state import TunnelRecord

if TYPE_CHECKING:
    from collections.abc import Iterator

    from jupytunnel import runner
    from jupytunnel.profiles import Profile
    from jupytunnel.remote import ServerInfo
    from jupytunnel.ssh.master import Master

# Modules that only connect needs are imported inside the functions that use them:
# `status` and a reconnect of a live tunnel stay cheap.

LocalPort = int | Literal["auto"]


class Connected(NamedTuple):
    record: TunnelRecord
    reused: bool
    started_server: bool
    job: dict[str, str | None] | None = None  # a Slurm job's id, node, state, time left


def local_url(port: int, server: ServerInfo, *, classic: bool) -> str:
    """The URL to open: the page the server serves (``ui``, learned by asking it), else a
    guess from the command (``tree`` for the classic notebook, ``lab``)."""
    path = server.ui if server.ui is not None else "tree" if classic else "lab"
    base = server.base_url if server.base_url.endswith("/") else server.base_url + "/"
    query = f"?token={server.token}" if server.token else ""
    return f"http://{LOOPBACK}:{port}{base}{path}{query}"


def choose_port(profile: Profile, requested: LocalPort | None) -> int:
    wanted = requested if requested is not None else profile.local_port
    if wanted == "auto":
        if isinstance(profile.remote_port, int) and procs.port_free(profile.remote_port):
            return profile.remote_port
        return procs.any_free_port()
    if not procs.port_free(wanted):
        holder = procs.port_holder(wanted)
        raise JupytunnelError(
            f"local port {wanted} is already in use"
            + (f" by {holder}" if holder else "")
            + "; choose another with --local-port, or --local-port auto"
        )
    return wanted


def is_up(record: TunnelRecord) -> bool:
    """The recorded master answers on its socket with the recorded PID.

    The socket lives in our private runtime dir, so the process answering there with that
    PID is the master we started: no process table scan needed on this hot path.
    """
    from jupytunnel.ssh import mux

    return mux.master_pid(record.control_path) == record.pid


STATUS_TIMEOUT = 2.0  # how long status waits for Jupyter's answers, all tunnels together
# One round trip through a live master (read the runtime files, a job's state): well under a
# second on a working link, so a link that takes longer than this is as good as gone.
MASTER_ROUND_TRIP = 5.0
# One HTTP request through a tunnel that is up: milliseconds; more means the server is stuck.
TUNNEL_REQUEST_TIMEOUT = 3.0
# A first request to a page or /api/status of a server that just started: the server may
# still be loading its extensions.
PAGE_PROBE_TIMEOUT = 5.0
# A master on a local socket answers ``-O check`` in milliseconds, or not at all.
MUX_CHECK_TIMEOUT = 1.0
# After ``-O exit``, how long the master gets to go by itself before the verified signals.
MASTER_EXIT_WAIT = 2.0
# connect's and disconnect's --timeout when the caller gives none.
DEFAULT_TIMEOUT = 30.0


def token_of(record: TunnelRecord) -> str:
    return record.url.partition("?token=")[2]


def check(records: list[TunnelRecord]) -> list[tuple[TunnelRecord, str]]:
    """Each tunnel with its state: ``up`` (the master answers and Jupyter answers through
    it), ``stale`` (the master's process lives, but it or the Jupyter behind it does not
    answer) or ``down``.

    ssh accepts on the local port whether or not anything listens on the far end, so only
    an answer from Jupyter tells. Every live tunnel is asked at once (one thread, bounded by
    ``STATUS_TIMEOUT``). A 401/403 to the recorded token means the server was restarted
    with another one: its runtime info is read again, and the record follows it.
    """
    from jupytunnel import httpcheck

    up = [i for i, rec in enumerate(records) if is_up(rec)]
    # Only our own master may receive the token: the listener on the port must be it (a
    # master that lost its forward leaves the port to anyone).
    mine = procs.our_listeners([(records[i].pid, records[i].local_port) for i in up]) if up else []
    live = [i for i, ok in zip(up, mine, strict=True) if ok]
    asks = [httpcheck.Ask(records[i].local_port, records[i].base_url, token_of(records[i])) for i in live]
    codes = dict(zip(live, httpcheck.ask_many(asks, timeout=STATUS_TIMEOUT) if asks else [], strict=True))
    out: list[tuple[TunnelRecord, str]] = []
    for i, rec in enumerate(records):
        code = codes.get(i, -1)
        if code == 200:  # noqa: PLR2004
            out.append((rec, "up"))
        elif code in (401, 403) and token_of(rec):
            fresh = _follow_new_token(rec)
            out.append((fresh, "up") if fresh is not None else (rec, "stale"))
        elif i in codes:
            out.append((rec, "stale"))  # the tunnel holds, Jupyter behind it does not answer
        elif procs.alive_and_same(rec.pid, rec.create_time):
            out.append((rec, "stale"))
        else:
            out.append((rec, "down"))
    return out


def record_state(record: TunnelRecord) -> str:
    """``up``, ``stale`` or ``down`` (see ``check``)."""
    return check([record])[0][1]


def _follow_new_token(record: TunnelRecord) -> TunnelRecord | None:
    """The server behind the tunnel answered 403 to the recorded token: read its runtime
    info again through the live master (one round trip). The updated record when the server
    at the recorded endpoint accepts its new token; None otherwise (the record is kept)."""
    from pathlib import Path

    from jupytunnel import httpcheck, profiles
    from jupytunnel.errors import CommandError, UsageError
    from jupytunnel.remote import server
    from jupytunnel.remote.places import place_of
    from jupytunnel.ssh import resolve
    from jupytunnel.ssh.master import Master

    try:
        profile = profiles.load(record.profile)
    except (UsageError, JupytunnelError):
        return None
    if place_of(profile).jobs or record.job is not None:
        return None  # a job's server is found through its job, by connect
    master = Master(profile, Path(record.control_path), resolve())
    try:
        found = server.discover(master, timeout=MASTER_ROUND_TRIP)
    except (JupytunnelError, CommandError):
        return None
    srv = next((s for s in found.servers if f"{profile.host}:{s.endpoint}" == record.remote), None)
    if (
        srv is None
        or not srv.token
        or not httpcheck.status_ok(record.local_port, srv.base_url, srv.token, timeout=TUNNEL_REQUEST_TIMEOUT)
    ):
        return None
    page = record.url.partition("?")[0].rsplit("/", 1)[1]  # the page it served before
    fresh = record._replace(
        url=local_url(record.local_port, srv._replace(ui=page), classic=False),
        server_pid=srv.pid,
        base_url=srv.base_url,
    )
    state.save(fresh)
    server.remember(profile, srv)
    return fresh


def watch_message(profile: Profile, current: str, *, start_server: bool) -> str:
    """What ``connect --watch`` says when the tunnel is no longer ``up``."""
    if current != "stale":
        return "tunnel down; reconnecting"
    from jupytunnel.remote import launchers

    if start_server and launchers.for_profile(profile) is not None:
        return "Jupyter no longer answers through the tunnel; starting it again"
    return "Jupyter no longer answers through the tunnel; waiting for it"


def live_record(name: str) -> TunnelRecord:
    """The record of a tunnel that reaches Jupyter now (its token refreshed if it changed)."""
    record = state.load(name)
    if record is None:
        raise JupytunnelError(f"{name} has no live tunnel; run: jupytunnel connect {name}")
    fresh, current = check([record])[0]
    if current == "stale":
        raise JupytunnelError(
            f"{name}: the tunnel is open but Jupyter does not answer through it (stopped or gone); "
            f"run: jupytunnel connect {name}"
        )
    if current != "up":
        raise JupytunnelError(f"{name} has no live tunnel; run: jupytunnel connect {name}")
    return fresh


def socket_record(control_path: str, name: str = "?") -> TunnelRecord | None:
    """A master with no record (a connect killed between starting it and saving the record):
    the socket in our private runtime folder answers with a PID whose command line names that
    socket, as ours. Enough of a record to show it and to end it with verified signals."""
    from jupytunnel.ssh import mux

    proven = mux.proven_master(control_path, timeout=MUX_CHECK_TIMEOUT)
    if proven is None:
        return None
    pid, created = proven
    return TunnelRecord(
        profile=name, pid=pid, create_time=created, control_path=control_path, local_port=0,
        remote="", host="", started_at=created, url="",
    )  # fmt: skip


def orphans(known: set[str]) -> list[TunnelRecord]:
    """Masters in the runtime folder that no record names (and no connect is busy with)."""
    import os

    from jupytunnel import paths

    folder = paths.runtime_dir()
    try:
        entries = sorted(e for e in os.listdir(folder) if e.startswith("cm-") and "." not in e)
    except OSError:
        return []
    fresh = [str(folder / e) for e in entries if str(folder / e) not in known]
    if not fresh:
        return []
    names = _socket_names()
    out = []
    for path in fresh:
        name = names.get(path.rsplit("/", 1)[1], "?")
        if name != "?" and state.lock_busy(name):
            continue  # a connect is starting it right now
        rec = socket_record(path, name)
        if rec is not None:
            out.append(rec)
    return out


def _socket_names() -> dict[str, str]:
    """Socket file name -> profile name, for every profile file (the name is hashed)."""
    from jupytunnel.errors import UsageError
    from jupytunnel.profiles import list_names
    from jupytunnel.ssh.master import control_path

    try:
        return {control_path(n).name: n for n in list_names()}
    except (UsageError, JupytunnelError, OSError):
        return {}


def teardown(record: TunnelRecord | None, master: Master) -> None:
    """End a master we started: ``-O exit``, then verified signals. Never anything else."""
    from jupytunnel import runner

    if record is None and master.control_path.exists():
        record = socket_record(master.ctl)  # an orphan: proven ours by its socket and command line
    live = master.control_path.exists() and master.pid() is not None
    if live:
        master.exit()
    if runner.dry_run():  # the master stays: no signal, the socket kept
        if live and record is not None:
            runner.note(f"then, only while pid {record.pid} is still the master we started: SIGTERM, SIGKILL")
        return
    gone = record is None or procs.wait_gone(record.pid, record.create_time, timeout=MASTER_EXIT_WAIT)
    if record is not None and not gone:
        procs.terminate_verified(record.pid, record.create_time, record.control_path)
    master.remove_stale_socket()


def connect(
    profile: Profile,
    *,
    local_port: LocalPort | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    start_server: bool = True,
    tick: Callable[..., None] = lambda *_: None,
    say: Callable[[str], None] = lambda _: None,
) -> Connected:
    """Reuse the live tunnel of ``profile`` or open a new one to its Jupyter server.

    ``tick``: called while a server starts (a spinner); ``say``: one line for the user (a
    Slurm job that ended and is submitted again). In a dry run (the runner's mode) the same
    code runs with the commands recorded; a step whose course depends on an answer the dry
    run did not get ends it (``DryRunEndedError``).
    """
    from jupytunnel import prelaunch
    from jupytunnel.ssh.master import master_for

    deadline = time.monotonic() + timeout
    # Waiting for another connect of this profile counts against --timeout too.
    with state.profile_lock(profile.name, timeout=timeout):
        master = master_for(profile)
        record = state.load(profile.name)
        if record is not None:
            if is_up(record) and _server_answers(record):
                if isinstance(local_port, int) and local_port != record.local_port:
                    raise JupytunnelError(
                        f"{profile.name} is already connected on port {record.local_port}; "
                        f"disconnect it first to use port {local_port}"
                    )
                return Connected(record, reused=True, started_server=False, job=job_info(record))
            # Dead, stale, or the server behind it is gone (`server stop`): start afresh.
            teardown(record, master)
            state.remove(profile.name)
        elif master.control_path.exists() and not prelaunch.pending(profile.name):
            teardown(None, master)  # a socket without a record: ours, but orphaned (not the early ssh's)
        return _connect_new(profile, master, local_port, deadline, start_server=start_server, tick=tick, say=say)


class DryRunEndedError(JupytunnelError):
    """A dry run reached a step whose course depends on an answer it did not get (what the
    discovery found, what a start printed): what it printed so far is all it can show."""


def _server_answers(record: TunnelRecord) -> bool:
    """One request through the live tunnel (a few ms): is Jupyter still behind it? (A read
    of what is there: it is made in a dry run too.)"""
    from jupytunnel import httpcheck, runner

    if runner.dry_run():
        runner.note(f"GET http://{LOOPBACK}:{record.local_port}{record.base_url}api/status through the live tunnel")
    token = record.url.partition("?token=")[2]
    return httpcheck.status_ok(record.local_port, record.base_url, token, timeout=TUNNEL_REQUEST_TIMEOUT)


def _verified_master(master: Master) -> tuple[int, float]:
    """The PID of the master we just started, proven by psutil (uid, control path)."""
    from jupytunnel import runner

    if runner.dry_run():  # no master, no PID: the check is said, not made
        runner.note(
            "the master's PID, asked on its control socket (what ssh -O check asks), "
            "proven ours by its start time and command line"
        )
        return 0, 0.0
    pid = master.pid() or master.check_pid_with_ssh()
    created = procs.create_time(pid) if pid else None
    if pid is None or created is None or not procs.is_our_master(pid, created, master.ctl):
        raise JupytunnelError(f"ssh to {master.profile.host} started but its master cannot be found")
    return pid, created


def _no_server(profile: Profile) -> JupytunnelError:
    from jupytunnel.remote import launchers

    if launchers.for_profile(profile) is None:
        from jupytunnel.remote.server import not_startable

        return not_startable(profile)
    where = f"port {profile.remote_port}" if profile.transport == "tcp" else "its socket"
    if profile.remote_port == "auto" and profile.transport == "tcp":
        where = "no port remembered (remote_port = auto)"
    return JupytunnelError(
        f"no Jupyter server for profile {profile.name!r} on {profile.host} ({where}); "
        f"start one with: jupytunnel server start {profile.name}"
    )


# --- connect as a transaction --------------------------------------------------------------
# ``_connect_new`` runs three steps, each registering its undo on one ExitStack as soon as
# there is something to undo: the master (ended by verified PID), the server this connect
# started (stopped; a Slurm job cancelled), the record (removed). Any exception on the way
# (an error, a time-out, Ctrl-C, SIGTERM: see ``_sigterm_raises``) unwinds them in reverse;
# on success ``pop_all`` keeps everything. A new step is one more callback.


class _Opened(NamedTuple):
    """Step 1's result: the master, up, with its first forward (if the far end was known)."""

    first: runner.Result  # its first session's output: the discovery, unless a server was remembered
    port: int
    forward: str | None
    record: TunnelRecord  # the record so far: the master's PID, no server yet
    hinted: bool = False  # a server was expected behind the forward (``_server_expected``)


class _CloseMaster:
    """The master's undo: end it by its recorded PID once known, else found by its socket."""

    def __init__(self, master: Master) -> None:
        self.master = master
        self.record: TunnelRecord | None = None

    def __call__(self) -> None:
        teardown(self.record, self.master)


class _Served(NamedTuple):
    """Step 2's result: the server and the local port forwarded to it."""

    server: ServerInfo
    port: int
    started: bool  # this connect started it
    ready: bool  # it answered already (the remembered server's first request)


def _connect_new(
    profile: Profile,
    master: Master,
    local_port: LocalPort | None,
    deadline: float,
    *,
    start_server: bool,
    tick: Callable[..., None],
    say: Callable[[str], None],
) -> Connected:
    from jupytunnel import remote
    from jupytunnel.remote import places

    port = choose_port(profile, local_port)
    known = _remembered(profile)
    # A server met before over a route only we can reach (our private socket, a job's node)
    # is tried first, with its token, as the hand-made recipe does: the first request through
    # the tunnel proves it (or not). Otherwise the master's first session reads the runtime
    # files: no second ssh, no second round trip.
    command = None if known else remote.discovery_script(places.discovery_extra(profile))
    auto = (local_port if local_port is not None else profile.local_port) == "auto"
    with _sigterm_raises(), contextlib.ExitStack() as undo:
        opened = _open_step(undo, profile, master, port, known, command, deadline, auto=auto)
        served = _server_step(
            undo, profile, master, opened, known, deadline, discovered=command is not None,
            start_server=start_server, tick=tick, say=say, auto=auto,
        )  # fmt: skip
        record = _publish_step(undo, profile, opened.record, served, deadline)
        undo.pop_all()  # done: nothing is undone
    _keep_plan(profile, opened, master, capture=command is not None)
    return Connected(record, reused=False, started_server=served.started, job=job_info(record))


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM (a service manager, ``timeout``, a closed session) unwinds the transaction as
    Ctrl-C does, instead of leaving a master and a half-started server behind."""
    import signal

    def interrupt(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (an embedding program): its own handling applies
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _keep_plan(profile: Profile, opened: _Opened, master: Master, *, capture: bool) -> None:
    """What the next connect may start before its imports (see ``prelaunch``): the master's
    argv and what it was built from. Not for a job's server (its forward waits for the job)."""
    from jupytunnel import paths, prelaunch, profiles, runner
    from jupytunnel.remote import places

    if runner.dry_run() or places.place_of(profile).jobs:
        return
    inputs = [profiles.profile_path(profile.name), paths.defaults_file(), state.server_path(profile.name)]
    cfg = master.ssh.config_file
    prelaunch.save(
        profile.name,
        argv=opened.first.argv,
        control_path=master.ctl,
        local_port=opened.port if opened.forward is not None else None,
        capture=capture,
        inputs=[*map(str, inputs), *([cfg] if cfg else [])],
    )


def _open_step(
    undo: contextlib.ExitStack,
    profile: Profile,
    master: Master,
    port: int,
    known: ServerInfo | None,
    command: str | None,
    deadline: float,
    *,
    auto: bool,
) -> _Opened:
    """Step 1: start the master (its first session runs ``command``) and prove its PID.
    Undo: end it; registered before it starts, so a master cut off mid-handshake goes too."""
    from jupytunnel import runner

    close = _CloseMaster(master)
    undo.callback(close)
    if command is not None and runner.dry_run():
        runner.note("a dry run takes the master's first session (the discovery) to find no server")
    hinted = command is not None and _server_expected(profile)
    first, port, forward = _open_master(profile, master, port, known, command, deadline, auto=auto, hinted=hinted)
    pid, created = _verified_master(master)
    close.record = TunnelRecord(
        profile=profile.name, pid=pid, create_time=created, control_path=master.ctl,
        local_port=port, remote="", host=profile.host, started_at=time.time(), url="",
    )  # fmt: skip
    return _Opened(first, port, forward, close.record, hinted=hinted)


def _server_step(
    undo: contextlib.ExitStack,
    profile: Profile,
    master: Master,
    opened: _Opened,
    known: ServerInfo | None,
    deadline: float,
    *,
    discovered: bool,
    start_server: bool,
    tick: Callable[..., None],
    say: Callable[[str], None],
    auto: bool,
) -> _Served:
    """Step 2: the server (the remembered one if it answers, else found, else started) and
    the forward to it. Undo: stop the server this connect started (a job: cancelled)."""
    from jupytunnel import remote
    from jupytunnel.remote import server

    port, forward = opened.port, opened.forward
    # The token goes only to our own forward: the listener on the port must be our master.
    if known is not None and _known_answers(known, port, opened.record.pid, deadline):
        return _Served(known, port, started=False, ready=True)
    # Discovery came with the master's first session, or (the remembered server did not
    # answer) is done now, through the master.
    found = server.find(
        master,
        discovered=remote.parse_discovery(opened.first.stdout) if discovered else None,
        timeout=_left(deadline, server.ROUND_TRIP_TIMEOUT),
        cli_timeout=_left(deadline),
    )
    srv = found.server
    if srv is None and opened.hinted:
        state.forget_server(profile.name)  # gone: the next connect pokes no dead port
    if found.ended is not None and start_server:
        say(f"{profile.name}: {found.ended}; submitting a new one")
    started = srv is None
    if srv is None:
        if not start_server:
            raise _dry_end_or(_no_server(profile))
        try:
            srv = server.start(master, home=found.home, timeout=_left(deadline), tick=tick, found=found)
        except JupytunnelError as exc:
            raise _dry_end_or(exc) from None
        undo.callback(_stop_started, master, srv)
    if forward is not None and forward != _forward_to(profile, port, srv, found.home):
        master.cancel_forward(forward)  # the remembered server's, which did not answer
        forward = None
    if forward is None:
        # Added to the live master: its exit (step 1's undo) takes it away with it.
        port = _add_forward(profile, master, port, srv, found.home, auto=auto)
    return _Served(srv, port, started=started, ready=False)


def _dry_end_or(exc: JupytunnelError) -> JupytunnelError:
    """``exc``, or in a dry run the end of it: a dry run takes the discovery to find no
    server, and what a start prints (the server it started) is an answer it does not get;
    so it stops here and says why."""
    from jupytunnel import runner

    if not runner.dry_run():
        return exc
    runner.note(f"the dry run ends here (it takes the discovery to find no server, and gets no start's answer): {exc}")
    return DryRunEndedError(str(exc))


def _stop_started(master: Master, srv: ServerInfo) -> None:
    """Step 2's undo: a server this connect started is stopped (best effort: the rest of the
    undo runs whatever happens here)."""
    from jupytunnel.remote import server

    with contextlib.suppress(JupytunnelError, KeyboardInterrupt):
        server.stop(master, srv)


def _publish_step(
    undo: contextlib.ExitStack, profile: Profile, record: TunnelRecord, served: _Served, deadline: float
) -> TunnelRecord:
    """Step 3: the record, saved as soon as it names the server (``status`` and ``disconnect``
    see the tunnel while Jupyter gets ready), then settled. Undo: remove it."""
    srv = served.server
    classic = profile.is_classic_notebook or srv.classic
    if srv.ui is None:  # the page this server served last time: the record is then final
        srv = srv._replace(ui=_page_known(profile, srv))
    record = record._replace(
        local_port=served.port,
        url=local_url(served.port, srv, classic=classic),
        remote=f"{profile.host}:{srv.endpoint}",
        server_pid=srv.pid,
        base_url=srv.base_url,
        job=srv.job,
        node=srv.node,
    )
    undo.callback(state.remove, profile.name)  # before the write: an interrupted write is undone too
    state.save(record)
    return _settle(profile, record, srv, ready=served.ready, deadline=deadline)


def _known_answers(known: ServerInfo, port: int, pid: int, deadline: float) -> bool:
    """The remembered server answers our one request (with its token) through our master."""
    from jupytunnel import httpcheck, runner

    if runner.dry_run():
        runner.note(
            f"GET http://{LOOPBACK}:{port}{known.base_url}api/status with the remembered server's token, if our "
            "master holds the port; a dry run takes it to answer 200 (else the discovery runs through the master)"
        )
        return True
    if not procs.our_listeners([(pid, port)])[0]:
        return False
    return httpcheck.answered_ok(httpcheck.send(port, known.base_url, known.token, timeout=min(10.0, _left(deadline))))


_PORT_TRIES = 5


def _bind_failed(message: str) -> bool:
    return "Address already in use" in message or "cannot listen to port" in message


def _open_master(
    profile: Profile,
    master: Master,
    port: int,
    known: ServerInfo | None,
    command: str | None,
    deadline: float,
    *,
    auto: bool,
    hinted: bool = False,
) -> tuple[runner.Result, int, str | None]:
    """Start the master with its first forward; an automatic local port that another
    process took meanwhile (ssh exits: ExitOnForwardFailure) is chosen again. ``hinted``:
    a server is expected behind the forward, so the first session's nudges may poke it."""
    from jupytunnel.ssh.master import finish_master, start_master

    for attempt in range(_PORT_TRIES):
        forward = _first_forward(profile, port, known)
        handshake = start_master(master, forward=forward, command=command)
        # What the rest of connect needs is imported while ssh shakes hands (~200 ms idle).
        import psutil  # noqa: F401 - warms the import that the PID check needs

        from jupytunnel import httpcheck  # noqa: F401 - the same
        from jupytunnel.remote import server  # noqa: F401 - the same

        poke = port if forward is not None and hinted else None
        try:
            return finish_master(master, handshake, timeout=_left(deadline), poke_port=poke), port, forward
        except JupytunnelError as exc:
            if not (auto and forward and _bind_failed(str(exc))) or attempt == _PORT_TRIES - 1:
                raise
        finally:
            handshake.kill()  # a no-op once ssh is done; else it was cut short
        master.remove_stale_socket()
        port = procs.any_free_port()
    raise AssertionError  # pragma: no cover - the loop returns or raises


# ssh options that would let the first forward's local port be someone else's: with them, no poke.
_FORWARD_OPTIONS = frozenset({"exitonforwardfailure", "clearallforwardings"})


def _server_expected(profile: Profile) -> bool:
    """A server answered this profile at the port it forwards to now, over the route it
    takes now, at the last connect: a hint for ``ssh.master.Nudge``, never a proof (its
    pokes carry no byte)."""
    from jupytunnel import runner
    from jupytunnel.remote import host

    if runner.dry_run() or profile.transport != "tcp":
        return False  # a socket's route runs no first session
    if any(opt.lower() in _FORWARD_OPTIONS for opt in profile.ssh_options):
        return False
    known = state.load_server(profile.name)
    if known is None or known.server.host is not None or known.route != host.route(profile, jobs=False):
        return False  # never reached, a job's node (not forwarded yet), or another route
    # The route holds the profile's port ("auto": the one remembered, this server's).
    return known.server.port is not None and profile.remote_port in ("auto", known.server.port)


def _add_forward(profile: Profile, master: Master, port: int, srv: ServerInfo, home: str, *, auto: bool) -> int:
    """Add the forward to the live master; an automatic local port taken meanwhile by
    another connect is chosen again. The local port it got."""
    for attempt in range(_PORT_TRIES):
        try:
            master.forward(_forward_to(profile, port, srv, home))
        except JupytunnelError:  # noqa: PERF203 - at most a few tries, each an ssh round trip
            # ssh -O forward says only "Port forwarding failed": someone holding the port tells.
            if not (auto and not procs.port_free(port)) or attempt == _PORT_TRIES - 1:
                raise
            port = procs.any_free_port()
        else:
            return port
    raise AssertionError  # pragma: no cover - the loop returns or raises


def _settle(profile: Profile, record: TunnelRecord, srv: ServerInfo, *, ready: bool, deadline: float) -> TunnelRecord:
    """Wait until the server answers (unless it did already); remember it; mark a server
    that asks for a password."""
    from jupytunnel import runner
    from jupytunnel.remote import server

    if not ready and runner.dry_run():
        runner.note(
            f"GET http://{LOOPBACK}:{record.local_port}{srv.base_url}api/status until it answers 200 (within "
            "--timeout); then which page it serves (lab, tree), and whether it asks for a password"
        )
    elif not ready:
        _wait_ready(profile, record.local_port, srv, deadline)
        if not srv.token and not srv.password and _asks_password(record.local_port, srv):
            srv = srv._replace(password=True)
        if srv.ui is None:
            srv = srv._replace(ui=_served_page(record.local_port, srv, classic=profile.is_classic_notebook))
    if not ready and state.load_server(profile.name) != state.RememberedServer(srv, server.route(profile)):
        server.remember(profile, srv)  # only when it changed: each write is synced to disk
    fresh = record._replace(
        password=srv.password,
        url=local_url(record.local_port, srv, classic=profile.is_classic_notebook or srv.classic),
    )
    if fresh != record:
        state.save(fresh)
    return fresh


def _page_known(profile: Profile, srv: ServerInfo) -> str | None:
    """The page of this very server (same PID, same route), learned on an earlier connect."""
    from jupytunnel.remote import server

    known = state.load_server(profile.name)
    if known is None or known.server.pid != srv.pid or known.route != server.route(profile):
        return None
    return known.server.ui


def _served_page(port: int, srv: ServerInfo, *, classic: bool) -> str:
    """``lab`` (JupyterLab), ``tree`` (Notebook 7, the classic notebook) or ``""`` (a bare
    ``jupyter server``, whose ``/lab`` is a 404): the first the server answers for."""
    from jupytunnel import httpcheck

    for page in ("tree", "lab") if classic or srv.classic else ("lab", "tree"):
        answer = httpcheck.code(port, srv.base_url, srv.token, path=page, timeout=PAGE_PROBE_TIMEOUT)
        if answer is not None and (answer == 200 or 300 <= answer < 400):  # noqa: PLR2004
            return page
    return ""


def _wait_ready(profile: Profile, port: int, srv: ServerInfo, deadline: float) -> None:
    from jupytunnel import httpcheck

    try:
        httpcheck.wait_status(port, srv.base_url, srv.token, deadline=deadline)
    except httpcheck.TokenRefusedError as exc:
        raise JupytunnelError(
            f"{exc} that jupytunnel read for the server on {profile.host} ({srv.where}): its token "
            f"changed after it wrote that file, or another server answers there; restart it "
            f"(jupytunnel server stop {profile.name}) or check its token settings"
        ) from None


def _asks_password(port: int, srv: ServerInfo) -> bool:
    """A server without a token that still refuses ``/api/status`` wants its password
    (jupyter_server 2 writes ``"password": false`` when the password is set the new way)."""
    from jupytunnel import httpcheck

    return httpcheck.code(port, srv.base_url, "", path="api/status", timeout=PAGE_PROBE_TIMEOUT) in (401, 403)


def _first_forward(profile: Profile, port: int, known: ServerInfo | None) -> str | None:
    """The ``-L`` the master starts with; None when the far end is not known yet (a socket
    path before the remote home is known, a Slurm job's node before the job runs)."""
    from jupytunnel.remote.places import place_of

    return place_of(profile).first_forward(profile, port, known)


def _forward_to(profile: Profile, port: int, srv: ServerInfo, home: str) -> str:
    """The ``-L`` that reaches ``srv``: its port, its socket, or a compute node's address."""
    from jupytunnel.remote import server
    from jupytunnel.ssh import args as sshargs

    if srv.host is not None and srv.port is not None:
        return sshargs.forward_spec(local_port=port, remote_port=srv.port, remote_host=srv.host)
    if profile.transport == "tcp":
        return sshargs.forward_spec(local_port=port, remote_port=srv.port)
    sock = server.socket_for(profile, home)
    assert sock is not None
    return sshargs.forward_spec(local_port=port, remote_socket=sock)


def _remembered(profile: Profile) -> ServerInfo | None:
    """The server this profile reached last, if it was reached over the route the profile
    takes now, and that route ends where only we can listen (our private socket, a job's
    node). A TCP port on a shared host may have been taken over since by another user: the
    master's first session reads the runtime files instead (as fast, no token sent)."""
    from jupytunnel.remote.places import place_of

    if not place_of(profile).private_route(profile):
        return None
    known = state.load_server(profile.name)
    from jupytunnel.remote import server

    if known is None or known.route != server.route(profile):
        return None
    return known.server if _matches(profile, known.server) else None


def _matches(profile: Profile, known: ServerInfo) -> bool:
    """A remembered server fits the profile as it is now (its port or its socket, its job)."""
    from jupytunnel.remote.places import place_of

    return place_of(profile).matches(profile, known)


def _left(deadline: float, cap: float = 3600.0) -> float:
    """What is left of the caller's --timeout (at least 1 s, at most ``cap``)."""
    return max(1.0, min(cap, deadline - time.monotonic()))


def disconnect(
    name: str, *, stop_server: bool = False, profile: Profile | None = None, timeout: float = DEFAULT_TIMEOUT
) -> str:
    """Close the tunnel of ``name``; idempotent. Returns a line for the user.

    ``stop_server``: stop the profile's server too, through the tunnel's master or, with no
    tunnel, a short master of its own. Bounded by ``timeout``; the local tunnel is closed
    even when the server could not be reached (a dead link), and then the error says so.
    """
    from jupytunnel import browser
    from jupytunnel.ssh import resolve
    from jupytunnel.ssh.master import Master, control_path

    deadline = time.monotonic() + timeout
    with state.profile_lock(name, timeout=timeout):
        record = state.load(name)
        master = Master(profile or _stub(name, record), control_path(name), resolve())
        live = master.control_path.exists() and master.pid() is not None
        if record is None and not live and not stop_server:
            return f"{name}: no tunnel to close"
        problem: JupytunnelError | None = None
        stopped = None
        if stop_server:
            if profile is None:
                raise JupytunnelError(f"--stop-server needs the profile {name!r}")
            try:
                stopped = _stop_server_via(master, profile, live=live, timeout=_left(deadline, timeout))
            except JupytunnelError as exc:
                problem = exc
        tunnel = record is not None or live
        if tunnel:
            teardown(record, master)
        state.remove(name)
        with contextlib.suppress(FileNotFoundError):
            browser.redirect_file(name).unlink()
        closed = "disconnected" if tunnel else "no tunnel to close"
        if problem is not None:
            raise JupytunnelError(f"{name}: {closed}, but the server was not stopped: {problem}")
        if not stop_server:
            return f"{name}: {closed}"
        return f"{name}: {closed}" + ("; server stopped" if stopped else "; no server running")


def _stub(name: str, record: TunnelRecord | None) -> Profile:
    """Enough of a profile to address a master by its socket (the profile may be gone)."""
    from jupytunnel.profiles import Profile

    return Profile(name=name, host=record.host if record else "localhost")


def _stop_server_via(master: Master, profile: Profile, *, live: bool, timeout: float) -> bool:
    """Stop the profile's server (or cancel its job); whether there was one."""
    from jupytunnel import runner
    from jupytunnel.errors import CommandError
    from jupytunnel.ssh.master import temporary_master

    try:
        if live:
            stopped = _stop_through(master._replace(profile=profile), timeout)
        else:
            with temporary_master(profile, timeout=timeout) as tmp:
                stopped = _stop_through(tmp, timeout)
    except CommandError as exc:
        raise JupytunnelError(f"{profile.host} did not answer within {seconds(timeout)} s ({exc})") from None
    if runner.dry_run() and not stopped:
        runner.note("a dry run takes the discovery to find no server; a server found there is stopped next")
    return stopped


def _stop_through(master: Master, timeout: float) -> bool:
    """Stop the profile's server (a batch profile: its job, running or still pending)."""
    from jupytunnel.remote import server

    return server.stop_profiles(master, timeout=timeout).anything


def disconnect_all() -> list[str]:
    """Every recorded tunnel, and every master found by its socket without a record."""
    from pathlib import Path

    from jupytunnel.ssh import resolve
    from jupytunnel.ssh.master import Master

    records = state.load_all()
    lines = [disconnect(rec.profile) for rec in records]
    for orphan in orphans({rec.control_path for rec in records}):
        if orphan.profile != "?":
            lines.append(disconnect(orphan.profile))
            continue
        teardown(orphan, Master(_stub("orphan", None), Path(orphan.control_path), resolve()))
        lines.append(f"closed a master without a record (pid {orphan.pid})")
    return lines


def job_info(record: TunnelRecord) -> dict[str, str | None] | None:
    """The Slurm job behind a tunnel, asked through its master (one round trip); None for a
    server that is not a job. State and time left are None when the master cannot ask."""
    if record.job is None:
        return None
    if not record.job.replace("_", "").isdigit():
        return None  # a damaged record: nothing of it goes into a remote command
    from pathlib import Path

    from jupytunnel import remote
    from jupytunnel.errors import CommandError
    from jupytunnel.remote import slurm
    from jupytunnel.ssh import resolve
    from jupytunnel.ssh.master import Master

    unknown: dict[str, str | None] = {"id": record.job, "node": record.node, "state": None, "time_left": None}
    master = Master(_stub(record.profile, record), Path(record.control_path), resolve())
    try:
        result = master.run(slurm.job_status_script(record.job), timeout=MASTER_ROUND_TRIP)
    except CommandError:
        return unknown
    job = slurm.parse_job(remote.parse_discovery(result.stdout).markers)
    if not result.ok or job is None:
        return unknown
    return job._replace(node=job.node or record.node or "").to_dict()


class Status(NamedTuple):
    """One tunnel as ``status`` sees it (``cli.render.status_dict`` prints it)."""

    record: TunnelRecord
    state: str
    job: dict[str, str | None] | None = None


def status(name: str | None = None) -> list[Status]:
    records = state.load_all() if name is None else [r for r in [state.load(name)] if r]
    out = []
    if name is None:
        # A connect killed at the wrong moment leaves a master with no record: shown, so that
        # `disconnect NAME` or `disconnect --all` can close it.
        out += [Status(rec, "orphan") for rec in orphans({r.control_path for r in records})]
    for rec, checked in check(records):
        # Stale: the master holds but Jupyter does not answer; the job says why (it ended).
        job = job_info(rec) if checked in ("up", "stale") else None
        # A job that ended: the tunnel holds, but the job (and its Jupyter) is gone.
        out.append(Status(rec, "stale" if job is not None and job["state"] == "GONE" else checked, job))
    return out
