"""``connect``, ``disconnect``, ``status``, ``open``: their arguments. The bodies are in
``jupytunnel.commands``; the output is ``jupytunnel.cli.render``'s (connect and status through
``jupytunnel.cli.fastpath``, which runs them without Typer too)."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer

from jupytunnel import runner
from jupytunnel.cli.common import (
    JsonFlag,
    ProfileName,
    WideFlag,
    complete_profile,
)


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
    from jupytunnel.cli import fastpath
    from jupytunnel.cli.parse import parse_local_port, parse_timeout

    fastpath.show_connect(
        name, local_port=parse_local_port(local_port), timeout=parse_timeout(timeout) if timeout is not None else None,
        browser=not no_browser, start_server=not no_start, as_json=json_, watch=watch, save=save,
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
    from jupytunnel.cli import render
    from jupytunnel.cli.parse import parse_timeout
    from jupytunnel.commands.disconnect import disconnect as command

    dry = runner.dry_run()
    with runner.recording(render.print_step) if dry else contextlib.nullcontext():
        lines = command(name, every=all_, stop_server=stop_server, timeout=parse_timeout(timeout))
        render.print_result(lines, dry=dry)


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
    from jupytunnel.cli import fastpath

    fastpath.show_status(name, as_json=json_, show_token=show_token, wide=wide)


def open_(
    name: ProfileName,
    show_token: Annotated[bool, typer.Option("--show-token", help="Print the URL with its token.")] = False,
) -> None:
    """Open a live tunnel's URL in the browser ($BROWSER is honoured).

    Example: jupytunnel open aura --show-token
    """
    from jupytunnel.cli import render
    from jupytunnel.commands.open import open_ as command

    dry = runner.dry_run()
    with runner.recording(render.print_step) if dry else contextlib.nullcontext():
        record = command(name)  # refuses a stale tunnel, follows a new token
        render.print_result([render.opened_line(record, show_token=show_token and not dry)], dry=dry)


def register(app: typer.Typer) -> None:
    app.command("connect")(connect)
    app.command("disconnect")(disconnect)
    app.command("status")(status)
    app.command("open")(open_)
