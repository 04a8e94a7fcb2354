"""The server on the ssh host itself: find it in the runtime files (or with the Jupyter CLI),
start it with a host launcher's scripts (nohup, tmux, screen), wait for it, stop it, read its
log. All through a master. The host's place (``places.OnHost``) and the host launchers are
this at work; ``server`` chooses between the host and a batch job by the profile's place.

What the route of a remembered server says (``route``) depends on whether the profile's place
runs jobs: a caller that knows the place passes ``jobs`` (everything here is the host's:
False), so that nothing here has to look the place up.

In a dry run (``runner.dry_run()``) the same code runs; each remote call says what to assume
of the output the next step depends on (``runner.Assume``), and nothing is written locally.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from jupytunnel import remote, runner
from jupytunnel.errors import CommandError, JupytunnelError, seconds
from jupytunnel.profiles import Profile
from jupytunnel.remote import MARK, Discovery, ServerInfo
from jupytunnel.remote.base import Found, Stopped
from jupytunnel.ssh.master import SSH_FAILED, Master, ssh_message

if TYPE_CHECKING:
    from jupytunnel.remote.base import ScriptLauncher

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
# What a dry run says for a PID it cannot know (the server's, what a start launched): a
# number, because the scripts that follow take one.
DRY_PID = 0


# The remote home in a dry run, where discovery has not run (a socket's path starts there):
# a placeholder of plain characters, so that the commands shown quote it as a real one.
DRY_HOME = "/REMOTE_HOME"


def assume_found(profile: Profile, *, running: bool, says: str, jobs: bool) -> runner.Assume | None:
    """A dry run's discovery output: the remote home, and the profile's server if ``running``.
    None outside a dry run (the placeholder home could make a long socket path fail).
    ``jobs``: whether the profile's place runs jobs (see ``route``)."""
    if not runner.dry_run():
        return None
    import json

    out = f"{MARK} home {DRY_HOME}\n"
    if profile.transport == "socket":
        says = f"{says} ({DRY_HOME} stands for the remote home)" if says else ""
    if running:
        sock = socket_for(profile, DRY_HOME)
        port = None if sock else remote_port(profile, jobs=jobs) or JUPYTER_DEFAULT_PORT
        info = {"pid": DRY_PID, "port": port or 0, "sock": sock or "", "base_url": "/", "token": "", "version": ""}
        out += f"{MARK} file jpserver-{DRY_PID}.json\n{json.dumps(info)}\n"
        if profile.remote_port == "auto" and port:
            out += f"{MARK} port {port}\n"
    return runner.Assume(stdout=out, says=says)


def discover(
    master: Master,
    *,
    extra: str = "",
    runtime_dir: str | None = None,
    timeout: float = ROUND_TRIP_TIMEOUT,
    assume: runner.Assume | None = None,
) -> Discovery:
    """Read the remote runtime info files through the master (one round trip)."""
    script = remote.discovery_script(extra, runtime_dir=runtime_dir)
    result = master.run(
        script, timeout=timeout, assume=assume or assume_found(master.profile, running=False, says="", jobs=False)
    )
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


def owns(profile: Profile, server: ServerInfo, home: str) -> bool:
    """Whether ``server`` (from discovery) is the profile's, on the host: on its socket, or
    on its port (not a socket's)."""
    if profile.transport == "socket":
        return server.sock is not None and server.sock == remote.socket_path(home, profile.name)
    return server.sock is None and server.port is not None and server.port == remote_port(profile, jobs=False)


def route(profile: Profile, *, jobs: bool) -> str:
    """Everything that decides where a remembered server's token would travel: the ssh
    destination and its hops, the remote port (or "auto") or socket, and whether the
    profile's place runs jobs (``jobs``: a job's node is another machine than the host)."""
    import json

    far = profile.remote_port if profile.transport == "tcp" else f"sock:{profile.name}"
    hops = [profile.host, profile.user, profile.port, list(profile.jump), profile.proxy_command, far]
    return json.dumps([*hops, jobs])


def remember(profile: Profile, srv: ServerInfo, *, jobs: bool) -> None:
    if runner.dry_run():
        runner.note(f"remember the server (its port and token) for {profile.name}'s next connect")
        return
    from jupytunnel import state

    state.save_server(profile.name, state.RememberedServer(srv, route(profile, jobs=jobs)))


def forget(profile: Profile) -> None:
    if runner.dry_run():
        runner.note(f"forget the server remembered for {profile.name}")
        return
    from jupytunnel import state

    state.forget_server(profile.name)


def remote_port(profile: Profile, *, jobs: bool) -> int | None:
    """The profile's remote port: fixed, or for ``auto`` the one its server took last time
    (remembered with the route it was reached by); None when not known yet."""
    if isinstance(profile.remote_port, int):
        return profile.remote_port
    from jupytunnel import state

    known = state.load_server(profile.name)
    return known.server.port if known is not None and known.route == route(profile, jobs=jobs) else None


def pick(profile: Profile, servers: list[ServerInfo], home: str) -> ServerInfo | None:
    for server in servers:
        if owns(profile, server, home):
            return server
    return None


def find_on_host(master: Master, found: Discovery, *, cli_timeout: float = CLI_LIST_TIMEOUT) -> Found:
    """The host's server on the profile's port or socket: from the runtime files, else from
    the Jupyter CLI in the setup lines' environment."""
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


def start_on_host(
    master: Master,
    launcher: ScriptLauncher,
    *,
    home: str,
    timeout: float,
    tick: Callable[..., None] = lambda *_: None,
) -> ServerInfo:
    """Run a host launcher's start script, then poll until the runtime file appears."""
    profile = master.profile
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
        remember(profile, ready, jobs=False)  # its port is how this profile finds it again
    return ready


class _RefusedError(JupytunnelError):
    """The start script refused before launching anything."""


def _launch(master: Master, launcher: ScriptLauncher, *, home: str, timeout: float) -> tuple[str, str | None]:
    """Run the start script; what it started, and the runtime dir the setup lines chose."""
    import secrets

    profile = master.profile
    token = secrets.token_hex(24)
    script = launcher.start_script(profile, sock=socket_for(profile, home))
    said = f"{MARK} started {DRY_PID if launcher.session(profile) is None else launcher.session(profile)}\n"
    assume = runner.Assume(stdout=said, says=f"assume the {launcher.name} start launches Jupyter")
    result = master.run(script, timeout=timeout, stdin_text=token + "\n", assume=assume)
    parsed = remote.parse_discovery(result.stdout)
    error = _marker(parsed.markers, "error")
    if error:
        raise _RefusedError(f"cannot start Jupyter on {profile.host}: {error}")
    started = _marker(parsed.markers, "started")
    if started is None:
        raise JupytunnelError(f"cannot start Jupyter on {profile.host}: {ssh_message(result.stderr or result.stdout)}")
    return started, _marker(parsed.markers, "runtime")


def _abort(master: Master, launcher: ScriptLauncher) -> None:
    """A half-started server is worse than none: end it, whatever went wrong, even when the
    start script itself was cut off (it leaves a pid file or a named session)."""
    with contextlib.suppress(CommandError, KeyboardInterrupt):
        master.run(launcher.abort_script(master.profile), timeout=ABORT_TIMEOUT)


def not_startable(profile: Profile) -> JupytunnelError:
    """``launcher = "none"``: we never start it; say how to."""
    port = remote_port(profile, jobs=False) or JUPYTER_DEFAULT_PORT
    return JupytunnelError(
        f"no Jupyter server for profile {profile.name!r} on {profile.host}, and its launcher is 'none': "
        f"start it there (for example: {profile.jupyter} --no-browser --port={port}), "
        "then connect again"
    )


def wait_ready(
    master: Master,
    launcher: ScriptLauncher,
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
    ready = assume_found(
        profile, running=True, says="poll until its runtime file appears (every 0.1 s, up to --timeout)", jobs=False
    )
    while True:
        left = max(MIN_CALL_TIME, deadline - time.monotonic())
        found = discover(
            master, extra=probe, runtime_dir=runtime_dir, timeout=min(ROUND_TRIP_TIMEOUT, left), assume=ready
        )
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


def stop_on_host(
    master: Master,
    *,
    launcher: ScriptLauncher | None,
    timeout: float = STOP_TIMEOUT,
    server: ServerInfo | None = None,
) -> Stopped:
    """``jupyter server stop``, then verified signals, and the launcher's session
    (``launcher``: the profile's host launcher; None: started by hand, no session of ours)."""
    profile = master.profile
    if server is None:
        assume = assume_found(profile, running=True, says="assume the profile's server runs", jobs=False)
        discovered = discover(master, timeout=min(timeout, ROUND_TRIP_TIMEOUT), assume=assume)
        server = find_on_host(master, discovered, cli_timeout=timeout).server
        if server is None:
            return Stopped()
    session = launcher.session(profile) if launcher is not None else None
    script = remote.stop_script(profile, server, session=session, multiplexer=launcher.name if launcher else "")
    result = master.run(script, timeout=timeout, assume=runner.Assume(stdout=f"{MARK} stopped\n"))
    forget(profile)
    if f"{MARK} stopped" not in result.stdout:
        raise JupytunnelError(f"could not stop the server on {profile.host}: {ssh_message(result.stderr)}")
    return Stopped(pid=server.pid)


def logs_on_host(master: Master, lines: int) -> str:
    assume = runner.Assume(stdout="(the log's last lines)\n")
    result = master.run(remote.logs_script(master.profile.name, lines), timeout=ROUND_TRIP_TIMEOUT, assume=assume)
    if result.returncode == SSH_FAILED:
        raise JupytunnelError(f"ssh to {master.profile.host} failed: {ssh_message(result.stderr)}")
    if result.returncode == remote.NO_LOG:
        raise JupytunnelError(f"{master.profile.name}: no log yet")
    if result.returncode != 0:
        said = result.stderr.strip().splitlines()[-1:] or ["no message"]
        raise JupytunnelError(f"{master.profile.name}: reading the log failed (exit {result.returncode}): {said[0]}")
    return result.stdout
