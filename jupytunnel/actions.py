"""The bodies of the hot commands (connect, status), free of Typer.

The Typer commands and the fast path (``jupytunnel.fastpath``) both call these, so the two
entry points cannot drift apart.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Literal

from jupytunnel.errors import JupytunnelError, UsageError

if TYPE_CHECKING:
    from jupytunnel.profiles import Profile
    from jupytunnel.tunnel import Connected

WATCH_INTERVAL = 2.0
MAX_BACKOFF = 30.0
LocalPort = int | Literal["auto"] | None


def parse_local_port(value: str | None) -> LocalPort:
    if value is None:
        return None
    if value == "auto":
        return "auto"
    try:
        port = int(value)
    except ValueError:
        raise UsageError(f"--local-port: expected a port number 1..65535 or 'auto', got {value!r}") from None
    if not 1 <= port <= 65535:  # noqa: PLR2004
        raise UsageError(f"--local-port: expected a port number 1..65535 or 'auto', got {port}")
    return port


MAX_TIMEOUT = 24 * 3600.0


def parse_timeout(value: float, option: str = "--timeout") -> float:
    """A finite, positive bound: nan would make every comparison false and a wait endless."""
    import math

    if not math.isfinite(value) or not 0 < value <= MAX_TIMEOUT:
        raise UsageError(f"{option}: expected a number of seconds in (0, {MAX_TIMEOUT:g}], got {value}")
    return value


class _Spinner:
    """A one-character spinner on a terminal's stderr; nothing when piped."""

    frames = "|/-\\"

    def __init__(self) -> None:
        self.turns = 0

    def __call__(self, text: str = "starting Jupyter") -> None:
        if sys.stderr.isatty():
            # A Slurm job's state and pending reason change length: clear the rest of the line.
            sys.stderr.write(f"\r{text} {self.frames[self.turns % 4]}\033[K")
            sys.stderr.flush()
            self.turns += 1

    def clear(self) -> None:
        if self.turns:
            sys.stderr.write("\r\033[K")  # before any message, so it does not land mid-line


def connect(
    name: str,
    *,
    local_port: str | None = None,
    no_browser: bool = False,
    no_start: bool = False,
    as_json: bool = False,
    timeout: float = 30.0,
    watch: bool = False,
    dry_run: bool = False,
) -> None:
    """``jupytunnel connect``: reuse or open the tunnel, print the URL, open the browser."""
    from jupytunnel import profiles, tunnel
    from jupytunnel.output import dry_run_lines

    profile = profiles.load(name)
    port = parse_local_port(local_port)
    timeout = parse_timeout(timeout)
    if dry_run:
        dry_run_lines(tunnel.plan_connect(profile, local_port=port))
        return
    spinner = _Spinner()
    try:
        result = tunnel.connect(profile, local_port=port, timeout=timeout, start_server=not no_start, tick=spinner)
    finally:
        spinner.clear()
    _report(result, as_json=as_json)
    if profile.browser and not no_browser:
        from jupytunnel import browser

        browser.open_url(result.record.url, profile.name)
    if watch:
        _watch(profile, port, timeout, start_server=not no_start, url=result.record.url)


def _report(result: Connected, *, as_json: bool) -> None:
    rec = result.record
    if as_json:
        from jupytunnel.output import print_json

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
                "job": result.job,
                "password": rec.password,
            }
        )
        return
    print(rec.url, flush=True)
    if rec.password:
        print(f"{rec.profile}: Jupyter will ask for its password", file=sys.stderr, flush=True)


def _watch(profile: Profile, port: LocalPort, timeout: float, *, start_server: bool, url: str) -> None:
    from jupytunnel import state, tunnel

    print(f"watching {profile.name}; Ctrl-C closes the tunnel", file=sys.stderr, flush=True)
    backoff = 1.0
    try:
        while True:
            time.sleep(WATCH_INTERVAL)  # a monitoring period, not a readiness guess
            record = state.load(profile.name)
            current = tunnel.record_state(record) if record is not None else "down"
            if current == "up":
                backoff = 1.0
                continue
            print(f"{profile.name}: {tunnel.watch_message(profile, current, start_server=start_server)}",
                  file=sys.stderr, flush=True)  # fmt: skip
            try:
                again = tunnel.connect(profile, local_port=port, timeout=timeout, start_server=start_server)
                print(f"{profile.name}: reconnected", file=sys.stderr, flush=True)
                if again.record.url != url:  # another port (auto) or a restarted server
                    url = again.record.url
                    print(url, flush=True)
                backoff = 1.0
            except JupytunnelError as exc:
                print(f"{profile.name}: {exc}; retrying in {backoff:g} s", file=sys.stderr, flush=True)
                time.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
    except KeyboardInterrupt:
        print(tunnel.disconnect(profile.name), file=sys.stderr)


def status(name: str | None = None, *, as_json: bool = False, show_token: bool = False) -> None:
    """``jupytunnel status``: one row a recorded tunnel."""
    from jupytunnel import tunnel
    from jupytunnel.output import print_json, print_table

    if name is not None:
        from jupytunnel.profiles import validate_name

        validate_name(name)
    rows = [s.to_dict(show_token=show_token) for s in tunnel.status(name)]
    if as_json:
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
