"""``connect``, ``disconnect``, ``status``, ``open``."""

from __future__ import annotations

from typing import Annotated

import typer

from jupytunnel import runner
from jupytunnel.cli.common import (
    JsonFlag,
    ProfileName,
    WideFlag,
    complete_profile,
)
from jupytunnel.errors import UsageError


def connect(
    name: Annotated[
        str,
        typer.Argument(
            help="Profile name, or a host your ssh reaches: an alias from your ssh config, or user@host[:port].",
            autocompletion=complete_profile,
            show_default=False,
        ),
    ],
    local_port: Annotated[str | None, typer.Option(help="Local port number, or 'auto'.")] = None,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open the browser.")] = False,
    no_start: Annotated[bool, typer.Option("--no-start", help="Never start a server; fail if none runs.")] = False,
    json_: JsonFlag = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            help="Give up after this many seconds (default 30; a slurm profile: its [slurm] wait plus 120).",
            show_default=False,
        ),
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Stay in the foreground; reconnect when the tunnel drops.")
    ] = False,
    save: Annotated[
        bool, typer.Option("--save", help="NAME is a host, not a profile: keep it as a profile after connecting.")
    ] = False,
) -> None:
    """Open (or reuse) the tunnel to a profile's Jupyter and print its URL.

    NAME may also be a host your own ssh reaches (an alias from ~/.ssh/config, or
    user@host[:port]): it is connected with the default profile values.

    Example: jupytunnel connect aura --no-browser
    """
    from jupytunnel.commands import connect as command

    command.connect(
        name, local_port=local_port, no_browser=no_browser, no_start=no_start, as_json=json_,
        timeout=timeout, watch=watch, save=save, dry_run=runner.dry_run(),
    )  # fmt: skip


def disconnect(
    name: Annotated[
        str | None, typer.Argument(help="Profile name.", autocompletion=complete_profile, show_default=False)
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Close every recorded tunnel.")] = False,
    stop_server: Annotated[bool, typer.Option("--stop-server", help="Stop the remote Jupyter server too.")] = False,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 30.0,
) -> None:
    """Close a tunnel (only what jupytunnel started, verified by PID and start time).

    Example: jupytunnel disconnect aura --stop-server
    """
    from jupytunnel import hosts, state, tunnel
    from jupytunnel.commands.status import require_known

    if all_ == (name is not None):
        raise UsageError("give a profile name or --all")
    if name is not None:
        require_known(name)
    if runner.dry_run():
        _plan_disconnect([name] if name else [r.profile for r in state.load_all()])
        return
    if all_:
        lines = tunnel.disconnect_all()
        print("\n".join(lines) if lines else "no tunnels to close")
        return
    assert name is not None
    from jupytunnel.cli.parse import parse_timeout

    # A host connected without a profile (a first run) is addressed as connect took it.
    profile = hosts.profile_or_host(name, check=False)[0] if stop_server else None
    print(tunnel.disconnect(name, stop_server=stop_server, profile=profile, timeout=parse_timeout(timeout)))


def _plan_disconnect(names: list[str]) -> None:
    from jupytunnel import profiles, runner, state
    from jupytunnel.errors import UsageError
    from jupytunnel.ssh.master import Master, control_path

    for name in names:
        rec = state.load(name)
        try:
            host = rec.host if rec else profiles.load(name).host
        except UsageError:
            host = "localhost"  # neither a record nor a profile: ssh -O addresses the socket
        master = Master(profiles.Profile(name=name, host=host), control_path(name))
        print(runner.display(master.control_argv("exit")))
        if rec:
            print(f"# then, only if pid {rec.pid} is still the master we started: SIGTERM, SIGKILL")


def status(
    name: Annotated[
        str | None, typer.Argument(help="Profile name.", autocompletion=complete_profile, show_default=False)
    ] = None,
    json_: JsonFlag = False,
    show_token: Annotated[bool, typer.Option("--show-token", help="Show the token in URLs.")] = False,
    wide: WideFlag = False,
) -> None:
    """Show recorded tunnels: up, stale (tunnel open, Jupyter not answering) or down.

    The table fits the terminal (the URL shown as its port); --wide shows every column whole.

    Example: jupytunnel status --json
    """
    from jupytunnel.commands import status as command

    command.status(name, as_json=json_, show_token=show_token, wide=wide)


def open_(
    name: ProfileName,
    show_token: Annotated[bool, typer.Option("--show-token", help="Print the URL with its token.")] = False,
) -> None:
    """Open a live tunnel's URL in the browser ($BROWSER is honoured).

    Example: jupytunnel open aura --show-token
    """
    from jupytunnel import browser, tunnel
    from jupytunnel.commands.status import require_known

    require_known(name)
    record = tunnel.live_record(name)  # refuses a stale tunnel, follows a new token
    if runner.dry_run():
        print(f"# would open {tunnel.hide_token(record.url)}")
        return
    browser.open_url(record.url, name)
    print(record.url if show_token else tunnel.hide_token(record.url))


def register(app: typer.Typer) -> None:
    app.command("connect")(connect)
    app.command("disconnect")(disconnect)
    app.command("status")(status)
    app.command("open")(open_)
