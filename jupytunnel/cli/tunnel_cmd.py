"""``connect``, ``disconnect``, ``status``, ``open``."""

from __future__ import annotations

from typing import Annotated

import typer

from jupytunnel.cli.common import (
    GLOBALS,
    JsonFlag,
    ProfileName,
    complete_profile,
)
from jupytunnel.errors import UsageError


def connect(
    name: ProfileName,
    local_port: Annotated[str | None, typer.Option(help="Local port number, or 'auto'.")] = None,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open the browser.")] = False,
    no_start: Annotated[bool, typer.Option("--no-start", help="Never start a server; fail if none runs.")] = False,
    json_: JsonFlag = False,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 30.0,
    watch: Annotated[
        bool, typer.Option("--watch", help="Stay in the foreground; reconnect when the tunnel drops.")
    ] = False,
) -> None:
    """Open (or reuse) the tunnel to a profile's Jupyter and print its URL.

    Example: jupytunnel connect aura --no-browser
    """
    from jupytunnel import actions

    actions.connect(
        name, local_port=local_port, no_browser=no_browser, no_start=no_start, as_json=json_,
        timeout=timeout, watch=watch, dry_run=GLOBALS.dry_run,
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
    from jupytunnel import profiles, state, tunnel

    if all_ == (name is not None):
        raise UsageError("give a profile name or --all")
    if GLOBALS.dry_run:
        _plan_disconnect([name] if name else [r.profile for r in state.load_all()])
        return
    if all_:
        lines = tunnel.disconnect_all()
        print("\n".join(lines) if lines else "no tunnels to close")
        return
    assert name is not None
    from jupytunnel.actions import parse_timeout

    profile = profiles.load(name) if stop_server else None
    print(tunnel.disconnect(name, stop_server=stop_server, profile=profile, timeout=parse_timeout(timeout)))


def _plan_disconnect(names: list[str]) -> None:
    from jupytunnel import profiles, runner, state
    from jupytunnel.errors import UsageError
    from jupytunnel.master import Master, control_path

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
) -> None:
    """Show recorded tunnels: up, stale (tunnel open, Jupyter not answering) or down.

    Example: jupytunnel status --json
    """
    from jupytunnel import actions

    actions.status(name, as_json=json_, show_token=show_token)


def open_(name: ProfileName) -> None:
    """Open a live tunnel's URL in the browser ($BROWSER is honoured).

    Example: jupytunnel open aura
    """
    from jupytunnel import browser, tunnel

    record = tunnel.live_record(name)  # refuses a stale tunnel, follows a new token
    if GLOBALS.dry_run:
        print(f"# would open {tunnel.hide_token(record.url)}")
        return
    browser.open_url(record.url, name)
    print(tunnel.hide_token(record.url))


def register(app: typer.Typer) -> None:
    app.command("connect")(connect)
    app.command("disconnect")(disconnect)
    app.command("status")(status)
    app.command("open")(open_)
