"""Managed ``Host`` blocks in an ssh config: a pure transformation of bytes.

The user's file is never parsed into a model and printed back: it is split into lines that
keep their own line ends, and only the lines between our markers are ever replaced, so
comments, tabs, CRLF, keyword case, ``Include``, ``Match``, a missing final newline and
bytes that are not UTF-8 all survive. Nothing here reads or writes a file or runs ssh
(``jupytunnel.ssh.config_file`` does).

OpenSSH rules this module relies on (ssh_config(5), readconf.c):

- the first value obtained for an option wins, so a block placed earlier beats a later one;
- lines before the first ``Host`` or ``Match`` apply to every host, so new blocks go after
  that preamble, immediately before the first ``Host``/``Match`` line;
- keywords are case-insensitive, separated from their arguments by whitespace or one ``=``,
  and ``\\r`` counts as whitespace (a CRLF file parses like an LF one).
"""

from __future__ import annotations

import dataclasses
import os.path
import re
from collections.abc import Iterable, Mapping, Sequence

from jupytunnel.errors import JupytunnelError
from jupytunnel.profiles import Profile
from jupytunnel.ssh import EXIT_ON_FORWARD_FAILURE, LOOPBACK, SERVER_ALIVE, Ssh, yes_no

MANAGED_NOTE = "managed by jupytunnel; edits inside are overwritten"
INDENT = "    "
# Options set by a tunnel that the block carries too; ``ssh_options`` replace them.
BLOCK_DEFAULTS: tuple[tuple[str, str], ...] = (*SERVER_ALIVE, EXIT_ON_FORWARD_FAILURE)
# Options that take one value: an ``ssh_options`` entry replaces ours rather than joining it.
SINGLE_VALUED = frozenset(
    {"hostname", "user", "port", "proxyjump", "proxycommand"} | {k.lower() for k, _ in BLOCK_DEFAULTS}
)

_START_RE = re.compile(rb"# >>> jupytunnel (\S+) >>>")
_END_RE = re.compile(rb"# <<< jupytunnel (\S+) <<<")
# readconf.c: leading whitespace, a keyword up to whitespace, '=' or a quote, then at most one
# '=' with optional whitespace around it.
_LINE_RE = re.compile(rb"[ \t\r]*([^ \t\r=\"]*)[ \t\r]*(?:=[ \t\r]*)?(.*)", re.DOTALL)
_ARG_RE = re.compile(rb'"([^"]*)"?|([^ \t\r"]+)')
_SAFE_VALUE_RE = re.compile(r"[A-Za-z0-9_@%+:,./~^\[\]-]+")
_UNQUOTABLE_RE = re.compile(r'["\\\x00-\x1f\x7f]')


class ConfigError(JupytunnelError):
    """The file cannot be edited safely (broken markers); ``line`` is 1-based."""

    def __init__(self, message: str, *, line: int) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclasses.dataclass(frozen=True)
class Block:
    """A managed block: lines ``start`` to ``end`` (0-based, inclusive) of the file."""

    name: str
    start: int
    end: int


@dataclasses.dataclass(frozen=True)
class Conflict:
    """An unmanaged ``Host`` line that names a profile exactly; ``line`` is 1-based."""

    name: str
    line: int
    text: str


# --- lines -------------------------------------------------------------------------------


def split_lines(data: bytes) -> list[bytes]:
    """Lines with their own ends; only ``\\n`` ends a line for ssh, so ``\\r`` stays inside."""
    parts = data.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])  # a last line without a final newline
    return lines


def detect_eol(data: bytes) -> bytes:
    """CRLF when most lines end that way, else LF (also for an empty file)."""
    crlf = data.count(b"\r\n")
    return b"\r\n" if crlf > data.count(b"\n") - crlf else b"\n"


def _content(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\n") else line


def _is_blank(line: bytes) -> bool:
    return line in (b"\n", b"\r\n")


def keyword(line: bytes) -> tuple[bytes, bytes]:
    """``(lower-case keyword, arguments)``; an empty keyword for blank and comment lines."""
    # readconf.c strips trailing whitespace (and a form feed) first.
    match = _LINE_RE.match(_content(line).rstrip(b" \t\r\f"))
    assert match is not None  # the pattern matches any string
    word = match.group(1)
    if not word or word.startswith(b"#"):
        return b"", b""
    return word.lower(), match.group(2)


def arguments(args: bytes) -> list[bytes]:
    """Split arguments as ssh does: whitespace, double quotes, a ``#`` word ends the line."""
    out: list[bytes] = []
    for match in _ARG_RE.finditer(args):
        quoted, bare = match.group(1), match.group(2)
        if bare is not None and bare.startswith(b"#"):
            break
        out.append(quoted if quoted is not None else bare)
    return out


# --- markers -----------------------------------------------------------------------------


def start_marker(name: str) -> str:
    return f"# >>> jupytunnel {name} >>> {MANAGED_NOTE}"


def end_marker(name: str) -> str:
    return f"# <<< jupytunnel {name} <<< {MANAGED_NOTE}"


def find_blocks(lines: Sequence[bytes]) -> list[Block]:
    """Every managed block; unbalanced, nested or duplicate markers raise ``ConfigError``."""
    blocks: list[Block] = []
    seen: dict[str, int] = {}
    open_name: str | None = None
    open_at = 0
    for i, line in enumerate(lines):
        text = _content(line)
        start = _START_RE.match(text)
        end = _END_RE.match(text)
        if start:
            name = start.group(1).decode(errors="replace")
            if open_name is not None:
                raise ConfigError(
                    f"jupytunnel marker for {name!r} inside the block of {open_name!r} "
                    f"(opened at line {open_at + 1}); fix the markers by hand",
                    line=i + 1,
                )
            if name in seen:
                raise ConfigError(
                    f"a second managed block for {name!r} (the first is at line {seen[name]}); remove one by hand",
                    line=i + 1,
                )
            open_name, open_at = name, i
        elif end:
            name = end.group(1).decode(errors="replace")
            if open_name != name:
                raise ConfigError(
                    f"end marker for {name!r} without its start marker; fix the markers by hand", line=i + 1
                )
            blocks.append(Block(name, open_at, i))
            seen[name] = open_at + 1
            open_name = None
    if open_name is not None:
        raise ConfigError(f"managed block {open_name!r} has no end marker; fix it by hand", line=open_at + 1)
    return blocks


def managed_names(data: bytes) -> list[str]:
    """Names of the managed blocks, in file order."""
    return [b.name for b in find_blocks(split_lines(data))]


def find_conflicts(data: bytes, names: Iterable[str]) -> list[Conflict]:
    """Unmanaged ``Host`` lines with a pattern equal to one of ``names``.

    Host patterns match case-insensitively. Only an exact pattern conflicts: ``Host a*`` or
    ``Host !aura`` is the user's business, and ``ssh -G`` checks the outcome anyway.
    """
    wanted = {n.lower().encode(): n for n in names}
    lines = split_lines(data)
    inside = _managed_lines(lines)
    out: list[Conflict] = []
    for i, line in enumerate(lines):
        if i in inside:
            continue
        word, args = keyword(line)
        if word != b"host":
            continue
        for pattern in arguments(args):
            name = wanted.get(pattern.lower())
            if name is not None:
                text = _content(line).rstrip(b"\r").decode(errors="replace")
                out.append(Conflict(name, i + 1, text))
    return out


def _managed_lines(lines: Sequence[bytes]) -> set[int]:
    inside: set[int] = set()
    for block in find_blocks(lines):
        inside.update(range(block.start, block.end + 1))
    return inside


# --- rendering ---------------------------------------------------------------------------


def quote(value: str) -> str:
    """One ssh_config argument: bare when safe, else in double quotes.

    ssh_config has no escape that every OpenSSH version reads the same way, so a value with
    a double quote, a backslash or a control character cannot be written at all.
    """
    if _SAFE_VALUE_RE.fullmatch(value):
        return value
    if not value or _UNQUOTABLE_RE.search(value):
        raise JupytunnelError(
            f"{value!r} cannot be written to an ssh config (quotes, backslashes or control characters)"
        )
    return f'"{value}"'


def option_text(value: str | int | bool) -> str:
    return yes_no(value)


def local_forward(profile: Profile, *, remote_socket: str | None = None) -> str | None:
    """The ``LocalForward`` arguments; None for a socket profile whose remote path is unknown.

    The local end binds 127.0.0.1 only (as ``-L`` does); ``auto`` means ``remote_port``.
    """
    if profile.transport == "tcp" and not isinstance(profile.remote_port, int):
        return None  # remote_port = "auto": the port is chosen on the remote at each start
    local = profile.local_port if isinstance(profile.local_port, int) else profile.remote_port
    if profile.transport == "socket":
        if remote_socket is None:
            return None
        return f"{LOOPBACK}:{local} {quote(remote_socket)}"
    return f"{LOOPBACK}:{local} {LOOPBACK}:{profile.remote_port}"


def block_options(
    profile: Profile,
    *,
    hostname: str,
    forward: str | None,
    carried: Sequence[tuple[str, str]] = (),
) -> list[tuple[str, str]]:
    """The block's ``(Keyword, value)`` lines, values already in ssh_config syntax.

    ``carried`` are options copied from ``ssh -G`` of the profile's host (see
    ``jupytunnel.ssh.config_file``). ``ssh_options`` are written as given: jupytunnel passes
    them as ``-o Key=Value``, which ssh parses exactly like a config line.
    """
    user_keys = {k.lower() for k in profile.ssh_options}
    opts: list[tuple[str, str]] = [("HostName", quote(hostname))]
    if profile.user:
        opts.append(("User", quote(profile.user)))
    if profile.port is not None:
        opts.append(("Port", str(profile.port)))
    if profile.identity_file:
        opts.append(("IdentityFile", quote(profile.identity_file)))
    if profile.jump:
        opts.append(("ProxyJump", quote(",".join(profile.jump))))
    if profile.proxy_command:
        opts.append(("ProxyCommand", profile.proxy_command))
    opts += carried
    if forward is not None:
        opts.append(("LocalForward", forward))
    opts += BLOCK_DEFAULTS
    opts = [(k, v) for k, v in opts if k.lower() not in SINGLE_VALUED or k.lower() not in user_keys]
    opts += [(k, option_text(v)) for k, v in profile.ssh_options.items()]
    return opts


def render_block(
    profile: Profile,
    *,
    hostname: str,
    forward: str | None,
    carried: Sequence[tuple[str, str]] = (),
) -> bytes:
    """The whole managed block, markers included, LF line ends (``apply`` converts)."""
    return render_options(profile.name, block_options(profile, hostname=hostname, forward=forward, carried=carried))


def render_options(name: str, options: Sequence[tuple[str, str]]) -> bytes:
    lines = [start_marker(name), f"Host {name}"]
    for key, value in options:
        if "\n" in value or "\r" in value:
            raise JupytunnelError(f"{name}: the value of {key} contains a line break")
        lines.append(f"{INDENT}{key} {value}")
    lines.append(end_marker(name))
    return ("\n".join(lines) + "\n").encode()


# --- the transformation ------------------------------------------------------------------


def _block_lines(block: bytes, eol: bytes) -> list[bytes]:
    return [line.rstrip(b"\r") + eol for line in block.rstrip(b"\n").split(b"\n")]


def insertion_point(lines: Sequence[bytes]) -> int | None:
    """Where new blocks go: before the first ``Host``/``Match`` line (None: there is none).

    A comment directly above that line moves with it (it describes that block), unless the
    comments run up to the top of the file: that is the file's header, and stays on top.
    """
    first: int | None = None
    for i, line in enumerate(lines):
        if _START_RE.match(_content(line)) or keyword(line)[0] in (b"host", b"match"):
            first = i
            break
    if first is None:
        return None
    top = first
    while top > 0 and _is_comment(lines[top - 1]):
        top -= 1
    return first if top == 0 else top


def _is_comment(line: bytes) -> bool:
    text = _content(line).lstrip(b" \t")
    return text.startswith(b"#") and not _START_RE.match(text) and not _END_RE.match(text)


def _remove(lines: list[bytes], block: Block) -> None:
    """Remove a block and the blank line that was added with it.

    Blocks are inserted followed by a blank line, or appended at the end preceded by one,
    so the inverse takes the blank line after the block, or else (at the end of the file)
    the one before it. A block that ends the file without a final newline carried the
    newline of the line before it, which is given back.
    """
    start, end = block.start, block.end
    no_final_eol = not lines[end].endswith(b"\n")
    if end + 1 < len(lines) and _is_blank(lines[end + 1]):
        del lines[start : end + 2]
    elif end + 1 == len(lines) and start > 0 and _is_blank(lines[start - 1]):
        del lines[start - 1 : end + 1]
        if no_final_eol and start - 2 >= 0:
            lines[start - 2] = _strip_eol(lines[start - 2])
    else:
        at_end = end + 1 == len(lines)
        del lines[start : end + 1]
        if no_final_eol and at_end and start > 0:
            lines[start - 1] = _strip_eol(lines[start - 1])


def _strip_eol(line: bytes) -> bytes:
    if line.endswith(b"\r\n"):
        return line[:-2]
    return line[:-1] if line.endswith(b"\n") else line


def apply(old: bytes, blocks: Mapping[str, bytes | None]) -> bytes:
    """The new file: each named block replaced where it stands, added, or (None) removed.

    Every byte outside the managed blocks is kept; removing every block that ``apply``
    added gives back ``old`` exactly. New blocks are added in the order of ``blocks``.
    """
    lines = split_lines(old)
    eol = detect_eol(old)
    existing = {b.name: b for b in find_blocks(lines)}
    # Bottom-up, so the line numbers of the blocks still to do stay valid.
    for block in sorted(existing.values(), key=lambda b: b.start, reverse=True):
        if block.name not in blocks:
            continue
        new = blocks[block.name]
        if new is None:
            _remove(lines, block)
            continue
        replacement = _block_lines(new, eol)
        if not lines[block.end].endswith(b"\n"):
            replacement[-1] = _strip_eol(replacement[-1])
        lines[block.start : block.end + 1] = replacement
    added = [_block_lines(data, eol) for name, data in blocks.items() if data is not None and name not in existing]
    if added:
        lines = _insert(lines, added, eol)
    return b"".join(lines)


def _insert(lines: list[bytes], added: list[list[bytes]], eol: bytes) -> list[bytes]:
    at = insertion_point(lines)
    if at is not None:
        chunk = [line for block in added for line in [*block, eol]]
        return [*lines[:at], *chunk, *lines[at:]]
    out = list(lines)
    final_eol = not out or out[-1].endswith(b"\n")
    if out and not final_eol:
        out[-1] += eol
    for block in added:
        if out:
            out.append(eol)
        out += block
    if not final_eol:
        out[-1] = _strip_eol(out[-1])
    return out


def global_line(data: bytes, option: str) -> tuple[int, str] | None:
    """The line (1-based) and text of a global setting of ``option``, before any Host/Match."""
    wanted = option.lower().encode()
    for i, line in enumerate(split_lines(data)):
        word, _ = keyword(line)
        if word in (b"host", b"match"):
            return None
        if word == wanted:
            return i + 1, _content(line).rstrip(b"\r").decode(errors="replace")
    return None


def remove_all(old: bytes) -> bytes:
    """``old`` without any managed block: the user's own settings."""
    return apply(old, dict.fromkeys(managed_names(old)))


# --- ssh -G ------------------------------------------------------------------------------


def check_argv(name: str, *, ssh: Ssh) -> list[str]:
    """``ssh -G -F FILE NAME``: what plain ``ssh NAME`` would use with ``FILE``."""
    if not ssh.config_file:
        raise ValueError("check_argv needs the config file to check")
    return [*ssh.head(), "-G", name]


class Resolved(dict[str, list[str]]):
    """``ssh -G`` output: lower-case keyword to its values (several for identityfile, ...)."""

    def one(self, key: str) -> str | None:
        """The value ssh uses (the first one), or None."""
        found = self.get(key)
        return found[0] if found else None

    def all(self, key: str) -> list[str]:
        return list(self.get(key, []))


def parse_resolved(stdout: str) -> Resolved:
    """``ssh -G`` prints one "keyword value" line per option, keywords in lower case."""
    out = Resolved()
    for line in stdout.splitlines():
        key, _, value = line.partition(" ")
        if key:
            out.setdefault(key.lower(), []).append(value)
    return out


def expected_forward(forward: str) -> str:
    """``LocalForward`` arguments as ``ssh -G`` prints them (``[host]:port``, bare paths)."""
    words = arguments(forward.encode())
    return " ".join(_bracket(w.decode()) for w in words)


def _bracket(endpoint: str) -> str:
    if endpoint.startswith("/"):
        return endpoint
    host, sep, port = endpoint.rpartition(":")
    return f"[{host}]:{port}" if sep else endpoint


def same_path(a: str, b: str) -> bool:
    return os.path.expanduser(a) == os.path.expanduser(b)
