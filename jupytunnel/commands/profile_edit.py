"""``profile edit``: nothing the user typed is lost.

An invalid result reopens the editor on the user's text with the error as a comment at the
top (as ``git commit`` and ``crontab -e`` do). Leaving the text unchanged gives up: it is
then kept in a named file, and the next ``profile edit`` starts from it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from jupytunnel.errors import ProfileError, UsageError

MARK = "# jupytunnel: "
MAX_ROUNDS = 50  # a bound on the loop; a person gives up long before


def kept_path(name: str) -> Path:
    from jupytunnel import paths

    return paths.state_dir() / "edits" / f"{name}.toml"


def strip_marks(data: bytes) -> bytes:
    """The text without our comment lines at the top."""
    lines = data.splitlines(keepends=True)
    while lines and lines[0].startswith(MARK.encode()):
        lines.pop(0)
    return b"".join(lines)


def with_marks(error: str, body: bytes) -> bytes:
    head = f"{MARK}{error}\n{MARK}fix it and save; or quit without a change to give up (your text is kept)\n"
    return head.encode() + body


def _keep(name: str, body: bytes) -> Path:
    from jupytunnel import paths
    from jupytunnel.fsutil import atomic_write

    target = kept_path(name)
    paths.ensure_state_dir(target.parent)
    atomic_write(target, body)
    return target


def _check(name: str, body: bytes, path: Path) -> None:
    from jupytunnel import profiles

    profiles.build(name, profiles.parse_toml(body, str(path)), profiles.load_defaults(), str(path))


def edit(name: str, path: Path, editor: list[str]) -> str:
    """Run ``editor`` on a copy of profile ``name`` until the result is valid; returns a line
    for the user. Raises ``UsageError`` when the user gives up (the text kept, the file not
    touched)."""
    import tempfile

    from jupytunnel import paths, runner
    from jupytunnel.fsutil import atomic_write

    original = path.read_bytes()
    kept = kept_path(name)
    text = original
    if kept.is_file():
        text = kept.read_bytes()
        print(f"jupytunnel: starting from your kept edit in {kept}", file=sys.stderr)
    folder = paths.ensure_private_dir(paths.profiles_dir())
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".toml", dir=folder)
    tmp = Path(tmp_name)
    body = b""
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text)
        body = strip_marks(text)
        for _ in range(MAX_ROUNDS):
            try:
                code = runner.run_interactive([*editor, tmp_name])
            except KeyboardInterrupt:
                _keep_if_changed(name, tmp, original)
                raise
            given = body
            edited = tmp.read_bytes()
            body = strip_marks(edited)
            if code != 0:
                where = _keep_if_changed(name, tmp, original)
                raise UsageError(f"editor {shlex_join(editor)!r} exited with {code}; {path} unchanged{where}")
            try:
                _check(name, body, path)
            except ProfileError as exc:
                if body == given:  # the same text back: the user gives up
                    if body == original:  # nothing of theirs to keep (the file was invalid already)
                        raise ProfileError(f"{exc}; {path} unchanged") from None
                    target = _keep(name, body)
                    raise ProfileError(
                        f"{exc}; {path} unchanged; your text is kept in {target} "
                        f"(the next 'jupytunnel profile edit {name}' starts from it)"
                    ) from None
                text = with_marks(str(exc), body)
                tmp.write_bytes(text)
                print(f"jupytunnel: {exc}; reopening the editor", file=sys.stderr, flush=True)
                continue
            kept.unlink(missing_ok=True)
            if body == original:
                return f"{path} unchanged"
            atomic_write(path, body)
            return f"saved {path}"
        target = _keep(name, body)
        raise ProfileError(f"still invalid after {MAX_ROUNDS} edits; {path} unchanged; your text is kept in {target}")
    finally:
        tmp.unlink(missing_ok=True)


def _keep_if_changed(name: str, tmp: Path, original: bytes) -> str:
    try:
        body = strip_marks(tmp.read_bytes())
    except OSError:
        return ""
    if body == original:
        return ""
    return f"; your text is kept in {_keep(name, body)}"


def shlex_join(words: list[str]) -> str:
    import shlex

    return shlex.join(words)
