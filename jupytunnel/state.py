"""Local state: private JSON files in the state dir, written atomically. One a profile for its
tunnel (``tunnels/NAME.json``) and for the server it last reached (``servers/NAME.json``);
the run mirror (``runs/ID.json``) is ``runs.py``'s, in the same format.

Every file carries ``"version": FORMAT``. ``current`` is the one place that reads older
formats; a file it does not know (a newer jupytunnel's, or damaged) is ignored, never trusted
(a PID from it may be signalled), and the next save replaces it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from jupytunnel import paths

if TYPE_CHECKING:
    from jupytunnel.remote import ServerInfo

# The format of every state file. 0: the files written before formats had a number (no
# "version" key): tunnel records and the run mirror had today's shape already, a remembered
# server was the server's fields and its route side by side (its "version" Jupyter's own).
FORMAT = 1


def current(raw: object, *, kind: Literal["tunnel", "server", "run"]) -> dict[str, Any] | None:
    """A parsed state file (``kind``: "tunnel", "server" or "run") in today's shape, or None:
    not a JSON object, or a format this code does not know."""
    if not isinstance(raw, dict):
        return None
    version = raw.get("version")
    if kind == "server" and not _is_int(version):
        # Format 0: the server's fields and the route in one object; a "version" there is Jupyter's.
        return {"version": FORMAT, "route": raw.get("route"), "server": {k: v for k, v in raw.items() if k != "route"}}
    if version is None:  # format 0: the fields as today
        return {**raw, "version": FORMAT}
    return raw if _is_int(version) and version == FORMAT else None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def well_typed(record: tuple[Any, ...], types: dict[str, type | tuple[type, ...]]) -> bool:
    """Whether every field of a NamedTuple read from a file has the type it should (JSON
    true is no number here, nor 1 a flag)."""
    for name, kinds in types.items():
        value = getattr(record, name)
        if (isinstance(value, bool) and kinds is not bool) or not isinstance(value, kinds):
            return False
    return True


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
        return (json.dumps({"version": FORMAT, **self._asdict()}, indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> TunnelRecord | None:
        """The record, or None when the file is damaged, of another shape or of an unknown
        format (never trusted blindly: a PID from it may be signalled)."""
        try:
            raw = current(json.loads(data), kind="tunnel")
            if raw is None:
                return None
            record = cls(**{k: v for k, v in raw.items() if k in cls._fields})
        except (ValueError, TypeError, RecursionError):
            return None
        return record if well_typed(record, _TUNNEL_TYPES) else None


_TUNNEL_TYPES: dict[str, type | tuple[type, ...]] = {
    "profile": str, "pid": int, "create_time": (int, float), "control_path": str, "local_port": int,
    "remote": str, "host": str, "started_at": (int, float), "url": str, "server_pid": (int, type(None)),
    "base_url": str, "job": (str, type(None)), "node": (str, type(None)), "password": bool,
}  # fmt: skip


def record_path(profile: str) -> Path:
    from jupytunnel.profiles import validate_name

    return paths.tunnels_dir() / f"{validate_name(profile)}.json"


def _dry(note: str = "") -> bool:
    """In a dry run (the runner's mode): say ``note`` (what would be written) and write
    nothing. Every writer here asks, so the real code can run as its own dry run."""
    from jupytunnel import runner  # imported already by every command that writes state

    if not runner.dry_run():
        return False
    _note_if(bool(note), note)
    return True


def _note_if(said: bool, note: str) -> None:
    if said:
        from jupytunnel import runner

        runner.note(note)


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

    if _dry(f"write the tunnel record {record_path(record.profile)} (0600)"):
        return
    paths.ensure_state_dir(paths.tunnels_dir())
    atomic_write(record_path(record.profile), record.to_json())


def remove(profile: str) -> None:
    path = record_path(profile)
    if _dry():
        _note_if(path.exists(), f"remove the tunnel record {path}")
        return
    with contextlib.suppress(FileNotFoundError):
        record_path(profile).unlink()


def server_path(profile: str) -> Path:
    return paths.state_dir() / "servers" / f"{record_path(profile).stem}.json"


class RememberedServer(NamedTuple):
    """The Jupyter server a profile last reached (its endpoint and token), and the route it
    was reached by (``server.route``). Private like the tunnel records: connect tries it
    first, over that same route only, and a 200 from it with this token proves it is still
    the same server."""

    server: ServerInfo
    route: str

    def to_json(self) -> bytes:
        return (json.dumps({"version": FORMAT, "route": self.route, "server": self.server._asdict()}) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> RememberedServer | None:
        from jupytunnel.remote import ServerInfo

        try:
            raw = current(json.loads(data), kind="server")
            if raw is None or not isinstance(raw.get("server"), dict) or not isinstance(raw.get("route"), str):
                return None
            server = ServerInfo(**{k: v for k, v in raw["server"].items() if k in ServerInfo._fields})
        except (ValueError, TypeError, RecursionError):
            return None
        return cls(server, raw["route"]) if well_typed(server, _SERVER_TYPES) else None


_SERVER_TYPES: dict[str, type | tuple[type, ...]] = {
    "pid": int, "port": (int, type(None)), "sock": (str, type(None)), "base_url": str, "token": str,
    "root_dir": str, "version": str, "classic": bool, "host": (str, type(None)), "job": (str, type(None)),
    "node": (str, type(None)), "password": bool, "file": str, "ui": (str, type(None)),
}  # fmt: skip


def load_server(profile: str) -> RememberedServer | None:
    """The server this profile last reached, if any (and its file is one we can read)."""
    try:
        return RememberedServer.from_json(server_path(profile).read_bytes())
    except OSError:
        return None


def save_server(profile: str, known: RememberedServer) -> None:
    from jupytunnel.fsutil import atomic_write

    if _dry(f"remember the server in {server_path(profile)} (0600)"):
        return
    folder = paths.ensure_state_dir(paths.state_dir() / "servers")
    atomic_write(folder / f"{record_path(profile).stem}.json", known.to_json())


def forget_server(profile: str) -> None:
    if _dry():
        _note_if(server_path(profile).exists(), f"forget the remembered server {server_path(profile)}")
        return
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
    if _dry():  # a dry run changes nothing that another connect could trip over: no lock
        yield
        return
    from jupytunnel import prelaunch

    if prelaunch.holds_lock(profile):  # taken for the early ssh of this very connect
        try:
            yield
        finally:
            prelaunch.release_lock(profile)
        return
    folder = paths.ensure_state_dir(paths.locks_dir())
    with file_lock(folder / f"{profile}.lock", timeout=timeout, what=f"profile {profile!r} is busy"):
        yield
