"""Output for people and for scripts: JSON, tables (rich on a colour terminal), dry-run lines,
and what ``connect``, ``status``, ``disconnect`` and ``open`` print.

Free of Typer, so the fast path (``jupytunnel.cli.fastpath``) can print without importing it.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jupytunnel import runner
    from jupytunnel.commands.connect import Outcome
    from jupytunnel.hosts import Destination
    from jupytunnel.state import TunnelRecord
    from jupytunnel.tunnel import Status


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


def print_step(step: runner.Step) -> None:
    """One step of a dry run on stdout: a command (POSIX quoting), or a ``#`` note."""
    print(step.text(), flush=True)


def print_result(lines: list[str], *, dry: bool) -> None:
    """A command's result lines; in a dry run as notes (what a real run would say), so that
    the output stays a script of commands and comments."""
    for line in lines:
        print(f"# {line}" if dry else line, flush=True)


def say(text: str) -> None:
    """A line for people on stderr (progress, hints), not for scripts reading stdout."""
    print(text, file=sys.stderr, flush=True)


def note(text: str) -> None:
    """``say`` with the program's name, as jupytunnel's remarks beside a command's output."""
    say(f"jupytunnel: {text}")


class Spinner:
    """A one-character spinner on a terminal's stderr; nothing when piped."""

    frames = "|/-\\"

    def __init__(self) -> None:
        self.turns = 0

    def __call__(self, text: str = "starting Jupyter") -> None:
        if sys.stderr.isatty():
            # A Slurm job's state and pending reason change length: clear the rest of the line.
            sys.stderr.write(f"\r{text} {self.frames[self.turns % 4]}\033[K")
            sys.stderr.flush()
            self.turns += 1

    def clear(self) -> None:
        if self.turns:
            sys.stderr.write("\r\033[K")  # before any message, so it does not land mid-line


def hide_token(url: str) -> str:
    head, sep, _ = url.partition("?token=")
    return f"{head}{sep}…" if sep else url


def print_connected(outcome: Outcome, *, as_json: bool, dry: bool = False) -> None:
    """``connect``'s result: the URL (or JSON) on stdout; the password hint and what became
    of a host given instead of a profile on stderr. In a dry run: notes only."""
    result = outcome.connected
    if result is not None:
        rec = result.record
        if dry:
            print_result([f"the URL: {hide_token(rec.url)}"], dry=True)
        elif as_json:
            print_json(
                {
                    "profile": rec.profile, "url": rec.url, "local_port": rec.local_port, "remote": rec.remote,
                    "pid": rec.pid, "control_path": rec.control_path, "reused": result.reused,
                    "started_server": result.started_server, "job": result.job, "password": rec.password,
                }
            )  # fmt: skip
        else:
            print(rec.url, flush=True)
        if rec.password and not dry:
            say(f"{rec.profile}: Jupyter will ask for its password")
    if outcome.dest is not None and not dry:
        if outcome.saved is not None:
            note(f"saved the profile {outcome.profile.name!r} ({outcome.saved})")
        else:
            note(
                f"{outcome.profile.name!r} is no profile (default settings used); keep it with: "
                f"{keep_command(outcome.dest)}  (or: jupytunnel connect --save {dest_text(outcome.dest)})"
            )


def keep_command(dest: Destination) -> str:
    from jupytunnel import hosts

    return hosts.keep_command(dest)


def dest_text(dest: Destination) -> str:
    user = f"{dest.user}@" if dest.user else ""
    port = f":{dest.port}" if dest.port else ""
    return f"{user}{dest.host}{port}"


def status_dict(row: Status, *, show_token: bool) -> dict[str, object]:
    """One tunnel as ``status --json`` prints it."""
    import time

    rec = row.record
    return {
        "profile": rec.profile,
        "state": row.state,
        "url": rec.url if show_token else hide_token(rec.url),
        "local_port": rec.local_port,
        "remote": rec.remote,
        "pid": rec.pid,
        "uptime": round(time.time() - rec.started_at, 1) if row.state == "up" else None,
        "control_path": rec.control_path,
        "job": row.job,
    }


def print_status(rows: list[Status], *, as_json: bool = False, show_token: bool = False, wide: bool = False) -> None:
    """``status``: JSON, or one row a tunnel that fits the terminal unless ``wide``."""
    data = [status_dict(r, show_token=show_token) for r in rows]
    if as_json:
        print_json(data)
        return
    if not data:
        print("no tunnels")
        return
    # Narrow, the URL is its port (the whole one: --wide, or --show-token to copy it).
    whole = wide or show_token
    # A Slurm job's id, node and time left, only when some tunnel leads to one.
    jobs = any(r.get("job") for r in data)
    print_table(
        ["profile", "state", "url", "remote", *(["job"] if jobs else []), "pid", "uptime"],
        [
            [
                str(r["profile"]), str(r["state"]), str(r["url"]) if whole else f":{r['local_port']}",
                str(r["remote"]), *([_job_cell(r.get("job"))] if jobs else []), str(r["pid"]), _duration(r["uptime"]),
            ]
            for r in data
        ],
        wide=wide,
        shrink={"remote": 16, "profile": 12},
        drop=("pid", "remote"),
    )  # fmt: skip


def _job_cell(job: object) -> str:
    """``4711 cn1 9:41 left``: the job, its node and what is left of its time limit."""
    if not isinstance(job, dict):
        return "-"
    parts = [str(job.get("id")), str(job.get("node") or "")]
    if job.get("state") not in (None, "RUNNING"):
        parts.append(str(job.get("state")))
    if job.get("time_left"):
        parts.append(f"{job['time_left']} left")
    return " ".join(p for p in parts if p)


def _duration(seconds: object) -> str:
    if not isinstance(seconds, float | int):
        return "-"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"  # noqa: PLR2004


def opened_line(record: TunnelRecord, *, show_token: bool) -> str:
    """What ``open`` prints: the URL it opened, its token hidden unless asked for."""
    return record.url if show_token else hide_token(record.url)
