"""``jupytunnel doctor``: checks of the local set-up and, for one profile, of the remote.

Each check is a ``Check`` (ok, warning or failed, with a hint). The parsers and the remote
script builder are pure; the functions that look at the machine are small and run a
bounded command each, through ``runner``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import stat
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from jupytunnel.errors import JupytunnelError
from jupytunnel.profiles import Profile

if TYPE_CHECKING:
    from jupytunnel.ssh import Ssh

Status = Literal["ok", "warning", "failed"]
Version = tuple[int, int]

JUMP_MIN: Version = (7, 3)  # -J / ProxyJump
SOCKET_MIN: Version = (6, 7)  # forwarding to a Unix socket (-L port:/path)
SERVER_SOCKET_MIN: Version = (1, 9)  # jupyter_server's --sock
# sun_path holds 108 bytes on Linux, 104 on macOS, the terminating NUL included; ssh binds
# a temporary name (the control path plus ".XXXXXXXXXXXXXXXX") and renames it.
SUN_PATH = 104 if sys.platform == "darwin" else 108
SSH_TEMP_SUFFIX = 17  # len(".XXXXXXXXXXXXXXXX")
LOCAL_TIMEOUT = 10.0  # a local ssh -V or rsync --version: instant, unless something is badly wrong
# Another command of the profile may hold its lock for the whole of its own --timeout.
LOCK_MARGIN = 60.0
MARK = "==jupytunnel-doctor=="
SETUP_STDERR_LINES = 5  # of a failing setup line, sent back to say why

_OPENSSH_RE = re.compile(r"OpenSSH_(?:for_Windows_)?(\d+)\.(\d+)([^\s,]*)")
_VERSION_RE = re.compile(r"(\d+)\.(\d+)")


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    hint: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return dataclasses.asdict(self)


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def warning(name: str, detail: str, hint: str) -> Check:
    return Check(name, "warning", detail, hint)


def failed(name: str, detail: str, hint: str) -> Check:
    return Check(name, "failed", detail, hint)


# --- ssh client --------------------------------------------------------------------------


def parse_ssh_version(text: str) -> tuple[Version, str] | None:
    """``ssh -V`` prints e.g. "OpenSSH_9.2p1 Debian-2+deb12u6, OpenSSL 3.0.15 ..." on stderr."""
    found = _OPENSSH_RE.search(text)
    if not found:
        return None
    return (int(found.group(1)), int(found.group(2))), f"{found.group(1)}.{found.group(2)}{found.group(3)}"


def ssh_version_check(ssh: str, output: str) -> Check:
    name = "ssh client"
    parsed = parse_ssh_version(output)
    if parsed is None:
        first = output.strip().splitlines()[0] if output.strip() else "no output"
        return warning(
            name,
            f"{ssh}: not OpenSSH? 'ssh -V' said: {first}",
            "jupytunnel needs the OpenSSH client; point JUPYTUNNEL_SSH at it",
        )
    version, text = parsed
    missing = []
    if version < JUMP_MIN:
        missing.append("-J jump hosts (needs OpenSSH >= 7.3; use proxy_command instead)")
    if version < SOCKET_MIN:
        missing.append('transport = "socket" (needs OpenSSH >= 6.7)')
    if missing:
        return warning(name, f"OpenSSH {text} at {ssh}; missing: {'; '.join(missing)}", "upgrade OpenSSH")
    return ok(name, f"OpenSSH {text} at {ssh}")


SSH_HINT = "install the OpenSSH client (Debian: apt-get install openssh-client)"


def check_ssh(ssh: Ssh) -> tuple[Check, Version | None]:
    from jupytunnel import runner

    try:
        result = runner.run([ssh.binary, "-V"], timeout=LOCAL_TIMEOUT, readonly=True)  # it changes nothing
    except JupytunnelError as exc:
        return failed("ssh client", str(exc), SSH_HINT), None
    output = result.stderr + result.stdout
    parsed = parse_ssh_version(output)
    return ssh_version_check(ssh.binary, output), parsed[0] if parsed else None


# --- rsync (for sync) --------------------------------------------------------------------

RSYNC_HINT = "jupytunnel sync needs rsync >= 3.1 here (Debian/Ubuntu: apt-get install rsync, macOS: brew install rsync)"


def rsync_check(rsync: str | None, output: str) -> Check:
    """Only ``sync`` needs rsync: a missing or old one is a warning."""
    from jupytunnel.sync import LOCAL_MIN, parse_rsync_version

    name = "rsync (local)"
    if rsync is None:
        return warning(name, "rsync not found on PATH", RSYNC_HINT)
    version = parse_rsync_version(output)
    first = output.strip().splitlines()[0] if output.strip() else "no output"
    if version is None or version < LOCAL_MIN:
        return warning(name, f"{rsync}: {first}", RSYNC_HINT)
    return ok(name, f"{first.split('  protocol')[0].strip()} at {rsync}")


def check_rsync() -> Check:
    from jupytunnel import runner

    try:
        rsync = runner.rsync_binary()
        result = runner.run([rsync, "--version"], timeout=LOCAL_TIMEOUT, readonly=True)
    except JupytunnelError:
        return rsync_check(None, "")
    return rsync_check(rsync, result.stdout)


# --- folders -----------------------------------------------------------------------------


def folder_check(label: str, path: Path, st: os.stat_result | None, *, uid: int) -> Check:
    """A folder of ours must be ours, and private: a profile's ProxyCommand runs as you."""
    name = f"{label} folder"
    if st is None:
        return ok(name, f"{path} (not created yet)")
    if not stat.S_ISDIR(st.st_mode):
        return failed(name, f"{path} is not a folder", f"move it away; jupytunnel creates the {label} folder")
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid != uid:
        return failed(
            name, f"{path} belongs to uid {st.st_uid}, not to you", f"use a folder of your own for the {label}"
        )
    if mode & 0o022:
        return failed(name, f"{path} is writable by others ({mode:04o})", f"chmod 700 {shlex.quote(str(path))}")
    if mode & 0o077:
        return warning(name, f"{path} is readable by others ({mode:04o})", f"chmod 700 {shlex.quote(str(path))}")
    return ok(name, f"{path} ({mode:04o})")


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def check_folders() -> list[Check]:
    from jupytunnel import paths

    uid = os.getuid()
    folders = [
        ("config", paths.config_dir()),
        ("profiles", paths.profiles_dir()),
        ("state", paths.state_dir()),
        ("runtime", paths.runtime_dir()),
    ]
    return [folder_check(label, path, _stat(path), uid=uid) for label, path in folders]


# --- profiles ----------------------------------------------------------------------------


def profile_check(
    name: str, load: Callable[[str], Profile], ssh_version: Version | None
) -> tuple[Check, Profile | None]:
    from jupytunnel import profiles
    from jupytunnel.errors import ProfileError

    label = f"profile {name}"
    edit = f"fix it with: jupytunnel profile edit {name}"
    try:
        profile = load(name)
    except ProfileError as exc:
        return failed(label, str(exc), defaults_hint(str(exc)) or edit), None
    st = _stat(profiles.profile_path(name))
    if st is not None and stat.S_IMODE(st.st_mode) & 0o022:
        path = shlex.quote(str(profiles.profile_path(name)))
        return failed(label, f"{path} is writable by others", f"chmod 600 {path}"), profile
    if ssh_version is not None and profile.jump and ssh_version < JUMP_MIN:
        hint = "use proxy_command = 'ssh -W %h:%p GATEWAY' instead of jump, or upgrade OpenSSH"
        return failed(label, "uses jump hosts (-J), which need OpenSSH >= 7.3", hint), profile
    if ssh_version is not None and profile.transport == "socket" and ssh_version < SOCKET_MIN:
        return failed(label, 'transport = "socket" needs OpenSSH >= 6.7', 'use transport = "tcp"'), profile
    route = f" via {','.join(profile.jump)}" if profile.jump else " via ProxyCommand" if profile.proxy_command else ""
    return ok(label, f"{profile.host}{route}; {profile.transport}, launcher {profile.launcher}"), profile


def defaults_hint(message: str) -> str | None:
    """The hint for an error that lies in defaults.toml: that file is the one to fix."""
    from jupytunnel import paths

    path = str(paths.defaults_file())
    if not message.startswith(path):
        return None
    return f"the error is in {path}, which every profile reads: fix that file (no profile needs editing)"


def check_defaults() -> Check | None:
    from jupytunnel import paths, profiles
    from jupytunnel.errors import ProfileError

    path = paths.defaults_file()
    if not path.exists():
        return None
    try:
        profiles.build("defaults", {"host": "x", **profiles.load_defaults()}, {}, str(path))
    except ProfileError as exc:
        return failed("defaults.toml", str(exc), defaults_hint(str(exc)) or f"fix {path}")
    return ok("defaults.toml", str(path))


def resolve_check(profile: Profile, returncode: int, stdout: str, stderr: str) -> Check:
    from jupytunnel.ssh.config import parse_resolved
    from jupytunnel.ssh.master import ssh_message

    name = f"ssh -G {profile.name}"
    if returncode != 0:
        return failed(
            name,
            f"ssh cannot resolve {profile.host}: {ssh_message(stderr)}",
            "check ssh_options in the profile and your ~/.ssh/config",
        )
    opts = parse_resolved(stdout)
    where = f"{opts.one('user') or '?'}@{opts.one('hostname') or profile.host}:{opts.one('port') or '22'}"
    jump, command = opts.one("proxyjump"), opts.one("proxycommand")
    if jump and jump != "none":
        where += f" via {jump}"
    elif command and command != "none":
        where += " via ProxyCommand"
    return ok(name, where)


def check_resolve(profiles_: list[Profile], ssh: Ssh) -> Iterator[Check]:
    """``ssh -G`` for every profile, started together (each is a local, quick process that
    changes nothing: it runs in a dry run too)."""
    from jupytunnel import runner
    from jupytunnel.ssh import args as sshargs

    started = [(p, runner.Started(sshargs.resolve_argv(p, ssh=ssh), readonly=True)) for p in profiles_]
    for profile, proc in started:
        try:
            result = proc.result(timeout=LOCAL_TIMEOUT)
        except JupytunnelError as exc:
            yield failed(f"ssh -G {profile.name}", str(exc), "check your ~/.ssh/config")
            continue
        yield resolve_check(profile, result.returncode, result.stdout, result.stderr)


def control_path_check(paths_: Mapping[str, str], *, limit: int = SUN_PATH) -> Check:
    """The longest control socket path, with ssh's temporary suffix and the NUL, must fit."""
    name = "control socket path"
    longest = max(paths_.values(), key=lambda p: len(os.fsencode(p)))
    need = len(os.fsencode(longest)) + SSH_TEMP_SUFFIX + 1
    if need > limit:
        return failed(
            name,
            f"{longest} needs {need} bytes; Unix sockets allow {limit}",
            "set JUPYTUNNEL_RUNTIME_DIR to a short folder, such as /tmp/jt-$(id -u)",
        )
    return ok(name, f"{longest} ({need} of {limit} bytes)")


def check_control_paths(names: list[str]) -> Check:
    from jupytunnel.ssh import master

    return control_path_check({n: str(master.control_path(n)) for n in names or ["x"]})


# --- the remote --------------------------------------------------------------------------


def _q(text: str) -> str:
    return shlex.quote(text)


def remote_script(profile: Profile) -> str:
    """One POSIX sh script: who we are, launcher tools, workdir, setup lines, Jupyter.

    It runs in the profile's environment as ``connect`` builds it: the workdir, then each
    setup line (a failing one is named and ends the script). Output lines start with MARK.
    """

    say = f"printf '{MARK} %s %s\\n'"
    lines = [f'{say} login "$(id -un 2>/dev/null || echo ?)@$(uname -n 2>/dev/null || echo ?)"']
    tool = profile.launcher if profile.launcher in ("tmux", "screen") else None
    if tool:
        version = "tmux -V" if tool == "tmux" else "screen -v"
        lines.append(
            f"if command -v {tool} >/dev/null 2>&1; then "
            f'{say} launcher "$(command -v {tool}) $({version} 2>/dev/null | head -n 1)"; '
            f"else {say} launcher-missing {tool}; fi"
        )
    if profile.nice is not None:
        lines.append(f"command -v nice >/dev/null 2>&1 || {say} nice-missing nice")
    if profile.launcher != "slurm":
        return "\n".join(_environment_lines(profile, say, lines)) + "\n"
    from jupytunnel.remote import slurm

    lines += _slurm_lines(profile, say)
    # The batch script runs under the login shell as a login shell: so do these checks.
    env = _environment_lines(profile, say, [])
    lines.append(slurm.LOGIN_SHELL_LINES.rstrip("\n"))
    lines.append(f'"$sh_" -l -c {_q(chr(10).join(env) + chr(10))} </dev/null')
    return "\n".join(lines) + "\n"


def _slurm_lines(profile: Profile, say: str) -> list[str]:
    """The scheduler's commands on the login node, and the partition ``sbatch_args`` names."""
    lines = [
        'miss=""; for c in sbatch squeue scancel sinfo; do command -v "$c" >/dev/null 2>&1 || miss="$miss $c"; done',
        f'{say} slurm-tools "${{miss:- none}}|$(sbatch --version 2>/dev/null | head -n 1)"',
    ]
    part = partition_of(profile.slurm.sbatch_args)
    if part is not None:
        lines.append(f'{say} partition "$(sinfo -h -p {_q(part)} -o %P 2>/dev/null | head -n 1)"')
    return lines


def partition_of(sbatch_args: tuple[str, ...]) -> str | None:
    """The partition named in sbatch's options (``--partition=P``, ``-pP``); the last wins."""
    found = None
    for arg in sbatch_args:
        if arg.startswith("--partition="):
            found = arg.split("=", 1)[1]
        elif arg.startswith("-p") and len(arg) > 2 and not arg.startswith("--"):  # noqa: PLR2004
            found = arg[2:]
    return found


def _environment_lines(profile: Profile, say: str, lines: list[str]) -> list[str]:
    """Workdir, setup lines and the Jupyter command, appended to ``lines``."""
    from jupytunnel import remote

    lines.append(
        f'if command -v rsync >/dev/null 2>&1; then {say} rsync "$(rsync --version 2>/dev/null | head -n 1)"; '
        f"else {say} rsync-missing rsync; fi"
    )
    lines.append(
        # The workdir as the user wrote it, tilde included, is a message here, not a path.
        "# shellcheck disable=SC2088\n"
        f"cd {remote.quote_workdir(profile.workdir)} 2>/dev/null || {say} workdir-missing {_q(profile.workdir)}"
    )
    if profile.setup:
        # A failing setup line's stderr says why (a module that is not there): kept in a
        # private temp file, its last lines sent back.
        lines.append('_jt_e=$(mktemp 2>/dev/null) || _jt_e=; trap \'[ -n "$_jt_e" ] && rm -f "$_jt_e"\' EXIT')
    for i, line in enumerate(profile.setup, 1):
        # The newline before "}" lets a setup line end in a comment (as in connect).
        lines.append(
            f'{{ {line}\n}} </dev/null >/dev/null 2>"${{_jt_e:-/dev/null}}" || {{ '
            f'[ -n "$_jt_e" ] && tail -n {SETUP_STDERR_LINES} "$_jt_e" | '
            f'while IFS= read -r l; do {say} setup-stderr "$l"; done; '
            f"{say} setup-failed {_q(f'{i}: {line}')}; exit 0; }}"
        )
    argv = shlex.split(profile.jupyter)
    lines.append(f"j=$(command -v {_q(argv[0])} 2>/dev/null) || {{ {say} jupyter-missing {_q(argv[0])}; exit 0; }}")
    lines.append(f'{say} jupyter-path "$j"')
    lines.append(f"v=$({shlex.join(argv)} --version 2>&1 </dev/null); rc=$?")
    lines.append(f'{say} jupyter-version "$rc $(printf \'%s\\n\' "$v" | tail -n 1)"')
    if profile.transport == "socket":
        cli = shlex.join(remote.jupyter_cli(profile))
        lines.append(f"s=$({cli} server --version 2>&1 </dev/null); rc=$?")
        lines.append(f'{say} server-version "$rc $(printf \'%s\\n\' "$s" | tail -n 1)"')
    return lines


def _markers(stdout: str) -> dict[str, str]:
    from jupytunnel import remote

    return remote.markers(stdout, MARK)


def _all_marked(stdout: str, kind: str) -> list[str]:
    """Every value of a marker that may come more than once."""
    head = f"{MARK} {kind} "
    return [line[len(head) :] for line in stdout.splitlines() if line.startswith(head)]


def _version(text: str) -> Version | None:
    found = _VERSION_RE.search(text)
    return (int(found.group(1)), int(found.group(2))) if found else None


def parse_remote(profile: Profile, stdout: str) -> list[Check]:  # noqa: C901, PLR0912 - one branch per marker
    """Checks from what ``remote_script`` printed."""
    m = _markers(stdout)
    checks: list[Check] = []
    name = profile.name
    where = m.get("login", "?")
    checks.append(ok(f"login {name}", f"BatchMode login as {where}"))
    if profile.launcher in ("tmux", "screen"):
        if "launcher-missing" in m:
            checks.append(
                failed(
                    f"launcher {name}",
                    f"{profile.launcher} not found on the remote",
                    f'install {profile.launcher} there, or set launcher = "nohup"',
                )
            )
        else:
            checks.append(ok(f"launcher {name}", m.get("launcher", profile.launcher).strip()))
    checks.append(_remote_rsync_check(profile, m))
    if profile.launcher == "slurm":
        checks += _slurm_checks(profile, m)
    if "nice-missing" in m:
        checks.append(failed(f"nice {name}", "nice not found on the remote", "remove nice from the profile"))
    if "workdir-missing" in m:
        checks.append(
            failed(f"workdir {name}", f"cannot cd to {profile.workdir}", "create it, or fix workdir in the profile")
        )
    jupyter = f"jupyter {name}"
    if "setup-failed" in m:
        said = [x.strip() for x in _all_marked(stdout, "setup-stderr") if x.strip()]
        why = ": " + " / ".join(said) if said else ""
        checks.append(
            failed(
                jupyter,
                f"setup line {m['setup-failed']} failed{why}",
                f"log in and try it by hand; fix it with: jupytunnel profile edit {name}",
            )
        )
    elif "jupyter-missing" in m:
        checks.append(
            failed(
                jupyter,
                f"{m['jupyter-missing']} not found on the remote's PATH (after the setup lines)",
                "add setup lines (module load ..., source .../bin/activate) or give jupyter as a full path",
            )
        )
    elif "jupyter-version" in m:
        rc, _, text = m["jupyter-version"].partition(" ")
        path = m.get("jupyter-path", "?")
        if rc != "0":
            checks.append(
                failed(
                    jupyter,
                    f"'{profile.jupyter} --version' failed: {text or 'no output'}",
                    f"is what '{profile.jupyter}' needs installed there? (pip install jupyterlab)",
                )
            )
        else:
            checks.append(ok(jupyter, f"{profile.jupyter} {text} ({path})"))
    else:
        checks.append(failed(jupyter, "the remote script stopped early", "run jupytunnel -v doctor NAME to see it"))
    if "server-version" in m:
        rc, _, text = m["server-version"].partition(" ")
        version = _version(text) if rc == "0" else None
        if version is None or version < SERVER_SOCKET_MIN:
            checks.append(
                failed(
                    f"jupyter_server {name}",
                    f"transport socket needs jupyter_server >= 1.9, found: {text or 'none'}",
                    'pip install -U jupyter_server there, or use transport = "tcp"',
                )
            )
        else:
            checks.append(ok(f"jupyter_server {name}", f"{text} (serves a Unix socket)"))
    return checks


def _slurm_checks(profile: Profile, m: Mapping[str, str]) -> list[Check]:
    name = profile.name
    missing, _, version = m.get("slurm-tools", "?|").partition("|")
    out = []
    if missing.strip() != "none":
        out.append(
            failed(
                f"slurm {name}",
                f"not found on the login node:{missing}",
                "is this a Slurm cluster's login node? a setup line such as 'module load slurm' does not help "
                "here: the scheduler's commands must be on the login shell's PATH",
            )
        )
    else:
        out.append(ok(f"slurm {name}", f"sbatch, squeue, scancel, sinfo ({version.strip() or 'version unknown'})"))
    part = partition_of(profile.slurm.sbatch_args)
    if part is not None:
        if m.get("partition", "").strip():
            out.append(ok(f"partition {name}", f"{part} (sinfo)"))
        else:
            out.append(failed(f"partition {name}", f"partition {part!r} not found (sinfo -p {part})", "see 'sinfo -s'"))
    return out


def _remote_rsync_check(profile: Profile, m: Mapping[str, str]) -> Check:
    """rsync on the remote, for ``sync``: failed when the profile has a ``[sync]`` table
    (it means to sync), else a warning."""
    from jupytunnel.sync import REMOTE_MIN, parse_rsync_version

    name = f"rsync {profile.name}"
    hint = "install rsync there for jupytunnel sync (Debian/Ubuntu: apt-get install rsync)"
    report = failed if profile.sync.to_dict() else warning
    if "rsync" not in m:
        return report(name, "rsync not found on the remote's PATH", hint)
    version = parse_rsync_version(m["rsync"])
    if version is not None and version < REMOTE_MIN:
        return report(name, f"too old for sync: {m['rsync'].strip()}", hint)
    return ok(name, m["rsync"].split("  protocol")[0].strip() or "rsync")


def batch_profile(profile: Profile) -> Profile:
    """The profile with BatchMode on: doctor must fail rather than wait at a prompt."""
    options = {k: v for k, v in profile.ssh_options.items() if k.lower() != "batchmode"}
    options["BatchMode"] = True
    return profile._replace(ssh_options=options)


def check_remote(profile: Profile, ssh: Ssh, *, timeout: float) -> list[Check]:
    """Log in through a temporary master (or the live one) and run ``remote_script``.

    In a dry run the same steps are recorded (the master's commands, the script, the exit):
    no lock is taken, and no remote check is reported, as none ran."""
    import contextlib

    from jupytunnel import runner, state
    from jupytunnel.errors import CommandError
    from jupytunnel.ssh import args as sshargs
    from jupytunnel.ssh import master

    dry = runner.dry_run()
    # The lock is a file: a dry run writes none.
    lock = contextlib.nullcontext() if dry else state.profile_lock(profile.name, timeout=timeout + LOCK_MARGIN)
    assume = runner.Assume(says="the checks run on the remote; a dry run reports none of them")
    try:
        with lock, master.temporary_master(batch_profile(profile), timeout=timeout, ssh=ssh) as m:
            argv = sshargs.remote_argv(m.profile, remote_script(profile), ssh=ssh, control_path=m.ctl)
            result = runner.run(argv, timeout=timeout, assume=assume)
    except CommandError as exc:
        message = f"{exc}: {master.ssh_message(exc.stderr)}"
        return [failed(f"login {profile.name}", message, _login_hint(profile, message))]
    except JupytunnelError as exc:
        return [failed(f"login {profile.name}", str(exc), _login_hint(profile, str(exc)))]
    if dry:
        return []
    if "login" not in _markers(result.stdout):
        why = master.ssh_message(result.stderr)
        return [
            failed(
                f"login {profile.name}",
                f"logged in, but the check script failed (exit {result.returncode}): {why}",
                "jupytunnel needs a POSIX login shell on the remote (sh, bash, zsh, ksh)",
            )
        ]
    return parse_remote(profile, result.stdout)


_LOGIN_HINTS = (
    ("Could not resolve hostname", "check the host name, or give an alias from your ~/.ssh/config"),
    ("Host key verification failed", "log in once with plain ssh to check and accept the host key"),
    ("Permission denied", "BatchMode allows no password or passphrase prompt: load your key into ssh-agent"),
    ("Connection refused", "check the port, and that sshd runs there (or the jump host or ProxyCommand)"),
    ("timed out", "check the network path: a VPN, the jump host or the ProxyCommand"),
)


def _login_hint(profile: Profile, message: str) -> str:
    for needle, hint in _LOGIN_HINTS:
        if needle.lower() in message.lower():
            return f"{hint}; 'jupytunnel -v doctor {profile.name}' shows the ssh commands"
    return (
        f"'ssh {profile.host}' must log in without a prompt (a key in ssh-agent); "
        f"'jupytunnel -v doctor {profile.name}' shows the ssh commands"
    )


# --- everything --------------------------------------------------------------------------


def run_checks(name: str | None, *, timeout: float) -> list[Check]:
    """Every check; with ``name``, the profile checks of that profile only, and the remote.

    In a dry run (``runner.dry_run()``) the same code runs: the local commands that change
    nothing (``ssh -V``, ``rsync --version``, ``ssh -G``) run, the remote ones are recorded."""
    from jupytunnel import profiles, ssh

    client: Ssh | None = None
    try:
        client = ssh.resolve()
    except JupytunnelError as exc:
        ssh_check, version = failed("ssh client", str(exc), SSH_HINT), None
    else:
        ssh_check, version = check_ssh(client)
    has_ssh = ssh_check.status != "failed"
    checks = [ssh_check, check_rsync(), *check_folders()]
    defaults = check_defaults()
    if defaults is not None:
        checks.append(defaults)
    names = [name] if name is not None else profiles.list_names()
    loaded: list[Profile] = []
    for n in names:
        check, profile = profile_check(n, profiles.load, version)
        checks.append(check)
        if profile is not None:
            loaded.append(profile)
    if client is not None and has_ssh and loaded:
        checks.extend(check_resolve(loaded, client))
    checks.append(check_control_paths(names))
    if client is not None and name is not None and loaded and has_ssh:
        checks.extend(check_remote(loaded[0], client, timeout=timeout))
    return checks
