"""``jupytunnel server …``: parse the arguments, call ``jupytunnel.commands.server``, format.

In a dry run the command runs as it would (the runner records instead of running) and the
recorded steps are printed, one shell-quoted command (or ``#`` note) at a time; no result.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from jupytunnel import runner
from jupytunnel.cli.common import JsonFlag, ProfileName, WideFlag, print_json, print_table
from jupytunnel.commands.server import CONNECT_TIMEOUT

if TYPE_CHECKING:
    from jupytunnel.commands.server import Listed

app = typer.Typer(help="Manage the Jupyter server on a profile's remote.", no_args_is_help=True)


@contextlib.contextmanager
def _steps() -> Iterator[bool]:
    """In a dry run: print each recorded step as it comes; yields whether this is one."""
    if not runner.dry_run():
        yield False
        return
    with runner.recording(lambda step: print(step.text(), flush=True)):
        yield True


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
    from jupytunnel.cli.parse import parse_timeout
    from jupytunnel.commands import server

    profile = server.profile_for(name)
    limit = parse_timeout(timeout) if timeout is not None else None
    with _steps() as dry:
        result = server.start(profile, timeout=limit)
    if not dry:
        srv = result.server
        print(f"{name}: {'started' if result.started else 'already running'} (pid {srv.pid}, {srv.endpoint})")


@app.command("stop")
def stop(name: ProfileName) -> None:
    """Stop the profile's server (and its tmux/screen session).

    Example: jupytunnel server stop aura
    """
    from jupytunnel.commands import server

    profile = server.profile_for(name)
    with _steps() as dry:
        stopped = server.stop(profile)
    if not dry:
        print(server.stopped_line(profile, stopped))


@app.command("list")
def list_(name: ProfileName, json_: JsonFlag = False, wide: WideFlag = False) -> None:
    """List every Jupyter server of the remote user; PROFILE names the profile's own.

    Example: jupytunnel server list aura --json
    """
    from jupytunnel.commands import server

    profile = server.profile_for(name)
    with _steps() as dry:
        listed = server.list_servers(profile)
    if dry:
        return
    rows = list_rows(listed)
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
    from jupytunnel.cli.parse import parse_timeout
    from jupytunnel.commands import server

    profile = server.profile_for(name)
    timeout = parse_timeout(timeout)
    with _steps() as dry:
        if follow:
            server.follow_logs(profile, lines=lines, timeout=timeout)
            return
        text = server.logs(profile, lines=lines, timeout=timeout)
    if not dry:
        print(text, end="")


@app.command("password")
def password(name: ProfileName) -> None:
    """Set or change the password of the profile's Jupyter (asked without echo; piped: stdin's first line).

    Example: jupytunnel server password aura
    """
    from jupytunnel.commands import server
    from jupytunnel.remote import password as remote_password

    profile = server.profile_for(name)
    with _steps() as dry:
        if dry:
            runner.note("ask for the new password (twice, without echo; piped: stdin's first line)")
        secret = "" if dry else remote_password.ask()
        where = server.password(profile, secret)
    if not dry:
        restart = "a running server keeps its old settings until restarted"
        print(f"{name}: password set in {where} on {profile.host}; {restart}")


# Formatting (free of the work above).


def list_rows(listed: Listed) -> list[dict[str, object]]:
    """``server list --json``: one object a server."""
    return [
        {"pid": s.pid, "port": s.port, "sock": s.sock, "root_dir": s.root_dir, "version": s.version, "profile": mine}
        for s, mine in zip(listed.servers, listed.mine, strict=True)
    ]


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
