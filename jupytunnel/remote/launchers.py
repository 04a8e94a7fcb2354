"""What starts the remote server and keeps it running after ssh goes: nohup, tmux, screen, or
a batch job (``jobs.SlurmLauncher``); ``launcher = "none"`` is no launcher at all.

``for_profile`` gives the profile's ``Launcher`` (the registry of launcher names: the one
place that imports the batch launcher, ``jobs``), or None when the profile starts no server:
the type says it, so a caller that would start one must handle None (mypy checks). Every
profile has a ``Place`` too (``places.place_of``): where its server runs and how it is found,
stopped, read and reached there. The interfaces are ``remote.base``'s. nohup, tmux and screen
are ``ScriptLauncher``s: the remote script that starts the server, a probe that tells whether
what it started still runs, and how to undo a start that failed half-way;
``host.start_on_host`` runs them.
"""

from __future__ import annotations

import abc
import re
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING

from jupytunnel import paths, remote
from jupytunnel.paths import REMOTE_STATE_DIR_SH
from jupytunnel.profiles import Profile
from jupytunnel.remote import (
    MARK,
    PRELUDE,
    cd_line,
    command_line,
    kill_session_script,
    log_path_expr,
    say,
    setup_lines,
)
from jupytunnel.remote.base import START_TIMEOUT, Found, Launcher, ScriptLauncher, Stopped

if TYPE_CHECKING:
    from jupytunnel.remote import ServerInfo
    from jupytunnel.ssh.master import Master

# What the commands layer reads from here: a start's default timeout, what a stop ended.
__all__ = ["START_TIMEOUT", "Found", "Launcher", "ScriptLauncher", "Stopped"]


def _prepare(profile: Profile) -> str:
    """The private folder, then the start's own record (see ``cancel_start``), then the token."""
    return (
        PRELUDE
        + f"(umask 077; mkdir -p {REMOTE_STATE_DIR_SH}) && chmod 700 {REMOTE_STATE_DIR_SH} || "
        + f"{{ {say(f'error cannot create the remote folder {paths.REMOTE_STATE_DIR}')}; exit 1; }}\n"
        + remote.write_pid_file(
            profile.name, '"$$"', shlex.quote(f"jupytunnel-start-{profile.name}"), suffix=".starting"
        )
        # The token arrives on stdin, never in an argv. A token Jupyter did not generate is
        # masked ("token=...") in its log, so the remote log holds no secret either.
        + f"IFS= read -r JUPYTER_TOKEN || {{ {say('error no token on stdin')}; exit 1; }}\n"
    )


def _done(profile: Profile) -> str:
    return f"rm -f {_remote_file(profile, '.starting')}\n"


def cancel_start(profile: Profile) -> str:
    """A start script cut off (Ctrl-C, --timeout, a slow setup line) would go on and start
    Jupyter later: end it as a unit, its whole process group (sshd makes the login shell a
    session and group leader), after proving from its record that it is still that script."""
    starting = _remote_file(profile, ".starting")
    return (
        f"if _jt_ours {starting}; then\n"
        f'  p=$(sed -n 1p {starting}); kill -s TERM -- "-$p" 2>/dev/null || kill -s TERM "$p" 2>/dev/null\n'
        f"  i=0; while _jt_ours {starting} && [ $i -lt 30 ]; do sleep 0.1 2>/dev/null || sleep 1; i=$((i+1)); done\n"
        f'  _jt_ours {starting} && kill -s KILL -- "-$p" 2>/dev/null\n'
        "fi\n"
        f"rm -f {starting}\n"
    )


def _remote_file(profile: Profile, suffix: str) -> str:
    return f"{REMOTE_STATE_DIR_SH}/{shlex.quote(profile.name + suffix)}"


def jupyter_argv(profile: Profile, *, sock: str | None) -> list[str]:
    """The Jupyter command line: loopback only, no browser, no silent port hopping."""
    argv = [*shlex.split(profile.jupyter), "--no-browser"]
    if sock is not None:
        argv += ["--sock", sock, "--sock-mode", "0600"]
    else:
        port = profile.remote_port if isinstance(profile.remote_port, int) else AUTO_PORT
        argv += ["--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0"]
    if profile.nice is not None:
        argv = ["nice", "-n", str(profile.nice), *argv]
    return argv


AUTO_PORT = "@JT_PORT@"  # stands for the port chosen on the remote (remote_port = "auto")


def jupyter_line(profile: Profile, *, sock: str | None) -> str:
    """``jupyter_argv`` quoted for the remote shell, the chosen port expanded there."""
    line = command_line(jupyter_argv(profile, sock=sock))
    return line.replace(f"--port={AUTO_PORT}", '--port="$_jt_port"')


def choose_port(profile: Profile, fd: str) -> str:
    """``remote_port = "auto"``: ask the OS for a free loopback port with the Python that
    runs the profile's ``jupyter`` (after the setup lines, so it is on PATH), write it where
    the probe reads it, and say it. Nothing for a fixed port or a socket."""
    if profile.transport != "tcp" or isinstance(profile.remote_port, int):
        return ""
    word = command_line([shlex.split(profile.jupyter)[0]])
    pick = 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    fail = say("error cannot choose a free port on the remote (remote_port = auto needs Python there)", fd)
    return (
        f"_jt_py=$(sed -n '1s/^#![[:space:]]*//p' \"$(command -v {word})\" 2>/dev/null)\n"
        '$_jt_py -c "import socket" 2>/dev/null || _jt_py=python3\n'
        f'_jt_port=$($_jt_py -c {shlex.quote(pick)}) && [ -n "$_jt_port" ] || {{ {fail}; exit 1; }}\n'
        f"(umask 077; printf '%s\\n' \"$_jt_port\" > {_remote_file(profile, '.port')})\n"
        f"printf '%s\\n' \"{MARK} port $_jt_port\" >&{fd}\n"
    )


def _port_probe(profile: Profile) -> str:
    """The port an ``auto`` start chose (the probe reports it until the server is found)."""
    if profile.transport != "tcp" or isinstance(profile.remote_port, int):
        return ""
    return f"p=$(cat {_remote_file(profile, '.port')} 2>/dev/null) && printf '%s\\n' \"{MARK} port $p\"\n"


def session_name(profile: Profile) -> str:
    """``jupytunnel-NAME``; tmux turns '.' and ':' into '_', so we do it first, and add a
    short hash when we had to, so that ``a.b`` and ``a_b`` stay apart."""
    safe = re.sub(r"[.:]", "_", profile.name)
    if safe == profile.name:
        return f"jupytunnel-{safe}"
    import hashlib

    return f"jupytunnel-{safe}-{hashlib.sha256(profile.name.encode()).hexdigest()[:6]}"


def signature(profile: Profile, sock: str | None) -> str:
    """The part of the server's command line only it has, as a shell word for its pid file."""
    if sock is not None:
        return shlex.quote(f"--sock {sock}")
    if isinstance(profile.remote_port, int):
        return shlex.quote(f"--port={profile.remote_port}")
    return '"--port=$_jt_port"'


def abort_pid_script(profile: Profile) -> str:
    """End what a start left behind: the start script itself if it still runs, the server of
    the pid file, only while the PID, its start time and its command line all match the file
    (PIDs are reused), then the file."""
    pidfile = remote.pid_file(profile.name)
    return (
        PRELUDE
        + cancel_start(profile)
        + f"if _jt_ours {pidfile}; then\n"
        + f'  p=$(sed -n 1p {pidfile}); kill "$p" 2>/dev/null\n'
        + f"  i=0; while _jt_ours {pidfile} && [ $i -lt 50 ]; do\n"
        + "    sleep 0.1 2>/dev/null || sleep 1; i=$((i+1))\n"
        + "  done\n"
        + f'  _jt_ours {pidfile} && kill -9 "$p" 2>/dev/null\n'
        + "fi\n"
        + f"rm -f {pidfile}\n"
    )


def _tail_log(profile: Profile) -> str:
    return f"tail -n 15 {log_path_expr(profile.name)} 2>/dev/null | sed 's/^/{MARK} log /'\n"


def _probe(alive_test: str, profile: Profile) -> str:
    return f"if {alive_test}; then {say('launcher alive')}; else {say('launcher dead')}\n{_tail_log(profile)}fi\n"


def _check_command(profile: Profile, fd: str) -> str:
    """The Jupyter command must exist in the setup environment (not ``nice``: its argument)."""
    word = shlex.split(profile.jupyter)[0]
    quoted = command_line([word])
    fail = say(f"error command not found on the remote: {word}", fd)
    return f"command -v {quoted} >/dev/null 2>&1 || {{ {fail}; exit 1; }}\n"


def _remove_socket(sock: str | None) -> str:
    # A socket left by a killed server makes the next one fail to bind.
    return f"rm -f -- {shlex.quote(sock)}\n" if sock else ""


class _HostLauncher(abc.ABC):
    """What nohup, tmux and screen share: their server is the host's, started by script."""

    name = ""

    def start(self, master: Master, found: Found, *, timeout: float, tick: Callable[[str], None]) -> ServerInfo:
        from jupytunnel.remote import host

        return host.start_on_host(master, self, home=found.home, timeout=timeout, tick=tick)

    def start_timeout(self, profile: Profile) -> float:  # noqa: ARG002 - the same for every profile
        return START_TIMEOUT

    @abc.abstractmethod
    def start_script(self, profile: Profile, *, sock: str | None) -> str: ...

    @abc.abstractmethod
    def probe_script(self, profile: Profile, started: str) -> str: ...

    @abc.abstractmethod
    def abort_script(self, profile: Profile) -> str: ...

    @abc.abstractmethod
    def session(self, profile: Profile) -> str | None: ...


class Nohup(_HostLauncher):
    """``nohup … &`` in the login shell: setup lines run there, so env changes carry over."""

    name = "nohup"

    def start_script(self, profile: Profile, *, sock: str | None) -> str:
        return (
            _prepare(profile)
            + f"rm -f {_remote_file(profile, '.port')}\n"
            + "export JUPYTER_TOKEN\n"
            # From here on output goes to the private log; our markers go to fd 3 (stdout).
            + f"exec 3>&1 >{log_path_expr(profile.name)} 2>&1\n"
            + cd_line(profile, fd="3")
            + setup_lines(profile, fd="3")
            + _check_command(profile, "3")
            + choose_port(profile, "3")
            # Setup lines may move the runtime dir: say where, so discovery looks there.
            + f'[ -n "${{JUPYTER_RUNTIME_DIR:-}}" ] && printf \'%s\\n\' "{MARK} runtime $JUPYTER_RUNTIME_DIR" >&3\n'
            + _remove_socket(sock)
            # stdin, stdout, stderr and fd 3 all redirected, or the ssh session never returns.
            + f"nohup {jupyter_line(profile, sock=sock)} </dev/null 3>&- &\n"
            # The PID goes to a file before we say it: if the connection drops now, the
            # abort script still finds what to stop.
            + remote.write_pid_file(profile.name, '"$!"', signature(profile, sock))
            + f"printf '%s\\n' \"{MARK} started $!\" >&3\n"
            + _done(profile)
        )

    def probe_script(self, profile: Profile, started: str) -> str:
        return _port_probe(profile) + _probe(f"kill -0 {int(started)} 2>/dev/null", profile)

    def abort_script(self, profile: Profile) -> str:
        return abort_pid_script(profile)

    def session(self, profile: Profile) -> str | None:  # noqa: ARG002
        return None


class _Multiplexer(_HostLauncher):
    """tmux or screen: a detached session named ``jupytunnel-NAME`` that a user can attach."""

    name = ""

    def _inner(self, profile: Profile, sock: str | None) -> str:
        """Inside the new session: the environment the setup lines made, then exec Jupyter.

        Run by the same shell as the start script (the login shell), so that the file of
        ``export -p`` it wrote reads back as it was written (bash, zsh and dash differ)."""
        token = _remote_file(profile, ".token")
        env = _remote_file(profile, ".env")
        return (
            PRELUDE
            # A session does not inherit our environment: it comes through private files,
            # read and removed at once.
            + f". {env} && rm -f {env} || {{ {say('error the environment of the setup lines was lost')}; exit 1; }}\n"
            + f"JUPYTER_TOKEN=$(cat {token}); rm -f {token}; export JUPYTER_TOKEN\n"
            + cd_line(profile, fd="1")
            + choose_port(profile, "1")
            + _remove_socket(sock)
            # exec keeps this shell's PID and start time: they are the server's.
            + remote.write_pid_file(profile.name, '"$$"', signature(profile, sock))
            + f"exec {jupyter_line(profile, sock=sock)}\n"
        )

    def _outer(self, profile: Profile, sock: str | None) -> str:
        inner = self._inner(profile, sock)
        shell = f'"$(cat {_remote_file(profile, ".shell")})"'
        return f"{shell} -c {shlex.quote(inner)} 2>&1 | tee -a {log_path_expr(profile.name)}"

    def _start(self, profile: Profile, sock: str | None) -> str:
        raise NotImplementedError

    def alive_test(self, profile: Profile) -> str:
        raise NotImplementedError

    def start_script(self, profile: Profile, *, sock: str | None) -> str:
        """Setup lines run here, in the login shell, as with nohup, ``doctor`` and the server
        list (a session runs its command in ``sh``, where ``source`` and the ``module``
        function of the login shell's rc files are missing); their environment goes to the
        session in a private file."""
        name = session_name(profile)
        exists = f"error a {self.name} session {name} already exists on the remote (attach to it, or end it)"
        missing = f"error {self.name} is not installed on the remote"
        return (
            _prepare(profile)
            + f"command -v {self.name} >/dev/null 2>&1 || {{ {say(missing)}; exit 1; }}\n"
            + f"if {self.alive_test(profile)}; then {say(exists)}; exit 1; fi\n"
            + f": > {log_path_expr(profile.name)}\n"
            + f"rm -f {_remote_file(profile, '.port')}\n"
            + f"(umask 077; printf '%s\\n' \"$JUPYTER_TOKEN\" > {_remote_file(profile, '.token')})\n"
            # Not in our environment: a tmux server we start would pass it to every session.
            + "unset JUPYTER_TOKEN\n"
            # From here on output goes to the private log; our markers go to fd 3 (stdout).
            + f"exec 3>&1 >>{log_path_expr(profile.name)} 2>&1\n"
            + cd_line(profile, fd="3")
            + setup_lines(profile, fd="3")
            + _check_command(profile, "3")
            + f'[ -n "${{JUPYTER_RUNTIME_DIR:-}}" ] && printf \'%s\\n\' "{MARK} runtime $JUPYTER_RUNTIME_DIR" >&3\n'
            + f"(umask 077; export -p > {_remote_file(profile, '.env')})\n"
            # The shell running this script (the login shell) runs the session's script too.
            + "_jt_sh=$(readlink /proc/$$/exe 2>/dev/null) || "
            + '_jt_sh=$(command -v "$(ps -o comm= -p $$)") || _jt_sh="sh"\n'
            + 'case "$_jt_sh" in */*) ;; *) _jt_sh="sh";; esac\n'
            + 'case "$_jt_sh" in *[!A-Za-z0-9/._+-]*) _jt_sh="sh";; esac\n'
            + f"(umask 077; printf '%s\\n' \"$_jt_sh\" > {_remote_file(profile, '.shell')})\n"
            + self._start(profile, sock)
            + say(f"started {name}", "3")
            + "\n"
            + _done(profile)
        )

    def probe_script(self, profile: Profile, started: str) -> str:  # noqa: ARG002
        return _port_probe(profile) + _probe(self.alive_test(profile), profile)

    def abort_script(self, profile: Profile) -> str:
        return (
            PRELUDE
            + cancel_start(profile)
            + kill_session_script(session_name(profile), self.name)
            + f"rm -f {_remote_file(profile, '.token')} {_remote_file(profile, '.env')} "
            + f"{remote.pid_file(profile.name)}\n"
        )

    def session(self, profile: Profile) -> str | None:
        return session_name(profile)


class Tmux(_Multiplexer):
    name = "tmux"

    def _start(self, profile: Profile, sock: str | None) -> str:
        # One string, run by tmux's default-shell: wrap in sh so any login shell copes.
        command = "sh -c " + shlex.quote(self._outer(profile, sock))
        # 3>&-: the tmux server this may start must not hold our stdout (the ssh session).
        return f"tmux new-session -d -s {shlex.quote(session_name(profile))} {shlex.quote(command)} 3>&-\n"

    def alive_test(self, profile: Profile) -> str:
        return f"tmux has-session -t ={shlex.quote(session_name(profile))} 2>/dev/null"


class Screen(_Multiplexer):
    name = "screen"

    def _start(self, profile: Profile, sock: str | None) -> str:
        name = shlex.quote(session_name(profile))
        return f"screen -dmS {name} sh -c {shlex.quote(self._outer(profile, sock))} 3>&-\n"

    def alive_test(self, profile: Profile) -> str:
        pattern = shlex.quote(f".{session_name(profile)}\t")
        return f"screen -ls 2>/dev/null | grep -qF {pattern}"


def scripted(profile: Profile) -> ScriptLauncher | None:
    """The profile's launcher on the host (nohup, tmux, screen); None for any other."""
    found: dict[str, ScriptLauncher] = {"nohup": Nohup(), "tmux": Tmux(), "screen": Screen()}
    return found.get(profile.launcher)


def for_profile(profile: Profile) -> Launcher | None:
    """The profile's launcher; None for ``launcher = "none"`` (the profile starts no server)."""
    if profile.launcher == "slurm":  # the lookup of the batch launcher, in its own module
        from jupytunnel.remote import jobs

        return jobs.SlurmLauncher()
    by_name: dict[str, Launcher] = {"nohup": Nohup(), "tmux": Tmux(), "screen": Screen()}
    return by_name.get(profile.launcher)
