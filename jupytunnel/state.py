"""Tunnel records: one private JSON file a profile in the state dir, written atomically."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from jupytunnel import paths


# A NamedTuple, not a dataclass: `status` reads these on every call, and dataclasses
# imports inspect (10 ms) into the start-up of a command that should take 50.
class TunnelRecord(NamedTuple):
    """What we started: enough to find it again and to prove a PID is still ours."""

    profile: str
    pid: int
    create_time: float
    control_path: str
    local_port: int
    remote: str  # "host:port" or "host:/path/to.sock", for people
    host: str  # the ssh destination, for ssh -O
    started_at: float
    url: str  # carries the token: the record is 0600 and the URL is hidden in listings
    server_pid: int | None = None
    base_url: str = "/"
    job: str | None = None  # a Slurm job id, when the server runs in one
    node: str | None = None  # the compute node it runs on
    password: bool = False  # Jupyter asks for a password (no token in the URL)

    def to_json(self) -> bytes:
        return (json.dumps(self._asdict(), indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> TunnelRecord | None:
        """The record, or None when the file is damaged or of another shape (never trusted
        blindly: a PID from it may be signalled)."""
        try:
            raw: Any = json.loads(data)
            record = cls(**{k: v for k, v in raw.items() if k in cls._fields})
        except (ValueError, TypeError, AttributeError, RecursionError):
            return None
        for name, kinds in _TYPES.items():
            value = getattr(record, name)
            if (isinstance(value, bool) and kinds is not bool) or not isinstance(value, kinds):
                return None
        return record


_TYPES: dict[str, type | tuple[type, ...]] = {
    "profile": str, "pid": int, "create_time": (int, float), "control_path": str, "local_port": int,
    "remote": str, "host": str, "started_at": (int, float), "url": str, "server_pid": (int, type(None)),
    "base_url": str, "job": (str, type(None)), "node": (str, type(None)), "password": bool,
}  # fmt: skip


def record_path(profile: str) -> Path:
    from jupytunnel.profiles import validate_name

    return paths.tunnels_dir() / f"{validate_name(profile)}.json"


def ssh_log_path(profile: str) -> Path:
    return paths.ensure_state_dir(paths.tunnels_dir()) / f"{record_path(profile).stem}.ssh.log"


def prune_ssh_log(profile: str) -> None:
    """Remove the profile's ssh log once read, if ssh said nothing: empty files, one per
    host met, would otherwise pile up in the state folder."""
    path = paths.tunnels_dir() / f"{record_path(profile).stem}.ssh.log"
    with contextlib.suppress(OSError):
        if path.stat().st_size == 0:
            path.unlink()


def load(profile: str) -> TunnelRecord | None:
    try:
        return TunnelRecord.from_json(record_path(profile).read_bytes())
    except OSError:
        return None


def load_all() -> list[TunnelRecord]:
    from jupytunnel.profiles import MAX_NAME_LEN, NAME_RE

    try:
        names = sorted(os.listdir(paths.tunnels_dir()))
    except OSError:
        return []
    records = []
    for name in names:
        if name.endswith(".json") and len(name) - 5 <= MAX_NAME_LEN and NAME_RE.fullmatch(name[:-5]):
            rec = load(name[:-5])
            if rec is not None:
                records.append(rec)
    return records


def save(record: TunnelRecord) -> None:
    from jupytunnel.fsutil import atomic_write

    paths.ensure_state_dir(paths.tunnels_dir())
    atomic_write(record_path(record.profile), record.to_json())


def remove(profile: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        record_path(profile).unlink()


def server_path(profile: str) -> Path:
    return paths.state_dir() / "servers" / f"{record_path(profile).stem}.json"


def load_server(profile: str) -> dict[str, Any] | None:
    """The Jupyter server this profile last reached (its endpoint and token), if any.

    Private like the tunnel records: connect tries it first, and a 200 from it with this
    token proves it is still the same server.
    """
    try:
        raw = json.loads(server_path(profile).read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    return raw if isinstance(raw, dict) else None


def save_server(profile: str, info: dict[str, Any]) -> None:
    from jupytunnel.fsutil import atomic_write

    folder = paths.ensure_state_dir(paths.state_dir() / "servers")
    atomic_write(folder / f"{record_path(profile).stem}.json", (json.dumps(info) + "\n").encode())


def forget_server(profile: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        server_path(profile).unlink()


def lock_busy(profile: str) -> bool:
    """Whether another process holds the profile's lock now (a connect in progress)."""
    import errno
    import fcntl

    path = paths.locks_dir() / f"{profile}.lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EAGAIN, errno.EACCES)
    finally:
        os.close(fd)
    return False


@contextlib.contextmanager
def profile_lock(profile: str, *, timeout: float) -> Iterator[None]:
    """Serialise connect/disconnect of one profile across processes."""
    from jupytunnel.fsutil import file_lock
    from jupytunnel.profiles import validate_name

    validate_name(profile)
    folder = paths.ensure_state_dir(paths.locks_dir())
    with file_lock(folder / f"{profile}.lock", timeout=timeout, what=f"profile {profile!r} is busy"):
        yield
