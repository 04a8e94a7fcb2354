"""``jupytunnel sync``: rsync between a local folder and the profile's remote, over its ssh.

rsync always rides an ssh master: the tunnel's live one when the profile is connected (no
new login, no second 2FA prompt), else a master opened for this sync only. The same master
first runs one small remote check (``preflight_script``): the remote ``$HOME``, rsync there,
the folder. So a sync costs one login at most, and what is missing is said in one line.

Remote paths: ``~`` and ``~/...`` are the remote ``$HOME`` (as for ``workdir``), a relative
path is relative to it too, an absolute one stays. jupytunnel joins them to the home the
check printed and hands rsync an absolute path with ``-s`` (``--secluded-args``): the names
travel in rsync's protocol, never through the remote shell, so spaces, quotes and unicode
arrive as typed, whatever rsync's version or the login shell.

Everything here but ``sync`` is pure.
"""

from __future__ import annotations

import os
import re
import shlex
import time
from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

from jupytunnel.errors import InterruptError, JupytunnelError, UsageError
from jupytunnel.profiles import Profile, remote_path_problem

Direction = Literal["push", "pull"]
# --partial-dir, not plain --partial: a partial file left in place would carry a new mtime,
# and --update would then skip it on the rerun, keeping the truncated copy. In a folder of
# its own it is picked up by the next run (rsync excludes the folder from the transfer and
# from --delete by itself, the path being relative).
PARTIAL_DIR = ".rsync-partial"
# rsync --timeout: give up when no data moves for this long. The transfer as a whole has no
# limit (200 GB take what they take); ssh's ServerAlive probes on the master (30 s x 3) end a
# dead connection sooner, this ends a remote rsync that hangs (a stuck network filesystem).
IO_TIMEOUT = 600
LOCAL_MIN = (3, 1)  # --info=progress2
REMOTE_MIN = (3, 0)  # -s (--secluded-args, once called --protect-args)
MARK = "==jupytunnel-sync=="
INSTALL_HINT = "Debian/Ubuntu: apt-get install rsync, Fedora/RHEL: dnf install rsync"

RSYNC_INTERRUPTED = 20  # rsync: "Received SIGUSR1 or SIGINT"
RSYNC_VANISHED = 24  # rsync: "Partial transfer due to vanished source files"
RSYNC_TIMEOUT = 30  # rsync: "Timeout in data send/receive"
RSYNC_NOT_FOUND = 127  # the remote shell could not find rsync
_MEANINGS = {
    1: "syntax or usage error",
    2: "protocol incompatibility",
    3: "errors selecting input/output files, dirs",
    5: "error starting client-server protocol",
    10: "error in socket I/O",
    11: "error in file I/O",
    12: "error in rsync protocol data stream",
    23: "partial transfer due to error",
    RSYNC_VANISHED: "some source files vanished",
    RSYNC_TIMEOUT: "timeout in data send/receive",
    255: "ssh failed",
}


# --- folders ------------------------------------------------------------------------------


class Folders(NamedTuple):
    local: str  # absolute local folder
    remote: str  # as given: "~", "~/x", "/abs", or relative to the remote home


def choose_folders(profile: Profile, local: str | None, remote: str | None, *, cwd: str) -> Folders:
    """LOCAL: the argument, else the profile's ``sync.local``, else the current folder.
    REMOTE: the argument, else ``sync.remote`` (unless LOCAL was given, which it does not
    pair with), else the folder of the same name under the profile's ``workdir``."""
    settings = profile.sync
    chosen = local if local is not None else settings.local if settings.local is not None else cwd
    if not chosen:
        raise UsageError("LOCAL: an empty path")
    local_abs = os.path.normpath(os.path.join(cwd, os.path.expanduser(chosen)))
    if remote is None:
        remote = settings.remote if local is None and settings.remote is not None else None
    if remote is None:
        remote = default_remote(profile.workdir, local_abs)
    problem = remote_path_problem(remote)
    if problem:
        raise UsageError(f"REMOTE {remote!r}: {problem}")
    return Folders(local_abs, remote.rstrip("/") or "/")


def default_remote(workdir: str, local_abs: str) -> str:
    name = os.path.basename(local_abs.rstrip("/"))
    if not name:
        raise UsageError("the local folder is /: name the REMOTE folder")
    return f"{workdir.rstrip('/')}/{name}"


def home_relative(remote: str) -> str | None:
    """The part of ``remote`` below the remote home ("" for the home), None if absolute."""
    if remote == "~":
        return ""
    if remote.startswith("~/"):
        return remote[2:].strip("/")
    if remote.startswith("/"):
        return None
    return remote.strip("/")


def remote_expr(remote: str) -> str:
    """``remote`` for the remote shell: quoted, with the home as ``"$HOME"``."""
    rest = home_relative(remote)
    if rest is None:
        return shlex.quote(remote)
    return '"$HOME"' + (f"/{shlex.quote(rest)}" if rest else "")


def absolute_remote(remote: str, home: str) -> str:
    rest = home_relative(remote)
    if rest is None:
        return remote
    base = home.rstrip("/")
    return f"{base}/{rest}" if rest else base or "/"


def rsync_host(host: str) -> str:
    """rsync reads ``HOST:PATH``; an IPv6 address goes in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


# --- commands -----------------------------------------------------------------------------


def ssh_command(ssh_argv: Sequence[str]) -> str:
    """The ``-e`` value. rsync splits it on spaces and honours single and double quotes (not
    backslashes), which is all ``shlex.join`` ever uses."""
    return shlex.join(ssh_argv)


def rsync_argv(
    *,
    rsync: str,
    ssh: Sequence[str],
    source: str,
    dest: str,
    delete: bool = False,
    exclude: Sequence[str] = (),
    dry_run: bool = False,
    progress: bool = False,
    io_timeout: int = IO_TIMEOUT,
) -> list[str]:
    """The whole rsync command. ``source`` and ``dest`` end in "/": folder contents to folder
    contents, whichever way. ``-8``: names in rsync's listing as they are, not \\#ooo."""
    argv = [rsync, "-a", "-s", "-8", "--update", f"--partial-dir={PARTIAL_DIR}", "--stats", f"--timeout={io_timeout}"]
    if delete:
        argv.append("--delete")
    argv += [f"--exclude={pattern}" for pattern in exclude]
    if dry_run:
        argv += ["--dry-run", "--itemize-changes"]
    if progress:
        argv.append("--info=progress2")
    return [*argv, "-e", ssh_command(ssh), source, dest]


def endpoints(direction: Direction, *, local: str, host: str, remote_path: str) -> tuple[str, str]:
    here = local.rstrip("/") + "/"
    there = f"{rsync_host(host)}:{remote_path.rstrip('/')}/"
    return (here, there) if direction == "push" else (there, here)


# --- the remote check ---------------------------------------------------------------------


def preflight_script(remote: str, *, direction: Direction, create: bool) -> str:
    """POSIX sh: the remote home, rsync there, and the folder (made for a push, unless
    ``create`` is off for a dry run; it must be there for a pull). Output lines start with MARK."""
    say = f"printf '{MARK} %s %s\\n'"
    path = remote_expr(remote)
    version = '"$(rsync --version 2>/dev/null | head -n 1)"'
    lines = [
        f'{say} home "$HOME"',
        f"if command -v rsync >/dev/null 2>&1; then {say} rsync {version}; else {say} rsync-missing -; exit 0; fi",
    ]
    if direction == "pull":
        lines.append(
            f"if [ -d {path} ]; then :; elif [ -e {path} ]; then {say} not-a-folder -; else {say} missing -; fi"
        )
    elif create:
        lines.append(f'[ -d {path} ] || m=$(mkdir -p -- {path} 2>&1) || {say} mkdir-failed "$m"')
    else:
        lines.append(f"[ ! -e {path} ] || [ -d {path} ] || {say} not-a-folder -")
    return "\n".join(lines) + "\n"


class Remote(NamedTuple):
    home: str
    path: str  # absolute
    rsync: str  # its version line


_VERSION_RE = re.compile(r"rsync\s+version\s+v?(\d+)\.(\d+)")


def parse_rsync_version(text: str) -> tuple[int, int] | None:
    """``rsync --version``: "rsync  version 3.2.7  protocol version 31"; macOS's openrsync
    says "rsync version 2.6.9 compatible"."""
    found = _VERSION_RE.search(text)
    return (int(found.group(1)), int(found.group(2))) if found else None


def check_preflight(stdout: str, *, remote: str, host: str, why: str) -> Remote:
    """The preflight's findings, or the one-line error they call for."""
    from jupytunnel.remote import markers

    m = markers(stdout, MARK)
    if "home" not in m:
        raise JupytunnelError(
            f"logged in to {host}, but the remote check failed: {why} "
            "(jupytunnel needs a POSIX login shell there: sh, bash, zsh, ksh)"
        )
    home = m["home"]
    if not home.startswith("/"):
        raise JupytunnelError(f"the remote $HOME on {host} is {home!r}, not an absolute path")
    if "rsync-missing" in m:
        raise JupytunnelError(f"rsync is not installed on {host} (not on its PATH): install it there ({INSTALL_HINT})")
    version = parse_rsync_version(m.get("rsync", ""))
    if version is not None and version < REMOTE_MIN:
        raise JupytunnelError(f"rsync on {host} is too old ({m['rsync'].strip()}): sync needs rsync >= 3.0 there")
    path = absolute_remote(remote, home)
    shown = remote if remote == path else f"{remote} ({path})"
    if "missing" in m:
        raise JupytunnelError(f"remote folder {shown} does not exist on {host}")
    if "not-a-folder" in m:
        raise JupytunnelError(f"remote {shown} on {host} is not a folder")
    if "mkdir-failed" in m:
        raise JupytunnelError(f"cannot create remote folder {shown} on {host}: {m['mkdir-failed'].strip()}")
    return Remote(home, path, m.get("rsync", "").strip())


# --- rsync's output -----------------------------------------------------------------------


class Stats(NamedTuple):
    files: int  # regular files transferred
    total_files: int  # every file, folder and link rsync looked at
    created: int
    deleted: int
    total_size: int
    transferred_size: int
    bytes_sent: int
    bytes_received: int


_STATS_KEYS = {
    "Number of files": "total_files",
    "Number of created files": "created",
    "Number of deleted files": "deleted",
    "Number of regular files transferred": "files",
    "Total file size": "total_size",
    "Total transferred file size": "transferred_size",
    "Total bytes sent": "bytes_sent",
    "Total bytes received": "bytes_received",
}
# rsync >= 3.1 groups digits with "," (or "." where the locale's decimal point is ",").
_NUMBER_RE = re.compile(r"\s*(\d[\d,.]*)")
STATS_START = "Number of files:"


def parse_stats(text: str) -> Stats | None:
    """``--stats`` output; None when it is incomplete (rsync failed before the end)."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        field = _STATS_KEYS.get(key.strip())
        number = _NUMBER_RE.match(rest) if sep and field else None
        if field and number:
            found.setdefault(field, int(re.sub(r"[,.]", "", number.group(1))))
    if "bytes_sent" not in found or "bytes_received" not in found:
        return None
    defaults = dict.fromkeys(Stats._fields, 0)
    return Stats(**{**defaults, **found})


# One line of ``--itemize-changes``: "YXcstpoguax NAME" or "*deleting   NAME".
_ITEM_RE = re.compile(r"^(?:\*deleting +|[<>ch.][fdLDS][^ ]{9} )")


def is_change(line: str) -> bool:
    return _ITEM_RE.match(line) is not None


_LINE_END_RE = re.compile(rb"[\r\n]")


class OutputSplitter:
    """rsync's stdout, line by line ("\\r" ends a progress line, "\\n" any other): passed to
    ``echo`` until the ``--stats`` block begins, kept for parsing."""

    def __init__(self, echo: Callable[[str], None] | None, *, blank_lines: bool) -> None:
        self.echo = echo
        self.blank_lines = blank_lines
        self.pending = b""
        self.lines: list[str] = []
        self.stats: list[str] = []

    def feed(self, data: bytes) -> None:
        buf = self.pending + data
        start = 0
        for end in _LINE_END_RE.finditer(buf):
            self._line(buf[start : end.start()].decode(errors="replace"), end.group().decode())
            start = end.end()
        self.pending = buf[start:]

    def close(self) -> None:
        if self.pending:
            self._line(self.pending.decode(errors="replace"), "\n")
            self.pending = b""

    def _line(self, text: str, end: str) -> None:
        if self.stats or text.startswith(STATS_START):
            self.stats.append(text)  # from its first line on, the stats block is for us only
            return
        if end == "\n" and text:
            self.lines.append(text)
        if self.echo is not None and (text or end == "\r" or self.blank_lines):
            self.echo(text + end)

    @property
    def changes(self) -> list[str]:
        return [line for line in self.lines if is_change(line)]


class Tail:
    """The last ``limit`` bytes of a stream (rsync's stderr), for the error message."""

    def __init__(self, limit: int = 65536) -> None:
        self.limit = limit
        self.data = b""

    def feed(self, data: bytes) -> None:
        self.data = (self.data + data)[-self.limit :]

    @property
    def text(self) -> str:
        return self.data.decode(errors="replace")


def rsync_message(stderr: str) -> str:
    """rsync's and ssh's own explanation in one line, without rsync's "(code N) at io.c(…)" trailer."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith("rsync error: ")]
    if not lines:
        lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return " / ".join(lines[-3:]) if lines else "no message from rsync"


_NOT_FOUND_RE = re.compile(r"rsync: (?:command )?not found|rsync: No such file or directory|command not found: rsync")


def failure(returncode: int, stderr: str, *, host: str) -> JupytunnelError:
    """The one-line error for an rsync that exited ``returncode``."""
    if returncode == RSYNC_NOT_FOUND or _NOT_FOUND_RE.search(stderr):
        return JupytunnelError(f"rsync is not installed on {host} (not on its PATH): install it there ({INSTALL_HINT})")
    if returncode == RSYNC_TIMEOUT:
        return JupytunnelError(
            f"rsync gave up: no data moved for {IO_TIMEOUT} s ({rsync_message(stderr)}); "
            "run the same command again to resume"
        )
    meaning = _MEANINGS.get(returncode, "failed")
    return JupytunnelError(f"rsync with {host} failed (exit {returncode}, {meaning}): {rsync_message(stderr)}")


# --- the command --------------------------------------------------------------------------


class SyncResult(NamedTuple):
    profile: str
    direction: Direction
    local: str
    host: str
    remote_path: str
    dry_run: bool
    through_tunnel: bool
    stats: Stats | None
    seconds: float
    changes: list[str]
    warnings: str

    def to_dict(self) -> dict[str, object]:
        stats = self.stats._asdict() if self.stats else dict.fromkeys(Stats._fields)
        out: dict[str, object] = {
            "profile": self.profile,
            "direction": self.direction,
            "local": self.local,
            "remote": f"{rsync_host(self.host)}:{self.remote_path}",
            "dry_run": self.dry_run,
            "through_tunnel": self.through_tunnel,
            **stats,
            "seconds": round(self.seconds, 3),
        }
        if self.dry_run:
            out["changes"] = self.changes
        return out


def check_local_rsync(rsync: str, output: str) -> None:
    """``output``: what ``rsync --version`` printed."""
    version = parse_rsync_version(output)
    if version is None or version < LOCAL_MIN:
        first = (output.strip().splitlines() or ["no version"])[0]
        raise JupytunnelError(
            f"{rsync} is not rsync >= 3.1 ({first}): "
            f"install a current rsync ({INSTALL_HINT}, macOS: brew install rsync)"
        )


def check_local_folder(local: str, *, direction: Direction) -> None:
    if os.path.isdir(local):
        return
    if os.path.exists(local):
        raise JupytunnelError(f"local {local} is not a folder")
    if direction == "push":
        raise JupytunnelError(f"local folder {local} does not exist")


def sync(
    profile: Profile,
    *,
    local: str | None = None,
    remote: str | None = None,
    pull: bool = False,
    delete: bool = False,
    exclude: Sequence[str] = (),
    dry_run: bool = False,
    echo: Callable[[str], None] | None = None,
    progress: bool = False,
    timeout: float = 30.0,
    cwd: str | None = None,
) -> SyncResult:
    """Push (or ``pull``) LOCAL to/from REMOTE; see the module's docstring.

    ``dry_run``: rsync's own ``--dry-run --itemize-changes`` (nothing changes, not even the
    remote folder is made). ``echo``: where rsync's listing or progress lines go as they come.
    ``timeout``: for the login and the remote check; the transfer is bounded by IO_TIMEOUT.
    """
    from jupytunnel import runner
    from jupytunnel.ssh import master

    direction: Direction = "pull" if pull else "push"
    folders = choose_folders(profile, local, remote, cwd=cwd if cwd is not None else os.getcwd())
    check_local_folder(folders.local, direction=direction)
    rsync = runner.rsync_binary()
    version = runner.Started([rsync, "--version"])  # read while ssh shakes hands
    script = preflight_script(folders.remote, direction=direction, create=not dry_run)
    try:
        with master.session(profile, script, timeout=timeout) as (m, check, through_tunnel):
            check_local_rsync(rsync, version.result(timeout=10).stdout)
            if check.returncode == master.SSH_FAILED and not check.stdout:  # the live master's ssh failed
                raise JupytunnelError(
                    f"ssh to {profile.host} failed (exit {check.returncode}): {master.ssh_message(check.stderr)}"
                )
            found = check_preflight(
                check.stdout,
                remote=folders.remote,
                host=profile.host,
                why=f"exit {check.returncode}: {master.ssh_message(check.stderr)}",
            )
            if direction == "pull" and not dry_run:
                os.makedirs(folders.local, exist_ok=True)
            source, dest = endpoints(direction, local=folders.local, host=profile.host, remote_path=found.path)
            argv = rsync_argv(
                rsync=rsync,
                ssh=m.mux_argv(),
                source=source,
                dest=dest,
                delete=delete,
                exclude=(*profile.sync.exclude, *exclude),
                dry_run=dry_run,
                progress=progress,
            )
            out = OutputSplitter(echo, blank_lines=progress)
            err = Tail()
            start = time.monotonic()
            ran = runner.run_relayed(argv, on_stdout=out.feed, on_stderr=err.feed)
            seconds = time.monotonic() - start
            out.close()
    finally:
        version.kill()
    if ran.interrupted or ran.returncode == RSYNC_INTERRUPTED:
        kept = f"partly sent files are kept in {PARTIAL_DIR} on the receiving side; " if not dry_run else ""
        raise InterruptError(f"interrupted; {kept}run the same command again to resume")
    if ran.returncode not in (0, RSYNC_VANISHED):
        raise failure(ran.returncode, err.text, host=profile.host)
    return SyncResult(
        profile=profile.name,
        direction=direction,
        local=folders.local,
        host=profile.host,
        remote_path=found.path,
        dry_run=dry_run,
        through_tunnel=through_tunnel,
        stats=parse_stats("\n".join(out.stats)),
        seconds=seconds,
        changes=out.changes,
        warnings=err.text.strip(),
    )
