"""Benchmarks: jupytunnel against raw OpenSSH, jupyter-forward and sshtunnel, on one machine.

    python benchmarks/run.py [--quick] [--rounds N] [--only 1,4] [--output docs/benchmarks.md]

Starts the tests' real sshd + jupyter_server rig (testsupport/rig.py), runs each pair of commands
interleaved after a warm-up, prints the tables and writes them with the machine's
description to ``--output``. Exit 0 when every selected pair was measured (rows that need
the benchmark venv are "not run" when it cannot be built); 1 when the harness failed.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import benchvenv  # noqa: E402 - the benchmarks folder is put on the path just above
import harness  # noqa: E402
import pair_slurm  # noqa: E402
import pairs  # noqa: E402
import profiling  # noqa: E402
import report  # noqa: E402
import userinstall  # noqa: E402
from harness import ROOT, Bench, BenchError  # noqa: E402
from stats import TITLES, PairResult  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run: 2 rounds after 1 warm-up, small payloads")
    ap.add_argument("--rounds", type=int, help="measured rounds per pair (default 10; --quick 2)")
    ap.add_argument("--warmup", type=int, default=1, help="warm-up rounds, not measured (default 1)")
    ap.add_argument("--only", help="comma-separated pair numbers, e.g. 1,4,6 (default: all)")
    ap.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"), help="where to write the report")
    ap.add_argument("--no-install", action="store_true", help="never build the benchmark venv (its rows: not run)")
    ap.add_argument("--no-profile", action="store_true", help="skip the importtime / pyinstrument section")
    ap.add_argument(
        "--runs", type=int, default=1, help="full runs, each on a fresh rig; the targets table gives their median"
    )
    args = ap.parse_args(argv)
    if args.rounds is None:
        args.rounds = 2 if args.quick else 10
    if args.rounds < 1 or args.warmup < 0 or args.runs < 1:
        ap.error("--rounds and --runs must be >= 1 and --warmup >= 0")
    try:
        args.pairs = sorted({int(p) for p in args.only.split(",")}) if args.only else list(TITLES)
    except ValueError:
        ap.error(f"--only: expected pair numbers like 1,4, got {args.only!r}")
    if not set(args.pairs) <= set(TITLES):
        ap.error(f"--only: pairs are numbered 1 to {len(TITLES)}")
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def findings(runs: list[list[PairResult]], sections: list[profiling.Section]) -> list[str]:
    out = []
    results = runs[-1]
    for run in runs:
        out += [f"- Pair {r.number} ({r.title}) could not be measured: {r.error}" for r in run if r.error]
    for res, row, target, figures, verdict in report.verdicts(runs):
        if verdict != "MISSED":
            continue
        value = statistics.median([f for f in figures if f is not None])
        shown = f"{value * 1000:.0f} ms" if "ms" in target.text else f"{value:.2f}"
        against = f" over {row.baseline.label}" if row.baseline and "ms" not in target.text else ""
        of_runs = f" (median of {len(runs)} runs)" if len(runs) > 1 else ""
        out.append(
            f"- Missed, pair {res.number}: {row.series.label}{against} is {shown}{of_runs}, target {target.text}. "
            'See "Where the time goes" below.'
        )
    extra = _connect_breakdown(results)
    if extra:
        out.append(extra)
    connect_profile = next(
        (s.text for s in sections if s.title.startswith("pyinstrument: jupytunnel connect, server")), ""
    )
    if "run_forking" in connect_profile and "Popen._wait" in connect_profile:
        out.append(
            "- In the connect profile the wait for `ssh -f` to exit sits in `Popen._wait` -> `sleep`: "
            "`Popen.wait(timeout=...)` polls with sleeps growing to 50 ms, so the exit of an `ssh -f` that takes "
            "about 0.2 s is seen up to 50 ms late (25 ms on average). A blocking wait (waitpid in the main thread "
            "with a timer that kills on time-out, or a pidfd) sees it at once."
        )
    if sections and out:
        out.append("- The profiles below were taken in the same run, on the same rig.")
    return out


def _connect_breakdown(results: list[PairResult]) -> str | None:
    """The extra time of connect over raw ssh, next to Python's own start-up."""
    by = {r.number: r for r in results}
    if 1 not in by or 4 not in by:
        return None
    rows = {row.series.label: row.series for row in by[1].rows}
    startup = {row.series.label: row.series for row in by[4].rows}
    a, b = rows.get("jupytunnel connect (direct)"), rows.get("raw OpenSSH, token known (direct)")
    py, ver = startup.get("python -c pass"), startup.get("jupytunnel --version")
    if not (a and b and py and ver and a.ok and b.ok and py.ok and ver.ok):
        return None
    return (
        f"- Direct connect costs {(a.median - b.median) * 1000:.0f} ms more than raw ssh + one GET. "
        f"For scale on this machine: starting the interpreter (`python -c pass`) takes {py.median * 1000:.0f} ms "
        f"and `jupytunnel --version` (interpreter + CLI imports) {ver.median * 1000:.0f} ms; the rest is "
        "discovery and bookkeeping (see the ssh processes and the pyinstrument profile below)."
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (a test's timeout, a CI cancel) must still run the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    load = os.getloadavg()
    venv = benchvenv.ensure(install=not args.no_install, log=log)
    if venv.error:
        log(f"benchmark venv unavailable: {venv.error}")
    why_not = userinstall.install(venv, log=log)
    if why_not is None:
        harness.use_installed(venv.bin)
        log(f"measuring jupytunnel as installed by pip in {venv.path} (not editable)")
    else:
        log(f"measuring the development install (editable); a plain install failed: {why_not}")
    warmup = args.warmup
    runs: list[list[PairResult]] = []
    sections: list[profiling.Section] = []
    for run in range(args.runs):
        if args.runs > 1:
            log(f"full run {run + 1} of {args.runs}")
        profile = not args.no_profile and run == args.runs - 1
        bench = Bench(quick=args.quick, rounds=args.rounds, warmup=warmup, log=log)
        results, taken = _one_run(bench, venv, args.pairs, profile=profile)
        runs.append(results)
        sections = taken or sections
    text = report.render(
        runs,
        machine_rows=report.machine(venv.versions(), load),
        quick=args.quick,
        rounds=args.rounds,
        warmup=warmup,
        command="python benchmarks/run.py" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip(),
        sections=sections,
        findings=findings(runs, sections),
    )
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(text)
    log(f"wrote {output} in {time.monotonic() - started:.0f} s")
    return 1 if any(r.error for results in runs for r in results) else 0


def _one_run(
    bench: Bench, venv: benchvenv.BenchVenv, numbers: list[int], *, profile: bool
) -> tuple[list[PairResult], list[profiling.Section]]:
    """One full run on a fresh rig: each selected pair, then (``profile``) the profiles."""
    runners: dict[int, Callable[[], PairResult]] = {
        1: lambda: pairs.pair_connect(bench),
        2: lambda: pairs.pair_reconnect(bench),
        3: lambda: pairs.pair_cold(bench, venv),
        4: lambda: pairs.pair_startup(bench),
        5: lambda: pairs.pair_status_scale(bench),
        6: lambda: pairs.pair_completion(bench),
        7: lambda: pairs.pair_throughput(bench, venv),
        8: lambda: pairs.pair_sync(bench),
        9: lambda: pair_slurm.pair_slurm(bench),
    }
    results: list[PairResult] = []
    sections: list[profiling.Section] = []
    try:
        bench.start()
        for number in numbers:
            log(f"pair {number}: {TITLES[number]}")
            try:
                results.append(runners[number]())
            except (BenchError, OSError, ValueError, KeyError) as exc:
                traceback.print_exc()
                results.append(PairResult(number, TITLES[number], error=f"{type(exc).__name__}: {exc}"))
        if profile:
            log("profiles: importtime, ssh commands, pyinstrument")
            sections = profiling.safe_take(bench, venv)
    finally:
        log("stopping everything this run started ...")
        bench.stop()
    return results, sections


if __name__ == "__main__":
    sys.exit(main())
