"""What runs on the far end. This module: the remote shell scripts every part shares (the
prelude, discovery of running servers, markers) as pure builders, and the parsers for what
they print, and the data they describe (``ServerInfo``, ``Discovery``); ``launchers``,
``host``, ``server``, ``slurm``/``jobs`` and the run scripts build on it. It imports nothing of
theirs: the state files (``jupytunnel.state``) read its types without importing any logic.

Each script is one string for the remote login shell, in POSIX sh (what sh, bash, zsh, ksh
and dash all accept). Every value that comes from a profile is quoted with ``shlex.quote``;
``setup`` lines are shell by definition and go in as written. Output we parse is marked with
``MARK`` so that whatever a user's rc files print cannot be mistaken for it.
"""

from __future__ import annotations

import json
import shlex
from typing import NamedTuple

from jupytunnel.errors import JupytunnelError
from jupytunnel.paths import REMOTE_STATE_DIR, REMOTE_STATE_DIR_SH
from jupytunnel.profiles import Profile

MARK = "==jupytunnel=="
# Unix socket paths must fit sun_path (108 bytes on Linux, 104 on macOS).
MAX_SOCKET_PATH = 103
# stop_script's wait for a server to go, in steps of 0.1 s: jupyter's own stop gets
# TERM_AFTER_STEPS (2 s), then SIGTERM until STOP_STEPS (10 s), then SIGKILL.
STOP_STEP = 0.1
TERM_AFTER_STEPS = 20
STOP_STEPS = 100

# Every script starts with this. zsh, as a login shell, aborts a script on a glob that
# matches nothing (there is rarely an nbserver-*.json) and does not split words; these
# options make it behave as sh. `_jt_is_jupyter PID` is how we check a PID still names a
# Jupyter process before signalling it: PIDs are reused quickly.
# First lines valid in the csh family too: there `set` makes a variable and a marked line says
# so (the first script of every connect is the read-only discovery, so nothing is started in
# a csh); in sh they only set $1, unused at a script's top level.
CSH_GUARD = (
    "# shellcheck disable=SC2121,SC2154\n"  # the `set` and the variable are for csh
    f'set _jt_csh=exit\ntest "$_jt_csh" = exit && echo "{MARK} error csh"\n'
)
# What a script run by a shell we chose (sh, bash) needs: no csh guard, whose `set` would
# clobber the script's $1.
POSIX_PRELUDE = (
    # NO_EQUALS: zsh would take tmux's `-t =NAME` for the path of a command NAME.
    '[ -n "${ZSH_VERSION-}" ] && setopt NULL_GLOB SH_WORD_SPLIT NO_EQUALS 2>/dev/null\n'
    "_jt_cmd() { tr '\\000' ' ' < \"/proc/$1/cmdline\" 2>/dev/null || ps -o args= -p \"$1\" 2>/dev/null; }\n"
    '_jt_is_jupyter() { case "$(_jt_cmd "$1")" in *jupyter*) return 0;; esac; return 1; }\n'
    # A pid file of ours: the PID, its start time (ps lstart: unchanged by exec) and a part of
    # the command line only our server has (its --port or --sock). All must still hold.
    '_jt_ours() { _jt_p=$(sed -n 1p "$1" 2>/dev/null); _jt_s=$(sed -n 2p "$1" 2>/dev/null); '
    '_jt_m=$(sed -n 3p "$1" 2>/dev/null); [ -n "$_jt_p" ] && [ -n "$_jt_s" ] && [ -n "$_jt_m" ] || return 1; '
    '[ "$(ps -o lstart= -p "$_jt_p" 2>/dev/null)" = "$_jt_s" ] || return 1; '
    'case "$(_jt_cmd "$_jt_p")" in *"$_jt_m"*) return 0;; esac; return 1; }\n'
)
PRELUDE = CSH_GUARD + POSIX_PRELUDE


def say(text: str, fd: str = "1") -> str:
    """A marked line for us to parse; printf, because zsh's echo eats backslashes."""
    return f"printf '%s\\n' {shlex.quote(f'{MARK} {text}')} >&{fd}"


# Where jupyter_core puts runtime files: $JUPYTER_RUNTIME_DIR, else <data dir>/runtime, with
# the data dir $JUPYTER_DATA_DIR, else $XDG_DATA_HOME/jupyter or ~/.local/share/jupyter
# (Linux), ~/Library/Jupyter (macOS).
_RUNTIME_DIRS = (
    '"${JUPYTER_RUNTIME_DIR:-}"',
    '"${JUPYTER_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/jupyter}/runtime"',
    '"$HOME/Library/Jupyter/runtime"',
)


class ServerInfo(NamedTuple):
    """One running Jupyter server, from its runtime info file or ``jupyter server list``."""

    pid: int
    port: int | None
    sock: str | None
    base_url: str
    token: str
    root_dir: str
    version: str
    classic: bool
    # A server on another machine than the login node (a Slurm job on a compute node):
    # the address the login node reaches it at, the job and the node. None: the login node.
    host: str | None = None
    job: str | None = None
    node: str | None = None
    # Jupyter asks for a password (its runtime info says so; jupyter_server 2 only says so
    # for the deprecated ServerApp.password, so connect also asks the server itself).
    password: bool = False
    file: str = ""  # the runtime info file it was read from, for messages
    ui: str | None = None  # the page it serves: "lab", "tree" or "" (learned through the tunnel)

    @property
    def where(self) -> str:
        """The server, for messages: its endpoint, its PID and the file its token came from."""
        source = f", runtime file {self.file}" if self.file else ""
        return f"{self.endpoint}, pid {self.pid}{source}"

    @classmethod
    def from_dict(cls, raw: dict[str, object], *, classic: bool = False, file: str = "") -> ServerInfo | None:
        try:
            pid = raw["pid"]
            if not isinstance(pid, int):
                return None
            port = raw.get("port")
            sock = raw.get("sock") or None
            return cls(
                pid=pid,
                port=port if isinstance(port, int) and port > 0 and not sock else None,
                sock=str(sock) if sock else None,
                base_url=str(raw.get("base_url") or "/"),
                token=str(raw.get("token") or ""),
                root_dir=str(raw.get("root_dir") or raw.get("notebook_dir") or ""),
                version=str(raw.get("version") or ""),
                classic=classic,
                password=raw.get("password") is True,
                file=file,
            )
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def endpoint(self) -> str:
        if self.host:
            return f"{self.node or self.host}:{self.port}"
        return self.sock or str(self.port)


def socket_path(home: str, profile: str) -> str:
    """The profile's remote Unix socket, inside the private remote folder."""
    path = f"{home.rstrip('/')}/{REMOTE_STATE_DIR.removeprefix('~/')}/{profile}.sock"
    if len(path.encode()) > MAX_SOCKET_PATH:
        raise JupytunnelError(
            f"the remote socket path {path} is longer than Unix sockets allow ({MAX_SOCKET_PATH} bytes); "
            "use a shorter profile name or transport = 'tcp'"
        )
    return path


def log_path_expr(profile: str) -> str:
    return f"{REMOTE_STATE_DIR_SH}/{shlex.quote(profile + '.log')}"


def discovery_script(extra: str = "", *, runtime_dir: str | None = None) -> str:
    """Print $HOME and every runtime info file whose server PID is alive.

    No Jupyter CLI is started: reading the files costs one round trip through the master.
    ``runtime_dir``: one more folder to look in (what the setup lines' environment uses).
    """
    dirs = " ".join((*_RUNTIME_DIRS, *([shlex.quote(runtime_dir)] if runtime_dir else [])))
    body = (
        PRELUDE + f"printf '{MARK} home %s\\n' \"$HOME\"\n"
        f"for d in {dirs}; do\n"
        '  [ -n "$d" ] && [ -d "$d" ] || continue\n'
        '  for f in "$d"/jpserver-*.json "$d"/nbserver-*.json; do\n'
        '    [ -f "$f" ] || continue\n'
        '    p=$(sed -n \'s/^[[:space:]]*"pid":[[:space:]]*\\([0-9][0-9]*\\).*/\\1/p\' "$f")\n'
        '    [ -n "$p" ] && kill -0 "$p" 2>/dev/null || continue\n'
        f'    printf \'{MARK} file %s\\n\' "$f"; cat "$f"; echo\n'
        "  done\n"
        "done\n"
    )
    return body + extra


def refuse_csh(markers: list[str], profile: Profile) -> None:
    """The login shell is csh or tcsh: our scripts are POSIX sh. Said before anything starts."""
    if "error csh" in markers:
        who = f"{profile.user}@{profile.host}" if profile.user else profile.host
        raise JupytunnelError(
            f"the login shell on {who} is csh or tcsh; jupytunnel's remote scripts need a POSIX login shell "
            "(sh, bash, zsh, ksh): change it there (for example: chsh -s /bin/bash); nothing was started"
        )


class Discovery(NamedTuple):
    home: str
    servers: list[ServerInfo]
    markers: list[str]  # other marker lines (launcher status)
    job_servers: list[ServerInfo] = []  # noqa: RUF012 - a NamedTuple default, never mutated


def parse_discovery(stdout: str) -> Discovery:  # noqa: C901 - one pass over marked output
    home = ""
    servers: dict[int, ServerInfo] = {}
    job_servers: list[ServerInfo] = []
    markers: list[str] = []
    chunk: list[str] | None = None
    classic = False
    from_job = False
    source = ""

    def flush() -> None:
        if chunk is None:
            return
        try:
            raw = json.loads("\n".join(chunk))
        except ValueError:
            return
        if isinstance(raw, dict):
            info = ServerInfo.from_dict(raw, classic=classic, file=source)
            if info is not None and from_job:
                job_servers.append(info)  # its PID is the compute node's, not the login node's
            elif info is not None:
                servers.setdefault(info.pid, info)

    for line in stdout.splitlines():
        if line.startswith(MARK + " "):
            flush()
            chunk = None
            kind, _, value = line[len(MARK) + 1 :].partition(" ")
            if kind == "home":
                home = value
            elif kind in ("file", "jobfile"):
                chunk = []
                source = value
                classic = value.rsplit("/", 1)[-1].startswith("nbserver-")
                from_job = kind == "jobfile"
            else:
                markers.append(line[len(MARK) + 1 :])
        elif chunk is not None:
            chunk.append(line)
    flush()
    return Discovery(home=home, servers=list(servers.values()), markers=markers, job_servers=job_servers)


def markers(stdout: str, mark: str = MARK) -> dict[str, str]:
    """``{kind: value}`` of the lines ``MARK kind value`` (the first of each kind)."""
    out: dict[str, str] = {}
    for line in stdout.splitlines():
        if line.startswith(mark + " "):
            kind, _, value = line[len(mark) + 1 :].partition(" ")
            out.setdefault(kind, value)
    return out


def parse_server_list(stdout: str) -> list[ServerInfo]:
    """``jupyter server list --json``: one JSON object a line."""
    out = []
    for line in stdout.splitlines():
        line = line.strip()  # noqa: PLW2901
        if not line.startswith("{"):
            continue
        try:
            raw = json.loads(line)
        except ValueError:
            continue
        if isinstance(raw, dict):
            info = ServerInfo.from_dict(raw)
            if info is not None:
                out.append(info)
    return out


def jupyter_cli(profile: Profile) -> list[str]:
    """The ``jupyter`` executable implied by the profile's command (for list/stop)."""
    first = shlex.split(profile.jupyter)[0]
    if first.endswith("/jupyter") or first == "jupyter":
        return [first]
    if "/" in first and first.rsplit("/", 1)[1].startswith("jupyter-"):
        return [first.rsplit("/", 1)[0] + "/jupyter"]
    return ["jupyter"]


def quote_workdir(workdir: str) -> str:
    """Quote a path for the remote shell; a leading ``~`` still means the remote home."""
    if workdir == "~":
        return '"$HOME"'
    if workdir.startswith("~/"):
        rest = workdir[2:]
        return '"$HOME"/' + shlex.quote(rest) if rest else '"$HOME"'
    return shlex.quote(workdir)


def command_line(argv: list[str]) -> str:
    """Quote a command for the remote shell; ``~/…`` in its words still means the remote home."""
    return " ".join(quote_workdir(w) if w.startswith("~/") else shlex.quote(w) for w in argv)


def cd_line(profile: Profile, *, fd: str) -> str:
    """``cd -- WORKDIR`` or fail naming it (``--``: a workdir may start with a dash)."""
    fail = say(f"error cannot cd to workdir: {profile.workdir}", fd)
    return f"cd -- {quote_workdir(profile.workdir)} || {{ {fail}; exit 1; }}\n"


def setup_lines(profile: Profile, *, fd: str) -> str:
    """Each setup line in a group of its own, so a failure names the line."""
    out = ""
    for i, line in enumerate(profile.setup, 1):
        fail = say(f"error setup line {i} failed: {line}", fd)
        # A line that runs `exit` ends the shell before `||` is reached: the trap reports it.
        out += f"trap {shlex.quote(fail)} EXIT\n"
        # The newline before "}" lets a setup line end in a comment.
        out += f"{{ {line}\n}} || {{ trap - EXIT; {fail}; exit 1; }}\n"
    if profile.setup:
        out += "trap - EXIT\n"
    return out


def server_list_script(profile: Profile) -> str:
    """Fallback discovery: ``jupyter server list --json`` in the profile's environment."""
    cli = command_line(jupyter_cli(profile))
    return (
        PRELUDE
        + f"cd -- {quote_workdir(profile.workdir)} 2>/dev/null || :\n"
        + setup_lines(profile, fd="2")
        + f"{cli} server list --json 2>/dev/null || {cli} notebook list --json 2>/dev/null\n"
    )


def signal_if_jupyter(pid: int, signal: str = "TERM") -> str:
    """Signal ``pid`` only if it still names a Jupyter process (PIDs are reused)."""
    return f"_jt_is_jupyter {int(pid)} && kill -{signal} {int(pid)} 2>/dev/null\n"


def pid_file(profile: str) -> str:
    return f"{REMOTE_STATE_DIR_SH}/{shlex.quote(profile + '.pid')}"


def write_pid_file(profile: str, pid: str, signature: str, *, suffix: str = ".pid") -> str:
    """Record ``pid`` (a shell word) with its start time and ``signature`` (a shell word:
    the part of the command line only this process has), privately."""
    path = f"{REMOTE_STATE_DIR_SH}/{shlex.quote(profile + suffix)}"
    return (
        f"(umask 077; {{ printf '%s\\n' {pid}; ps -o lstart= -p {pid} 2>/dev/null; "
        f"printf '%s\\n' {signature}; }} > {path})\n"
    )


def stop_script(profile: Profile, server: ServerInfo, *, session: str | None, multiplexer: str) -> str:
    """Stop a server the polite way (``jupyter server stop``), then make sure it is gone.

    A server we started has a pid file: every signal then needs its PID, start time and
    command line to match it (a kernel or anything else that got the PID is left alone),
    and the file goes with the server. A server someone else started: its PID must still
    name a Jupyter."""
    cli = command_line(jupyter_cli(profile))
    sub = "notebook" if server.classic else "server"
    pid = int(server.pid)
    pidfile = pid_file(profile.name)
    script = (
        PRELUDE
        + f'if [ "$(sed -n 1p {pidfile} 2>/dev/null)" = {pid} ]; then\n'
        + f"  _jt_ok() {{ _jt_ours {pidfile}; }}\n"
        + "else\n"
        + f"  _jt_ok() {{ _jt_is_jupyter {pid}; }}\n"
        + "fi\n"
        + f"cd -- {quote_workdir(profile.workdir)} 2>/dev/null || :\n"
        + setup_lines(profile, fd="2")
        + f"{cli} {sub} stop {shlex.quote(server.endpoint)} >/dev/null 2>&1\n"
        # jupyter's stop can be missing from PATH or refuse; SIGTERM makes the server shut
        # down cleanly too. Bounded: 10 s, then SIGKILL; each signal only after the check.
        + f"i=0; while _jt_ok && [ $i -lt {STOP_STEPS} ]; do\n"
        + f"  [ $i -eq {TERM_AFTER_STEPS} ] && _jt_ok && kill -TERM {pid} 2>/dev/null\n"
        + f"  sleep {STOP_STEP} 2>/dev/null || sleep 1; i=$((i+1))\n"
        + "done\n"
        + f"_jt_ok && kill -KILL {pid} 2>/dev/null\n"
        + f'[ "$(sed -n 1p {pidfile} 2>/dev/null)" = {pid} ] && rm -f {pidfile}\n'
    )
    if session:
        script += kill_session_script(session, multiplexer)
    return script + say("stopped") + "\n"


def kill_session_script(session: str, multiplexer: str) -> str:
    q = shlex.quote(session)
    if multiplexer == "tmux":
        return f"tmux kill-session -t ={q} 2>/dev/null\n"
    if multiplexer == "screen":
        return f"screen -S {q} -X quit >/dev/null 2>&1\n"
    return ""


# The logs scripts' exit code when the server has written no log yet: not 1 (tail's own
# failures) and not 255 (ssh's).
NO_LOG = 3


def follow_logs_script(profile: str, lines: int, *, path: str | None = None) -> str:
    """``tail -f`` the server's log until the ssh session ends.

    The session's stdin is the ssh channel: ``cat`` sees its end when the local ssh goes
    (Ctrl-C), and the script then ends the ``tail`` it started, by its PID. Without that a
    ``tail -f`` with nothing new to write would outlive the channel.
    """
    return (
        PRELUDE
        + f"_jt_f={path or log_path_expr(profile)}\n"
        + f'[ -f "$_jt_f" ] || exit {NO_LOG}\n'
        + f'tail -n {int(lines)} -f "$_jt_f" </dev/null &\n'
        + "_jt_t=$!\n"
        + "cat >/dev/null\n"
        + 'kill "$_jt_t" 2>/dev/null\n'
    )


def logs_script(profile: str, lines: int) -> str:
    """The log's last lines; exit ``NO_LOG`` when there is none yet. tail's own errors
    (say, an unreadable log) keep their message and exit code, as ssh's failures keep 255."""
    return (
        PRELUDE
        + f"_jt_f={log_path_expr(profile)}\n"
        + f'[ -f "$_jt_f" ] || exit {NO_LOG}\n'
        + f'tail -n {int(lines)} "$_jt_f"\n'
    )
