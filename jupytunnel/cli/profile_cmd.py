"""``jupytunnel profile …``: add, list, show, remove, edit, path."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from jupytunnel.cli import dry_run
from jupytunnel.cli.common import (
    JsonFlag,
    ProfileName,
    WideFlag,
    complete_file,
    complete_profile,
    print_json,
    print_table,
)
from jupytunnel.errors import UsageError

app = typer.Typer(help="Create and manage profiles (one TOML file each).", no_args_is_help=True)


def _ssh_option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"--ssh-option: expected KEY=VALUE, got {text!r}")
    return key, value


# A new name: completing the existing ones would only offer what `add` refuses.
NewProfileName = Annotated[str, typer.Argument(help="Name of the new profile.", show_default=False)]


@app.command("add")
def add(
    name: NewProfileName,
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
        typer.Option(
            help="nohup, tmux, screen, slurm or none.",
            autocompletion=lambda: ["nohup", "tmux", "screen", "slurm", "none"],
        ),
    ] = None,
    sbatch_arg: Annotated[
        list[str] | None,
        typer.Option("--sbatch-arg", help="sbatch option for the slurm launcher (--time=2:00:00); repeatable."),
    ] = None,
    nice: Annotated[int | None, typer.Option(help="Niceness 0..19 of the remote server.")] = None,
    identity_file: Annotated[str | None, typer.Option(help="Private key file.", autocompletion=complete_file)] = None,
    ssh_option: Annotated[
        list[str] | None, typer.Option("--ssh-option", help="Extra ssh option KEY=VALUE; repeatable.")
    ] = None,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a browser on connect.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing profile.")] = False,
) -> None:
    """Add a profile.

    Example: jupytunnel profile add aura --host aura.example.org --user ada --jump gw.example.org
    """
    from jupytunnel.commands import profile as command

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
    if sbatch_arg:
        raw["slurm"] = {"sbatch_args": list(sbatch_arg)}
    added = command.add(name, raw, force=force)
    if not added.written:
        print(f"# would write {added.path}:")
        print(added.text.decode(), end="")
        return
    print(f"saved {added.path}")


def _int(text: str, option: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{option}: expected a number or 'auto', got {text!r}") from None


@app.command("list")
def list_(json_: JsonFlag = False, wide: WideFlag = False) -> None:
    """List profiles.

    Example: jupytunnel profile list --json
    """
    from jupytunnel.commands import profile as command

    rows = [listed.to_dict() for listed in command.list_profiles()]
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
        wide=wide,
        shrink={"host": 12, "name": 10},
        drop=("launcher", "transport"),
    )


@app.command("show")
def show(name: ProfileName, json_: JsonFlag = False) -> None:
    """Show a profile as TOML: the file's keys, then every default as a comment.

    Example: jupytunnel profile show aura
    """
    from jupytunnel.commands import profile as command

    shown = command.show(name)
    if json_:
        print_json(shown.to_dict())
        return
    print(show_toml(shown.profile, shown.own, shown.defaults, shown.path), end="")


def show_toml(profile: Any, own: dict[str, Any], defaults: dict[str, Any], path: Any) -> str:  # noqa: ANN401
    """The profile as TOML that parses back to the file's own keys; every other key is a
    comment saying where its value comes from (defaults.toml or the built-in default)."""
    from jupytunnel import paths, profiles

    lines = [f"# profile {profile.name}: {path}", "# keys in comments are not in the file: defaults"]
    for key in profiles.KEYS:
        value = getattr(profile, key)
        if key in own:
            lines.append(f"{key} = {_toml_value(own[key])}")
        elif value is None:
            lines.append(f"# {key} is not set ({_UNSET.get(key, 'none')})")
        elif key in defaults:
            lines.append(f"# {key} = {_toml_value(value)}  # from {paths.defaults_file()}")
        else:
            lines.append(f"# {key} = {_toml_value(value)}  # default")
    return "\n".join(lines) + "\n"


_UNSET = {"user": "ssh's own", "port": "ssh's own", "identity_file": "ssh's own", "nice": "not reniced"}


def _toml_value(value: Any) -> str:  # noqa: ANN401 - any TOML value
    """One value in TOML syntax, tables inline (so every key stays on its own line)."""
    import tomli_w

    if hasattr(value, "_asdict"):  # a table of its own ([slurm])
        value = {k: list(v) if isinstance(v, tuple) else v for k, v in value._asdict().items() if v is not None}
    if isinstance(value, dict) or hasattr(value, "items"):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in dict(value).items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, tuple):
        value = list(value)
    return tomli_w.dumps({"v": value}).strip()[len("v = ") :]


def _toml_key(key: str) -> str:
    import re

    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(key)


@app.command("remove")
def remove(
    name: ProfileName,
    force: Annotated[
        bool, typer.Option("--force", help="Close its tunnel and stop its server first, without asking.")
    ] = False,
) -> None:
    """Remove a profile; a live tunnel or a server it started is closed first (asks, or --force).

    Example: jupytunnel profile remove aura
    """
    import sys

    from jupytunnel.commands import profile as command

    def confirm(question: str) -> bool:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")

    with dry_run.printed():
        lines = command.remove(name, force=force, confirm=confirm if sys.stdin.isatty() else None)
    for line in lines:
        print(line)


@app.command("edit")
def edit(name: ProfileName) -> None:
    """Edit a profile in $VISUAL or $EDITOR; an invalid result reopens the editor, never lost.

    The editor reopens on your text with the error as a comment at the top. Leave it
    unchanged to give up: the text is then kept in a file (named in the message) that the
    next 'profile edit' starts from.

    Example: EDITOR=nano jupytunnel profile edit aura
    """
    from jupytunnel.commands import profile as command

    argv = command.editor_argv(os.environ)
    with dry_run.printed():
        line = command.edit(name, argv)
    if line:
        print(line)


@app.command("path")
def path_(
    name: Annotated[
        str | None, typer.Argument(help="Profile name.", autocompletion=complete_profile, show_default=False)
    ] = None,
) -> None:
    """Print the profiles folder, or the file of one profile.

    Example: jupytunnel profile path aura
    """
    from jupytunnel.commands import profile as command

    print(command.path(name))
