"""Profiles: one TOML file a profile, validated on every load.

Validation never raises anything but ``ProfileError`` (exit 2, one line), whatever the input:
``tests/test_profiles.py`` proves that with hypothesis.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from jupytunnel import paths
from jupytunnel.errors import ProfileError, UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_NAME_LEN = 100
SSH_OPTION_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*")
# The tunnel is tracked by its control socket; a profile changing these would break that.
_RESERVED_OPTIONS = frozenset({"controlmaster", "controlpath", "controlpersist"})
# C0 controls and DEL; a NUL or a newline would break an argv or a remote command line.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_SPACE_OR_CONTROL_RE = re.compile(r"[\s\x00-\x1f\x7f]")
# Bidi controls (U+202A-202E, U+2066-2069), marks (U+200E/F, U+061C), zero-width characters
# and the BOM: text that displays otherwise than it is (Trojan Source).
_BIDI_RE = re.compile("[\u202a-\u202e\u2066-\u2069\u200b-\u200f\u061c\ufeff]")

Transport = Literal["tcp", "socket"]
Launcher = Literal["nohup", "tmux", "screen", "slurm", "none"]
TRANSPORTS: tuple[str, ...] = ("tcp", "socket")
LAUNCHERS: tuple[str, ...] = ("nohup", "tmux", "screen", "slurm", "none")
SLURM_KEYS: tuple[str, ...] = ("sbatch_args", "wait")
DEFAULT_SLURM_WAIT = 600.0
SshOptionValue = str | int | bool


_NO_OPTIONS: Mapping[str, SshOptionValue] = MappingProxyType({})


class SlurmOptions(NamedTuple):
    """The ``[slurm]`` table: how the batch job that runs Jupyter is submitted."""

    sbatch_args: tuple[str, ...] = ()
    wait: float = DEFAULT_SLURM_WAIT  # seconds for the job to start running

    def to_toml_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.sbatch_args:
            out["sbatch_args"] = list(self.sbatch_args)
        if self.wait != DEFAULT_SLURM_WAIT:
            out["wait"] = int(self.wait) if float(self.wait).is_integer() else self.wait
        return out


class SyncSettings(NamedTuple):
    """The ``[sync]`` table: the folder pair ``jupytunnel sync NAME`` uses by default."""

    local: str | None = None  # absolute or ~/...; default: the current folder
    remote: str | None = None  # default: workdir/<name of the local folder>
    exclude: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The keys that are set, as TOML takes them."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self._asdict().items() if v not in (None, ())}


SYNC_KEYS: tuple[str, ...] = SyncSettings._fields


def remote_path_problem(path: str) -> str | None:
    """Why ``path`` is not a remote path sync understands, or None.

    ``~`` and ``~/...`` are the remote home, as in ``workdir``; other ``~`` forms (``~bob``)
    would need the remote shell, which never sees the paths (rsync ``-s``).
    """
    if not path:
        return "must not be empty"
    if _CONTROL_RE.search(path):
        return "contains control characters (newline, tab, NUL, ...)"
    if path.startswith("~") and path != "~" and not path.startswith("~/"):
        return f"{_describe(path)}: only '~' and '~/...' (your home there) are understood"
    return None


# A NamedTuple, not a dataclass: every connect loads a profile, and dataclasses imports
# inspect, 10 ms of start-up in a command whose whole budget is about 60 ms.
class Profile(NamedTuple):
    """A validated profile. Field defaults are the documented defaults."""

    name: str
    host: str
    user: str | None = None
    port: int | None = None
    identity_file: str | None = None
    jump: tuple[str, ...] = ()
    proxy_command: str | None = None
    remote_port: int | Literal["auto"] = 8888  # "auto": a free port chosen on the remote at start
    local_port: int | Literal["auto"] = "auto"
    transport: Transport = "tcp"
    jupyter: str = "jupyter lab"
    workdir: str = "~"
    setup: tuple[str, ...] = ()
    launcher: Launcher = "nohup"
    nice: int | None = None
    ssh_options: Mapping[str, SshOptionValue] = _NO_OPTIONS
    browser: bool = True
    slurm: SlurmOptions = SlurmOptions()
    sync: SyncSettings = SyncSettings()

    @property
    def is_classic_notebook(self) -> bool:
        """``jupyter notebook`` (or nbclassic) serves ``/tree``, not ``/lab``."""
        words = shlex.split(self.jupyter)
        return any(w in ("notebook", "nbclassic") or w.endswith("jupyter-notebook") for w in words)

    def to_toml_dict(self) -> dict[str, Any]:
        """The keys that differ from the defaults, in documented order, ready for tomli-w."""
        out: dict[str, Any] = {}
        for key, value in self._asdict().items():
            if key == "name":
                continue
            if key == "slurm":
                if value.to_toml_dict():
                    out[key] = value.to_toml_dict()
            elif isinstance(value, SyncSettings):
                if value.to_dict():
                    out[key] = value.to_dict()
            elif key == "host" or value != self._field_defaults.get(key):
                out[key] = (
                    list(value) if isinstance(value, tuple) else dict(value) if isinstance(value, Mapping) else value
                )
        return out


KEYS: tuple[str, ...] = tuple(f for f in Profile._fields if f != "name")


def validate_name(name: str) -> str:
    if not NAME_RE.fullmatch(name) or len(name) > MAX_NAME_LEN:
        raise UsageError(
            f"invalid profile name {name!r}: use letters, digits, '.', '_' and '-', "
            f"starting with a letter or digit (at most {MAX_NAME_LEN} characters)"
        )
    return name


class _Checker:
    """Turns a raw TOML table into ``Profile`` keyword arguments, or one-line errors."""

    def __init__(self, source: str, profile: str) -> None:
        self.source = source
        self.profile = profile

    def fail(self, key: str, problem: str) -> ProfileError:
        where = f"{self.source}: profile {self.profile!r}" if self.profile else self.source
        return ProfileError(f"{where}: key {key!r}: {problem}")

    def string(self, key: str, value: object, *, token: bool = False) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {_describe(value)}")
        if len(value) > MAX_VALUE_CHARS:
            raise self.fail(key, f"longer than {MAX_VALUE_CHARS} characters")
        if _BIDI_RE.search(value):
            # Right-to-left overrides and their kin make text read differently than it runs.
            raise self.fail(key, f"contains invisible or text-direction characters: {_describe(value)}")
        if token:
            if not value:
                raise self.fail(key, "must not be empty")
            if value.startswith("-"):
                raise self.fail(key, f"{value!r} starts with '-' (it would become an ssh option)")
            if _SPACE_OR_CONTROL_RE.search(value):
                raise self.fail(key, f"{value!r} contains whitespace or control characters")
        elif _CONTROL_RE.search(value):
            raise self.fail(key, "contains control characters (newline, tab, NUL, ...)")
        return value

    def integer(self, key: str, value: object, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer {lo}..{hi}, got {_describe(value)}")
        if not lo <= value <= hi:
            raise self.fail(key, f"expected an integer {lo}..{hi}, got {value}")
        return value

    def choice(self, key: str, value: object, choices: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in choices:
            accepted = ", ".join(repr(c) for c in choices)
            raise self.fail(key, f"expected one of {accepted}, got {_describe(value)}")
        return value

    def string_list(self, key: str, value: object, *, token: bool = False) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list of strings, got {_describe(value)}")
        return tuple(self.string(key, item, token=token) for item in value)

    def check(self, raw: Mapping[str, object], *, need_host: bool) -> dict[str, Any]:  # noqa: C901, PLR0912
        out: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in KEYS:
                import difflib

                close = difflib.get_close_matches(key, KEYS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(KEYS)}"
                raise self.fail(key, f"unknown key{hint}")
            if key in ("host", "user"):
                out[key] = self.string(key, value, token=True)
            elif key == "remote_port" and value == "auto":
                out[key] = "auto"
            elif key in ("port", "remote_port"):
                out[key] = self.integer(key, value, 1, 65535)
            elif key == "local_port":
                out[key] = "auto" if value == "auto" else self._local_port(value)
            elif key == "jump":
                hops = self.string_list(key, value, token=True)
                for hop in hops:
                    if "," in hop:
                        raise self.fail(key, f"{hop!r}: give each jump host as its own list entry")
                out[key] = hops
            elif key == "setup":
                out[key] = self.string_list(key, value)
            elif key == "transport":
                out[key] = self.choice(key, value, TRANSPORTS)
            elif key == "launcher":
                out[key] = self.choice(key, value, LAUNCHERS)
            elif key == "nice":
                out[key] = self.integer(key, value, 0, 19)
            elif key == "browser":
                if not isinstance(value, bool):
                    raise self.fail(key, f"expected true or false, got {_describe(value)}")
                out[key] = value
            elif key == "ssh_options":
                out[key] = self._ssh_options(value)
            elif key == "jupyter":
                out[key] = self._command(key, value)
            elif key == "slurm":
                out[key] = self._slurm(value)
            elif key == "sync":
                out[key] = self._sync(value)
            else:  # identity_file, proxy_command, workdir
                text = self.string(key, value)
                if not text:
                    raise self.fail(key, "must not be empty")
                out[key] = text
        if need_host and "host" not in out:
            raise self.fail("host", "missing; every profile needs a host (a hostname or an ssh alias)")
        if out.get("jump") and out.get("proxy_command"):
            raise self.fail(
                "proxy_command",
                "'jump' and 'proxy_command' cannot both be set (OpenSSH silently uses only one)",
            )
        if out.get("launcher") == "slurm" and out.get("transport") == "socket":
            raise self.fail(
                "transport",
                "'socket' cannot reach a compute node (the socket would be on the node, not on the login node "
                "the tunnel ends at); use transport = 'tcp' with launcher = 'slurm'",
            )
        return out

    def _slurm(self, value: object) -> SlurmOptions:
        if not isinstance(value, dict):
            raise self.fail("slurm", f"expected a table, got {_describe(value)}")
        opts: dict[str, Any] = {}
        for sub, val in value.items():
            key = f"slurm.{sub}"
            if sub == "sbatch_args":
                args = self.string_list(key, val)
                for arg in args:
                    # Passed to sbatch as they are: an option each, never a script name.
                    if not arg.startswith("-"):
                        raise self.fail(key, f"{arg!r} does not start with '-' (each entry is one sbatch option)")
                opts[sub] = args
            elif sub == "wait":
                if isinstance(val, bool) or not isinstance(val, int | float) or not 0 < val <= 7 * 24 * 3600:
                    raise self.fail(key, f"expected a number of seconds in (0, 604800], got {_describe(val)}")
                opts[sub] = float(val)
            else:
                import difflib

                close = difflib.get_close_matches(sub, SLURM_KEYS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(SLURM_KEYS)}"
                raise self.fail(key, f"unknown key{hint}")
        return SlurmOptions(**opts)

    def _local_port(self, value: object) -> int:
        if isinstance(value, str):
            raise self.fail("local_port", f"expected an integer 1..65535 or 'auto', got {value!r}")
        return self.integer("local_port", value, 1, 65535)

    def _command(self, key: str, value: object) -> str:
        text = self.string(key, value)
        try:
            words = shlex.split(text)
        except ValueError as exc:
            raise self.fail(key, f"cannot split {text!r} into words: {exc}") from None
        if not words:
            raise self.fail(key, "must name a command, such as 'jupyter lab'")
        return text

    def _sync(self, value: object) -> dict[str, Any]:
        """The ``[sync]`` table's keys, checked; ``build`` merges them with defaults.toml's."""
        if not isinstance(value, dict):
            raise self.fail("sync", f"expected a table ([sync] with {', '.join(SYNC_KEYS)}), got {_describe(value)}")
        out: dict[str, Any] = {}
        for sub, item in value.items():
            key = f"sync.{sub}"
            if sub not in SYNC_KEYS:
                import difflib

                close = difflib.get_close_matches(sub, SYNC_KEYS, n=1)
                hint = f"; did you mean 'sync.{close[0]}'?" if close else f"; known keys: {', '.join(SYNC_KEYS)}"
                raise self.fail(key, f"unknown key{hint}")
            if sub == "exclude":
                patterns = self.string_list(key, item)
                if any(not p for p in patterns):
                    raise self.fail(key, "an empty pattern")
                out[sub] = patterns
                continue
            text = self.string(key, item)
            problem = remote_path_problem(text) if sub == "remote" else _local_path_problem(text)
            if problem:
                raise self.fail(key, problem)
            out[sub] = text
        return out

    def _ssh_options(self, value: object) -> dict[str, SshOptionValue]:
        if not isinstance(value, dict):
            raise self.fail("ssh_options", f"expected a table, got {_describe(value)}")
        opts: dict[str, SshOptionValue] = {}
        for opt, val in value.items():
            if not SSH_OPTION_RE.fullmatch(opt):
                raise self.fail("ssh_options", f"{opt!r} is not an ssh option name")
            if opt.lower() in _RESERVED_OPTIONS:
                raise self.fail(
                    "ssh_options", f"{opt!r} is jupytunnel's to set (it manages the control socket of each tunnel)"
                )
            if isinstance(val, bool | int):
                opts[opt] = val
            elif isinstance(val, str):
                opts[opt] = self.string(f"ssh_options.{opt}", val)
            else:
                raise self.fail(f"ssh_options.{opt}", f"expected a string, integer or boolean, got {_describe(val)}")
        return opts


_SHOWN = 40  # characters of a bad value quoted back in an error


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        text = repr(value)
        return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _local_path_problem(path: str) -> str | None:
    if not path:
        return "must not be empty"
    if not (path == "~" or path.startswith(("~/", "/"))):
        return f"{_describe(path)}: give an absolute path or one that starts with '~/'"
    return None


def parse_toml(data: bytes, source: str) -> dict[str, Any]:
    """Decode a TOML file's bytes; any failure is a one-line ``ProfileError``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    try:
        parsed: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc).splitlines()[0] if str(exc) else "invalid TOML"
        raise ProfileError(f"{source}: TOML syntax error: {msg}") from None
    except (ValueError, RecursionError) as exc:  # huge nesting or numbers the parser refuses
        raise ProfileError(f"{source}: TOML syntax error: {exc}") from None
    return parsed


def build(name: str, raw: Mapping[str, object], defaults: Mapping[str, object], source: str) -> Profile:
    """Merge ``defaults`` under ``raw`` and validate; raises ``ProfileError``."""
    checked_defaults = _Checker(str(paths.defaults_file()), "").check(defaults, need_host=False)
    checked = _Checker(source, name).check(raw, need_host=True)
    merged = {**checked_defaults, **checked}
    if "ssh_options" in checked_defaults and "ssh_options" in checked:
        merged["ssh_options"] = {**checked_defaults["ssh_options"], **checked["ssh_options"]}
    if "slurm" in checked_defaults and "slurm" in checked:
        both = {**checked_defaults["slurm"]._asdict(), **_set_fields(checked["slurm"])}
        merged["slurm"] = SlurmOptions(**both)
    if merged.get("launcher") == "slurm" and merged.get("transport") == "socket":
        raise _Checker(source, name).fail(
            "transport", "'socket' cannot reach a compute node; use transport = 'tcp' with launcher = 'slurm'"
        )
    if "sync" in merged:  # one key a time, as ssh_options: defaults' exclude with the profile's folders
        merged["sync"] = SyncSettings(**{**checked_defaults.get("sync", {}), **checked.get("sync", {})})
    if merged.get("jump") and merged.get("proxy_command"):
        # One came from defaults.toml, the other from the profile.
        raise _Checker(source, name).fail(
            "proxy_command", "'jump' and 'proxy_command' cannot both be set (one is in defaults.toml)"
        )
    return Profile(name=name, **merged)


def _set_fields(options: SlurmOptions) -> dict[str, Any]:
    """The keys a profile's ``[slurm]`` table set (others come from defaults.toml)."""
    return {k: v for k, v in options._asdict().items() if v != SlurmOptions._field_defaults[k]}


def profile_path(name: str) -> Path:
    return paths.profiles_dir() / f"{validate_name(name)}.toml"


MAX_FILE_BYTES = 1024 * 1024  # a profile is a few lines; a huge file is a mistake or an attack
MAX_VALUE_CHARS = 16 * 1024  # a setup line or a command; keeps shlex.split and ssh argv sane


def _read(path: Path) -> bytes | None:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ProfileError(f"{path}: larger than {MAX_FILE_BYTES // 1024} KiB; not a profile")
    return data


def load_defaults() -> dict[str, Any]:
    path = paths.defaults_file()
    data = _read(path)
    return {} if data is None else parse_toml(data, str(path))


def load(name: str) -> Profile:
    """Load and validate profile ``name``; a missing one is a ``UsageError`` naming the folder."""
    path = profile_path(name)
    data = _read(path)
    if data is None:
        raise unknown(name)
    return build(name, parse_toml(data, str(path)), load_defaults(), str(path))


def unknown(name: str) -> UsageError:
    """The one answer of every command that takes a NAME to a name that is no profile."""
    import difflib

    close = [repr(n) for n in difflib.get_close_matches(name, list_names(), n=3)]
    if close:
        hint = f"did you mean {' or '.join([', '.join(close[:-1]), close[-1]] if len(close) > 1 else close)}?"
    else:
        hint = f"add one with: jupytunnel profile add {name} --host HOST"
    return UsageError(f"no profile {name!r}; {hint}")


def require(name: str) -> Path:
    """The file of profile ``name``; the usual error (with a did-you-mean) when there is none."""
    path = profile_path(name)
    if not path.exists():
        raise unknown(name)
    return path


def list_names() -> list[str]:
    """Profile names from file names alone (nothing is parsed: completion uses this)."""
    try:
        entries = os.listdir(paths.profiles_dir())
    except OSError:
        return []
    names = [e[:-5] for e in entries if e.endswith(".toml")]
    # A stray file whose name is no valid profile name (too long, a space) is not a
    # profile: listing it would fail every command that lists.
    return sorted(n for n in names if len(n) <= MAX_NAME_LEN and NAME_RE.fullmatch(n))


def dump(profile: Profile) -> bytes:
    import tomli_w

    return tomli_w.dumps(profile.to_toml_dict()).encode()


def save(profile: Profile) -> Path:
    from jupytunnel.fsutil import atomic_write

    paths.ensure_private_dir(paths.config_dir())
    folder = paths.ensure_private_dir(paths.profiles_dir())
    path = folder / f"{profile.name}.toml"
    atomic_write(path, dump(profile))
    return path
