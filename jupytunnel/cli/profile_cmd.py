"""``jupytunnel profile …``: add, list, show, remove, edit, path."""

from __future__ import annotations

import os
import shlex
from typing import Annotated, Any

import typer

from jupytunnel.cli.common import GLOBALS, JsonFlag, ProfileName, complete_profile, print_json, print_table
from jupytunnel.errors import UsageError

app = typer.Typer(help="Create and manage profiles (one TOML file each).", no_args_is_help=True)


def _ssh_option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"--ssh-option: expected KEY=VALUE, got {text!r}")
    return key, value


@app.command("add")
def add(
    name: ProfileName,
    host: Annotated[str, typer.Option("--host", help="Hostname or an alias from your ssh config.")],
    user: Annotated[str | None, typer.Option(help="Remote login.")] = None,
    port: Annotated[int | None, typer.Option(help="ssh port.")] = None,
    jump: Annotated[
        list[str] | None, typer.Option("--jump", help="Jump host [user@]host[:port]; repeat for a chain.")
    ] = None,
    proxy_command: Annotated[str | None, typer.Option(help="ProxyCommand (%h %p %r are ssh's).")] = None,
    remote_port: Annotated[int | None, typer.Option(help="Port Jupyter listens on, on the remote.")] = None,
    local_port: Annotated[str | None, typer.Option(help="Local port, or 'auto'.")] = None,
    transport: Annotated[
        str | None, typer.Option(help="tcp or socket.", autocompletion=lambda: ["tcp", "socket"])
    ] = None,
    jupyter: Annotated[str | None, typer.Option(help="Jupyter command on the remote.")] = None,
    workdir: Annotated[str | None, typer.Option(help="Folder the remote server starts in.")] = None,
    setup: Annotated[
        list[str] | None, typer.Option("--setup", help="Shell line run before Jupyter; repeatable.")
    ] = None,
    launcher: Annotated[
        str | None,
        typer.Option(help="nohup, tmux, screen or none.", autocompletion=lambda: ["nohup", "tmux", "screen", "none"]),
    ] = None,
    nice: Annotated[int | None, typer.Option(help="Niceness 0..19 of the remote server.")] = None,
    identity_file: Annotated[str | None, typer.Option(help="Private key file.")] = None,
    ssh_option: Annotated[
        list[str] | None, typer.Option("--ssh-option", help="Extra ssh option KEY=VALUE; repeatable.")
    ] = None,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a browser on connect.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing profile.")] = False,
) -> None:
    """Add a profile.

    Example: jupytunnel profile add aura --host aura.example.org --user ada --jump gw.example.org
    """
    from jupytunnel import profiles

    raw: dict[str, Any] = {"host": host}
    optional: dict[str, Any] = {
        "user": user,
        "port": port,
        "proxy_command": proxy_command,
        "remote_port": remote_port,
        "transport": transport,
        "jupyter": jupyter,
        "workdir": workdir,
        "launcher": launcher,
        "nice": nice,
        "identity_file": identity_file,
    }
    raw.update({k: v for k, v in optional.items() if v is not None})
    if jump:
        raw["jump"] = list(jump)
    if setup:
        raw["setup"] = list(setup)
    if local_port is not None:
        raw["local_port"] = local_port if local_port == "auto" else _int(local_port, "--local-port")
    if ssh_option:
        raw["ssh_options"] = dict(_ssh_option(o) for o in ssh_option)
    if no_browser:
        raw["browser"] = False
    profiles.validate_name(name)
    profile = profiles.build(name, raw, {}, f"profile {name}")
    path = profiles.profile_path(name)
    if path.exists() and not force:
        raise UsageError(f"profile {name!r} exists ({path}); use --force to replace it")
    if GLOBALS.dry_run:
        print(f"# would write {path}:")
        print(profiles.dump(profile).decode(), end="")
        return
    written = profiles.save(profile)
    print(f"saved {written}")


def _int(text: str, option: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{option}: expected a number or 'auto', got {text!r}") from None


@app.command("list")
def list_(json_: JsonFlag = False) -> None:
    """List profiles.

    Example: jupytunnel profile list --json
    """
    from jupytunnel import profiles
    from jupytunnel.errors import ProfileError

    rows = []
    for name in profiles.list_names():
        try:
            p = profiles.load(name)
            rows.append(
                {
                    "name": name,
                    "host": p.host,
                    "user": p.user,
                    "transport": p.transport,
                    "remote_port": p.remote_port,
                    "launcher": p.launcher,
                    "valid": True,
                    "error": None,
                }
            )
        except ProfileError as exc:  # noqa: PERF203 - an invalid profile is listed, not fatal
            rows.append(
                {
                    "name": name,
                    "host": None,
                    "user": None,
                    "transport": None,
                    "remote_port": None,
                    "launcher": None,
                    "valid": False,
                    "error": str(exc),
                }
            )
    if json_:
        print_json(rows)
        return
    if not rows:
        print("no profiles yet; add one with: jupytunnel profile add NAME --host HOST")
        return
    print_table(
        ["name", "host", "transport", "launcher"],
        [
            [str(r["name"]), str(r["host"] or "INVALID"), str(r["transport"] or "-"), str(r["launcher"] or "-")]
            for r in rows
        ],
    )


@app.command("show")
def show(name: ProfileName, json_: JsonFlag = False) -> None:
    """Show a profile with every key, defaults included.

    Example: jupytunnel profile show aura --json
    """
    from jupytunnel import profiles

    p = profiles.load(name)
    data = p._asdict()
    data["jump"] = list(p.jump)
    data["setup"] = list(p.setup)
    data["ssh_options"] = dict(p.ssh_options)
    data["sync"] = {**p.sync._asdict(), "exclude": list(p.sync.exclude)}
    data["path"] = str(profiles.profile_path(name))
    if json_:
        print_json(data)
        return
    for key, value in data.items():
        print(f"{key:14} {value if value is not None else '-'}")


@app.command("remove")
def remove(name: ProfileName) -> None:
    """Remove a profile (its tunnel, if any, is left alone: disconnect it first).

    Example: jupytunnel profile remove aura
    """
    from jupytunnel import profiles

    path = profiles.profile_path(name)
    if not path.exists():
        raise UsageError(f"no profile {name!r} in {path.parent}")
    if GLOBALS.dry_run:
        print(f"# would remove {path}")
        return
    path.unlink()
    print(f"removed {path}")


@app.command("edit")
def edit(name: ProfileName) -> None:
    """Edit a profile in $VISUAL or $EDITOR; an invalid result keeps the old file.

    Example: EDITOR=nano jupytunnel profile edit aura
    """
    import tempfile
    from pathlib import Path

    from jupytunnel import paths, profiles, runner
    from jupytunnel.fsutil import atomic_write

    path = profiles.profile_path(name)
    original = path.read_bytes() if path.exists() else None
    if original is None:
        raise UsageError(f"no profile {name!r} in {path.parent}")
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    folder = paths.ensure_private_dir(paths.profiles_dir())
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".toml", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(original)
        try:
            argv = [*shlex.split(editor), tmp]
        except ValueError as exc:
            raise UsageError(f"cannot split the editor command {editor!r}: {exc}") from None
        if GLOBALS.dry_run:
            print(shlex.join(argv))
            return
        code = runner.run_interactive(argv)
        if code != 0:
            raise UsageError(f"editor {editor!r} exited with {code}; {path} unchanged")
        edited = Path(tmp).read_bytes()
        profiles.build(name, profiles.parse_toml(edited, str(path)), profiles.load_defaults(), str(path))
        if edited != original:
            atomic_write(path, edited)
            print(f"saved {path}")
        else:
            print(f"{path} unchanged")
    finally:
        Path(tmp).unlink(missing_ok=True)


@app.command("path")
def path_(
    name: Annotated[
        str | None, typer.Argument(help="Profile name.", autocompletion=complete_profile, show_default=False)
    ] = None,
) -> None:
    """Print the profiles folder, or the file of one profile.

    Example: jupytunnel profile path aura
    """
    from jupytunnel import paths, profiles

    print(profiles.profile_path(name) if name else paths.profiles_dir())
