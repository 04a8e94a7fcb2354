"""The hot commands without Typer.

Importing Typer costs about 50 ms, a fifth of an OpenSSH handshake; ``connect`` of a
running server must stay within 25 % of raw ``ssh -NfL``. So the forms that scripts and
people type most (``--version``, ``status``, ``connect NAME`` with its plain flags) are
parsed here and run the same functions as the Typer commands: ``show_connect`` and
``show_status`` below (the command from ``jupytunnel.commands``, its output from
``jupytunnel.cli.render``), which ``jupytunnel.cli.tunnel_cmd`` calls too. Anything else,
including every error in the arguments, falls through to Typer, which owns help, usage
errors and completion.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jupytunnel import __version__

if TYPE_CHECKING:
    from jupytunnel.tunnel import LocalPort

_CONNECT_FLAGS = {
    "--no-browser": "no_browser", "--no-start": "no_start", "--json": "as_json", "--watch": "watch", "--save": "save",
}  # fmt: skip
_CONNECT_VALUES = {"--local-port": "local_port", "--timeout": "timeout"}
_STATUS_FLAGS = {"--json": "as_json", "--show-token": "show_token", "--wide": "wide"}

_SYNC_FLAGS = {"--pull": "pull", "--delete": "delete", "--json": "as_json"}
_SYNC_VALUES = {"--timeout": "timeout"}


def run(argv: list[str]) -> bool:
    """Run ``argv`` if it is a form we handle; False hands it to Typer untouched."""
    if argv == ["--version"]:
        print(f"jupytunnel {__version__}")
        return True
    if argv[:1] == ["status"]:
        return _status(argv[1:])
    if argv[:1] == ["connect"]:
        return _connect(argv[1:])
    if argv[:1] == ["sync"]:
        return _sync(argv[1:])
    return False


def _status(args: list[str]) -> bool:
    parsed = _parse(args, _STATUS_FLAGS, {})
    if parsed is None or len(parsed[0]) > 1:
        return False
    names, opts = parsed
    show_status(
        names[0] if names else None, as_json="as_json" in opts, show_token="show_token" in opts, wide="wide" in opts
    )
    return True


def show_status(name: str | None, *, as_json: bool, show_token: bool, wide: bool) -> None:
    """``status`` with its options parsed: the command, then its output."""
    from jupytunnel.cli import render
    from jupytunnel.commands import status

    render.print_status(status.status(name), as_json=as_json, show_token=show_token, wide=wide)


def _connect(args: list[str]) -> bool:
    parsed = _parse(args, _CONNECT_FLAGS, _CONNECT_VALUES)
    if parsed is None or len(parsed[0]) != 1 or not _plain_name(parsed[0][0]):
        return False
    names, opts = parsed
    try:
        timeout = float(opts["timeout"]) if "timeout" in opts else None
    except ValueError:
        return False  # Typer words the error
    from jupytunnel.cli.parse import parse_local_port, parse_timeout

    show_connect(
        names[0], local_port=parse_local_port(opts.get("local_port")),
        timeout=parse_timeout(timeout) if timeout is not None else None, browser="no_browser" not in opts,
        start_server="no_start" not in opts, as_json="as_json" in opts, watch="watch" in opts, save="save" in opts,
    )  # fmt: skip
    return True


def show_connect(
    name: str,
    *,
    local_port: LocalPort | None,
    timeout: float | None,
    browser: bool,
    start_server: bool,
    as_json: bool,
    watch: bool,
    save: bool,
) -> None:
    """``connect`` with its options parsed: the command (with a spinner while a server
    starts), its output, then ``--watch``. A dry run prints the steps as they are recorded."""
    import contextlib

    from jupytunnel import runner
    from jupytunnel.cli import render
    from jupytunnel.commands import connect

    dry = runner.dry_run()
    spinner = render.Spinner()
    with runner.recording(render.print_step) if dry else contextlib.nullcontext():
        try:
            outcome = connect.connect(
                name, local_port=local_port, timeout=timeout, start_server=start_server, browser=browser,
                save=save, tick=spinner, say=render.note,
            )  # fmt: skip
        finally:
            spinner.clear()
        render.print_connected(outcome, as_json=as_json, dry=dry)
        if watch and outcome.connected is not None:
            connect.watch(
                outcome.profile, local_port, outcome.timeout, start_server=start_server,
                url=outcome.connected.record.url, say=render.say, show_url=lambda url: print(url, flush=True),
            )  # fmt: skip


def _sync(args: list[str]) -> bool:
    excludes: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):  # --exclude repeats: gathered here, the rest parsed as for connect
        if args[i] == "--exclude" and i + 1 < len(args):
            excludes.append(args[i + 1])
            i += 2
            continue
        if args[i].startswith("--exclude="):
            excludes.append(args[i].partition("=")[2])
        else:
            rest.append(args[i])
        i += 1
    parsed = _parse(rest, _SYNC_FLAGS, _SYNC_VALUES)
    if parsed is None or not 1 <= len(parsed[0]) <= 3 or not _plain_name(parsed[0][0]):  # noqa: PLR2004
        return False
    names, opts = parsed
    try:
        timeout = float(opts.get("timeout", "30"))
    except ValueError:
        return False  # Typer words the error
    show_sync(
        names[0], local=names[1] if len(names) > 1 else None, remote=names[2] if len(names) > 2 else None,  # noqa: PLR2004
        pull="pull" in opts, delete="delete" in opts, exclude=excludes, as_json="as_json" in opts, timeout=timeout,
    )  # fmt: skip
    return True


def show_sync(name: str, **options: Any) -> None:  # noqa: ANN401 - the keywords of sync_render.sync
    """``sync`` and its output, for both entry points (the Typer command calls this too)."""
    from jupytunnel.cli import sync_render

    sync_render.sync(name, **options)


def _parse(args: list[str], flags: dict[str, str], values: dict[str, str]) -> tuple[list[str], dict[str, str]] | None:
    """Positional names and the options given; None for anything we do not handle."""
    names: list[str] = []
    options: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in flags:
            options[flags[arg]] = ""
        elif arg in values and i + 1 < len(args):
            options[values[arg]] = args[i + 1]
            i += 1
        elif "=" in arg and arg.split("=", 1)[0] in values:
            key, value = arg.split("=", 1)
            options[values[key]] = value
        elif arg.startswith("-"):
            return None  # -h, --help, anything unknown: Typer's business
        else:
            names.append(arg)
        i += 1
    return names, options


def _plain_name(name: str) -> bool:
    from jupytunnel.profiles import NAME_RE

    return NAME_RE.fullmatch(name) is not None
