"""The benchmark's own virtual environment: jupyter-forward, sshtunnel, jupyterlab, pyinstrument.

They are what a user would otherwise run (or, for pyinstrument, how we look inside), never
dependencies of jupytunnel. Created on first use with ``python -m venv`` and ``pip``, cached
(``benchmarks/.venv-bench``, or ``$JUPYTUNNEL_BENCH_VENV``), under a lock so that two runs
do not build it at once. When it cannot be built (no network), the rows that need it are
"not run", with pip's reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = ("jupyter-forward", "sshtunnel", "jupyterlab", "pyinstrument")
INSTALL_TIMEOUT = 420.0


@dataclasses.dataclass
class BenchVenv:
    path: Path
    error: str | None = None  # why it is not usable

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    @property
    def ok(self) -> bool:
        return self.error is None

    def has(self, script: str) -> bool:
        return (self.bin / script).exists()

    def versions(self) -> dict[str, str]:
        """Installed versions of the packages that matter for the report."""
        if not self.ok:
            return {}
        code = (
            "import importlib.metadata as m, json\n"
            "out = {}\n"
            "for n in ('jupyter-forward', 'sshtunnel', 'paramiko', 'fabric', 'jupyterlab', 'jupyter_server', 'pyinstrument'):\n"
            "    try: out[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: pass\n"
            "print(json.dumps(out))\n"
        )
        try:
            out = subprocess.run([str(self.python), "-c", code], capture_output=True, text=True, timeout=60, check=True)
            return dict(json.loads(out.stdout))
        except (OSError, subprocess.SubprocessError, ValueError):
            return {}

    def pyinstrument_path(self) -> Path | None:
        """A folder holding only pyinstrument, for ``PYTHONPATH`` of the main interpreter.

        pyinstrument has no dependencies; exposing the bench venv's whole site-packages
        would shadow jupytunnel's own (typer, rich) with other versions.
        """
        if not self.ok:
            return None
        found = sorted(self.path.glob("lib/python*/site-packages/pyinstrument"))
        if not found:
            return None
        venv_py = found[0].parent.parent.name  # "python3.11"
        if venv_py != f"python{sys.version_info.major}.{sys.version_info.minor}":
            return None  # its C extension is built for another interpreter
        shim = self.path / "pyinstrument-only"
        shim.mkdir(exist_ok=True)
        link = shim / "pyinstrument"
        if not link.exists():
            with contextlib.suppress(FileExistsError):
                link.symlink_to(found[0])
        return shim


def default_path() -> Path:
    override = os.environ.get("JUPYTUNNEL_BENCH_VENV")
    return Path(override) if override else HERE / ".venv-bench"


def ensure(path: Path | None = None, *, install: bool = True, log=print) -> BenchVenv:
    """The bench venv, built if needed; ``error`` says why it is not usable."""
    venv = BenchVenv(path or default_path())
    marker = venv.path / ".bench-ready.json"
    wanted = json.dumps(sorted(REQUIREMENTS))
    venv.path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = venv.path.parent / f"{venv.path.name}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text() == wanted and venv.python.exists():
            return venv
        if not install:
            venv.error = f"not installed ({venv.path}); run without --no-install to build it"
            return venv
        log(f"building the benchmark venv {venv.path} (pip install {' '.join(REQUIREMENTS)}) ...")
        try:
            if not venv.python.exists():
                subprocess.run(
                    [sys.executable, "-m", "venv", str(venv.path)],
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=True,
                )
            subprocess.run(
                [
                    str(venv.python),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--retries",
                    "2",
                    "--timeout",
                    "30",
                    *REQUIREMENTS,
                ],
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
                check=True,
            )
        except subprocess.CalledProcessError as exc:
            lines = [ln for ln in (exc.stderr or "").splitlines() if ln.strip() and not ln.startswith("WARNING")]
            venv.error = "pip failed: " + (" / ".join(lines[-3:]) or f"exit {exc.returncode}")
            return venv
        except subprocess.TimeoutExpired as exc:
            venv.error = f"{exc.cmd[0]} did not finish within {exc.timeout:g} s (no network?)"
            return venv
        except OSError as exc:
            venv.error = f"cannot build the venv: {exc}"
            return venv
        marker.write_text(wanted)
        return venv
