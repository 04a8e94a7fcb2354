"""``connect``, ``disconnect``, ``status``, ``open``."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Annotated, Literal

import typer

from jupytunnel.cli.common import (
    GLOBALS,
    JsonFlag,
    ProfileName,
    complete_profile,
    dry_run_lines,
    parse_local_port,
    print_json,
    print_table,
)
from jupytunnel.errors import JupytunnelError, UsageError

WATCH_INTERVAL = 2.0
MAX_BACKOFF = 30.0


def _spinner() -> Callable[[], None]:
    """A one-character spinner on a terminal's stderr; nothing when piped."""
    frames = "|/-\\"
    state = {"i": 0}

    def tick() -> None:
        if sys.stderr.isatty():
            sys.stderr.write(f"\rstarting Jupyter {frames[state['i'] % 4]}")
            sys.stderr.flush()
            state["i"] += 1

    return tick


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
    from jupytunnel import profiles, tunnel

    profile = profiles.load(name)
    port = parse_local_port(local_port)
    if timeout <= 0:
        raise UsageError("--timeout must be positive")
    if GLOBALS.dry_run:
        dry_run_lines(tunnel.plan_connect(profile, local_port=port))
        return
    tick = _spinner()
    result = tunnel.connect(
        profile,
        local_port=port,
        timeout=timeout,
        start_server=not no_start,
        tick=tick,
    )
    if sys.stderr.isatty() and result.started_server:
        sys.stderr.write("\r\033[K")
    _report(result, as_json=json_)
    if profile.browser and not no_browser and not json_:
        from jupytunnel import browser

        browser.open_url(result.record.url, profile.name)
    if watch:
        _watch(profile, port, timeout)


def _report(result: object, *, as_json: bool) -> None:
    from jupytunnel.tunnel import Connected

    assert isinstance(result, Connected)
    rec = result.record
    if as_json:
        print_json(
            {
                "profile": rec.profile,
                "url": rec.url,
                "local_port": rec.local_port,
                "remote": rec.remote,
                "pid": rec.pid,
                "control_path": rec.control_path,
                "reused": result.reused,
                "started_server": result.started_server,
            }
        )
        return
    print(rec.url, flush=True)


def _watch(profile: object, port: int | Literal["auto"] | None, timeout: float) -> None:
    from jupytunnel import state, tunnel
    from jupytunnel.profiles import Profile

    assert isinstance(profile, Profile)
    print(f"watching {profile.name}; Ctrl-C closes the tunnel", file=sys.stderr, flush=True)
    backoff = 1.0
    try:
        while True:
            time.sleep(WATCH_INTERVAL)  # a monitoring period, not a readiness guess
            record = state.load(profile.name)
            if record is not None and tunnel.record_state(record) == "up":
                backoff = 1.0
                continue
            print(f"{profile.name}: tunnel down; reconnecting", file=sys.stderr, flush=True)
            try:
                tunnel.connect(profile, local_port=port, timeout=timeout)
                print(f"{profile.name}: reconnected", file=sys.stderr, flush=True)
                backoff = 1.0
            except JupytunnelError as exc:
                print(f"{profile.name}: {exc}; retrying in {backoff:g} s", file=sys.stderr, flush=True)
                time.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
    except KeyboardInterrupt:
        print(tunnel.disconnect(profile.name), file=sys.stderr)


def disconnect(
    name: Annotated[
        str | None, typer.Argument(help="Profile name.", autocompletion=complete_profile, show_default=False)
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Close every recorded tunnel.")] = False,
    stop_server: Annotated[bool, typer.Option("--stop-server", help="Stop the remote Jupyter server too.")] = False,
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
    profile = profiles.load(name) if stop_server else None
    print(tunnel.disconnect(name, stop_server=stop_server, profile=profile))


def _plan_disconnect(names: list[str]) -> None:
    import shlex

    from jupytunnel import state
    from jupytunnel.master import Master, control_path
    from jupytunnel.profiles import Profile

    for name in names:
        rec = state.load(name)
        host = rec.host if rec else "localhost"
        master = Master(Profile(name=name, host=host), control_path(name))
        print(shlex.join(master.control_argv("exit")))
        if rec:
            print(f"# then, only if pid {rec.pid} is still the master we started: SIGTERM, SIGKILL")


def status(
    name: Annotated[
        str | None, typer.Argument(help="Profile name.", autocompletion=complete_profile, show_default=False)
    ] = None,
    json_: JsonFlag = False,
    show_token: Annotated[bool, typer.Option("--show-token", help="Show the token in URLs.")] = False,
) -> None:
    """Show recorded tunnels: up, stale (process alive, not answering) or down.

    Example: jupytunnel status --json
    """
    from jupytunnel import tunnel

    rows = [s.to_dict(show_token=show_token) for s in tunnel.status(name)]
    if json_:
        print_json(rows)
        return
    if not rows:
        print("no tunnels")
        return
    print_table(
        ["profile", "state", "url", "remote", "pid", "uptime"],
        [
            [str(r["profile"]), str(r["state"]), str(r["url"]), str(r["remote"]), str(r["pid"]), _duration(r["uptime"])]
            for r in rows
        ],
    )


def _duration(seconds: object) -> str:
    if not isinstance(seconds, float | int):
        return "-"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"  # noqa: PLR2004


def open_(name: ProfileName) -> None:
    """Open a live tunnel's URL in the browser ($BROWSER is honoured).

    Example: jupytunnel open aura
    """
    from jupytunnel import browser, state, tunnel

    record = state.load(name)
    if record is None or tunnel.record_state(record) != "up":
        raise JupytunnelError(f"{name} has no live tunnel; run: jupytunnel connect {name}")
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
