"""``jupytunnel server password``: set the password of a profile's Jupyter on the remote.

The password is read here without echo, travels on the ssh session's stdin (never in an
argv), is hashed there by jupyter_server's own ``jupyter_server.auth.passwd`` in the
profile's setup environment, and written where that Jupyter reads it:
``IdentityProvider.hashed_password`` in ``jupyter_server_config.json`` of its config dir
(what ``jupyter server password`` writes too; ``PasswordIdentityProvider`` is its subclass).
"""

from __future__ import annotations

import shlex
import sys

from jupytunnel import remote, runner
from jupytunnel.errors import JupytunnelError, UsageError
from jupytunnel.profiles import Profile
from jupytunnel.ssh.master import Master, ssh_message

# Runs on the remote with the interpreter of the profile's `jupyter`. The password arrives
# on its stdin; only marked lines (argv[1]) are ours to parse.
_HASH_PY = r"""
import json, os, sys, tempfile
M = sys.argv[1]
def say(t):
    sys.stdout.write(M + " " + t + "\n")
try:
    import jupyter_server
    from jupyter_core.paths import jupyter_config_dir
except ImportError:
    say("error jupyter_server is not installed where the profile's jupyter runs")
    sys.exit(1)
v = str(getattr(jupyter_server, "__version__", "0"))
head = v.split(".")[0]
if not head.isdigit() or int(head) < 2:
    say("error jupyter_server " + v + " is too old: a password needs jupyter_server 2 or newer")
    sys.exit(1)
from jupyter_server.auth import passwd
pw = sys.stdin.readline().rstrip("\r\n")
if not pw:
    say("error no password on stdin")
    sys.exit(1)
hashed = passwd(pw)
d = jupyter_config_dir()
os.makedirs(d, mode=0o700, exist_ok=True)
path = os.path.join(d, "jupyter_server_config.json")
try:
    with open(path) as f:
        cfg = json.load(f)
except FileNotFoundError:
    cfg = {}
except ValueError:
    cfg = None
if not isinstance(cfg, dict) or not isinstance(cfg.setdefault("IdentityProvider", {}), dict):
    say("error " + path + " is not a JSON config jupytunnel can edit; fix or remove it")
    sys.exit(1)
cfg["IdentityProvider"]["hashed_password"] = hashed
# Older spellings of the same setting would win over it: they get the new hash too.
for sec, key in (("PasswordIdentityProvider", "hashed_password"), ("ServerApp", "password")):
    if isinstance(cfg.get(sec), dict) and key in cfg[sec]:
        cfg[sec][key] = hashed
fd, tmp = tempfile.mkstemp(dir=d, prefix=".jupyter_server_config.", suffix=".tmp")
try:
    with os.fdopen(fd, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
except BaseException:
    try:
        os.unlink(tmp)
    except OSError:
        pass
    raise
say("written " + path)
"""


def password_script(profile: Profile) -> str:
    """Read the password from stdin first (setup lines may read stdin too), then hash it
    with the Python that runs the profile's ``jupyter``, in the setup lines' environment."""
    cli = remote.command_line(remote.jupyter_cli(profile))
    missing = remote.say(f"error {remote.jupyter_cli(profile)[0]} not found on the remote")
    return (
        remote.PRELUDE
        + f"IFS= read -r _jt_pw || {{ {remote.say('error no password on stdin')}; exit 1; }}\n"
        + f"cd -- {remote.quote_workdir(profile.workdir)} 2>/dev/null\n"
        + remote.setup_lines(profile, fd="1")
        + f"_jt_j=$(command -v {cli} 2>/dev/null) || {{ {missing}; exit 1; }}\n"
        # `jupyter` is a Python entry point: its first line names its interpreter.
        + "_jt_py=$(sed -n '1s/^#![[:space:]]*//p' \"$_jt_j\" 2>/dev/null)\n"
        + '$_jt_py -c "import jupyter_server" 2>/dev/null || _jt_py=python3\n'
        # printf is a shell builtin: the password is in no argv.
        + f"printf '%s\\n' \"$_jt_pw\" | $_jt_py -c {shlex.quote(_HASH_PY)} {shlex.quote(remote.MARK)}\n"
    )


def ask() -> str:
    """The new password: asked twice without echo on a terminal, else stdin's first line."""
    import getpass

    if sys.stdin is not None and sys.stdin.isatty():
        first = getpass.getpass("New Jupyter password: ")
        if getpass.getpass("Repeat it: ") != first:
            raise UsageError("the two passwords differ; nothing changed")
    else:
        first = (sys.stdin.readline() if sys.stdin is not None else "").rstrip("\r\n")
    if not first:
        raise UsageError("empty password; nothing changed")
    return first


def set_remote(master: Master, secret: str, *, timeout: float = 60.0) -> str:
    """Hash and write the password on the remote; the config file it went into."""
    said = runner.Assume(stdout=f"{remote.MARK} written ~/.jupyter/jupyter_server_config.json\n")
    result = master.run(password_script(master.profile), timeout=timeout, stdin_text=secret + "\n", assume=said)
    markers = remote.parse_discovery(result.stdout).markers
    for kind, value in (m.partition(" ")[::2] for m in markers):
        if kind == "error":
            raise JupytunnelError(f"cannot set the password on {master.profile.host}: {value}")
        if kind == "written":
            return value
    raise JupytunnelError(
        f"cannot set the password on {master.profile.host}: {ssh_message(result.stderr or result.stdout)}"
    )
