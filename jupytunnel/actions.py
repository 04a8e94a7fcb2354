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

    from jupytunnel.hosts import Destination
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

    def __call__(self, text: str = "starting Jupyter") -> None:
        if sys.stderr.isatty():
            # A Slurm job's state and pending reason change length: clear the rest of the line.
            sys.stderr.write(f"\r{text} {self.frames[self.turns % 4]}\033[K")
            sys.stderr.flush()
            self.turns += 1

    def clear(self) -> None:
        if self.turns:
            sys.stderr.write("\r\033[K")  # before any message, so it does not land mid-line


DEFAULT_TIMEOUT = 30.0
SLURM_READY_WAIT = 120.0  # from RUNNING to a server that answers (the job's Jupyter start)


def default_timeout(profile: Profile) -> float:
    if profile.launcher == "slurm":
        return profile.slurm.wait + SLURM_READY_WAIT
    return DEFAULT_TIMEOUT


def connect(
    name: str,
    *,
    local_port: str | None = None,
    no_browser: bool = False,
    no_start: bool = False,
    as_json: bool = False,
    timeout: float | None = None,
    watch: bool = False,
    save: bool = False,
    dry_run: bool = False,
) -> None:
    """``jupytunnel connect``: reuse or open the tunnel, print the URL, open the browser.

    ``name`` is a profile, or (a first run) a host the user's ssh reaches: it is connected
    with the default profile values, and ``save`` keeps it as a profile.
    ``timeout``: the whole command's bound; None: 30 s, or for a Slurm profile the time its
    job may wait in the queue (``[slurm] wait``) plus the time Jupyter may take to start.
    """
    from jupytunnel import hosts, tunnel
    from jupytunnel.output import dry_run_lines

    port = parse_local_port(local_port)
    profile, dest = hosts.profile_or_host(name, check=not dry_run)
    timeout = parse_timeout(timeout) if timeout is not None else default_timeout(profile)
    if dry_run:
        if dest is not None:
            print(f"# {name!r} is no profile: as an ssh host with the default profile values, if ssh reaches it")
            if save:
                print(f"# would save the profile {profile.name!r}")
        dry_run_lines(tunnel.plan_connect(profile, local_port=port))
        return
    spinner = _Spinner()
    try:
        result = tunnel.connect(profile, local_port=port, timeout=timeout, start_server=not no_start, tick=spinner)
    finally:
        spinner.clear()
    _report(result, as_json=as_json)
    if dest is not None:
        _keep(profile, dest, save=save)
    elif save:
        print(f"jupytunnel: note: {name!r} is a profile already; nothing to save", file=sys.stderr)
    if profile.browser and not no_browser:
        from jupytunnel import browser

        browser.open_url(result.record.url, profile.name)
    if watch:
        _watch(profile, port, timeout, start_server=not no_start, url=result.record.url)


def _keep(profile: Profile, dest: Destination, *, save: bool) -> None:
    """After a first run to a host: save it (``--save``), or say in one line how to."""
    from jupytunnel import hosts, profiles

    if save:
        saved = profiles.save(hosts.host_profile(dest, with_defaults=False))
        print(f"jupytunnel: saved the profile {profile.name!r} ({saved})", file=sys.stderr)
        return
    print(
        f"jupytunnel: {profile.name!r} is no profile (default settings used); keep it with: "
        f"{hosts.keep_command(dest)}  (or: jupytunnel connect --save {dest_text(dest)})",
        file=sys.stderr,
    )


def dest_text(dest: Destination) -> str:
    user = f"{dest.user}@" if dest.user else ""
    port = f":{dest.port}" if dest.port else ""
    return f"{user}{dest.host}{port}"


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
    """Keep the tunnel up; say each change of state once (down, up again), not each retry.

    Ctrl-C closes the tunnel and ends with 130, as Ctrl-C does in every command.
    """
    from jupytunnel import state, tunnel

    print(f"watching {profile.name}; Ctrl-C closes the tunnel", file=sys.stderr, flush=True)
    backoff = 1.0
    down_since: float | None = None
    said = ""
    try:
        while True:
            time.sleep(WATCH_INTERVAL if down_since is None else backoff)  # a monitoring period
            if down_since is None:
                record = state.load(profile.name)
                current = tunnel.record_state(record) if record is not None else "down"
                if current == "up":
                    continue
                down_since = time.monotonic()
                message = tunnel.watch_message(profile, current, start_server=start_server)
                print(f"{profile.name}: {message}", file=sys.stderr, flush=True)
            try:
                again = tunnel.connect(profile, local_port=port, timeout=timeout, start_server=start_server)
            except JupytunnelError as exc:
                if str(exc) != said:  # a new reason is news; the same one again is not
                    said = str(exc)
                    print(f"{profile.name}: still down: {exc}; retrying", file=sys.stderr, flush=True)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            print(f"{profile.name}: up again after {time.monotonic() - down_since:.0f} s", file=sys.stderr, flush=True)
            if again.record.url != url:  # another port (auto) or a restarted server
                url = again.record.url
                print(url, flush=True)
            down_since, backoff, said = None, 1.0, ""
    except KeyboardInterrupt:
        print(tunnel.disconnect(profile.name), file=sys.stderr)
        raise


def status(name: str | None = None, *, as_json: bool = False, show_token: bool = False, wide: bool = False) -> None:
    """``jupytunnel status``: one row a recorded tunnel; fits the terminal unless ``wide``."""
    from jupytunnel import tunnel
    from jupytunnel.output import print_json, print_table

    if name is not None:
        require_known(name)
    rows = [s.to_dict(show_token=show_token) for s in tunnel.status(name)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        print("no tunnels")
        return
    # Narrow, the URL is its port (the whole one: --wide, or --show-token to copy it).
    whole = wide or show_token
    # A Slurm job's id, node and time left, only when some tunnel leads to one.
    jobs = any(r.get("job") for r in rows)
    print_table(
        ["profile", "state", "url", "remote", *(["job"] if jobs else []), "pid", "uptime"],
        [
            [
                str(r["profile"]), str(r["state"]), str(r["url"]) if whole else f":{r['local_port']}",
                str(r["remote"]), *([_job_cell(r.get("job"))] if jobs else []), str(r["pid"]), _duration(r["uptime"]),
            ]
            for r in rows
        ],
        wide=wide,
        shrink={"remote": 16, "profile": 12},
        drop=("pid", "remote"),
    )  # fmt: skip


def _job_cell(job: object) -> str:
    """``4711 cn1 9:41 left``: the job, its node and what is left of its time limit."""
    if not isinstance(job, dict):
        return "-"
    parts = [str(job.get("id")), str(job.get("node") or "")]
    if job.get("state") not in (None, "RUNNING"):
        parts.append(str(job.get("state")))
    if job.get("time_left"):
        parts.append(f"{job['time_left']} left")
    return " ".join(p for p in parts if p)


def _duration(seconds: object) -> str:
    if not isinstance(seconds, float | int):
        return "-"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"  # noqa: PLR2004


def require_known(name: str) -> None:
    """A name with a profile or a tunnel record (a first-run host has only the record)."""
    from jupytunnel import profiles, state

    if not profiles.profile_path(name).exists() and state.load(name) is None:
        raise profiles.unknown(name)


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

    def record(step: runner.Step) -> None:
        commands.append(step.text())
        if not as_json:
            print(commands[-1], flush=True)

    if dry_run and not as_json:
        print("# --dry-run: these commands run (read-only); rsync lists what would change and changes nothing")
    # sync's dry run is rsync's own (--dry-run --itemize-changes): the read-only commands run.
    live = runner.using(runner.options()._replace(dry_run=False))
    with live, runner.recording(record, dry=False) if dry_run else contextlib.nullcontext():
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
