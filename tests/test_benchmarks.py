"""Smoke test of the benchmarks: ``benchmarks/run.py --quick`` runs end to end.

It starts its own rig (no shared fixture), so it runs in parallel with the rest under
``pytest -n``. Opt-in (``JUPYTUNNEL_BENCH_SMOKE=1``): it takes minutes. No assertion on any time: only that every pair is reported, with the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# About 200 s on 2 cores: opt-in (CI runs it after the README's test command).
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.environ.get("JUPYTUNNEL_BENCH_SMOKE") != "1", reason="benchmark smoke run: set JUPYTUNNEL_BENCH_SMOKE=1"
    ),
]

ROOT = Path(__file__).resolve().parent.parent
HEADINGS = (
    "## 1. Connect, server already running",
    "## 2. Reconnect with the master alive",
    "## 3. Cold start to ready",
    "## 4. CLI start-up",
    "## 5. status at scale",
    "## 6. Completion",
    "## 7. Throughput",
    "## 8. Sync",
    "## 9. Slurm: cold connect to a compute node",
)


def test_quick_benchmark_run(tmp_path: Path) -> None:
    out = tmp_path / "bench.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=900,  # the first run also builds the benchmark venv (pip)
        stdin=subprocess.DEVNULL,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    text = out.read_text()
    for heading in HEADINGS:
        assert heading in text
    assert "harness error" not in text
    assert "## Machine" in text
    for item in ("CPU count", "OpenSSH", "Python", "jupyter_server"):
        assert f"| {item} |" in text
    assert "| median ms |" in text or "median ms" in text
