"""``jupytunnel connect``: reuse or open the tunnel, print the URL, open the browser; ``--watch``."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from jupytunnel.errors import JupytunnelError

if TYPE_CHECKING:
    from jupytunnel.cli.parse import LocalPort
    from jupytunnel.hosts import Destination
    from jupytunnel.profiles import Profile
    from jupytunnel.tunnel import Connected

WATCH_INTERVAL = 2.0
MAX_BACKOFF = 30.0


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
    from jupytunnel.cli.parse import parse_local_port, parse_timeout
    from jupytunnel.cli.render import dry_run_lines

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
        from jupytunnel.cli.render import print_json

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
