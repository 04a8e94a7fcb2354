"""Every location jupytunnel reads or writes, each overridable by an env var (tests use them).

- config dir: profiles (``profiles/NAME.toml``) and ``defaults.toml``
- state dir: tunnel records, locks and the mirror of notebook runs
- runtime dir: control sockets and browser redirect files; short, because a Unix socket
  path must fit in ``sun_path`` (108 bytes on Linux, 104 on macOS)
- on the remote: ``REMOTE_STATE_DIR`` (server logs, pid files, sockets, notebook runs)
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from jupytunnel.errors import JupytunnelError

APP = "jupytunnel"
# Leave room for the socket name and the suffix ssh appends to a control path while it
# binds (".XXXXXXXXXXXXXXXX", 17 bytes) below the 104-byte macOS limit.
MAX_RUNTIME_DIR_LEN = 60

# The remote's folder of ours, relative to the remote home: as people read it (messages), and
# as a remote POSIX shell expands it (scripts: "$HOME" quoted, a home with spaces stays whole).
REMOTE_STATE_DIR = "~/.local/state/jupytunnel"
REMOTE_STATE_DIR_SH = '"$HOME"/' + REMOTE_STATE_DIR.removeprefix("~/")


def _env_path(var: str) -> Path | None:
    value = os.environ.get(var)
    return Path(value).expanduser() if value else None


def _need_home() -> None:
    """platformdirs builds paths on ``~``: with HOME unset and no passwd entry that stays a
    relative "~" folder in the current directory. Say so instead."""
    home = os.path.expanduser("~")
    if not os.path.isabs(home):
        raise JupytunnelError(
            f"cannot find your home folder (HOME is not set and user id {os.getuid()} has no passwd entry); "
            "set HOME, or JUPYTUNNEL_CONFIG_DIR and JUPYTUNNEL_STATE_DIR"
        )


def config_dir() -> Path:
    override = _env_path("JUPYTUNNEL_CONFIG_DIR")
    if override:
        return override
    import platformdirs  # lazy: it costs start-up time on every command otherwise

    _need_home()
    return Path(platformdirs.user_config_dir(APP, appauthor=False))


def profiles_dir() -> Path:
    return config_dir() / "profiles"


def defaults_file() -> Path:
    return config_dir() / "defaults.toml"


def state_dir() -> Path:
    override = _env_path("JUPYTUNNEL_STATE_DIR")
    if override:
        return override
    import platformdirs

    _need_home()
    return Path(platformdirs.user_state_dir(APP, appauthor=False))


def tunnels_dir() -> Path:
    return state_dir() / "tunnels"


def locks_dir() -> Path:
    return state_dir() / "locks"


def ssh_log_file(profile: str) -> Path:
    """Where a profile's master's ssh writes its stderr (``profile``: a valid name)."""
    return tunnels_dir() / f"{profile}.ssh.log"


def plans_dir() -> Path:
    """What the last connect of each profile ran to open its master (``prelaunch``)."""
    return state_dir() / "plans"


def runs_dir() -> Path:
    """The local mirror of detached notebook runs, ``runs/ID.json`` (0600)."""
    return state_dir() / "runs"


def ensure_state_dir(sub: Path) -> Path:
    """``sub`` of the state dir, with the state dir itself private too."""
    ensure_private_dir(state_dir())
    return ensure_private_dir(sub)


def runtime_dir() -> Path:
    override = _env_path("JUPYTUNNEL_RUNTIME_DIR")
    if override:
        return override
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    # A relative XDG_RUNTIME_DIR is invalid by the XDG spec ("must be ignored").
    if xdg and os.path.isabs(xdg) and sys.platform != "darwin" and len(xdg) + len(APP) + 1 <= MAX_RUNTIME_DIR_LEN:
        return Path(xdg) / APP
    # No per-user runtime dir (root on a server, macOS with its long TMPDIR): a
    # per-uid folder in /tmp, checked to be ours and private before use.
    return _tmp_runtime_dir(Path("/tmp"))  # noqa: S108


_FALLBACKS = 20
_said: set[Path] = set()


def _tmp_runtime_dir(tmp: Path) -> Path:
    """``/tmp/jupytunnel-UID``, or, when another user planted that name (anyone may create
    it first in a shared /tmp), the first of ``/tmp/jupytunnel-UID.N`` that is ours or
    free: short enough for socket paths, and the same one on every run while the squatter
    stays. Said once on stderr, so the user knows where the sockets are."""
    uid = os.getuid()
    first = tmp / f"{APP}-{uid}"
    for candidate in (first, *(tmp / f"{APP}-{uid}.{n}" for n in range(1, _FALLBACKS + 1))):
        try:
            st = candidate.lstat()
        except FileNotFoundError:
            break  # free: ensure_private_dir creates it
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) and not stat.S_ISLNK(st.st_mode) and st.st_uid == uid:
            break
    else:
        raise JupytunnelError(
            f"{first} and its fallbacks belong to another user; set JUPYTUNNEL_RUNTIME_DIR to a private folder"
        )
    if candidate != first and candidate not in _said:
        _said.add(candidate)
        print(f"jupytunnel: {first} belongs to another user; using {candidate} instead", file=sys.stderr)
    return candidate


def ssh_config_override() -> Path | None:
    """The ssh config named by ``JUPYTUNNEL_SSH_CONFIG``; passed to every ssh as ``-F``."""
    return _env_path("JUPYTUNNEL_SSH_CONFIG")


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700; refuse a folder another user owns."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.lstat()
    except OSError as exc:
        raise JupytunnelError(f"cannot create folder {path}: {exc.strerror}") from exc
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise JupytunnelError(f"{path} is not a folder")
    if st.st_uid != os.getuid():
        raise JupytunnelError(f"{path} belongs to another user; refusing to use it")
    if stat.S_IMODE(st.st_mode) & 0o077:
        path.chmod(0o700)
    return path
