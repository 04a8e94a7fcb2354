"""Entry point and the one error boundary: exceptions become one line and an exit code."""

from __future__ import annotations

import sys

from jupytunnel.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, JupytunnelError


def _fail(message: str, code: int) -> int:
    print(f"jupytunnel: {message}", file=sys.stderr)
    return code


def run(argv: list[str] | None = None) -> int:  # noqa: PLR0911 - one return per way out
    """Run the CLI; returns the exit code (0 ok, 1 failure, 2 usage, 130 interrupted)."""
    args = sys.argv[1:] if argv is None else argv
    try:
        from jupytunnel import fastpath

        if fastpath.run(args):
            return 0
        from jupytunnel.cli import app

        result = app(args=args, prog_name="jupytunnel", standalone_mode=False)
    except JupytunnelError as exc:
        return _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - click's own exceptions, from click or typer's vendored copy
        return _click_exception(exc)
    if result == EXIT_INTERRUPTED:  # typer turns Ctrl-C into a silent 130: the same line as everywhere
        return _fail("interrupted", EXIT_INTERRUPTED)
    return result if isinstance(result, int) else 0


def _unexpected(exc: BaseException) -> int:
    """The last resort: a bug or an OS failure we did not foresee is still one line."""
    import os

    if os.environ.get("JUPYTUNNEL_DEBUG"):
        raise exc
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return _fail(f"{exc.strerror or exc}{where}", EXIT_FAILURE)
    return _fail(
        f"unexpected error ({type(exc).__name__}: {exc}); set JUPYTUNNEL_DEBUG=1 for a traceback", EXIT_FAILURE
    )


def _click_exception(exc: Exception) -> int:
    name = type(exc).__name__
    if name == "Abort":
        return _fail("interrupted", EXIT_INTERRUPTED)
    if name == "Exit":
        code = getattr(exc, "exit_code", getattr(exc, "code", 0))
        return int(code or 0)
    format_message = getattr(exc, "format_message", None)
    if callable(format_message):
        message = str(format_message()).replace("\n", " ")
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        code = getattr(exc, "exit_code", EXIT_USAGE)
        return _fail(message + hint, int(code) if code else EXIT_USAGE)
    return _unexpected(exc)


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
