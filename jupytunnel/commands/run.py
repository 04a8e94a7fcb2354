"""``jupytunnel run NAME NOTEBOOK``, ``run fetch|logs|cancel ID`` and ``runs``: plain functions
over ``jupytunnel.runs``, each through the profile's live master or a temporary one.

A dry run is the same code (see ``jupytunnel.runs``): the master's commands and the remote
scripts are recorded, nothing is written here or there.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from jupytunnel.errors import EXIT_INTERRUPTED, JupytunnelError

if TYPE_CHECKING:
    from jupytunnel.profiles import Profile
    from jupytunnel.runs import RunRecord

MASTER_TIMEOUT = 60.0
WAIT_TIMEOUT = 86400.0


class StoppedFollowingError(JupytunnelError):
    """Ctrl-C while following a run: the following ends, the run goes on. Exit code 130."""

    exit_code = EXIT_INTERRUPTED


class Outcome(NamedTuple):
    """What ``run`` did: the run as last seen, and (``wait``) what was fetched of it."""

    record: RunRecord
    ended: bool  # followed to its end (``wait``)
    fetched: tuple[Path, Path] | None = None  # the executed notebook and the log
    fetch_error: str | None = None  # why nothing was fetched of an ended run


def run(
    name: str,
    notebook: Path,
    *,
    kernel: str | None = None,
    wait: bool = False,
    timeout: float = WAIT_TIMEOUT,
    fetch_to: Path | None = None,
    on_start: Callable[[RunRecord], None] | None = None,
    tick: Callable[[RunRecord], None] | None = None,
) -> Outcome:
    """Start ``notebook`` on the profile's remote, detached; ``wait``: follow it to its end
    (``tick`` at each look, at most ``timeout`` s) and fetch the result into ``fetch_to``
    (the current folder). A bad notebook or kernel name is a ``UsageError`` before anything
    runs. The run's failure is no error here: ``Outcome.record.state`` says it."""
    from jupytunnel import profiles, runner, runs
    from jupytunnel.ssh import master

    profile = profiles.load(name)
    runs.read_notebook(notebook)  # a bad notebook is exit 2, even in a dry run
    if kernel is not None:
        runs.check_kernel_name(kernel)
    with master.temporary_master(profile, timeout=MASTER_TIMEOUT) as m:
        record = runs.start(m, notebook, kernel=kernel)
        if not wait:
            return Outcome(record, ended=False)
        if on_start is not None:
            on_start(record)
        try:
            final = runs.wait(m, record, timeout=timeout, tick=tick or (lambda _: None))
        except KeyboardInterrupt:
            raise StoppedFollowingError(
                f"stopped following run {record.id}; it keeps running (jupytunnel run logs {record.id} --follow)"
            ) from None
        except JupytunnelError as exc:  # the connection dropped: only the following ends
            raise JupytunnelError(f"{exc}; run {record.id} keeps running (jupytunnel runs {name})") from None
        if final is None:
            if runner.dry_run():
                return Outcome(record, ended=False)
            raise JupytunnelError(
                f"run {record.id} is still running after {timeout:g} s; it goes on "
                f"(jupytunnel runs {name}, jupytunnel run fetch {record.id})"
            )
        try:
            fetched = runs.fetch(m, final, fetch_to or Path.cwd())
        except JupytunnelError as exc:
            return Outcome(final, ended=True, fetch_error=str(exc))
    return Outcome(final, ended=True, fetched=fetched)


class Fetched(NamedTuple):
    record: RunRecord
    notebook: Path
    log: Path


def fetch(run_id: str, *, to: Path | None = None) -> Fetched:
    """Download a finished run's executed notebook and log into ``to`` (the current folder)."""
    from jupytunnel import runs
    from jupytunnel.ssh import master

    record = runs.find(run_id)
    with master.temporary_master(_profile_of(record), timeout=MASTER_TIMEOUT) as m:
        record = runs.current(m, record)
        nb_path, log_path = runs.fetch(m, record, to if to is not None else Path.cwd())
    return Fetched(record, nb_path, log_path)


def logs(run_id: str, *, lines: int = 50) -> str:
    """The end of the run's log on the remote."""
    from jupytunnel import runs
    from jupytunnel.ssh import master

    record = runs.find(run_id)
    with master.temporary_master(_profile_of(record), timeout=MASTER_TIMEOUT) as m:
        return runs.logs(m, record, lines)


def follow(run_id: str, write: Callable[[str], None]) -> RunRecord:
    """Pass the run's log to ``write`` as it grows, until the run ends; Ctrl-C stops following
    (``StoppedFollowingError``), never the run."""
    from jupytunnel import runs
    from jupytunnel.ssh import master

    record = runs.find(run_id)
    with master.temporary_master(_profile_of(record), timeout=MASTER_TIMEOUT) as m:
        try:
            return runs.follow(m, record, write)
        except KeyboardInterrupt:
            raise StoppedFollowingError(f"stopped following run {record.id}; it keeps running") from None


class Cancelled(NamedTuple):
    record: RunRecord
    already: bool  # it had ended before: nothing was stopped


def cancel(run_id: str) -> Cancelled:
    """Stop a running run (verified on the remote); a run that is still active afterwards is
    a ``JupytunnelError``."""
    from jupytunnel import runner, runs
    from jupytunnel.remote import run_scripts
    from jupytunnel.ssh import master

    record = runs.find(run_id)
    profile = _profile_of(record)
    with master.temporary_master(profile, timeout=MASTER_TIMEOUT) as m:
        before = runs.current(m, record)
        if before.state not in run_scripts.ACTIVE_STATES:
            return Cancelled(before, already=True)
        after = runs.cancel(m, before)
    if after.state in run_scripts.ACTIVE_STATES and not runner.dry_run():
        raise JupytunnelError(
            f"run {after.id} is still {after.state} on {profile.host}; see 'jupytunnel run logs {after.id}'"
        )
    return Cancelled(after, already=False)


def list_runs(name: str | None = None, *, warn: Callable[[str], None] | None = None) -> list[RunRecord]:
    """With ``name``: every run on the profile's remote (from any laptop). Without: the runs
    seen before, the remotes of those still running asked again (``warn`` is told about
    each remote that did not answer; what was seen last is shown for it). Sorted by id."""
    from jupytunnel import profiles, runs
    from jupytunnel.ssh import master

    if name is not None:
        with master.temporary_master(profiles.load(name), timeout=MASTER_TIMEOUT) as m:
            records = runs.refresh(m)
    else:
        for pname in list(runs.profiles_to_refresh(runs.load_all())):
            try:
                with master.temporary_master(profiles.load(pname), timeout=MASTER_TIMEOUT) as m:
                    runs.refresh(m)
            except JupytunnelError as exc:  # noqa: PERF203 - one line a remote that did not answer
                if warn is not None:
                    warn(f"{pname}: showing what was seen last: {exc}")
        records = runs.load_all()
    return sorted(records, key=lambda r: r.id)


def _profile_of(record: RunRecord) -> Profile:
    from jupytunnel import profiles

    return profiles.load(record.profile)
