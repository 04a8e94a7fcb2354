"""``jupytunnel run NAME NOTEBOOK``, ``run fetch|logs|cancel ID`` and ``runs``.

``run`` is a group whose first word is either a subcommand (fetch, logs, cancel) or a
profile name: anything that is not a subcommand is handed to the hidden ``run start``, so
the issue's spelling works as written. A profile named like a subcommand is reached with
``jupytunnel run -- NAME NOTEBOOK`` (or ``run start NAME NOTEBOOK``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from jupytunnel.cli.common import JsonFlag, ProfileName, complete_profile, print_json, print_table
from jupytunnel.cli.dry_run import printed as dry_run_printed
from jupytunnel.errors import JupytunnelError

if TYPE_CHECKING:
    from jupytunnel.runs import RunRecord


class _RunGroup(TyperGroup):
    # click's types are typer's vendored copy in new typer, click itself in old: Any.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # noqa: ANN401
        if args[:1] == ["--"]:
            args = ["start", *args[1:]]
        elif args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["start", *args]
        return list(super().parse_args(ctx, args))

    def format_usage(self, ctx: Any, formatter: Any) -> None:  # noqa: ANN401
        formatter.write_usage(ctx.command_path, "NAME NOTEBOOK [--wait] [--timeout S] [--kernel K] [--json]")
        formatter.write_usage(ctx.command_path, "fetch|logs|cancel ID [OPTIONS]", prefix="   or: ")


app = typer.Typer(
    cls=_RunGroup,
    help=(
        "Run a notebook on a profile's remote, detached (it survives disconnect), and manage runs.\n\n"
        "jupytunnel run NAME NOTEBOOK.ipynb starts one and prints its id; --wait follows it to the end and "
        "fetches the result (exit 0 done, 1 failed). See also: jupytunnel runs."
    ),
    no_args_is_help=True,
    epilog="Example: jupytunnel run aura analysis.ipynb --wait",
)


NotebookArg = Annotated[Path, typer.Argument(help="The notebook (.ipynb) to run.", show_default=False)]
RunId = Annotated[str, typer.Argument(help="Run id (or a unique prefix), from 'jupytunnel runs'.", show_default=False)]


@app.command("start", hidden=True)
def start(
    name: ProfileName,
    notebook: NotebookArg,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the run to its end, then fetch the result.")] = False,
    timeout: Annotated[
        float, typer.Option(help="With --wait: stop following after this many seconds (the run goes on).")
    ] = 86400.0,
    kernel: Annotated[str | None, typer.Option(help="Kernel name (default: the notebook's own).")] = None,
    json_: JsonFlag = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the commands that would run; run none (as jupytunnel --dry-run).")
    ] = False,
) -> None:
    """Run NOTEBOOK on NAME's remote with nbconvert, detached.

    Example: jupytunnel run aura analysis.ipynb --wait
    """
    from jupytunnel.cli.parse import parse_timeout
    from jupytunnel.commands import run as command

    timeout = parse_timeout(timeout)
    ticker = _Ticker()

    def started(record: RunRecord) -> None:
        print(f"{record.id}: started on {record.host}", file=sys.stderr)

    # The issue spells it `run NAME NOTEBOOK --dry-run` too.
    with dry_run_printed(also=dry_run) as dry:
        try:
            outcome = command.run(
                name, notebook, kernel=kernel, wait=wait, timeout=timeout,
                on_start=None if dry else started, tick=None if dry else ticker.show,
            )  # fmt: skip
        finally:
            if wait and not dry:
                ticker.done()
    if dry:
        return
    if not outcome.ended:
        if json_:
            print_json(outcome.record.to_json())
        else:
            print(outcome.record.id)
        return
    if outcome.fetch_error:
        print(f"jupytunnel: {outcome.fetch_error}", file=sys.stderr)
    _report_end(outcome.record, outcome.fetched, as_json=json_)


def _report_end(record: RunRecord, fetched: tuple[Path, Path] | None, *, as_json: bool) -> None:
    if as_json:
        out = record.to_json()
        out["fetched"] = {"notebook": str(fetched[0]), "log": str(fetched[1])} if fetched else None
        print_json(out)
    else:
        print(f"{record.id}: {record.state} in {_duration(record.duration)}")
        if fetched:
            print(f"notebook: {fetched[0]}\nlog: {fetched[1]}")
    if record.state != "done":
        raise JupytunnelError(f"run {record.id} {_outcome(record)}")


def _outcome(record: RunRecord) -> str:
    if record.state == "failed" and record.failed_cell is not None:
        return f"failed in cell {record.failed_cell} of {record.cells}" + (f" ({record.error})" if record.error else "")
    if record.state == "failed":
        return "failed" + (f": {record.error}" if record.error else f" (exit {record.exit_code})")
    return record.state


class _Ticker:
    """``cell N of M, elapsed``: rewritten in place on a terminal, a line per change when piped."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = ""

    def show(self, record: RunRecord) -> None:
        where = f"cell {record.cell} of {record.cells}" if record.cell else "starting"
        text = f"{record.id}: {record.state}, {where}, {_duration(record.duration)} elapsed"
        if self.tty:
            print("\r" + text + "\x1b[K", end="", file=sys.stderr, flush=True)
        elif where != self.last:
            print(text, file=sys.stderr, flush=True)
        self.last = where

    def done(self) -> None:
        if self.tty and self.last:
            print(file=sys.stderr)


@app.command("fetch")
def fetch(
    run_id: RunId,
    to: Annotated[Path, typer.Option("--to", help="Folder to save into.", show_default="the current folder")] = Path(),
) -> None:
    """Download a finished run's executed notebook (outputs, and the error of a failed run) and its log.

    Example: jupytunnel run fetch 20261130-011107-ab12 --to results
    """
    from jupytunnel.commands import run as command

    with dry_run_printed() as dry:
        got = command.fetch(run_id, to=to)
    if dry:
        return
    record = got.record
    note = f" ({_outcome(record)})" if record.state != "done" else ""
    print(f"{record.id}: {record.state}{note}\nnotebook: {got.notebook}\nlog: {got.log}")


@app.command("logs")
def logs(
    run_id: RunId,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the run ends.")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, max=100000, help="How many lines.")] = 50,
) -> None:
    """Print the end of a run's log (nbconvert's output) on the remote.

    Example: jupytunnel run logs 20261130-011107-ab12 --follow
    """
    from jupytunnel.commands import run as command

    with dry_run_printed() as dry:
        if not follow:
            text = command.logs(run_id, lines=lines)
            if not dry:
                print(text, end="")
            return
        final = command.follow(run_id, lambda text: None if dry else print(text, end="", flush=True))
    if not dry:
        print(f"{final.id}: {final.state}", file=sys.stderr)


@app.command("cancel")
def cancel(run_id: RunId) -> None:
    """Stop a running run: nbconvert, its kernel and what the kernel started, verified by PID and start time.

    Example: jupytunnel run cancel 20261130-011107-ab12
    """
    from jupytunnel.commands import run as command

    with dry_run_printed() as dry:
        done = command.cancel(run_id)
    if dry:
        return
    print(f"{done.record.id}: {'already ' if done.already else ''}{done.record.state}")


def list_runs(
    name: Annotated[
        str | None, typer.Argument(help="Profile name.", autocompletion=complete_profile, show_default=False)
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """List detached notebook runs: id, profile, notebook, state, start, duration, failing cell.

    With NAME the profile's remote is asked for all its runs (from any laptop); without it,
    the runs seen before, the remotes of those still running asked again.

    Example: jupytunnel runs aura --json
    """
    from jupytunnel.commands import run as command

    def warn(text: str) -> None:
        print(f"jupytunnel: {text}", file=sys.stderr)

    with dry_run_printed() as dry:
        records = command.list_runs(name, warn=warn)
    if dry:
        return
    if json_:
        print_json([r.to_json() for r in records])
        return
    if not records:
        print(f"{name}: no runs" if name else "no runs")
        return
    print_table(
        ["id", "profile", "notebook", "state", "started", "duration", "cell"],
        [[r.id, r.profile, r.notebook, r.state, _when(r.started_at), _duration(r.duration), _cell(r)] for r in records],
    )


def _cell(record: RunRecord) -> str:
    if record.state == "running" and record.cell:
        return f"{record.cell}/{record.cells}"
    if record.state == "failed":
        if record.failed_cell is not None:
            return f"{record.failed_cell}: {record.error or 'error'}"
        return record.error or f"exit {record.exit_code}"
    return ""


def _when(stamp: float | None) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else ""


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    if s < 60:  # noqa: PLR2004
        return f"{s}s"
    if s < 3600:  # noqa: PLR2004
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="run")
    root.command("runs")(list_runs)
