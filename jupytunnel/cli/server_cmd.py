"""``jupytunnel server …``: start, stop, list, logs on the remote."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from jupytunnel.cli.common import GLOBALS, JsonFlag, ProfileName, print_json, print_table
from jupytunnel.errors import JupytunnelError

if TYPE_CHECKING:
    from jupytunnel.master import Master
    from jupytunnel.profiles import Profile

app = typer.Typer(help="Manage the Jupyter server on a profile's remote.", no_args_is_help=True)


@app.command("start")
def start(
    name: ProfileName,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 60.0,
) -> None:
    """Start the profile's Jupyter server on the remote (or report the one running).

    Example: jupytunnel server start aura
    """
    from jupytunnel import launchers, master, profiles, remote, runner, server, state
    from jupytunnel.actions import parse_timeout

    profile = profiles.load(name)
    timeout = parse_timeout(timeout)
    if GLOBALS.dry_run:
        sock = "$HOME/.local/state/jupytunnel/" + name + ".sock" if profile.transport == "socket" else None
        m = _plan_session(profile, remote.discovery_script(remote.discovery_extra(profile)))
        if profile.launcher != "none":
            print("# if none runs:")
            for line in launchers.plan_start(profile):
                print(line)
            print(runner.display(m.remote_argv(launchers.start_script(profile, sock=sock))))
        return
    with state.profile_lock(name, timeout=timeout + 60), master.temporary_master(profile, timeout=timeout) as m:
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
    from jupytunnel import master, profiles, remote, server, state

    profile = profiles.load(name)
    if GLOBALS.dry_run:
        _plan_session(profile, remote.discovery_script())
        print("# then, for the server found: 'jupyter server stop PORT|SOCKET' in the setup lines' environment,")
        print(
            "# SIGTERM and at last SIGKILL to its PID (only while that PID is a Jupyter), and its tmux/screen session"
        )
        return
    with state.profile_lock(name, timeout=90), master.temporary_master(profile, timeout=30) as m:
        if profile.launcher == "slurm":  # running or still pending: the job goes
            cancelled = server.stop_job(m)
            print(f"{name}: cancelled job {cancelled}" if cancelled else f"{name}: no job in the queue")
            return
        found = server.find(m)
        if found.server is None:
            print(f"{name}: no server running")
            return
        server.stop(m, found.server)
    print(f"{name}: stopped (pid {found.server.pid})")


@app.command("list")
def list_(name: ProfileName, json_: JsonFlag = False) -> None:
    """List every Jupyter server of the remote user, marking the profile's.

    Example: jupytunnel server list aura --json
    """
    from jupytunnel import master, profiles, remote, server, state

    profile = profiles.load(name)
    if GLOBALS.dry_run:
        _plan_session(profile, remote.discovery_script())
        return
    with state.profile_lock(name, timeout=90), master.temporary_master(profile, timeout=30) as m:
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
        ["pid", "endpoint", "root_dir", "version", "profile's"],
        [
            [
                str(r["pid"]),
                str(r["sock"] or r["port"]),
                str(r["root_dir"]),
                str(r["version"]),
                "yes" if r["profile"] else "",
            ]
            for r in rows
        ],
    )


@app.command("logs")
def logs(
    name: ProfileName,
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, max=100000, help="How many lines.")] = 50,
) -> None:
    """Print the last lines of the server's log on the remote.

    Example: jupytunnel server logs aura --lines 100
    """
    from jupytunnel import master, profiles, remote, server, state

    profile = profiles.load(name)
    if GLOBALS.dry_run:
        _plan_session(profile, remote.logs_script(name, lines))
        return
    with state.profile_lock(name, timeout=90), master.temporary_master(profile, timeout=30) as m:
        text = server.logs(m, lines)
    if not text:
        raise JupytunnelError(f"{name}: no log")
    print(text, end="")


@app.command("password")
def password(name: ProfileName) -> None:
    """Set or change the password of the profile's Jupyter (asked without echo; piped: stdin's first line).

    Example: jupytunnel server password aura
    """
    from jupytunnel import master, profiles, state
    from jupytunnel import password as remote_password

    profile = profiles.load(name)
    if GLOBALS.dry_run:
        _plan_session(profile, remote_password.password_script(profile))
        return
    secret = remote_password.ask()
    with state.profile_lock(name, timeout=90), master.temporary_master(profile, timeout=30) as m:
        where = remote_password.set_remote(m, secret)
    print(f"{name}: password set in {where} on {profile.host}; a running server keeps its old settings until restarted")


def _plan_session(profile: Profile, script: str) -> Master:
    """Print what a server command runs: a master for this command only (unless the
    profile's tunnel is up, whose master it then uses), the script through it, its exit."""
    from jupytunnel import master, runner, sshargs

    live = master.master_for(profile)
    temp = master.Master(profile, live.control_path.with_name(f"{live.control_path.name}.tPID"))
    print(f"# through the tunnel's master if it is up, else a master of its own ({temp.ctl}):")
    print(
        runner.display(
            sshargs.tunnel_argv(
                profile, ssh=runner.ssh_binary(), control_path=temp.ctl, forward=None,
                config_file=master.config_file(), persist=master.TEMPORARY_PERSIST,
            )
        )
    )  # fmt: skip
    print(runner.display(temp.remote_argv(script)))
    print(runner.display(temp.control_argv("exit")))
    return temp
