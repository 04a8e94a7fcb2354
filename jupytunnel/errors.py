"""The exception hierarchy; one boundary (``jupytunnel.__main__``) maps it to exit codes."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_BUG = 3  # an unexpected exception: a bug of ours, with its traceback in a log file
EXIT_INTERRUPTED = 130


def seconds(value: float) -> str:
    """A duration for a message: ``4.7``, ``30``; never ``4.70141``."""
    text = f"{value:.1f}"
    return text.removesuffix(".0")


class JupytunnelError(Exception):
    """A failure we can explain in one line. Exit code 1."""

    exit_code = EXIT_FAILURE


class UsageError(JupytunnelError):
    """Bad input: a bad profile, a bad option value, an unknown name. Exit code 2."""

    exit_code = EXIT_USAGE


class ProfileError(UsageError):
    """A profile file that does not validate."""


class InterruptError(JupytunnelError):
    """Ctrl-C, with something to say about what was left (partial files kept). Exit code 130."""

    exit_code = EXIT_INTERRUPTED


class CommandError(JupytunnelError):
    """A subprocess that failed; carries argv, exit code and stderr."""

    def __init__(self, message: str, *, argv: list[str], returncode: int | None, stderr: str) -> None:
        super().__init__(message)
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
