"""``jupytunnel profile add|list|show|remove|edit|path``: plain functions over ``profiles``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from jupytunnel.errors import UsageError

if TYPE_CHECKING:
    from jupytunnel.profiles import Profile


class Added(NamedTuple):
    path: Path
    text: bytes  # the file's content
    written: bool  # False in a dry run


def add(name: str, raw: Mapping[str, Any], *, force: bool = False) -> Added:
    """Save the profile ``name`` from ``raw`` (its TOML keys, as ``profile add``'s options give
    them: only those are written, never the defaults). A bad key or value, a clash with
    ``defaults.toml`` or an existing profile (unless ``force``) is a ``UsageError``, before
    anything is written. In a dry run nothing is written (``runner.note``)."""
    from jupytunnel import profiles, runner

    profiles.validate_name(name)
    profile = profiles.build(name, dict(raw), {}, "profile add")
    # Every later load merges defaults.toml: a clash with it (its proxy_command and --jump, its
    # launcher = "slurm" and --transport socket) is refused now, before anything is written.
    profiles.build(name, dict(raw), profiles.load_defaults(), "profile add")
    path = profiles.profile_path(name)
    if path.exists() and not force:
        raise UsageError(f"profile {name!r} exists ({path}); use --force to replace it")
    text = profiles.dump(profile)
    if runner.dry_run():
        runner.note(f"write {path}")
        return Added(path, text, written=False)
    return Added(profiles.save(profile), text, written=True)


class Listed(NamedTuple):
    """One profile of ``profile list``: loaded, or why it does not load."""

    name: str
    profile: Profile | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        p = self.profile
        return {
            "name": self.name,
            "host": p.host if p else None,
            "user": p.user if p else None,
            "transport": p.transport if p else None,
            "remote_port": p.remote_port if p else None,
            "launcher": p.launcher if p else None,
            "valid": p is not None,
            "error": self.error,
        }


def list_profiles() -> list[Listed]:
    """Every profile by name; an invalid one is listed with its error, not fatal."""
    from jupytunnel import profiles
    from jupytunnel.errors import ProfileError

    out = []
    for name in profiles.list_names():
        try:
            out.append(Listed(name, profiles.load(name)))
        except ProfileError as exc:  # noqa: PERF203 - an invalid profile is listed, not fatal
            out.append(Listed(name, None, str(exc)))
    return out


class Shown(NamedTuple):
    profile: Profile
    path: Path
    own: dict[str, Any]  # the keys of the file itself
    defaults: dict[str, Any]  # defaults.toml's

    def to_dict(self) -> dict[str, Any]:
        p = self.profile
        data = p._asdict()
        data["jump"] = list(p.jump)
        data["setup"] = list(p.setup)
        data["ssh_options"] = dict(p.ssh_options)
        data["slurm"] = {**p.slurm._asdict(), "sbatch_args": list(p.slurm.sbatch_args)}
        data["sync"] = {**p.sync._asdict(), "exclude": list(p.sync.exclude)}
        data["path"] = str(self.path)
        return data


def show(name: str) -> Shown:
    from jupytunnel import profiles

    path = profiles.require(name)
    profile = profiles.load(name)
    return Shown(profile, path, profiles.parse_toml(path.read_bytes(), str(path)), profiles.load_defaults())


def remove(name: str, *, force: bool = False, confirm: Callable[[str], bool] | None = None) -> list[str]:
    """Remove profile ``name``; returns lines for the user.

    A live tunnel or a server the profile started is closed first: with ``force``, or when
    ``confirm(question)`` says yes (None: nobody to ask, a ``UsageError``). The profile is
    removed last, as stopping the server needs it: a failure keeps it."""
    from jupytunnel import profiles, runner, state, tunnel

    path = profiles.require(name)
    record = state.load(name)
    live = record is not None and tunnel.record_state(record) != "down"
    server = state.load_server(name)
    busy = []
    if live and record is not None:
        busy.append(f"a live tunnel (ssh pid {record.pid})")
    if server is not None:
        busy.append(f"a Jupyter server (remote pid {server.server.pid}) that may still run")
    if busy and not force:
        what = " and ".join(busy)
        then = "close the tunnel, stop the server" if server is not None else "close the tunnel"
        if confirm is None or runner.dry_run():
            raise UsageError(
                f"profile {name!r} has {what}; without the profile 'server stop' could not reach it. "
                f"Use --force to {then} and remove it"
            )
        if not confirm(f"profile {name!r} has {what}. {then[0].upper()}{then[1:]} and remove it?"):
            raise UsageError(f"profile {name!r} kept")
    # In a dry run the same code runs: disconnect and server stop record their commands and
    # say their writes; the profile file is said, not removed.
    lines = []
    if live:
        profile = profiles.load(name) if server is not None else None
        lines.append(tunnel.disconnect(name, stop_server=server is not None, profile=profile))
    elif server is not None:
        from jupytunnel.commands import server as server_commands

        profile = profiles.load(name)
        lines.append(server_commands.stopped_line(profile, server_commands.stop(profile)))
    state.forget_server(name)
    if runner.dry_run():
        runner.note(f"remove {path}")
        return lines
    from jupytunnel import prelaunch

    path.unlink()
    prelaunch.forget(name)  # the plan of its master, built from the file just removed
    lines.append(f"removed {path}")
    return lines


def editor_argv(environ: Mapping[str, str]) -> list[str]:
    """``$VISUAL``, else ``$EDITOR``, else vi, split as a shell would."""
    import shlex

    editor = environ.get("VISUAL") or environ.get("EDITOR") or "vi"
    try:
        argv = shlex.split(editor)
    except ValueError as exc:
        raise UsageError(f"cannot split the editor command {editor!r}: {exc}") from None
    if not argv:
        raise UsageError("$VISUAL/$EDITOR is empty")
    return argv


def edit(name: str, editor: list[str]) -> str:
    """Edit the profile in ``editor`` until it is valid (``profile_edit``); a line for the user.
    In a dry run: the editor command, on the temporary copy it would open."""
    from jupytunnel import profiles, runner
    from jupytunnel.commands import profile_edit

    path = profiles.require(name)
    if runner.dry_run():
        runner.run_interactive([*editor, str(path.with_name(f".{name}.XXXX.toml"))])
        return ""
    return profile_edit.edit(name, path, editor)


def path(name: str | None = None) -> Path:
    """The profiles folder, or the file of one profile."""
    from jupytunnel import paths, profiles

    return profiles.profile_path(name) if name else paths.profiles_dir()
