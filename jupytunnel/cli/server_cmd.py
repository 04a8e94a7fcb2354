"""``jupytunnel server …``: start, stop, list, logs on the remote."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from jupytunnel import runner
from jupytunnel.cli.common import JsonFlag, ProfileName, WideFlag, plan_session, print_json, print_table
from jupytunnel.errors import JupytunnelError

if TYPE_CHECKING:
    from jupytunnel.profiles import Profile

app = typer.Typer(help="Manage the Jupyter server on a profile's remote.", no_args_is_help=True)

# server start's --timeout when none is given: a cold start (setup lines, imports) on a busy host.
START_TIMEOUT = 60.0
# Another command of the profile may hold its lock for the whole of its own --timeout.
LOCK_MARGIN = 60.0
# The lock wait of the commands without a --timeout of their own: longer than a connect's
# default 30 s plus its clean-up.
LOCK_TIMEOUT = 90.0
# How long stop, list, logs and password give ssh to connect (and logs' --timeout default).
CONNECT_TIMEOUT = 30.0


@app.command("start")
def start(
    name: ProfileName,
    timeout: Annotated[
        float | None,
        typer.Option(
            help="Give up after this many seconds (default 60; a slurm profile: its [slurm] wait plus 120).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start the profile's Jupyter server on the remote (or report the one running).

    Example: jupytunnel server start aura
    """
    from jupytunnel import remote, runner, state
    from jupytunnel.cli.parse import parse_timeout
    from jupytunnel.commands.connect import SLURM_READY_WAIT
    from jupytunnel.remote import launchers, server
    from jupytunnel.ssh import master

    profile = _profile(name)
    if timeout is None:
        timeout = profile.slurm.wait + SLURM_READY_WAIT if profile.launcher == "slurm" else START_TIMEOUT
    timeout = parse_timeout(timeout)
    if runner.dry_run():
        sock = "$HOME/.local/state/jupytunnel/" + name + ".sock" if profile.transport == "socket" else None
        m = plan_session(profile, [remote.discovery_script(remote.discovery_extra(profile))])
        if profile.launcher != "none":
            print("# if none runs:")
            for line in launchers.plan_start(profile):
                print(line)
            print(runner.display(m.remote_argv(launchers.start_script(profile, sock=sock))))
        return
    lock = state.profile_lock(name, timeout=timeout + LOCK_MARGIN)
    with lock, master.temporary_master(profile, timeout=timeout) as m:
        found = server.find(m)
        if found.server is not None:
            print(f"{name}: already running (pid {found.server.pid}, {found.server.endpoint})")
            return
        srv = server.start(m, home=found.home, timeout=timeout)
    print(f"{name}: started (pid {srv.pid}, {srv.endpoint})")


@app.command("stop")
def stop(name: ProfileName) -> None:
    """Stop the profile's server (and its tmux/screen session).

    Example: jupytunnel server stop aura
    """
    from jupytunnel import remote

    profile = _profile(name)
    if runner.dry_run() and profile.launcher == "slurm":
        from jupytunnel.remote import slurm

        print("# scancel the profile's recorded job (running or pending), then wait until it has left the queue")
        plan_session(profile, [slurm.cancel_script(profile)])
        return
    if runner.dry_run():
        plan_session(profile, [remote.discovery_script(remote.discovery_extra(profile))])
        print("# then, for the server found: 'jupyter server stop PORT|SOCKET' in the setup lines' environment,")
        print(
            "# SIGTERM and at last SIGKILL to its PID (only while that PID is a Jupyter), and its tmux/screen session"
        )
        return
    print(stop_server(profile))


def stop_server(profile: Profile) -> str:
    """What ``server stop`` does (``profile remove`` too); returns a line for the user."""
    from jupytunnel import state
    from jupytunnel.remote import server
    from jupytunnel.ssh import master

    name = profile.name
    with state.profile_lock(name, timeout=LOCK_TIMEOUT), master.temporary_master(profile, timeout=CONNECT_TIMEOUT) as m:
        if profile.launcher == "slurm":  # running or still pending: the job goes
            cancelled = server.stop_job(m)
            return f"{name}: cancelled job {cancelled}" if cancelled else f"{name}: no job in the queue"
        found = server.find(m)
        if found.server is None:
            return f"{name}: no server running"
        server.stop(m, found.server)
    return f"{name}: stopped (pid {found.server.pid})"


@app.command("list")
def list_(name: ProfileName, json_: JsonFlag = False, wide: WideFlag = False) -> None:
    """List every Jupyter server of the remote user; PROFILE names the profile's own.

    Example: jupytunnel server list aura --json
    """
    from jupytunnel import remote, state
    from jupytunnel.remote import server
    from jupytunnel.ssh import master

    profile = _profile(name)
    if runner.dry_run():
        plan_session(profile, [remote.discovery_script(remote.discovery_extra(profile))])
        return
    with state.profile_lock(name, timeout=LOCK_TIMEOUT), master.temporary_master(profile, timeout=CONNECT_TIMEOUT) as m:
        found = server.find(m)
    rows = [
        {
            "pid": s.pid,
            "port": s.port,
            "sock": s.sock,
            "root_dir": s.root_dir,
            "version": s.version,
            "profile": server.is_profiles(profile, s, found.home),
        }
        for s in found.all_servers
    ]
    if json_:
        print_json(rows)
        return
    if not rows:
        print(f"{name}: no Jupyter servers on {profile.host}")
        return
    print_table(
        ["pid", "endpoint", "folder", "version", "profile"],
        table_rows(rows, name),
        wide=wide,
        shrink={"endpoint": 12, "folder": 12},
        drop=("version",),
    )


def table_rows(rows: Sequence[Mapping[str, object]], name: str) -> list[list[str]]:
    """``server list`` rows for people: by PID as a number; PROFILE names the profile's own."""
    ordered = sorted(rows, key=lambda r: r["pid"] if isinstance(r["pid"], int) else -1)
    return [
        [
            str(r["pid"]),
            str(r["sock"] or r["port"]),
            str(r["root_dir"]),
            str(r["version"]),
            name if r["profile"] else "",
        ]
        for r in ordered
    ]


@app.command("logs")
def logs(
    name: ProfileName,
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, max=100000, help="How many lines.")] = 50,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing what the server logs, until Ctrl-C.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Give up connecting after this many seconds.")] = CONNECT_TIMEOUT,
) -> None:
    """Print the last lines of the server's log on the remote (--follow: and what follows).

    Example: jupytunnel server logs aura --lines 100
    """
    from jupytunnel import remote, state
    from jupytunnel.cli.parse import parse_timeout
    from jupytunnel.remote import server
    from jupytunnel.ssh import master

    profile = _profile(name)
    timeout = parse_timeout(timeout)
    if runner.dry_run():
        script = remote.follow_logs_script(name, lines) if follow else remote.logs_script(name, lines)
        plan_session(profile, [script])
        return
    if follow:
        # No profile lock: a stream until Ctrl-C must not hold up connect or disconnect.
        # The connection is bounded by --timeout; Ctrl-C ends the local ssh, whose channel
        # closing ends the remote tail (see remote.follow_logs_script).
        with master.temporary_master(profile, timeout=timeout) as m:
            code = server.follow_logs(m, lines)
        if code != 0:
            raise JupytunnelError(
                f"{name}: no log yet" if code == remote.NO_LOG else f"{name}: ssh ended with exit {code}"
            )
        return
    with state.profile_lock(name, timeout=LOCK_TIMEOUT), master.temporary_master(profile, timeout=timeout) as m:
        text = server.logs(m, lines)
    if not text:
        raise JupytunnelError(f"{name}: no log yet")
    print(text, end="")


@app.command("password")
def password(name: ProfileName) -> None:
    """Set or change the password of the profile's Jupyter (asked without echo; piped: stdin's first line).

    Example: jupytunnel server password aura
    """
    from jupytunnel import state
    from jupytunnel.remote import password as remote_password
    from jupytunnel.ssh import master

    profile = _profile(name)
    if runner.dry_run():
        plan_session(profile, [remote_password.password_script(profile)])
        return
    secret = remote_password.ask()
    with state.profile_lock(name, timeout=LOCK_TIMEOUT), master.temporary_master(profile, timeout=CONNECT_TIMEOUT) as m:
        where = remote_password.set_remote(m, secret)
    print(f"{name}: password set in {where} on {profile.host}; a running server keeps its old settings until restarted")


def _profile(name: str) -> Profile:
    """The profile, or the ssh host NAME names (as ``connect`` takes it on a first run)."""
    from jupytunnel import hosts

    return hosts.profile_or_host(name, check=not runner.dry_run())[0]
