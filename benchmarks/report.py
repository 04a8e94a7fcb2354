"""The machine's description and the Markdown report (``docs/benchmarks.md``)."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys

from harness import ROOT, SSH
from profiling import Section
from stats import TITLES, PairResult, Row, Target


def _run(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False, cwd=ROOT)
    except OSError:
        return ""
    return (out.stdout or out.stderr).strip()


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(bench_versions: dict[str, str], load: tuple[float, float, float]) -> list[tuple[str, str]]:
    head = _run(["git", "rev-parse", "--short", "HEAD"])
    dirty = " (with uncommitted changes)" if _run(["git", "status", "--porcelain", "--", "jupytunnel"]) else ""
    rows = [
        ("CPU count", f"{os.cpu_count()} ({cpu_model()})"),
        ("OS", platform.platform()),
        ("Load average at start", " / ".join(f"{x:.2f}" for x in load) + " (1, 5, 15 min)"),
        ("OpenSSH", _run([SSH, "-V"])),
        ("Python", f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})"),
        ("jupyter_server", _version("jupyter_server")),
        ("jupytunnel", f"{_version('jupytunnel')}, commit {head or '?'}{dirty}"),
    ]
    rows += [(f"{name} (bench venv)", version) for name, version in sorted(bench_versions.items())]
    return rows


def _cells(row: Row, *, with_unit: bool = False) -> list[str]:
    s = row.series
    unit = f" {s.unit}" if with_unit else ""
    if row.continuation:
        stats = ["", "", "", ""]
        label = ""
    elif s.ok:
        stats = [str(len(s.samples)), *(s.shown(v) + unit for v in (s.median, s.low, s.high))]
        label = s.label
    else:
        stats = ["0", "-", "-", "-"]
        label = s.label
    ratio = row.ratio()
    if row.baseline is None:
        ratio_text = ""
    elif ratio is None:
        ratio_text = f"- (over {row.baseline.label})"
    else:
        ratio_text = f"{ratio:.2f} (over {row.baseline.label})"
    target = row.target.text if row.target else ""
    verdict = row.target.verdict() if row.target else ""
    note = f" ({s.note})" if s.note and not row.continuation else ""
    return [label + note, *stats, ratio_text, target, f"**{verdict}**" if verdict == "MISSED" else verdict]


def pair_table(result: PairResult) -> list[str]:
    units = {r.series.unit for r in result.rows}
    mixed = len(units) > 1  # a pair with MB/s and ms rows: the unit goes in each cell
    head = "" if mixed else " " + (units.pop() if units else "ms")
    lines = [
        f"| command | n | median{head} | min{head} | max{head} | ratio | target | result |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    lines += ["| " + " | ".join(_cells(row, with_unit=mixed)) + " |" for row in result.rows]
    commands = []
    seen = set()
    for row in result.rows:
        if row.series.label not in seen:
            seen.add(row.series.label)
            commands.append(f"- {row.series.label}: `{row.series.command}`")
    return [*lines, "", *commands]


def _figure(target: Target) -> float | None:
    try:
        return target.figure()
    except (ValueError, ZeroDivisionError, statistics.StatisticsError):
        return None


def _shown(value: float | None, target: Target) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if "ms" in target.text else f"{value:.2f}"


def verdicts(runs: list[list[PairResult]]) -> list[tuple[PairResult, Row, Target, list[float | None], str]]:
    """Each target of the last run with its figure in every run and the verdict on their
    median (one run: its own figure)."""
    out = []
    last = runs[-1]
    for res in last:
        for k, (row, target) in enumerate(res.targets()):
            figures: list[float | None] = []
            for run in runs:
                same = next((r for r in run if r.number == res.number), None)
                pairs_ = same.targets() if same is not None else []
                figures.append(_figure(pairs_[k][1]) if k < len(pairs_) else None)
            known = [f for f in figures if f is not None]
            median = statistics.median(known) if known else None
            verdict = "not measured" if median is None else "met" if target.check(median) else "MISSED"
            out.append((res, row, target, figures, verdict))
    return out


def summary(runs: list[list[PairResult]]) -> list[str]:
    """The targets table: with several full runs, each run's figure and their median, the
    verdict on the median."""
    many = len(runs) > 1
    heads = [*(f"run {i + 1}" for i in range(len(runs))), "median of runs"] if many else ["measured"]
    lines = [
        "| pair | what | " + " | ".join(heads) + " | target | result |",
        "|---|---|" + "---|" * len(heads) + "---|---|",
    ]
    for res, row, target, figures, verdict in verdicts(runs):
        known = [f for f in figures if f is not None]
        cells = [_shown(f, target) for f in figures] if many else []
        cells.append(_shown(statistics.median(known) if known else None, target))
        what = row.series.label + (f" / {row.baseline.label}" if row.baseline and "ms" not in target.text else "")
        lines.append(
            f"| {res.number} | {what} | "
            + " | ".join(cells)
            + f" | {target.text} | "
            + (f"**{verdict}**" if verdict == "MISSED" else verdict)
            + " |"
        )
    return lines


def render(
    runs: list[list[PairResult]],
    *,
    machine_rows: list[tuple[str, str]],
    quick: bool,
    rounds: int,
    warmup: int,
    command: str,
    sections: list[Section],
    findings: list[str],
) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results = runs[-1]
    several = (
        f"{len(runs)} full runs, one after the other, on one machine; the targets table gives each run's figure and "
        "the median of the runs (the verdict is on that median); the tables per pair are the last run's"
        if len(runs) > 1
        else "one run on one machine"
    )
    out = [
        "# Benchmarks",
        "",
        f"Generated by `{command}` on {now}"
        + (" (--quick: a smoke run, not figures to quote)" if quick else "")
        + f": {several}, against the same real sshd + jupyter_server rig as the tests "
        "(`testsupport/rig.py`, everything on 127.0.0.1). Each pair's commands run as whole processes, interleaved "
        f"(A B A B ...), {rounds} measured rounds after {warmup} warm-up round(s), unless a pair says otherwise. "
        "Medians, min and max; the ratio is jupytunnel over the baseline (for throughput, MB/s over MB/s). "
        "A process is timed from spawn to the exit its parent sees through a blocking waitpid "
        "(`Popen.wait(timeout=...)` would poll on sleeps growing to 50 ms and round samples up by as much). "
        "Measured commands run without PYTHONDONTWRITEBYTECODE, so Python keeps bytecode caches as it does "
        "after a pip install. No test asserts a time: `tests/test_benchmarks.py` only checks that this runs.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in machine_rows],
        "",
        "## Targets",
        "",
        *summary(runs),
        "",
    ]
    if findings:
        out += ["## Findings", "", *findings, ""]
    by_number = {r.number: r for r in results}
    for number, title in TITLES.items():
        out += [f"## {number}. {title}", ""]
        res = by_number.get(number)
        if res is None:
            out += ["not run (not selected with --only)", ""]
            continue
        if res.error:
            out += [f"**harness error**: {res.error}", ""]
        if res.rows:
            out += [*pair_table(res), ""]
        out += [*(f"{n}" for n in res.notes), ""] if res.notes else []
    if sections:
        out += ["## Where the time goes", ""]
        for sec in sections:
            out += [f"### {sec.title}", ""]
            if sec.lead:
                out += [sec.lead, ""]
            out += ["```text", sec.text, "```", ""]
    return "\n".join(out).rstrip() + "\n"
