"""Atomic, private file writes and bounded file locks."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from jupytunnel.errors import JupytunnelError, seconds


class FileWriteError(JupytunnelError, OSError):
    """A write that failed (a full disk, a read-only or missing folder): one line naming
    the file. Still an ``OSError`` for callers that handle those themselves."""


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600, owner: tuple[int, int] | None = None) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, replace.

    A crash at any point leaves either the old file or the new one, never a mix.
    ``owner`` (uid, gid) is given to the new file first; when that is not allowed the
    ``PermissionError`` propagates and ``path`` is untouched.
    """
    import tempfile  # lazy: the lock, on every connect's path, does not need it

    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise FileWriteError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            if owner is not None:
                st = os.fstat(fh.fileno())
                if (st.st_uid, st.st_gid) != owner:
                    os.fchown(fh.fileno(), *owner)  # before fchmod: a chown may clear set-id bits
            os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not (owner is not None and isinstance(exc, PermissionError)):
            raise FileWriteError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the folder entry is on disk.
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


@contextlib.contextmanager
def file_lock(path: Path, *, timeout: float, what: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``; give up after ``timeout`` seconds.

    flock is released by the kernel when the holder dies, so a crashed run never
    leaves a lock behind.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise JupytunnelError(
                        f"timed out after {seconds(timeout)} s waiting for another jupytunnel ({what})"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        yield
    finally:
        os.close(fd)
