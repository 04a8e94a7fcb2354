"""``jupytunnel connect``: reuse or open the tunnel, open the browser; ``--watch`` keeps it up.

Plain values in (the option values parsed by ``jupytunnel.cli.parse``), data out; what is
printed is ``jupytunnel.cli.render``'s business. In a dry run (the runner's mode) the same code
runs and records its commands.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from jupytunnel.errors import JupytunnelError

if TYPE_CHECKING:
    from pathlib import Path

    from jupytunnel.hosts import Destination
    from jupytunnel.profiles import Profile
    from jupytunnel.tunnel import Connected, LocalPort

WATCH_INTERVAL = 2.0
MAX_BACKOFF = 30.0
DEFAULT_TIMEOUT = 30.0
SLURM_READY_WAIT = 120.0  # from RUNNING to a server that answers (the job's Jupyter start)


def default_timeout(profile: Profile) -> float:
    if profile.launcher == "slurm":
        return profile.slurm.wait + SLURM_READY_WAIT
    return DEFAULT_TIMEOUT


class Outcome(NamedTuple):
    """What ``connect`` did, for the CLI to say."""

    profile: Profile
    connected: Connected | None  # None: a dry run that could not go past the server's discovery
    dest: Destination | None = None  # NAME was a host, not a profile: connected with the defaults
    saved: Path | None = None  # --save: where that host's profile was written
    timeout: float = DEFAULT_TIMEOUT  # the bound used (--watch reconnects within it too)


def _quiet(*_: object) -> None:
    """No spinner, nothing said."""


def connect(
    name: str,
    *,
    local_port: LocalPort | None = None,
    timeout: float | None = None,
    start_server: bool = True,
    browser: bool = True,
    save: bool = False,
    tick: Callable[..., None] = _quiet,
    say: Callable[[str], None] = _quiet,
) -> Outcome:
    """Reuse or open the tunnel of ``name``; open the browser if the profile says so.

    ``name`` is a profile, or (a first run) a host the user's ssh reaches: it is connected
    with the default profile values, and ``save`` keeps it as a profile.
    ``timeout``: the whole command's bound; None: 30 s, or for a Slurm profile the time its
    job may wait in the queue (``[slurm] wait``) plus the time Jupyter may take to start.
    ``tick``: called while a server starts; ``say``: a line for the user (stderr).
    """
    from jupytunnel import hosts, runner, tunnel

    dry = runner.dry_run()
    profile, dest = hosts.profile_or_host(name, check=not dry)
    bound = timeout if timeout is not None else default_timeout(profile)
    if dest is not None and dry:
        runner.note(f"{name!r} is no profile: as an ssh host with the default profile values, if ssh reaches it")
    try:
        result = tunnel.connect(
            profile, local_port=local_port, timeout=bound, start_server=start_server, tick=tick, say=say
        )
    except tunnel.DryRunEndedError:
        return Outcome(profile, None, dest, timeout=bound)
    saved = None
    if dest is not None and save:
        saved = _save_host(dest)
    elif dest is None and save:
        say(f"note: {name!r} is a profile already; nothing to save")
    if profile.browser and browser:
        from jupytunnel import browser as opener

        opener.open_url(result.record.url, profile.name)
    return Outcome(profile, result, dest, saved, bound)


def _save_host(dest: Destination) -> Path:
    from jupytunnel import hosts, paths, profiles, runner

    profile = hosts.host_profile(dest, with_defaults=False)
    if runner.dry_run():
        where = paths.profiles_dir() / f"{profile.name}.toml"
        runner.note(f"save the profile {profile.name!r} ({where})")
        return where
    return profiles.save(profile)


def watch(
    profile: Profile,
    local_port: LocalPort | None,
    timeout: float,
    *,
    start_server: bool,
    url: str,
    say: Callable[[str], None],
    show_url: Callable[[str], None],
) -> None:
    """Keep the tunnel up; say each change of state once (down, up again), not each retry;
    ``show_url`` a URL that changed (another port, a restarted server).

    Ctrl-C closes the tunnel and goes on up (exit 130, as Ctrl-C does in every command).
    """
    from jupytunnel import runner, state, tunnel

    if runner.dry_run():
        runner.note("--watch: then every 2 s, the tunnel's state; connect again when it is not up")
        return
    say(f"watching {profile.name}; Ctrl-C closes the tunnel")
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
                say(f"{profile.name}: {tunnel.watch_message(profile, current, start_server=start_server)}")
            try:
                again = tunnel.connect(profile, local_port=local_port, timeout=timeout, start_server=start_server)
            except JupytunnelError as exc:
                if str(exc) != said:  # a new reason is news; the same one again is not
                    said = str(exc)
                    say(f"{profile.name}: still down: {exc}; retrying")
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            say(f"{profile.name}: up again after {time.monotonic() - down_since:.0f} s")
            if again.record.url != url:  # another port (auto) or a restarted server
                url = again.record.url
                show_url(url)
            down_since, backoff, said = None, 1.0, ""
    except KeyboardInterrupt:
        from jupytunnel.commands.disconnect import disconnect

        for line in disconnect(profile.name):
            say(line)
        raise
