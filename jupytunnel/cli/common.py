"""What every command shares: global flags, the profile-name argument, output helpers."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Annotated, Any, Literal

import typer

from jupytunnel.errors import UsageError


@dataclasses.dataclass
class Globals:
    dry_run: bool = False
    verbose: bool = False


GLOBALS = Globals()


def complete_profile(incomplete: str) -> list[str]:
    from jupytunnel.profiles import list_names

    return [n for n in list_names() if n.startswith(incomplete)]


ProfileName = Annotated[str, typer.Argument(help="Profile name.", autocompletion=complete_profile, show_default=False)]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def parse_local_port(value: str | None) -> int | Literal["auto"] | None:
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


def print_json(data: Any) -> None:  # noqa: ANN401 - any JSON-serialisable value
    print(json.dumps(data, indent=2))


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """Aligned columns; plain text, so it reads the same piped as on a terminal."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    out = sys.stdout
    bold = out.isatty() and not _no_color()
    head = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    print(f"\033[1m{head}\033[0m" if bold else head)
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _no_color() -> bool:
    import os

    return bool(os.environ.get("NO_COLOR"))


def dry_run_lines(lines: list[str]) -> None:
    for line in lines:
        print(line)
