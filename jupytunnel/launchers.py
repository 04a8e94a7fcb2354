"""How the remote server outlives the ssh connection: nohup, tmux, screen, or nothing.

Every launcher answers three questions (``Launcher``): the remote script that starts the
server, a probe that tells whether what it started still runs, and how to end it. A batch
scheduler (a Slurm job on a compute node) is the next one to plug in here.
"""

from __future__ import annotations

import shlex
from typing import Protocol

from jupytunnel.profiles import Profile
from jupytunnel.remote import (
    MARK,
    REMOTE_DIR,
    _setup_lines,
    kill_session_script,
    log_path_expr,
    quote_workdir,
)

_PREPARE = (
    f"(umask 077; mkdir -p {REMOTE_DIR}) && chmod 700 {REMOTE_DIR} || "
    f"{{ echo '{MARK} error cannot create the remote folder ~/.local/state/jupytunnel'; exit 1; }}\n"
    # The token arrives on stdin, never in an argv. A token Jupyter did not generate is
    # masked ("token=...") in its log, so the remote log holds no secret either.
    f"IFS= read -r JUPYTER_TOKEN || {{ echo '{MARK} error no token on stdin'; exit 1; }}\n"
    "export JUPYTER_TOKEN\n"
)


def _token_file(profile: Profile) -> str:
    return f"{REMOTE_DIR}/{shlex.quote(profile.name + '.token')}"


def jupyter_argv(profile: Profile, *, sock: str | None) -> list[str]:
    """The Jupyter command line: loopback only, no browser, no silent port hopping."""
    argv = [*shlex.split(profile.jupyter), "--no-browser"]
    if sock is not None:
        argv += ["--sock", sock, "--sock-mode", "0600"]
    else:
        argv += ["--ip=127.0.0.1", f"--port={profile.remote_port}", "--ServerApp.port_retries=0"]
    if profile.nice is not None:
        argv = ["nice", "-n", str(profile.nice), *argv]
    return argv


def session_name(profile: Profile) -> str:
    return f"jupytunnel-{profile.name}"


def _tail_log(profile: Profile) -> str:
    return f"tail -n 15 {log_path_expr(profile.name)} 2>/dev/null | sed 's/^/{MARK} log /'\n"


def _probe(alive_test: str, profile: Profile) -> str:
    return (
        f"if {alive_test}; then echo '{MARK} launcher alive'; "
        f"else echo '{MARK} launcher dead'\n{_tail_log(profile)}fi\n"
    )


def _check_command(word: str, to: str = "1") -> str:
    what = shlex.quote(f"{MARK} error command not found on the remote: {word}")
    return f"command -v {shlex.quote(word)} >/dev/null 2>&1 || {{ echo {what} >&{to}; exit 1; }}\n"


def _inner_script(profile: Profile, *, sock: str | None) -> str:
    """cd, setup, then exec Jupyter; for launchers that run it inside a new session."""
    argv = jupyter_argv(profile, sock=sock)
    cd_fail = shlex.quote(f"{MARK} error cannot cd to workdir: {profile.workdir}")
    token = _token_file(profile)
    return (
        # A new session does not inherit our environment: the token comes through a
        # private file, read and removed at once.
        f"JUPYTER_TOKEN=$(cat {token}); rm -f {token}; export JUPYTER_TOKEN\n"
        f"cd {quote_workdir(profile.workdir)} || {{ echo {cd_fail}; exit 1; }}\n"
        + _setup_lines(profile, to="1")
        + _check_command(argv[0])
        + (f"rm -f {shlex.quote(sock)}\n" if sock else "")
        + "exec "
        + shlex.join(argv)
        + "\n"
    )


class Launcher(Protocol):
    name: str

    def start_script(self, profile: Profile, *, sock: str | None) -> str: ...
    def probe_script(self, profile: Profile, started: str) -> str: ...
    def stop_script(self, profile: Profile, started: str) -> str: ...
    def session(self, profile: Profile) -> str | None: ...


class Nohup:
    """``nohup … &`` in the login shell: setup lines run there, so env changes carry over."""

    name = "nohup"

    def start_script(self, profile: Profile, *, sock: str | None) -> str:
        argv = jupyter_argv(profile, sock=sock)
        cd_fail = shlex.quote(f"{MARK} error cannot cd to workdir: {profile.workdir}")
        return (
            _PREPARE
            # From here on output goes to the private log; our markers go to fd 3 (stdout).
            + f"exec 3>&1 >{log_path_expr(profile.name)} 2>&1\n"
            + f"cd {quote_workdir(profile.workdir)} || {{ echo {cd_fail} >&3; exit 1; }}\n"
            + _setup_lines(profile, to="3")
            + _check_command(argv[0], to="3")
            # Setup lines may move the runtime dir: say where, so discovery looks there.
            + f'[ -n "${{JUPYTER_RUNTIME_DIR:-}}" ] && echo "{MARK} runtime $JUPYTER_RUNTIME_DIR" >&3\n'
            + (f"rm -f {shlex.quote(sock)}\n" if sock else "")
            # stdin, stdout, stderr and fd 3 all redirected, or the ssh session never returns.
            + f"nohup {shlex.join(argv)} </dev/null 3>&- &\n"
            + f'echo "{MARK} started $!" >&3\n'
        )

    def probe_script(self, profile: Profile, started: str) -> str:
        return _probe(f"kill -0 {int(started)} 2>/dev/null", profile)

    def stop_script(self, profile: Profile, started: str) -> str:  # noqa: ARG002
        pid = int(started)
        return f"kill {pid} 2>/dev/null; sleep 1; kill -9 {pid} 2>/dev/null; true\n"

    def session(self, profile: Profile) -> str | None:  # noqa: ARG002
        return None


class _Multiplexer:
    """tmux or screen: a detached session named ``jupytunnel-NAME`` that a user can attach."""

    name = ""

    def _outer(self, profile: Profile, sock: str | None) -> str:
        inner = _inner_script(profile, sock=sock)
        return f"sh -c {shlex.quote(inner)} 2>&1 | tee -a {log_path_expr(profile.name)}"

    def _start(self, profile: Profile, sock: str | None) -> str:
        raise NotImplementedError

    def alive_test(self, profile: Profile) -> str:
        raise NotImplementedError

    def start_script(self, profile: Profile, *, sock: str | None) -> str:
        name = session_name(profile)
        exists = shlex.quote(
            f"{MARK} error a {self.name} session {name} already exists on the remote (attach to it, or end it)"
        )
        return (
            _PREPARE
            + _check_command(self.name)
            + f"if {self.alive_test(profile)}; then echo {exists}; exit 1; fi\n"
            + f": > {log_path_expr(profile.name)}\n"
            + f"(umask 077; printf '%s\\n' \"$JUPYTER_TOKEN\" > {_token_file(profile)})\n"
            + self._start(profile, sock)
            + f"echo '{MARK} started {name}'\n"
        )

    def probe_script(self, profile: Profile, started: str) -> str:  # noqa: ARG002
        return _probe(self.alive_test(profile), profile)

    def stop_script(self, profile: Profile, started: str) -> str:  # noqa: ARG002
        return kill_session_script(session_name(profile), self.name)

    def session(self, profile: Profile) -> str | None:
        return session_name(profile)


class Tmux(_Multiplexer):
    name = "tmux"

    def _start(self, profile: Profile, sock: str | None) -> str:
        # One string, run by tmux's default-shell: wrap in sh so any login shell copes.
        command = "sh -c " + shlex.quote(self._outer(profile, sock))
        return f"tmux new-session -d -s {shlex.quote(session_name(profile))} {shlex.quote(command)}\n"

    def alive_test(self, profile: Profile) -> str:
        return f"tmux has-session -t ={shlex.quote(session_name(profile))} 2>/dev/null"


class Screen(_Multiplexer):
    name = "screen"

    def _start(self, profile: Profile, sock: str | None) -> str:
        name = shlex.quote(session_name(profile))
        return f"screen -dmS {name} sh -c {shlex.quote(self._outer(profile, sock))}\n"

    def alive_test(self, profile: Profile) -> str:
        pattern = shlex.quote(f".{session_name(profile)}\t")
        return f"screen -ls 2>/dev/null | grep -qF {pattern}"


class NoLauncher:
    """``launcher = "none"``: the server is started elsewhere (systemd, a batch job)."""

    name = "none"

    def start_script(self, profile: Profile, *, sock: str | None) -> str:
        raise NotImplementedError

    def probe_script(self, profile: Profile, started: str) -> str:
        raise NotImplementedError

    def stop_script(self, profile: Profile, started: str) -> str:  # noqa: ARG002
        return ""

    def session(self, profile: Profile) -> str | None:  # noqa: ARG002
        return None


def for_profile(profile: Profile) -> Launcher:
    launchers: dict[str, Launcher] = {
        "nohup": Nohup(),
        "tmux": Tmux(),
        "screen": Screen(),
        "none": NoLauncher(),
    }
    return launchers[profile.launcher]
