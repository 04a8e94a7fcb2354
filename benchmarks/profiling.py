"""Where the time goes: ``python -X importtime``, pyinstrument, and the ssh commands run.

Evidence for the report, taken once against the same rig (not timed rounds).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor

import harness
from benchvenv import BenchVenv
from harness import JT, Bench, BenchError, timed
from pairs import shared_server

_IMPORT_RE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


@dataclasses.dataclass
class Section:
    title: str
    text: str  # preformatted
    lead: str = ""  # one paragraph before the block


def importtime(args: list[str], env: dict[str, str], *, top: int = 14, runs: int = 5) -> tuple[float, str]:
    """(total import ms, the ``top`` imports by cumulative time) of ``python -X importtime``.

    One run is noisy: of ``runs`` runs, the one with the median total is shown.
    """
    taken = []
    for _ in range(runs):
        ran = timed([harness.python(), "-X", "importtime", *args], env=env, check=False)
        entries = []
        total_us = 0
        for line in ran.stderr.splitlines():
            found = _IMPORT_RE.match(line)
            if found:
                self_us, cumulative_us, indent, name = int(found[1]), int(found[2]), len(found[3]), found[4]
                total_us += self_us
                entries.append((cumulative_us, self_us, indent, name))
        taken.append((total_us, entries))
    taken.sort(key=lambda t: t[0])
    total_us, entries = taken[len(taken) // 2]
    entries.sort(reverse=True)
    lines = [f"{'cumulative':>10}  {'self':>8}  module"]
    lines += [f"{c / 1000:8.1f}ms  {s / 1000:6.1f}ms  {' ' * max(0, i - 1)}{n}" for c, s, i, n in entries[:top]]
    return total_us / 1000, "\n".join(lines)


def importtime_connect(jt: JT, name: str) -> tuple[float, str]:
    taken = []
    for _ in range(3):
        taken.append(importtime(["-m", "jupytunnel", "connect", name, "--no-browser"], jt.env, top=18, runs=1))
        jt.run("disconnect", name)
    taken.sort(key=lambda t: t[0])
    return taken[1]


def pyinstrument(args: list[str], env: dict[str, str], shim: str, *, max_lines: int = 70) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "profile.txt")
        run_env = {**env, "PYTHONPATH": shim}
        ran = timed(
            [harness.python(), "-m", "pyinstrument", "--no-color", "--no-unicode", "-r", "text", "-o", out, *args],
            env=run_env,
            check=False,
            timeout=180,
        )
        if not os.path.exists(out):
            return f"(pyinstrument failed: {ran.stderr.strip()[-400:]})"
        with open(out) as fh:
            lines = [ln.rstrip() for ln in fh if ln.strip()]
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"... ({len(lines) - max_lines} more lines)"]
    return "\n".join(lines)


def ssh_commands(jt: JT, *args: str) -> tuple[float, list[str]]:
    """The ssh commands ``jupytunnel -v`` prints (``+ ...`` on stderr), and the run's time."""
    ran = jt.run("-v", *args)
    cmds = [ln[2:] for ln in ran.stderr.splitlines() if ln.startswith("+ ")]
    short = [c if len(c) <= 150 else c[:147] + "..." for c in cmds]
    return ran.seconds, short


def take(bench: Bench, venv: BenchVenv) -> list[Section]:
    sections: list[Section] = []
    port, _ = shared_server(bench)
    jt = bench.jt("prof")
    env = jt.env
    module = ["-m", "jupytunnel"]

    floor_ms, floor_top = importtime(["-c", "pass"], env, top=8)
    version_ms, version_top = importtime([*module, "--version"], env)
    status_ms, status_top = importtime([*module, "status"], env)
    sections.append(
        Section(
            "python -X importtime -m jupytunnel --version",
            version_top,
            f"Imports: {version_ms:.0f} ms for `--version`, {status_ms:.0f} ms for `status` (no tunnels), "
            f"against {floor_ms:.0f} ms for `python -c pass` in the same venv (site and the editable-install "
            "finder). Summed self times of the run with the median total of five, -X importtime's own overhead included.",
        )
    )
    sections.append(Section("python -X importtime -m jupytunnel status", status_top))
    sections.append(Section("python -X importtime -c pass", floor_top))

    name = jt.profile("aura", remote_port=port, launcher="none")
    connect_imports = importtime_connect(jt, name)
    sections.append(
        Section(
            "python -X importtime -m jupytunnel connect NAME (server running, no tunnel)",
            connect_imports[1],
            f"Imports of a whole connect: {connect_imports[0]:.0f} ms (median of three connects, each "
            "disconnected after).",
        )
    )
    seconds, cmds = ssh_commands(jt, "connect", name, "--no-browser")
    _, again = ssh_commands(jt, "connect", name, "--no-browser")
    jt.run("disconnect", name)
    sections.append(
        Section(
            "ssh processes of one connect (server running) and of a reconnect",
            "\n".join(
                [
                    f"# connect ({seconds * 1000:.0f} ms with -v): {len(cmds)} ssh processes",
                    *cmds,
                    f"# reconnect, tunnel live: {len(again)} ssh processes",
                    *again,
                ]
            ),
            "From `jupytunnel -v`, which prints each ssh command before it runs. The first is the master "
            "(the same handshake as the raw baseline); each further one is a process start plus a round trip "
            "through the master.",
        )
    )

    shim = venv.pyinstrument_path()
    if shim is None:
        reason = venv.error or "pyinstrument missing from the bench venv, or built for another Python"
        sections.append(Section("pyinstrument", f"not run: {reason}"))
        return sections
    sections.append(
        Section(
            "pyinstrument: jupytunnel connect, server running (direct)",
            pyinstrument([*module, "connect", name, "--no-browser"], env, str(shim)),
        )
    )
    sections.append(
        Section(
            "pyinstrument: jupytunnel connect, tunnel live (reconnect)",
            pyinstrument([*module, "connect", name, "--no-browser"], env, str(shim)),
        )
    )
    jt.run("disconnect", name)
    n = 3 if bench.quick else 10
    names = [jt.profile(f"s{i:02d}", remote_port=port, launcher="none") for i in range(n)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda nm: jt.run("connect", nm, "--no-browser"), names))
    try:
        sections.append(
            Section(
                f"pyinstrument: jupytunnel status --json, {n} tunnels",
                pyinstrument([*module, "status", "--json"], env, str(shim)),
            )
        )
    finally:
        jt.disconnect_all()
    return sections


def safe_take(bench: Bench, venv: BenchVenv) -> list[Section]:
    try:
        return take(bench, venv)
    except BenchError as exc:
        return [Section("profiles", f"not taken: {exc}")]
