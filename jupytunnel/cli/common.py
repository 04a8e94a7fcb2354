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
    """A rich table on a colour terminal; aligned plain text when piped or with NO_COLOR set."""
    if sys.stdout.isatty() and not _no_color() and _rich_table(headers, rows):
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


# Cell values that read better in colour (tunnel states, an invalid profile).
_CELL_STYLES = {"up": "green", "stale": "yellow", "down": "red", "INVALID": "red"}


def _rich_table(headers: list[str], rows: list[list[str]]) -> bool:
    """Print a rich table if it fits the terminal; False (nothing printed) if it does not."""
    # Lazy: rich costs tens of milliseconds to import, and only a terminal needs it.
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    for header in headers:
        # Never wrap or cut a cell: a URL or a path must stay whole to be copied.
        table.add_column(header.upper(), no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(*(Text(cell, style=_CELL_STYLES.get(cell, "")) for cell in row))
    console = Console()
    if console.measure(table, options=console.options.update_width(10**6)).maximum > console.width:
        return False  # rich would cut cells to fit; plain lines wrap but stay whole
    console.print(table)
    return True


def _no_color() -> bool:
    import os

    return bool(os.environ.get("NO_COLOR"))


def dry_run_lines(lines: list[str]) -> None:
    for line in lines:
        print(line)
