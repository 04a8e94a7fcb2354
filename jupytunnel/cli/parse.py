"""Parsing of option values that Typer's types do not say (free of Typer: the fast path
uses them too). Each error is a ``UsageError`` (exit 2) that names the option."""

from __future__ import annotations

from typing import Literal

from jupytunnel.errors import UsageError

LocalPort = int | Literal["auto"] | None


def parse_local_port(value: str | None) -> LocalPort:
    if value is None:
        return None
    if value == "auto":
        return "auto"
    try:
        port = int(value)
    except ValueError:
        raise UsageError(f"--local-port: expected a port number 1..65535 or 'auto', got {value!r}") from None
    if not 1 <= port <= 65535:  # noqa: PLR2004
        raise UsageError(f"--local-port: expected a port number 1..65535 or 'auto', got {port}")
    return port


MAX_TIMEOUT = 24 * 3600.0


def parse_timeout(value: float, option: str = "--timeout") -> float:
    """A finite, positive bound: nan would make every comparison false and a wait endless."""
    import math

    if not math.isfinite(value) or not 0 < value <= MAX_TIMEOUT:
        raise UsageError(f"{option}: expected a number of seconds in (0, {MAX_TIMEOUT:g}], got {value}")
    return value
