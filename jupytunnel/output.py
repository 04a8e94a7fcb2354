"""Output for people and for scripts: JSON, tables (rich on a colour terminal), dry-run lines.

Free of Typer, so the fast path (``jupytunnel.fastpath``) can print without importing it.
"""

from __future__ import annotations

import json
import sys
from typing import Any


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
