"""Entry point and the one error boundary: exceptions become one line and an exit code."""

from __future__ import annotations

import sys

from jupytunnel.errors import EXIT_BUG, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, JupytunnelError


def _fail(message: str, code: int) -> int:
    print(f"jupytunnel: {message}", file=sys.stderr)
    return code


def run(argv: list[str] | None = None) -> int:  # noqa: PLR0911 - one return per way out
    """Run the CLI; returns the exit code (0 ok, 1 failure, 2 usage, 3 bug, 130 interrupted)."""
    args = sys.argv[1:] if argv is None else argv
    from jupytunnel import prelaunch

    try:
        # A plain `connect NAME`: its ssh starts now, while the rest is imported.
        prelaunch.start(args)
        from jupytunnel.cli import fastpath

        if fastpath.run(args):
            return 0
        from jupytunnel.cli.app import app

        result = app(args=args, prog_name="jupytunnel", standalone_mode=False)
    except JupytunnelError as exc:
        return _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - click's own exceptions, from click or typer's vendored copy
        return _click_exception(exc)
    finally:
        prelaunch.dispose()  # an early ssh nobody took (a failure, Ctrl-C) goes too
    if result == EXIT_INTERRUPTED:  # typer turns Ctrl-C into a silent 130: the same line as everywhere
        return _fail("interrupted", EXIT_INTERRUPTED)
    return result if isinstance(result, int) else 0


def _unexpected(exc: BaseException) -> int:
    """The last resort. An OS failure we did not foresee (a full disk, a permission) is a
    failure, said in one line; anything else is a bug of ours: exit 3, one line that says so,
    and the traceback in a log file (as pre-commit does), never on the terminal."""
    import os

    if os.environ.get("JUPYTUNNEL_DEBUG"):
        raise exc
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return _fail(f"{exc.strerror or exc}{where}", EXIT_FAILURE)
    log = _log_traceback(exc)
    said = f"the traceback is in {log}" if log else "set JUPYTUNNEL_DEBUG=1 to see the traceback"
    return _fail(f"an unexpected error has occurred, a bug ({type(exc).__name__}: {exc}); {said}", EXIT_BUG)


def _log_traceback(exc: BaseException) -> str | None:
    """Append the traceback to ``crash.log`` in the state folder (0600); its path, or None."""
    import os
    import time
    import traceback

    from jupytunnel import __version__, paths

    try:
        folder = paths.ensure_private_dir(paths.state_dir())
        path = folder / "crash.log"
        text = f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} jupytunnel {__version__} argv={sys.argv[1:]!r}\n" + "".join(
            traceback.format_exception(exc)
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as log:
            log.write(text)
    except (OSError, JupytunnelError):
        return None
    return str(path)


def _click_exception(exc: Exception) -> int:
    """Click's own exceptions (Typer's vendored copy, or the click package Typer used to
    require); anything else is unexpected."""
    exceptions = _click_exceptions()
    if exceptions is None:
        return _unexpected(exc)
    abort, exit_, click_error = exceptions
    if isinstance(exc, abort):
        return _fail("interrupted", EXIT_INTERRUPTED)
    if isinstance(exc, exit_):
        code = getattr(exc, "exit_code", getattr(exc, "code", 0))
        return int(code or 0)
    if isinstance(exc, click_error):
        message = str(getattr(exc, "format_message", exc.__str__)()).replace("\n", " ")
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        code = getattr(exc, "exit_code", EXIT_USAGE)
        return _fail(message + hint, int(code) if code else EXIT_USAGE)
    return _unexpected(exc)


def _click_exceptions() -> tuple[type[BaseException], type[BaseException], type[BaseException]] | None:
    """Abort, Exit and ClickException as the installed Typer raises them (Typer 0.28 carries
    its own copy of click; earlier ones used the click package)."""
    try:
        import typer
    except ImportError:
        return None
    try:
        from typer._click.exceptions import ClickException  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        try:
            from click.exceptions import ClickException  # type: ignore[import-not-found,no-redef,unused-ignore]
        except ImportError:
            return None
    return typer.Abort, typer.Exit, ClickException


def main() -> None:
    code = run()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: what we had to say did not get out
        code = code or EXIT_FAILURE
    # Everything we write is closed and synced by now; skipping the interpreter's teardown
    # (module finalisers, psutil's among them) saves about 9 ms on every command.
    import os

    os._exit(code)


if __name__ == "__main__":
    main()
