"""Output for people and for scripts: JSON, tables (rich on a colour terminal), dry-run lines.

Free of Typer, so the fast path (``jupytunnel.cli.fastpath``) can print without importing it.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def print_json(data: Any) -> None:  # noqa: ANN401 - any JSON-serialisable value
    print(json.dumps(data, indent=2))


GAP = 2  # columns between two cells in plain text
RICH_GAP = 3  # in rich's SIMPLE_HEAD box: a cell's padding on each side and the (blank) rule
DEFAULT_WIDTH = 80


def terminal_width() -> int | None:
    """``$COLUMNS`` (set by the user or the shell), else the terminal's width; None when
    piped without ``$COLUMNS``: a script or a pager gets whole lines."""
    import os

    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    if not sys.stdout.isatty():
        return None
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns or DEFAULT_WIDTH
    except (OSError, ValueError):
        return DEFAULT_WIDTH


def ellipsize(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, its middle replaced by "…" (both ends of a
    host or a path say the most)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = width // 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


def fit(
    headers: list[str],
    rows: list[list[str]],
    width: int,
    *,
    shrink: dict[str, int],
    drop: tuple[str, ...] = (),
    gap: int = GAP,
) -> tuple[list[str], list[list[str]]]:
    """Shorten the ``shrink`` columns (to their minimum width at most), then leave out the
    ``drop`` columns in order, until a line fits in ``width`` characters."""
    cols = list(range(len(headers)))

    def natural(i: int) -> int:
        return max(len(headers[i]), *(len(r[i]) for r in rows)) if rows else len(headers[i])

    widths = {i: natural(i) for i in cols}

    def total() -> int:
        return sum(widths[i] for i in cols) + gap * (len(cols) - 1)

    shrinkable = [headers.index(h) for h in shrink if h in headers]
    while total() > width:
        candidates = [i for i in shrinkable if i in cols and widths[i] > max(shrink[headers[i]], len(headers[i]))]
        if candidates:
            widths[max(candidates, key=lambda c: widths[c])] -= 1  # the widest gives first
            continue
        gone = next((headers.index(h) for h in drop if h in headers and headers.index(h) in cols), None)
        if gone is None:
            break  # nothing more to give: the line is as short as it gets
        cols.remove(gone)
    return (
        [headers[i] for i in cols],
        [[ellipsize(r[i], widths[i]) for i in cols] for r in rows],
    )


def print_table(
    headers: list[str],
    rows: list[list[str]],
    *,
    wide: bool = False,
    shrink: dict[str, int] | None = None,
    drop: tuple[str, ...] = (),
) -> None:
    """A rich table on a colour terminal; aligned plain text when piped or with NO_COLOR set.

    Unless ``wide``, the table fits the terminal (``$COLUMNS``, else the terminal's width;
    piped, only with ``$COLUMNS``): the ``shrink`` columns are shortened in the middle, then
    ``drop`` columns left out.
    """
    rich = sys.stdout.isatty() and not _no_color()
    width = None if wide else terminal_width()
    if width is not None:
        gap = RICH_GAP if rich else GAP
        headers, rows = fit(headers, rows, width, shrink=shrink or {}, drop=drop, gap=gap)
    if rich and _rich_table(headers, rows):
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
