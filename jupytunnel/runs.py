"""Detached notebook runs: start, list, follow, fetch, cancel. Plain functions; the remote
scripts are in ``run_scripts``, how a run is detached in ``run_launchers``.

The truth about a run is on the remote (its ``state.json``), so that another laptop sees it
too; each listing mirrors it into the local state dir (``runs/ID.json``, 0600, atomic), which
``jupytunnel runs`` shows and which maps a run id to its profile.

In a dry run (``runner.dry_run()``) the same functions run: each remote script is recorded
with what the dry run assumes it answered (the runs as last seen here), no local file is
written, and a loop that follows a run stops after its first round.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from jupytunnel import paths, runner
from jupytunnel import state as local_state
from jupytunnel.errors import CommandError, JupytunnelError, UsageError
from jupytunnel.profiles import Profile
from jupytunnel.remote import MARK, run_launchers, run_scripts
from jupytunnel.ssh.master import SSH_FAILED, Master, ssh_message

ROUND_TRIP_TIMEOUT = 30.0
CHECK_TIMEOUT = 120.0  # setup lines (module load) and two Jupyter CLIs
POLL_INTERVAL = 2.0
DEFAULT_KERNEL = "python3"  # what nbclient starts for a notebook that names no kernel


class RunRecord(NamedTuple):
    """One run as we last saw it (the local mirror, and the shape of ``--json``)."""

    id: str
    profile: str
    host: str
    notebook: str
    state: str  # pending (a batch job waiting for its node), running, done, failed, cancelled
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    cell: int | None = None  # the cell running now (1-based, every cell counted)
    cells: int | None = None
    failed_cell: int | None = None  # 1-based, as `cell`
    error: str | None = None
    kernel: str | None = None
    launcher: str = "nohup"
    session: str | None = None
    workdir: str = "~"
    started_by: str | None = None  # the profile that started it (maybe on another laptop)

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.ended_at if self.ended_at is not None else time.time()
        return max(0.0, end - self.started_at)

    @property
    def remote_dir(self) -> str:
        return f"{paths.REMOTE_STATE_DIR}/runs/{self.id}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": local_state.FORMAT, **self._asdict()}
        out["duration"] = self.duration
        out["remote_dir"] = self.remote_dir
        return out

    @classmethod
    def from_json(cls, raw: object) -> RunRecord | None:
        """The run, or None for a mirror file that is damaged or of a format we do not know
        (its id, session and folder go into remote scripts: never trusted blindly)."""
        raw = local_state.current(raw, kind="run")
        if raw is None:
            return None
        try:
            rec = cls(**{k: v for k, v in raw.items() if k in cls._fields})
        except TypeError:
            return None
        if not local_state.well_typed(rec, _TYPES) or not run_scripts.RUN_ID_RE.fullmatch(rec.id):
            return None
        return rec


_NUMBER = (int, float)
_MAYBE_INT = (int, type(None))
_MAYBE_STR = (str, type(None))
_TYPES: dict[str, type | tuple[type, ...]] = {
    "id": str, "profile": str, "host": str, "notebook": str, "state": str,
    "started_at": (*_NUMBER, type(None)), "ended_at": (*_NUMBER, type(None)), "exit_code": _MAYBE_INT,
    "cell": _MAYBE_INT, "cells": _MAYBE_INT, "failed_cell": _MAYBE_INT, "error": _MAYBE_STR, "kernel": _MAYBE_STR,
    "launcher": str, "session": _MAYBE_STR, "workdir": str, "started_by": _MAYBE_STR,
}  # fmt: skip


# --- input ----------------------------------------------------------------------------------


def read_notebook(path: Path) -> tuple[str, dict[str, Any]]:
    """The notebook's text and JSON, checked before anything starts (exit 2 when bad)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such notebook") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the notebook: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        nb = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{path}: not a notebook: invalid JSON ({exc})") from None
    except RecursionError:
        raise UsageError(f"{path}: not a notebook: JSON nested too deeply") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise UsageError(f"{path}: not a notebook: no 'cells' list (nbformat 4 is needed)")
    if nb.get("nbformat") != 4:  # noqa: PLR2004 - the notebook format version
        raise UsageError(f"{path}: nbformat {nb.get('nbformat')!r} is not supported; save it as nbformat 4")
    if not nb["cells"]:
        raise UsageError(f"{path}: the notebook has no cells")
    return text, nb


def notebook_kernel(nb: dict[str, Any]) -> str | None:
    spec = (nb.get("metadata") or {}).get("kernelspec") if isinstance(nb.get("metadata"), dict) else None
    name = spec.get("name") if isinstance(spec, dict) else None
    return name if isinstance(name, str) and name else None


def new_id() -> str:
    """``YYYYMMDD-HHMMSS-xxxx`` (UTC): sorts by start, unique enough for one user."""
    import secrets

    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


def check_kernel_name(kernel: str) -> str:
    import re

    if not re.fullmatch(r"[A-Za-z0-9._-]+", kernel):
        raise UsageError(f"--kernel: not a kernel name: {kernel!r}")
    return kernel


# --- the local mirror -------------------------------------------------------------------------


def mirror_path(run_id: str) -> Path:
    return paths.runs_dir() / f"{run_scripts.check_id(run_id)}.json"


def save(record: RunRecord) -> None:
    """Mirror ``record`` locally (in a dry run: said, not written)."""
    from jupytunnel.fsutil import atomic_write

    if runner.dry_run():
        runner.note(f"write {mirror_path(record.id)}")
        return
    paths.ensure_state_dir(paths.runs_dir())
    atomic_write(mirror_path(record.id), (json.dumps(record.to_json(), indent=2) + "\n").encode())


def load_all() -> list[RunRecord]:
    try:
        names = sorted(os.listdir(paths.runs_dir()))
    except OSError:
        return []
    out = []
    for name in names:
        if not name.endswith(".json") or not run_scripts.RUN_ID_RE.fullmatch(name[:-5]):
            continue
        try:
            rec = RunRecord.from_json(json.loads((paths.runs_dir() / name).read_bytes()))
        except (OSError, ValueError, RecursionError):
            continue
        if rec is not None:
            out.append(rec)
    return out


def find(run_id: str) -> RunRecord:
    """The mirrored run with this id (or this unique prefix of an id)."""
    matches = [r for r in load_all() if r.id.startswith(run_id)] if run_id else []
    exact = [r for r in matches if r.id == run_id]
    if exact or len(matches) == 1:
        return (exact or matches)[0]
    if len(matches) > 1:
        raise UsageError(f"run id {run_id!r} is ambiguous: {', '.join(r.id for r in matches)}")
    raise UsageError(
        f"no run {run_id!r} known here; 'jupytunnel runs NAME' lists the runs on a profile's remote "
        "(and remembers them)"
    )


# --- remote ---------------------------------------------------------------------------------


def _script(
    master: Master,
    script: str,
    *,
    timeout: float,
    stdin_text: str | None = None,
    assume: runner.Assume | None = None,
) -> str:
    """Run a script through the master; ssh's own failure and a marked error become one line."""
    result = _run(master, script, timeout=timeout, stdin_text=stdin_text, assume=assume)
    for line in result.stdout.splitlines():
        if line.startswith(f"{MARK} error "):
            raise JupytunnelError(f"{master.profile.host}: {line[len(MARK) + 7 :]}")
    return result.stdout


def _run(
    master: Master,
    script: str,
    *,
    timeout: float,
    stdin_text: str | None = None,
    assume: runner.Assume | None = None,
) -> runner.Result:
    try:
        result = runner.run(master.remote_argv(script), timeout=timeout, stdin_text=stdin_text, assume=assume)
    except CommandError as exc:
        raise JupytunnelError(f"ssh to {master.profile.host}: {exc}") from None
    if result.returncode == SSH_FAILED:
        raise JupytunnelError(f"ssh to {master.profile.host} failed: {ssh_message(result.stderr)}")
    return result


def _file(master: Master, script: str, *, timeout: float) -> str:
    """A file's text (``cat_script``, ``log_script``): its content is the user's, so only the
    script's exit status tells a missing file, never a marker inside the text."""
    result = _run(master, script, timeout=timeout)
    first = result.stdout.partition("\n")[0]
    if result.returncode == run_scripts.NO_FILE and first.startswith(f"{MARK} error "):
        raise JupytunnelError(f"{master.profile.host}: {first[len(MARK) + 7 :]}")
    if result.returncode != 0:
        raise JupytunnelError(
            f"{master.profile.host}: reading the run's files failed (exit {result.returncode}): "
            f"{ssh_message(result.stderr)}"
        )
    return result.stdout


def check_remote(master: Master, kernel: str) -> None:
    """nbconvert and the kernel must be there before anything is copied or started."""
    profile = master.profile
    says = f"assume nbconvert and the kernel {kernel!r} are installed there"
    stdout = _script(master, run_scripts.check_script(profile), timeout=CHECK_TIMEOUT, assume=runner.Assume(says=says))
    if runner.dry_run():
        return
    found = run_scripts.parse_check(stdout)
    if found.nbconvert is None:
        raise JupytunnelError(
            f"{profile.host}: could not run 'jupyter nbconvert --version' in the profile's environment"
        )
    if kernel not in found.kernels:
        have = ", ".join(found.kernels) or "none"
        raise JupytunnelError(
            f"kernel {kernel!r} is not installed on {profile.host} (kernels there: {have}); "
            "install it there (python -m ipykernel install --user --name NAME) or pass --kernel"
        )


def start(master: Master, notebook: Path, *, kernel: str | None) -> RunRecord:
    """Check the remote, copy the notebook there and start it detached; returns at once."""
    profile = master.profile
    text, nb = read_notebook(notebook)
    if kernel is not None:
        check_kernel_name(kernel)
    check_remote(master, kernel or notebook_kernel(nb) or DEFAULT_KERNEL)
    launcher = run_launchers.for_profile(profile)
    run_id = new_id()
    record = RunRecord(
        id=run_id, profile=profile.name, host=profile.host, notebook=notebook.name, state="running",
        started_at=time.time(), cells=len(nb["cells"]), kernel=kernel or notebook_kernel(nb),
        launcher=launcher.name, session=launcher.session(run_id), workdir=profile.workdir, started_by=profile.name,
    )  # fmt: skip
    meta = {k: v for k, v in record.to_json().items() if k in _META_KEYS}
    script = run_scripts.start_script(profile, run_id, meta=meta, launcher=launcher, kernel=kernel)
    started = runner.Assume(stdout=f"{MARK} started {run_id}\n", says=f"{notebook} goes on stdin; run {run_id} starts")
    stdout = _script(master, script, timeout=ROUND_TRIP_TIMEOUT + 30, stdin_text=text, assume=started)
    if f"{MARK} started {run_id}" not in stdout:
        raise JupytunnelError(f"could not start the run on {profile.host}: no answer from the start script")
    save(record)
    return record


_META_KEYS = ("version", "id", "profile", "host", "notebook", "cells", "kernel", "launcher", "session", "workdir")


def _record(profile: Profile, remote: run_scripts.RemoteRun, old: RunRecord | None) -> RunRecord:
    meta = remote.json_file("meta.json")
    st = remote.json_file("state.json")
    progress = remote.json_file("progress.json")
    err = remote.json_file("error.json")
    state = str(st.get("state") or "running")
    error = None
    failed_cell = None
    if state in run_scripts.ACTIVE_STATES and not remote.alive:
        # The job records the end itself; a job gone without doing so was killed (a reboot).
        state, error = "failed", "the run's job ended without recording a result (killed, or the machine restarted)"
    if state == "failed":
        error = error or remote.setup_error
        if error is None and err:
            failed_cell = _int(err.get("cell"))
            error = str(err.get("ename") or "") or None
    base = old or RunRecord(id=remote.id, profile=profile.name, host=profile.host, notebook="", state=state)
    return base._replace(
        profile=profile.name,
        host=profile.host,
        notebook=str(meta.get("notebook") or base.notebook or "?"),
        state=state if state in (*run_scripts.ACTIVE_STATES, *run_scripts.FINAL_STATES) else "failed",
        started_at=_num(st.get("started_at")) or base.started_at,
        ended_at=_num(st.get("ended_at")),
        exit_code=_int(st.get("exit_code")),
        cell=_int(progress.get("cell")),
        cells=_int(progress.get("cells")) or _int(meta.get("cells")) or base.cells,
        failed_cell=failed_cell if state == "failed" else None,
        error=error if state == "failed" else None,
        kernel=_str(meta.get("kernel"), base.kernel),
        launcher=str(meta.get("launcher") or base.launcher),
        session=_str(meta.get("session"), base.session),
        workdir=str(meta.get("workdir") or base.workdir),
        started_by=_str(meta.get("profile"), base.started_by),
    )


def _str(value: object, default: str | None) -> str | None:
    return value if isinstance(value, str) else default


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def refresh(master: Master, run_id: str | None = None) -> list[RunRecord]:
    """Every run on the profile's remote (or one), mirrored locally under this profile's name,
    the one that reaches it from here: runs are per remote user, whichever profile or laptop
    started them (``started_by``)."""
    if runner.dry_run():
        says = "assume the runs there are as last seen here (nothing is mirrored in a dry run)"
        _script(master, run_scripts.list_script(run_id), timeout=ROUND_TRIP_TIMEOUT, assume=runner.Assume(says=says))
        seen = [r for r in load_all() if r.profile == master.profile.name and run_id in (None, r.id)]
        return sorted(seen, key=lambda r: r.id)
    stdout = _script(master, run_scripts.list_script(run_id), timeout=ROUND_TRIP_TIMEOUT)
    remote_runs, complete = run_scripts.parse_list(stdout)
    if not complete:
        raise JupytunnelError(f"the list of runs on {master.profile.host} was cut short")
    known = {r.id: r for r in load_all()}
    out = []
    for remote in remote_runs:
        rec = _record(master.profile, remote, known.get(remote.id))
        if rec.state == "failed" and rec.error is None and rec.exit_code not in (None, 0):
            rec = rec._replace(error=_error_from_log(master, rec.id))
        if known.get(remote.id) != rec:
            save(rec)
        out.append(rec)
    return out


def _error_from_log(master: Master, run_id: str) -> str | None:
    """For a remote nbclient too old for our hooks: the exception name nbconvert printed."""
    try:
        text = _file(master, run_scripts.log_script(run_id, lines=200), timeout=ROUND_TRIP_TIMEOUT)
    except JupytunnelError:
        return None
    return run_scripts.error_name_from_log(text)


def current(master: Master, record: RunRecord) -> RunRecord:
    found = refresh(master, record.id)
    if not found and runner.dry_run():
        return record  # a run this dry run "started": mirrored nowhere
    if not found:
        raise JupytunnelError(f"run {record.id} is not on {master.profile.host} any more")
    return found[0]


def cancel(master: Master, record: RunRecord) -> RunRecord:
    """Stop a running run, verified on the remote (``run_scripts.cancel_script``)."""
    launcher = launcher_named(record.launcher)
    done = runner.Assume(stdout=f"{MARK} final \n", says=f"assume run {record.id} stops")
    out = _script(
        master, run_scripts.cancel_script(record.id, launcher=launcher), timeout=ROUND_TRIP_TIMEOUT + 30, assume=done
    )
    if f"{MARK} final " not in out:
        raise JupytunnelError(f"could not cancel run {record.id} on {master.profile.host}: the cancel script failed")
    return current(master, record)


def launcher_named(name: str) -> run_launchers.RunLauncher:
    """The launcher the run was started with (the profile may have changed since)."""
    launchers: dict[str, run_launchers.RunLauncher] = {
        "tmux": run_launchers.TmuxRun(),
        "screen": run_launchers.ScreenRun(),
        "slurm": run_launchers.SlurmRun(),  # its cancel is scancel, by the job id in the run folder
    }
    return launchers.get(name) or run_launchers.NohupRun()


def fetch(master: Master, record: RunRecord, to: Path) -> tuple[Path, Path]:
    """Download the executed notebook (outputs, and the error of a failed run) and the log."""
    if record.state in run_scripts.ACTIVE_STATES and runner.dry_run():
        runner.note(f"assume run {record.id} has ended (it was {record.state} when last seen here)")
    elif record.state in run_scripts.ACTIVE_STATES:
        raise JupytunnelError(
            f"run {record.id} is still {record.state}; 'jupytunnel run logs {record.id}' shows how far it is"
        )
    try:
        if not runner.dry_run():
            to.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JupytunnelError(f"cannot create {to}: {exc.strerror}") from None
    stem = record.notebook.removesuffix(".ipynb")
    nb_path = to / f"{stem}.{record.id}.ipynb"
    log_path = to / f"{stem}.{record.id}.log"
    log = _file(master, run_scripts.cat_script(record.id, "run.log"), timeout=ROUND_TRIP_TIMEOUT)
    try:
        nb = _file(master, run_scripts.cat_script(record.id, "executed.ipynb"), timeout=ROUND_TRIP_TIMEOUT + 60)
    except JupytunnelError:
        _write_user_file(log_path, log)
        raise JupytunnelError(
            f"run {record.id} ({record.state}) left no executed notebook (it stopped before its first cell ran); "
            f"its log is in {log_path}"
        ) from None
    _write_user_file(nb_path, nb)
    _write_user_file(log_path, log)
    return nb_path, log_path


def _write_user_file(path: Path, text: str) -> None:
    from jupytunnel.fsutil import atomic_write

    if runner.dry_run():
        runner.note(f"write {path}")
        return
    umask = os.umask(0o077)
    os.umask(umask)
    atomic_write(path, text.encode(), mode=0o666 & ~umask)


def logs(master: Master, record: RunRecord, lines: int) -> str:
    return _file(master, run_scripts.log_script(record.id, lines=lines), timeout=ROUND_TRIP_TIMEOUT)


def follow(master: Master, record: RunRecord, write: Callable[[str], None]) -> RunRecord:
    """Print the log as it grows until the run ends (Ctrl-C stops following, not the run)."""
    offset = 0
    while True:
        rec = current(master, record)  # before the read: nothing written before the end is missed
        chunk = _file(master, run_scripts.log_script(record.id, offset=offset), timeout=ROUND_TRIP_TIMEOUT)
        if chunk:
            write(chunk)
            offset += len(chunk.encode())
        if rec.state not in run_scripts.ACTIVE_STATES:
            return rec
        if runner.dry_run():
            runner.note(f"the same every {POLL_INTERVAL:g} s until the run ends")
            return rec
        time.sleep(POLL_INTERVAL)


def wait(master: Master, record: RunRecord, *, timeout: float, tick: Callable[[RunRecord], None]) -> RunRecord | None:
    """Follow a run until it ends (the record) or ``timeout`` passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        rec = current(master, record)
        tick(rec)
        if rec.state not in run_scripts.ACTIVE_STATES:
            return rec
        if runner.dry_run():
            runner.note(f"the same every {POLL_INTERVAL:g} s until the run ends (at most {timeout:g} s), then fetch it")
            return None
        if time.monotonic() + POLL_INTERVAL > deadline:
            return None
        time.sleep(POLL_INTERVAL)


def profiles_to_refresh(records: list[RunRecord]) -> Iterator[str]:
    """Without a NAME, `runs` asks only the remotes where a run was still running: finished
    runs do not change, and every remote asked may cost a login."""
    seen: set[str] = set()
    for rec in records:
        if rec.state in run_scripts.ACTIVE_STATES and rec.profile not in seen:
            seen.add(rec.profile)
            yield rec.profile
