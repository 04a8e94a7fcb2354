"""The remote Jupyter server: find it, start it, wait for it, stop it. All through a master."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable

from jupytunnel import remote
from jupytunnel.errors import CommandError, JupytunnelError, seconds
from jupytunnel.profiles import Profile
from jupytunnel.remote import Discovery, ServerInfo, launchers
from jupytunnel.ssh.master import SSH_FAILED, Master, ssh_message

# One remote script through the master: login shell, setup lines (module loads can take
# seconds on a busy login node) and the script itself.
ROUND_TRIP_TIMEOUT = 20.0
POLL_INTERVAL = 0.1  # between polls for the runtime file of a server that is starting
# Between ``jupyter server list`` fallbacks while waiting: each one starts a Python on the remote.
CLI_POLL_INTERVAL = 2.0
# ``jupyter server list`` starts a Python and imports jupyter_server: many seconds on a
# loaded login node or a network file system.
CLI_LIST_TIMEOUT = 60.0
# Every remote call gets at least this long, even with the deadline passed, so that what it
# reports (a setup line's error) still arrives.
MIN_CALL_TIME = 1.0
# The abort script waits up to 10 s for the half-started server (remote.stop_script's loop),
# plus the round trip.
ABORT_TIMEOUT = 30.0
# ``server stop``: jupyter's own stop, then up to 10 s of signals, through setup lines.
STOP_TIMEOUT = 60.0
JUPYTER_DEFAULT_PORT = 8888  # where jupyter server listens when told nothing


def discover(
    master: Master, *, extra: str = "", runtime_dir: str | None = None, timeout: float = ROUND_TRIP_TIMEOUT
) -> Discovery:
    """Read the remote runtime info files through the master (one round trip)."""
    result = master.run(remote.discovery_script(extra, runtime_dir=runtime_dir), timeout=timeout)
    if result.returncode == SSH_FAILED:
        raise JupytunnelError(f"ssh to {master.profile.host} failed: {ssh_message(result.stderr)}")
    found = remote.parse_discovery(result.stdout)
    remote.refuse_csh(found.markers, master.profile)
    return found


def list_with_cli(master: Master, *, timeout: float = CLI_LIST_TIMEOUT) -> list[ServerInfo]:
    """Fallback: ``jupyter server list --json`` in the profile's setup environment (slow).

    Only setup lines can make that environment look elsewhere than the discovery script
    does (jupyter_core derives the runtime dir from env vars the script reads too), so
    without them the fallback would cost a Jupyter start for nothing.
    """
    if not master.profile.setup:
        return []
    try:
        result = master.run(remote.server_list_script(master.profile), timeout=timeout)
    except CommandError:
        return []
    return remote.parse_server_list(result.stdout)


def is_profiles(profile: Profile, server: ServerInfo, home: str) -> bool:
    if profile.launcher == "slurm":
        return server.job is not None
    if profile.transport == "socket":
        return server.sock is not None and server.sock == remote.socket_path(home, profile.name)
    return server.sock is None and server.port is not None and server.port == remote_port(profile)


def route(profile: Profile) -> str:
    """Everything that decides where a remembered server's token would travel: the ssh
    destination and its hops, and the remote port (or "auto") or socket."""
    import json

    far = profile.remote_port if profile.transport == "tcp" else f"sock:{profile.name}"
    hops = [profile.host, profile.user, profile.port, list(profile.jump), profile.proxy_command, far]
    return json.dumps([*hops, profile.launcher == "slurm"])


def remember(profile: Profile, srv: ServerInfo) -> None:
    from jupytunnel import state

    state.save_server(profile.name, state.RememberedServer(srv, route(profile)))


def remote_port(profile: Profile) -> int | None:
    """The profile's remote port: fixed, or for ``auto`` the one its server took last time
    (remembered with the route it was reached by); None when not known yet."""
    if isinstance(profile.remote_port, int):
        return profile.remote_port
    from jupytunnel import state

    known = state.load_server(profile.name)
    return known.server.port if known is not None and known.route == route(profile) else None


def pick(profile: Profile, servers: list[ServerInfo], home: str) -> ServerInfo | None:
    for server in servers:
        if is_profiles(profile, server, home):
            return server
    return None


@dataclasses.dataclass(frozen=True)
class Found:
    server: ServerInfo | None
    home: str
    all_servers: list[ServerInfo]
    ended: str | None = None  # a Slurm profile's recorded job that has ended: how it ended
    queued: object = None  # a Slurm profile's job still queued or starting (a jobs.Job)
    asked_queue: bool = False  # whether the queue was asked at all (``queued`` is then the answer)


def find(
    master: Master,
    *,
    discovered: Discovery | None = None,
    timeout: float = ROUND_TRIP_TIMEOUT,
    cli_timeout: float = CLI_LIST_TIMEOUT,
) -> Found:
    """The profile's server: from the runtime files (``discovered``, or read now), else from
    the Jupyter CLI in the setup lines' environment. A Slurm profile's server is its job's."""
    profile = master.profile
    if discovered is not None:
        found = discovered
        remote.refuse_csh(found.markers, profile)
    else:
        found = discover(master, extra=remote.discovery_extra(profile), timeout=timeout)
    if profile.launcher == "slurm":
        from jupytunnel.remote import jobs

        # Never the Jupyter CLI here: on a login node it deletes the runtime files of
        # servers on compute nodes.
        job, job_server = jobs.server_of(found)
        ended = jobs.how_it_ended(job, found.markers) if job is not None and job.gone else None
        queued = job if job is not None and not job.gone and job_server is None else None
        servers = found.servers + ([job_server] if job_server else [])
        return Found(job_server, found.home, servers, ended, queued, asked_queue=True)
    server = pick(master.profile, found.servers, found.home)
    servers = found.servers
    if server is None:
        listed = list_with_cli(master, timeout=cli_timeout)
        servers = servers + [s for s in listed if s.pid not in {x.pid for x in servers}]
        server = pick(master.profile, listed, found.home)
    return Found(server, found.home, servers)


def socket_for(profile: Profile, home: str) -> str | None:
    if profile.transport != "socket":
        return None
    if not home:
        raise JupytunnelError("could not learn the remote home folder (needed for the socket path)")
    return remote.socket_path(home, profile.name)


def _marker(markers: list[str], kind: str) -> str | None:
    for m in markers:
        k, _, value = m.partition(" ")
        if k == kind:
            return value
    return None


def _log_tail(markers: list[str]) -> str:
    lines = [m[4:] for m in markers if m.startswith("log ")]
    return " | ".join(ln.strip() for ln in lines if ln.strip())[-600:]


def _port_taken(profile: Profile, markers: list[str]) -> str | None:
    """Jupyter could not bind the profile's fixed port: say so in one line, not a log excerpt."""
    log = " ".join(m for m in markers if m.startswith("log "))
    if profile.transport != "tcp" or not ("already in use" in log or "is not available" in log):
        return None
    return (
        f"remote port {profile.remote_port} on {profile.host} is already in use (another server, maybe "
        f'another user\'s); set remote_port = "auto" in profile {profile.name!r} to pick a free one, or '
        'transport = "socket"'
    )


def _error_in_log(markers: list[str]) -> str | None:
    """The reason our own inner script wrote into the log (tmux/screen launchers)."""
    prefix = f"{remote.MARK} error "
    for m in markers:
        line = m[4:].strip() if m.startswith("log ") else ""
        if line.startswith(prefix):
            return line[len(prefix) :]
    return None


def start(
    master: Master,
    *,
    home: str,
    timeout: float,
    tick: Callable[..., None] = lambda *_: None,
    found: Found | None = None,
) -> ServerInfo:
    """Start the profile's server with its launcher and wait for its runtime file.

    On any failure nothing is left running on the remote. ``found``: what the discovery just
    saw (a Slurm job already queued is then known without asking again).
    """
    profile = master.profile
    if profile.launcher == "slurm":
        from jupytunnel.remote import jobs

        if found is not None and found.asked_queue:
            from jupytunnel.remote.slurm import Job

            queued = found.queued if isinstance(found.queued, Job) else None
            return jobs.start(master, timeout=timeout, tick=tick, queued=queued, asked=True)
        return jobs.start(master, timeout=timeout, tick=tick)
    launcher = launchers.for_profile(profile)
    if launcher.name == "none":
        raise not_startable(profile)
    deadline = time.monotonic() + timeout
    try:
        started, runtime_dir = _launch(master, launcher, home=home, timeout=timeout)
    except _RefusedError as exc:
        # Every error the script reports comes before it launches anything (and a tmux
        # session of that name may be the user's own): nothing to undo.
        raise JupytunnelError(str(exc)) from None
    except BaseException:
        _abort(master, launcher)
        raise
    try:
        remaining = max(MIN_CALL_TIME, deadline - time.monotonic())
        ready = wait_ready(master, launcher, started, timeout=remaining, tick=tick, runtime_dir=runtime_dir)
    except BaseException:
        _abort(master, launcher)
        raise
    if profile.remote_port == "auto":
        remember(profile, ready)  # its port is how this profile finds it again
    return ready


class _RefusedError(JupytunnelError):
    """The start script refused before launching anything."""


def _launch(master: Master, launcher: launchers.Launcher, *, home: str, timeout: float) -> tuple[str, str | None]:
    """Run the start script; what it started, and the runtime dir the setup lines chose."""
    import secrets

    profile = master.profile
    token = secrets.token_hex(24)
    script = launcher.start_script(profile, sock=socket_for(profile, home))
    result = master.run(script, timeout=timeout, stdin_text=token + "\n")
    parsed = remote.parse_discovery(result.stdout)
    error = _marker(parsed.markers, "error")
    if error:
        raise _RefusedError(f"cannot start Jupyter on {profile.host}: {error}")
    started = _marker(parsed.markers, "started")
    if started is None:
        raise JupytunnelError(f"cannot start Jupyter on {profile.host}: {ssh_message(result.stderr or result.stdout)}")
    return started, _marker(parsed.markers, "runtime")


def _abort(master: Master, launcher: launchers.Launcher) -> None:
    """A half-started server is worse than none: end it, whatever went wrong, even when the
    start script itself was cut off (it leaves a pid file or a named session)."""
    with contextlib.suppress(CommandError, KeyboardInterrupt):
        master.run(launcher.abort_script(master.profile), timeout=ABORT_TIMEOUT)


def not_startable(profile: Profile) -> JupytunnelError:
    """``launcher = "none"``: we never start it; say how to."""
    port = remote_port(profile) or JUPYTER_DEFAULT_PORT
    return JupytunnelError(
        f"no Jupyter server for profile {profile.name!r} on {profile.host}, and its launcher is 'none': "
        f"start it there (for example: {profile.jupyter} --no-browser --port={port}), "
        "then connect again"
    )


def wait_ready(
    master: Master,
    launcher: launchers.Launcher,
    started: str,
    *,
    timeout: float,
    tick: Callable[..., None],
    runtime_dir: str | None = None,
) -> ServerInfo:
    profile = master.profile
    deadline = time.monotonic() + timeout
    probe = launcher.probe_script(profile, started)
    # Where setup lines may have moved the runtime dir out of sight and we could not learn
    # where (tmux/screen run them inside the session), ask the Jupyter CLI now and then.
    cli_every = CLI_POLL_INTERVAL if profile.setup and runtime_dir is None else None
    next_cli = time.monotonic() + (cli_every or 0)
    while True:
        left = max(MIN_CALL_TIME, deadline - time.monotonic())
        found = discover(master, extra=probe, runtime_dir=runtime_dir, timeout=min(ROUND_TRIP_TIMEOUT, left))
        chosen = _marker(found.markers, "port")  # remote_port = "auto": what the start chose
        if profile.remote_port == "auto" and chosen and chosen.isdigit():
            profile = profile._replace(remote_port=int(chosen))
        server = pick(profile, found.servers, found.home)
        if server is None and cli_every is not None and time.monotonic() >= next_cli:
            server = pick(profile, list_with_cli(master, timeout=left), found.home)
            next_cli = time.monotonic() + cli_every
        if server is not None:
            return server
        if "launcher dead" in found.markers:
            taken = _port_taken(profile, found.markers)
            if taken:
                raise JupytunnelError(taken)
            tail = _log_tail(found.markers)
            reason = _error_in_log(found.markers) or "Jupyter exited during start-up"
            raise JupytunnelError(
                f"Jupyter failed to start on {profile.host}: {reason}" + (f"; remote log: {tail}" if tail else "")
            )
        if time.monotonic() >= deadline:
            tail = _log_tail(found.markers) if found.markers else ""
            raise JupytunnelError(
                f"Jupyter did not become ready on {profile.host} within {seconds(timeout)} s"
                + (f"; remote log: {tail}" if tail else "")
                + "; see 'jupytunnel server logs "
                + profile.name
                + "'"
            )
        tick()
        time.sleep(POLL_INTERVAL)  # the next poll; readiness itself is the runtime file


def stop(master: Master, server: ServerInfo, *, timeout: float = STOP_TIMEOUT) -> None:
    profile = master.profile
    if profile.launcher == "slurm":
        stop_job(master)
        return
    launcher = launchers.for_profile(profile)
    script = remote.stop_script(profile, server, session=launcher.session(profile), multiplexer=launcher.name)
    result = master.run(script, timeout=timeout)
    from jupytunnel import state

    state.forget_server(profile.name)
    if f"{remote.MARK} stopped" not in result.stdout:
        raise JupytunnelError(f"could not stop the server on {profile.host}: {ssh_message(result.stderr)}")


def stop_job(master: Master) -> str | None:
    """Cancel a Slurm profile's job, running or still pending; the id, None if none."""
    from jupytunnel import state
    from jupytunnel.remote import jobs

    cancelled = jobs.cancel(master)
    state.forget_server(master.profile.name)
    return cancelled


def logs(master: Master, lines: int) -> str:
    if master.profile.launcher == "slurm":
        from jupytunnel.remote import jobs

        return jobs.logs(master, lines)
    result = master.run(remote.logs_script(master.profile.name, lines), timeout=ROUND_TRIP_TIMEOUT)
    if result.returncode == SSH_FAILED:
        raise JupytunnelError(f"ssh to {master.profile.host} failed: {ssh_message(result.stderr)}")
    if result.returncode == remote.NO_LOG:
        raise JupytunnelError(f"{master.profile.name}: no log yet")
    if result.returncode != 0:
        said = result.stderr.strip().splitlines()[-1:] or ["no message"]
        raise JupytunnelError(f"{master.profile.name}: reading the log failed (exit {result.returncode}): {said[0]}")
    return result.stdout


def follow_logs(master: Master, lines: int) -> int:
    """Stream the server's log through ``master`` until Ctrl-C; ssh's exit code."""
    from jupytunnel import runner

    return runner.stream(master.remote_argv(remote.follow_logs_script(master.profile.name, lines)))
