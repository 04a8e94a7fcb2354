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
    from collections.abc import Sequence

    from jupytunnel.profiles import Profile
    from jupytunnel.sync import SyncResult
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

    def __call__(self) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(f"\rstarting Jupyter {self.frames[self.turns % 4]}")
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
            }
        )
        return
    print(rec.url, flush=True)


def _watch(profile: Profile, port: LocalPort, timeout: float, *, start_server: bool, url: str) -> None:
    from jupytunnel import state, tunnel

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


def sync(
    name: str,
    *,
    local: str | None = None,
    remote: str | None = None,
    pull: bool = False,
    delete: bool = False,
    exclude: Sequence[str] = (),
    as_json: bool = False,
    timeout: float = 30.0,
    dry_run: bool = False,
) -> None:
    """``jupytunnel sync``: rsync's progress on a terminal, then one line (or ``--json``).

    ``dry_run``: the commands as they run (read-only ones), rsync's listing of what would
    change, and nothing changed.
    """
    import contextlib

    from jupytunnel import profiles, runner
    from jupytunnel import sync as sync_
    from jupytunnel.output import print_json

    profile = profiles.load(name)
    timeout = parse_timeout(timeout)
    commands: list[str] = []
    progress = not as_json and not dry_run and sys.stderr.isatty()
    stream = sys.stderr if progress else sys.stdout

    def echo(text: str) -> None:
        stream.write(text)
        stream.flush()

    def record(argv: list[str]) -> None:
        commands.append(runner.display(argv))
        if not as_json:
            print(commands[-1], flush=True)

    if dry_run and not as_json:
        print("# --dry-run: these commands run (read-only); rsync lists what would change and changes nothing")
    with runner.recording(record) if dry_run else contextlib.nullcontext():
        result = sync_.sync(
            profile, local=local, remote=remote, pull=pull, delete=delete, exclude=exclude, dry_run=dry_run,
            echo=None if as_json else echo, progress=progress, timeout=timeout,
        )  # fmt: skip
    if result.warnings:
        print(f"jupytunnel: rsync: {sync_.rsync_message(result.warnings)}", file=sys.stderr)
    if as_json:
        data = result.to_dict()
        if dry_run:
            data["commands"] = commands
        print_json(data)
        return
    print(sync_summary(result))


def _size(n: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def sync_summary(result: SyncResult) -> str:
    """One line for people: what moved, where, how long."""
    if result.dry_run:
        n = len(result.changes)
        return f"dry run: {n} change{'' if n == 1 else 's'} listed above; nothing was changed"
    s = result.stats
    files = s.files if s else 0
    moved = f" ({_size(s.transferred_size)})" if s and files else ""
    verb, prep = ("pushed", "to") if result.direction == "push" else ("pulled", "from")
    deleted = f", deleted {s.deleted}" if s and s.deleted else ""
    took = f"{result.seconds:.2f}" if result.seconds < 10 else f"{result.seconds:.0f}"  # noqa: PLR2004
    return (
        f"{result.profile}: {verb} {files} file{'' if files == 1 else 's'}{moved} {prep} "
        f"{result.host}:{result.remote_path}{deleted} in {took} s"
    )
