"""The measuring machinery: the rig, per-scenario jupytunnel environments, timed processes.

Every measured command runs as a whole process (``subprocess``) with ``time.perf_counter``
around it, the way a user pays for it. Everything started here is stopped here, by PID or
through the tool that started it; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # testsupport/ (the rig), beside jupytunnel/ and tests/
    sys.path.insert(0, str(ROOT))

from testsupport.rig import SSH, SSHD, Rig, write_profile  # noqa: E402 - the root is put on the path just above


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM a process this run started, SIGKILL it if it has not gone within 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class BenchError(RuntimeError):
    """The harness could not measure something (a command failed, a wait timed out)."""


# Where the measured jupytunnel and the `python -c pass` floors come from: a plain (not
# editable) install in the benchmark venv when run.py could make one (userinstall.py), else
# this interpreter's.
INSTALLED_BIN: Path | None = None


def use_installed(bin_dir: Path) -> None:
    global INSTALLED_BIN  # noqa: PLW0603 - set once by run.py before anything is measured
    INSTALLED_BIN = bin_dir


def python() -> str:
    """The interpreter the measured jupytunnel runs on."""
    return str(INSTALLED_BIN / "python") if INSTALLED_BIN else sys.executable


def jupytunnel_argv() -> list[str]:
    """The console script a user runs."""
    script = (INSTALLED_BIN or Path(sys.executable).parent) / "jupytunnel"
    return [str(script)] if script.exists() else [sys.executable, "-m", "jupytunnel"]


@dataclasses.dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def timed(argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 60.0, check: bool = True) -> Ran:
    """Run ``argv`` to its exit; the wall time from spawn to exit.

    Output goes to files, never pipes: an ``ssh -f`` child keeps them open after its
    parent exited, and reading a pipe would wait for the tunnel to close.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
        code, seconds = wait_exact(proc, start, timeout=timeout)
        out.seek(0)
        err.seek(0)
        ran = Ran(code, out.read().decode(errors="replace"), err.read().decode(errors="replace"), seconds)
    if check and code != 0:
        raise BenchError(f"{' '.join(argv)} exited {code}: {ran.stderr.strip()[-500:]}")
    return ran


def wait_exact(proc: subprocess.Popen[bytes], start: float, *, timeout: float) -> tuple[int, float]:
    """(exit code, seconds since ``start``), taken the moment the process exits.

    Not ``proc.wait(timeout=...)``: CPython polls that with sleeps growing to 50 ms, which
    would put every sample on a 0.5, 1.5, ..., 31.5, 63.5, 113.5 ms ... grid. A blocking
    ``waitpid`` returns at once; a timer thread kills the process on time-out.
    """
    expired = threading.Event()

    def kill() -> None:
        expired.set()
        with contextlib.suppress(OSError):
            proc.kill()

    timer = threading.Timer(timeout, kill)
    timer.daemon = True
    timer.start()
    try:
        code = proc.wait()
        seconds = time.perf_counter() - start
    finally:
        timer.cancel()
    if expired.is_set():
        raise BenchError(f"{' '.join(str(a) for a in proc.args[:4])} ... did not finish within {timeout:g} s")  # type: ignore[index]
    return code, seconds


def api_status_ok(port: int, token: str, *, timeout: float = 2.0, base: str = "/") -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", f"{base}api/status?token={token}")
        response = conn.getresponse()
        response.read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
    return response.status == 200


def wait_api_status(port: int, token: str, *, deadline: float = 15.0) -> None:
    """Retry ``GET /api/status`` until it answers 200: the harness's own readiness check."""
    end = time.perf_counter() + deadline
    while not api_status_ok(port, token):
        if time.perf_counter() >= end:
            raise BenchError(f"127.0.0.1:{port}/api/status did not answer 200 within {deadline:g} s")
        time.sleep(0.005)


def port_accepts(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= end:
            raise BenchError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


class JT:
    """jupytunnel against the rig, with private config, state and runtime dirs."""

    def __init__(self, bench: Bench, name: str) -> None:
        self.bench = bench
        base = bench.rig.root / name
        base.mkdir()
        self.config_dir = base / "cfg"
        self.state_dir = base / "st"
        self.runtime_dir = base / "rt"
        self.env = user_env(bench.rig.env)
        self.env.update(
            {
                "JUPYTUNNEL_CONFIG_DIR": str(self.config_dir),
                "JUPYTUNNEL_STATE_DIR": str(self.state_dir),
                "JUPYTUNNEL_RUNTIME_DIR": str(self.runtime_dir),
            }
        )
        bench.envs.append(self)

    def profile(self, name: str, **keys: object) -> str:
        return write_profile(self.config_dir, name, **keys)

    def argv(self, *args: str) -> list[str]:
        return [*jupytunnel_argv(), *args]

    def run(self, *args: str, timeout: float = 120.0, check: bool = True) -> Ran:
        return timed(self.argv(*args), env=self.env, timeout=timeout, check=check)

    def connect_json(self, name: str, *, timeout: float = 120.0) -> dict[str, object]:
        ran = self.run("connect", name, "--no-browser", "--json", "--timeout", str(timeout), timeout=timeout + 30)
        return json.loads(ran.stdout)

    def disconnect_all(self) -> None:
        with contextlib.suppress(BenchError, OSError):
            self.run("disconnect", "--all", timeout=120, check=False)


class RawMaster:
    """A plain ``ssh -M -S CTL -NfL`` master, the floor jupytunnel is compared with."""

    def __init__(self, bench: Bench, *, jump: bool = False) -> None:
        self.bench = bench
        self.ctl = str(bench.rig.root / f"raw{next(bench.counter)}")
        self.jump = jump
        bench.raw_masters.append(self)

    def open_argv(self, local_port: int, remote_port: int) -> list[str]:
        argv = [SSH, "-F", str(self.bench.rig.ssh_config)]
        if self.jump:
            argv += ["-J", "gateway"]
        return [*argv, "-M", "-S", self.ctl, "-NfL", f"127.0.0.1:{local_port}:127.0.0.1:{remote_port}", "target"]

    def exit(self) -> None:
        """``ssh -O exit`` (not timed); waits until the socket is gone."""
        if not os.path.exists(self.ctl):
            return
        subprocess.run(
            [SSH, "-F", str(self.bench.rig.ssh_config), "-S", self.ctl, "-O", "exit", "target"],
            capture_output=True,
            timeout=30,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        with contextlib.suppress(BenchError):
            wait_until(lambda: not os.path.exists(self.ctl), timeout=10, what="the raw master to exit")


class Bench:
    """One rig for the whole run, and a register of everything started on it."""

    def __init__(self, *, quick: bool, rounds: int, warmup: int, log: Callable[[str], None]) -> None:
        if not os.path.exists(SSHD):
            raise BenchError(f"{SSHD} is missing: install openssh-server")
        self.quick = quick
        self.rounds = rounds
        self.warmup = warmup
        self.log = log
        self.rig = Rig()
        self.envs: list[JT] = []
        self.raw_masters: list[RawMaster] = []
        self.procs: list[subprocess.Popen[bytes]] = []  # local helpers we started
        self.server_pids: list[int] = []  # Jupyter servers we started on the target
        self.counter = iter(range(10**6))
        self.shared: tuple[int, str] | None = None  # (port, token) of the "already running" server

    def start(self) -> None:
        self.rig.start()

    def jt(self, name: str) -> JT:
        return JT(self, name)

    def round_indices(self) -> Iterator[tuple[int, bool]]:
        """(index, measured): the warm-up rounds first, not measured."""
        for i in range(self.warmup + self.rounds):
            yield i, i >= self.warmup

    def ssh(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.rig.ssh(*args, timeout=timeout)

    def start_server_by_hand(self, port: int, *, jupyter: str = "jupyter server") -> tuple[int, str]:
        """A Jupyter server on the target, started over plain ssh; (pid, token)."""
        cmd = (
            f"nohup {jupyter} --no-browser --ip=127.0.0.1 --port={port} --ServerApp.port_retries=0"
            " </dev/null >/dev/null 2>&1 & echo $!"
        )
        out = self.ssh("target", cmd)
        if out.returncode != 0:
            raise BenchError(f"cannot start Jupyter on the target: {out.stderr.strip()}")
        pid = int(out.stdout.strip())
        self.server_pids.append(pid)
        info: dict[str, object] = {}

        def ready() -> bool:
            found = self.runtime_info(pid)
            if found:
                info.update(found)
            return bool(found)

        wait_until(ready, timeout=90, what=f"Jupyter (pid {pid}) to write its runtime file")
        token = str(info.get("token") or "")
        wait_until(lambda: api_status_ok(port, token), timeout=30, what=f"Jupyter on port {port} to answer")
        return pid, token

    def runtime_info(self, pid: int) -> dict[str, object] | None:
        for f in self.rig.runtime_files():
            with contextlib.suppress(OSError, ValueError, KeyError):
                raw = json.loads(f.read_text())
                if raw["pid"] == pid:
                    return dict(raw)
        return None

    def runtime_by_port(self) -> dict[int, int]:
        """port -> pid of every Jupyter runtime file on the target whose server is alive."""
        out: dict[int, int] = {}
        for f in self.rig.runtime_files():
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                raw = json.loads(f.read_text())
                pid = int(raw["pid"])
                if pid_alive(pid):
                    out[int(raw["port"])] = pid
        return out

    def kill_pid(self, pid: int) -> None:
        import psutil

        with contextlib.suppress(psutil.Error):
            p = psutil.Process(pid)
            p.terminate()
            try:
                p.wait(10)
            except psutil.TimeoutExpired:
                p.kill()
                p.wait(10)

    def popen(self, argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        proc: subprocess.Popen[bytes] = subprocess.Popen(argv, **kwargs)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        """Close every tunnel, helper and server started by this run, then the rig."""
        for env in self.envs:
            env.disconnect_all()
        for raw in self.raw_masters:
            with contextlib.suppress(Exception):
                raw.exit()
        for proc in self.procs:
            stop_process(proc)
        for pid in self.server_pids:
            self.kill_pid(pid)
        self.rig.stop()  # kills the Jupyter servers whose runtime files are in the rig's home


def user_env(env: dict[str, str]) -> dict[str, str]:
    """The environment of a measured command: as on a user's machine, Python may write its
    bytecode caches (a sandbox's PYTHONDONTWRITEBYTECODE would recompile jupytunnel's
    sources on every run, a cost a pip-installed copy never pays)."""
    return {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def which(name: str) -> str | None:
    return shutil.which(name)
