"""jupytunnel as a user has it: ``pip install .`` (not editable) into the benchmark venv.

The development venv holds an editable install, whose import finder adds about 13 ms to
every Python start (and so to every jupytunnel command); nobody who installs jupytunnel with
pip or pipx pays that. Measured commands run the installed console script, and the
``python -c pass`` floors run that venv's interpreter, so both sides start alike.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from benchvenv import BenchVenv

ROOT = Path(__file__).resolve().parent.parent
DEPS_PROBE = "import typer, psutil, platformdirs, tomli_w, rich"


def install(venv: BenchVenv, *, log=print) -> str | None:
    """Install this checkout into ``venv``; returns why not, or None when it worked."""
    if not venv.ok:
        return venv.error
    pip = [str(venv.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    try:
        has_deps = subprocess.run([str(venv.python), "-c", DEPS_PROBE], capture_output=True, timeout=60, check=False)
        if has_deps.returncode != 0:
            log("installing jupytunnel's dependencies into the benchmark venv ...")
            subprocess.run([*pip, str(ROOT)], capture_output=True, text=True, timeout=420, check=True)
        # Always this checkout as it is now, built as a wheel would be (no editable finder).
        subprocess.run(
            [*pip, "--no-deps", "--force-reinstall", str(ROOT)], capture_output=True, text=True, timeout=300, check=True
        )
    except subprocess.CalledProcessError as exc:
        lines = [ln for ln in (exc.stderr or "").splitlines() if ln.strip() and not ln.startswith("WARNING")]
        return "pip failed: " + (" / ".join(lines[-3:]) or f"exit {exc.returncode}")
    except subprocess.TimeoutExpired as exc:
        return f"{exc.cmd[0]} did not finish within {exc.timeout:g} s"
    if not venv.has("jupytunnel"):
        return "no jupytunnel console script after pip install"
    return None
