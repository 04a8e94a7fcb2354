"""The pairs of the issues. Each runs its commands interleaved (A B A B ...), one
warm-up round first, and returns a ``PairResult``; the ratio is jupytunnel over the baseline.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import harness
from benchvenv import BenchVenv
from harness import (
    JT,
    ROOT,
    SSH,
    Bench,
    BenchError,
    RawMaster,
    stop_process,
    timed,
    user_env,
    wait_api_status,
    wait_until,
)
from stats import TITLES, PairResult, Row, Series, Target, at_least, at_most, median_of, ratio_of

from testsupport.rig import free_port

HERE = Path(__file__).resolve().parent
COMPLETION_SCRIPT = ROOT / "completions" / "jupytunnel.bash"


def shared_server(bench: Bench) -> tuple[int, str]:
    """The Jupyter server of the "server already running" pairs, started once: (port, token)."""
    if bench.shared is None:
        port = free_port()
        _, token = bench.start_server_by_hand(port)
        bench.shared = (port, token)
    return bench.shared


def raw_connect(raw: RawMaster, local_port: int, remote_port: int, token: str) -> tuple[float, float]:
    """The floor: ``ssh -M -S CTL -NfL`` exits, then one ``GET /api/status`` answers 200.

    Returns (the whole, the ssh process alone).
    """
    start = time.perf_counter()
    ssh = timed(raw.open_argv(local_port, remote_port), timeout=60).seconds
    wait_api_status(local_port, token)
    return time.perf_counter() - start, ssh


def seeds_recipe(bench: Bench, raw: RawMaster, local_port: int, remote_port: int) -> float:
    """What one does by hand without the token: list the servers over ssh, then tunnel."""
    start = time.perf_counter()
    argv = [SSH, "-F", str(bench.rig.ssh_config)]
    if raw.jump:
        argv += ["-J", "gateway"]
    listed = timed([*argv, "target", "jupyter server list --json"], timeout=60)
    token = None
    for line in listed.stdout.splitlines():
        with contextlib.suppress(ValueError):
            info = json.loads(line)
            if info.get("port") == remote_port:
                token = str(info.get("token") or "")
    if token is None:
        raise BenchError(f"jupyter server list on the target does not show port {remote_port}")
    timed(raw.open_argv(local_port, remote_port), timeout=60)
    wait_api_status(local_port, token)
    return time.perf_counter() - start


# 1 ----------------------------------------------------------------------------------------


def pair_connect(bench: Bench) -> PairResult:
    res = PairResult(1, TITLES[1])
    port, token = shared_server(bench)
    # Issue 10: <= 1.20 direct, <= 1.10 through a jump host.
    for route, floor_target in (("direct", 1.20), ("jump", 1.10)):
        jt = bench.jt(f"p1{route}")
        keys: dict[str, object] = {"jump": ["gateway"]} if route == "jump" else {}
        name = jt.profile("aura", remote_port=port, launcher="none", **keys)
        via = " -J gateway" if route == "jump" else ""
        a = Series(f"jupytunnel connect ({route})", f"jupytunnel connect {name} --no-browser")
        first = Series(
            f"jupytunnel connect, first time ({route})",
            f"jupytunnel connect {name} --no-browser, no server remembered (discovery in the master's first session)",
        )
        b = Series(
            f"raw OpenSSH, token known ({route})",
            f"ssh{via} -M -S CTL -NfL 127.0.0.1:L:127.0.0.1:R target + GET /api/status",
        )
        c = Series(
            f"seeds' recipe ({route})",
            f"ssh{via} target jupyter server list --json + ssh{via} -M -S CTL -NfL ... + GET /api/status",
        )
        raw_b, raw_c = RawMaster(bench, jump=route == "jump"), RawMaster(bench, jump=route == "jump")
        port_b, port_c = free_port(), free_port()
        ssh_alone = Series("raw ssh -NfL alone", "ssh -M -S CTL -NfL ... (until it exits)")
        bench.log(f"  pair 1 ({route}) ...")
        for _, measured in bench.round_indices():
            ran = jt.run("connect", name, "--no-browser")
            jt.run("disconnect", name)  # not timed
            (jt.state_dir / "servers" / f"{name}.json").unlink(missing_ok=True)  # not timed
            fresh = jt.run("connect", name, "--no-browser")
            jt.run("disconnect", name)  # not timed
            t_b, t_ssh = raw_connect(raw_b, port_b, port, token)
            raw_b.exit()  # not timed
            t_c = seeds_recipe(bench, raw_c, port_c, port)
            raw_c.exit()
            if measured:
                a.add(ran.seconds)
                first.add(fresh.seconds)
                b.add(t_b)
                c.add(t_c)
                ssh_alone.add(t_ssh)
        settled = Series("first GET 0.1 s after ssh -NfL exited", "")
        for _ in range(3):
            timed(raw_b.open_argv(port_b, port), timeout=60)
            time.sleep(0.1)
            t0 = time.perf_counter()
            wait_api_status(port_b, token)
            settled.add(time.perf_counter() - t0)
            raw_b.exit()
        res.notes.append(
            f"{route}: of the raw floor's {b.shown(b.median)} ms (median), `ssh -NfL` itself exits after "
            f"{ssh_alone.shown(ssh_alone.median)} ms; the first GET through the fresh master then takes the "
            f"other {b.shown(b.median - ssh_alone.median)} ms, where the same GET sent 0.1 s later answers in "
            f"{settled.shown(settled.median)} ms: a delayed-ACK stall (sshd keeps Nagle's algorithm on until a "
            "session starts). jupytunnel's first session (the discovery) would meet the same stall, and through "
            "a jump host one more; it nudges the connection instead (see `ssh.master.Nudge`)."
        )
        res.rows += [
            Row(b),
            Row(c),
            Row(a, baseline=b, target=Target(f"<= {floor_target}", at_most(floor_target), ratio_of(a, b))),
            Row(a, baseline=c, target=Target("<= 0.2 (>= 5x faster)", at_most(0.2), ratio_of(a, c)), continuation=True),
            Row(first, baseline=b),
        ]
    res.notes.append(
        "A is the everyday case: the profile reached this server before. Its master starts before the imports "
        "(the plan kept by the last connect), its first session reads the runtime files (on a shared host a TCP "
        "port is proven ours before the token is sent), and since a server answered at that port last time, the "
        "session is nudged from the start. The 'first time' row forgets the server between rounds: no early "
        "start, and no connection to the forward before the discovery has found a server. "
        "Each round runs A (jupytunnel connect), A' (first time), then B (raw ssh + one GET), then C (the seeds' recipe); "
        "the disconnect / `ssh -O exit` after each is not timed. A ends when the process exits, which it does "
        "after /api/status answered 200; B and C end when the harness's own GET answers 200."
    )
    return res


# 2 ----------------------------------------------------------------------------------------


def pair_reconnect(bench: Bench) -> PairResult:
    res = PairResult(2, TITLES[2])
    port, _ = shared_server(bench)
    jt = bench.jt("p2")
    name = jt.profile("aura", remote_port=port, launcher="none")
    a = Series("jupytunnel connect, tunnel live", f"jupytunnel connect {name} --no-browser (second time)")
    b = Series("jupytunnel connect, cold", f"jupytunnel connect {name} --no-browser (no tunnel)")
    bench.log("  pair 2 ...")
    for _, measured in bench.round_indices():
        cold = jt.run("connect", name, "--no-browser")
        again = jt.run("connect", name, "--no-browser")
        jt.run("disconnect", name)
        if cold.stdout.strip() != again.stdout.strip():
            raise BenchError("the second connect printed another URL than the first")
        if measured:
            b.add(cold.seconds)
            a.add(again.seconds)
    res.rows += [Row(b), Row(a, baseline=b, target=Target("<= 0.25", at_most(0.25), ratio_of(a, b)))]
    return res


# 3 ----------------------------------------------------------------------------------------


class JupyterForward:
    """jupyter-forward pointed at the rig's target, from invocation to its URL answering.

    It connects with fabric/paramiko, which read ``~/.ssh/config`` through ``$HOME``: it gets a
    temporary HOME whose ``.ssh/config`` is the rig's client config. It runs its remote
    commands through ``$SHELL -lc``, so the rig home gets a ``.profile`` that puts the bench
    venv (with jupyterlab) on PATH, and it requires ``--conda-env``: ``source activate bench``
    then sources the bench venv's own ``activate`` script, found on that PATH.
    """

    def __init__(self, bench: Bench, venv: BenchVenv) -> None:
        self.bench = bench
        self.venv = venv
        self.reason: str | None = None
        self.last_output = ""
        if not venv.ok:
            self.reason = f"bench venv unavailable: {venv.error}"
            return
        if not venv.has("jupyter-forward") or not venv.has("jupyter-lab"):
            self.reason = "jupyter-forward or jupyterlab missing from the bench venv"
            return
        fqdn = subprocess.run(["hostname", "-f"], capture_output=True, text=True, check=False).stdout.strip()
        try:
            address = socket.gethostbyname(fqdn)
        except OSError:
            address = ""
        if not address.startswith("127."):
            # It binds Jupyter to `hostname -f`: only loopback traffic is allowed here.
            self.reason = f"`hostname -f` ({fqdn}) resolves to {address or 'nothing'}, not a loopback address"
            return
        self.home = bench.rig.root / "jfhome"
        (self.home / ".ssh").mkdir(parents=True, mode=0o700)
        config = self.home / ".ssh" / "config"
        config.write_text(bench.rig.client_config_text())
        config.chmod(0o600)
        venv_bin = bench.rig.remote_env["PATH"]
        (bench.rig.home / ".profile").write_text(f'PATH="{venv.bin}:{venv_bin}"\nexport PATH\n')
        drop = {"SSH_AUTH_SOCK", "BASH_ENV", "DISPLAY"}
        self.env = {k: v for k, v in user_env(dict(os.environ)).items() if k not in drop}
        self.env.update(
            {"HOME": str(self.home), "COLUMNS": "500", "PYTHONUNBUFFERED": "1", "BROWSER": "true", "TERM": "dumb"}
        )

    def run_once(self, *, timeout: float = 180.0) -> float:
        local_port = free_port()
        before = set(self.bench.runtime_by_port().values())
        argv = [str(self.venv.bin / "jupyter-forward"), "--port", str(local_port), "--conda-env", "bench", "target"]
        lines: queue.Queue[str | None] = queue.Queue()
        output: list[str] = []
        start = time.perf_counter()
        proc = self.bench.popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env
        )

        def pump() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                lines.put(raw.decode(errors="replace"))
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        try:
            token = None
            end = start + timeout
            while token is None:
                try:
                    line = lines.get(timeout=max(0.1, end - time.perf_counter()))
                except queue.Empty:
                    raise BenchError(f"jupyter-forward printed no URL within {timeout:g} s") from None
                if line is None:
                    raise BenchError(f"jupyter-forward exited ({proc.wait()}) before printing a URL")
                output.append(line)
                if "Jupyter Lab URL:" in line:
                    found = re.search(r"token=([0-9a-fA-F]+)", line)
                    if not found:
                        raise BenchError(f"no token in jupyter-forward's URL line: {line.strip()}")
                    token = found.group(1)
            wait_api_status(local_port, token, deadline=30)
            return time.perf_counter() - start
        finally:
            self.last_output = "".join(output)
            self._stop(proc, before)

    def _stop(self, proc: subprocess.Popen[bytes], before: set[int]) -> None:
        import psutil

        stop_process(proc)
        # The server it started (on the target, by PID from its runtime file), and the
        # `tail -f` of its log, both under this rig's private home.
        for pid in set(self.bench.runtime_by_port().values()) - before:
            self.bench.kill_pid(pid)
        marker = str(self.bench.rig.home / ".jupyter_forward")
        for p in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error):
                if any(marker in part for part in p.info["cmdline"] or []):
                    p.kill()


def pair_cold(bench: Bench, venv: BenchVenv) -> PairResult:
    res = PairResult(3, TITLES[3])
    lab_ok = venv.ok and venv.has("jupyter-lab")
    jupyter = f"{venv.bin / 'jupyter'} lab" if lab_ok else "jupyter server"
    jt = bench.jt("p3")
    remote_port = free_port()
    name = jt.profile("cold", remote_port=remote_port, jupyter=jupyter, launcher="nohup")
    a = Series("jupytunnel connect, no server", f"jupytunnel connect {name} --no-browser (starts `{jupyter}`)")
    b = Series("jupyter-forward", "jupyter-forward --port L --conda-env bench target (starts `jupyter lab`)")
    jf = JupyterForward(bench, venv)
    if jf.reason:
        b.note = f"not run: {jf.reason}"
    bench.log("  pair 3 ...")
    for _, measured in bench.round_indices():
        if remote_port in bench.runtime_by_port():
            raise BenchError(f"a server still runs on port {remote_port}: the start would not be cold")
        ran = jt.run("connect", name, "--no-browser", "--timeout", "120", timeout=180)
        jt.run("disconnect", name, "--stop-server", timeout=120)
        wait_until(lambda: remote_port not in bench.runtime_by_port(), timeout=30, what="the server to stop")
        if measured:
            a.add(ran.seconds)
        if jf.reason is None:
            try:
                t = jf.run_once()
            except BenchError as exc:
                jf.reason = str(exc)
                b.note = f"not run: {exc}"
                tail = " | ".join(ln.strip() for ln in jf.last_output.splitlines()[-8:] if ln.strip())
                res.notes.append(f"jupyter-forward failed: {exc}; its last output: {tail[-800:]}")
                continue
            if measured:
                b.add(t)
    res.rows += [Row(b), Row(a, baseline=b, target=Target("< 1 (jupytunnel ahead)", lambda r: r < 1, ratio_of(a, b)))]
    res.notes.append(
        f"Both sides start the same server program, `{jupyter}` from the benchmark venv; "
        "jupytunnel's `disconnect --stop-server` and the stopping of jupyter-forward and its server "
        "(by PID) between rounds are not timed."
    )
    if lab_ok:
        res.notes.append(
            "How jupyter-forward is pointed at the rig: a temporary HOME whose `.ssh/config` is the rig's "
            "client config (fabric/paramiko read `~/.ssh/config` through $HOME); a `.profile` in the target "
            "home that puts the benchmark venv first on PATH (it runs every remote command through "
            "`$SHELL -lc`, and a root login shell resets PATH); and `--conda-env bench`, because without "
            "`--conda-env` jupyter-forward 2025.1.16 exits 1 after its own `which jupyter` check succeeds "
            "(`source activate bench` then sources the venv's `activate`). Where its time goes: paramiko's "
            "handshake in Python, about a dozen sequential remote commands each in a fresh login shell, "
            "polling `cat` of the log until Jupyter prints its URL, and a fixed `time.sleep(3)` after the "
            "forward is set up and before it prints the URL."
        )
    return res


# 4 ----------------------------------------------------------------------------------------


def pair_startup(bench: Bench) -> PairResult:
    res = PairResult(4, TITLES[4])
    jt = bench.jt("p4")
    version = Series("jupytunnel --version", "jupytunnel --version")
    status = Series("jupytunnel status, no tunnels", "jupytunnel status")
    floor = Series("python -c pass", "python -c pass (the interpreter jupytunnel runs on)")
    bench.log("  pair 4 ...")
    rounds = 3 * bench.rounds  # cheap: more rounds, steadier medians
    for i in range(bench.warmup + rounds):
        t_v = jt.run("--version").seconds
        t_s = jt.run("status").seconds
        t_p = timed([harness.python(), "-c", "pass"], env=jt.env).seconds
        if i >= bench.warmup:
            version.add(t_v)
            status.add(t_s)
            floor.add(t_p)
    res.rows += [
        Row(floor),
        Row(version, baseline=floor),
        Row(status, baseline=floor, target=Target("<= 150 ms (median)", at_most(0.150), median_of(status))),
    ]
    res.notes.append(f"{rounds} rounds (three times the others: each command is short).")
    return res


# 5 ----------------------------------------------------------------------------------------


def pair_status_scale(bench: Bench) -> PairResult:
    res = PairResult(5, TITLES[5])
    port, _ = shared_server(bench)
    sizes = (1, 3, 5) if bench.quick else (1, 10, 50)
    empty = bench.jt("p5n0")
    envs: dict[int, JT] = {}
    bench.log(f"  pair 5: opening {sum(sizes)} tunnels ...")
    for n in sizes:
        jt = bench.jt(f"p5n{n}")
        names = [jt.profile(f"t{i:02d}", remote_port=port, launcher="none") for i in range(n)]
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda nm, jt=jt: jt.run("connect", nm, "--no-browser"), names))
        rows = json.loads(jt.run("status", "--json").stdout)
        if len(rows) != n or any(r["state"] != "up" for r in rows):
            raise BenchError(f"status --json with {n} tunnels: {[r['state'] for r in rows]}")
        envs[n] = jt
    zero = Series("status --json, 0 tunnels", "jupytunnel status --json")
    series = {n: Series(f"status --json, {n} tunnels", "jupytunnel status --json") for n in sizes}
    for _, measured in bench.round_indices():
        t0 = empty.run("status", "--json").seconds
        times = {n: envs[n].run("status", "--json").seconds for n in sizes}
        if measured:
            zero.add(t0)
            for n, t in times.items():
                series[n].add(t)
    res.rows.append(Row(zero))
    for n in sizes:
        target = Target("<= 300 ms (median)", at_most(0.300), median_of(series[n])) if n == 50 else None
        res.rows.append(Row(series[n], baseline=zero, target=target))
    lo, hi = sizes[0], sizes[-1]
    per = (series[hi].median - series[lo].median) / (hi - lo)
    steps = [
        f"{a}->{b}: {(series[b].median - series[a].median) / (b - a) * 1000:.2f} ms/tunnel"
        for a, b in itertools.pairwise(sizes)
    ]
    res.notes.append(
        f"Cost per tunnel: {per * 1000:.2f} ms ({lo} to {hi} tunnels, medians); between steps: {'; '.join(steps)}. "
        "Growth is linear when the steps agree. The ratio column is over status with no tunnels."
    )
    for jt in envs.values():
        jt.disconnect_all()
    return res


# 6 ----------------------------------------------------------------------------------------


def completion_command() -> str:
    return (
        f"source {COMPLETION_SCRIPT}; COMP_WORDS=(jupytunnel connect a); COMP_CWORD=2; "
        '_jupytunnel; echo "${COMPREPLY[@]}"'
    )


def pair_completion(bench: Bench) -> PairResult:
    res = PairResult(6, TITLES[6])
    a = Series("bash completion of profile names, 100 profiles", "bash -c 'source completions/jupytunnel.bash; ...'")
    b = Series("bash -c :", "bash -c : (the shell's own floor)")
    c = Series("python -c pass", "python -c pass (what a Python completer would cost at least)")
    if not COMPLETION_SCRIPT.exists():
        a.note = "not run: completions/jupytunnel.bash missing"
        res.rows += [Row(a)]
        return res
    jt = bench.jt("p6")
    words = ["aura", "alpha", "atlas", "beta", "bastion", "compute", "delta", "gpu", "hpc", "lab"]
    for i in range(100):
        jt.profile(f"{words[i % len(words)]}{i:02d}", host="h.example.org")
    env = {k: v for k, v in jt.env.items() if k != "BASH_ENV"}
    argv = ["bash", "-c", completion_command()]
    check = timed(argv, env=env)
    got = check.stdout.split()
    expected = sorted(p.stem for p in (jt.config_dir / "profiles").glob("a*.toml"))
    if sorted(got) != expected:
        raise BenchError(f"completion of 'a' gave {got[:5]}..., expected {expected[:5]}...")
    bench.log("  pair 6 ...")
    rounds = 3 * bench.rounds
    for i in range(bench.warmup + rounds):
        t_a = timed(argv, env=env).seconds
        t_b = timed(["bash", "-c", ":"], env=env).seconds
        t_c = timed([harness.python(), "-c", "pass"], env=env).seconds
        if i >= bench.warmup:
            a.add(t_a)
            b.add(t_b)
            c.add(t_c)
    res.rows += [
        Row(b),
        Row(c),
        Row(a, baseline=b, target=Target("<= 50 ms (median)", at_most(0.050), median_of(a))),
    ]
    res.notes.append(
        f"The completion of `jupytunnel connect a<TAB>` as a whole `bash -c` process that sources the script "
        f"and calls `_jupytunnel` ({len(expected)} of the 100 profile names start with `a`); {rounds} rounds. "
        "The ratio is over `bash -c :`."
    )
    return res


# 7 ----------------------------------------------------------------------------------------


def download(port: int, token: str, size: int, *, timeout: float = 300.0) -> float:
    """GET /payload through a tunnel; the wall time of the whole transfer."""
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", f"/payload?size={size}&token={token}")
        resp = conn.getresponse()
        if resp.status != 200:
            raise BenchError(f"payload through port {port}: HTTP {resp.status}")
        got = 0
        while True:
            n = resp.readinto(view)
            if not n:
                break
            got += n
    finally:
        conn.close()
    seconds = time.perf_counter() - start
    if got != size:
        raise BenchError(f"payload through port {port}: {got} of {size} bytes")
    return seconds


def pair_throughput(bench: Bench, venv: BenchVenv) -> PairResult:
    res = PairResult(7, TITLES[7])
    size = (20 if bench.quick else 200) * 10**6
    runtime_dir = bench.rig.home / ".local/share/jupyter/runtime"
    server = bench.popen(
        [sys.executable, str(HERE / "payload_server.py"), str(runtime_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert server.stdout is not None
    ready = server.stdout.readline().decode().split()
    if not ready or ready[0] != "ready":
        raise BenchError("the payload server did not start")
    data_port, token = int(ready[1]), ready[2]
    mb = size / 1e6
    a = Series("jupytunnel tunnel", f"jupytunnel connect (tunnel), GET {mb:.0f} MB", unit="MB/s")
    b = Series("raw ssh -L", f"ssh -M -S CTL -NfL 127.0.0.1:L:127.0.0.1:R target, GET {mb:.0f} MB", unit="MB/s")
    c = Series("sshtunnel (paramiko)", f"sshtunnel.SSHTunnelForwarder, GET {mb:.0f} MB", unit="MB/s")
    jt = bench.jt("p7")
    name = jt.profile("data", remote_port=data_port, launcher="none")
    out = jt.connect_json(name)
    port_a = int(str(out["local_port"]))
    raw = RawMaster(bench)
    port_b = free_port()
    raw_connect(raw, port_b, data_port, token)  # opened before timing
    port_c: int | None = None
    if not venv.ok:
        c.note = f"not run: bench venv unavailable: {venv.error}"
    else:
        fwd = bench.popen(
            [
                str(venv.python),
                str(HERE / "sshtunnel_fwd.py"),
                str(bench.rig.target.port),
                bench.rig.user,
                str(bench.rig.client_key),
                str(data_port),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert fwd.stdout is not None
        line = fwd.stdout.readline().decode().split()
        if line and line[0] == "ready":
            port_c = int(line[1])
        else:
            fwd.kill()
            err = fwd.stderr.read().decode(errors="replace") if fwd.stderr else ""
            c.note = f"not run: sshtunnel did not start: {err.strip()[-300:]}"
    bench.log(f"  pair 7 ({mb:.0f} MB a download) ...")
    for _, measured in bench.round_indices():
        t_a = download(port_a, token, size)
        t_b = download(port_b, token, size)
        t_c = download(port_c, token, size) if port_c else None
        if measured:
            a.add(mb / t_a)
            b.add(mb / t_b)
            if t_c is not None:
                c.add(mb / t_c)
    res.rows += [
        Row(b),
        Row(a, baseline=b, target=Target(">= 0.95", at_least(0.95), ratio_of(a, b))),
        Row(c, baseline=b),
    ]
    res.notes.append(
        f"{mb:.0f} MB of zeros from a small HTTP server on the target (loopback) that jupytunnel takes for a "
        "Jupyter server (it writes a runtime file and answers /api/status), downloaded by the harness through "
        "each tunnel; the tunnels are opened before timing. Figures are MB/s, the ratio is MB/s over raw ssh "
        "(higher is better)."
    )
    jt.disconnect_all()
    raw.exit()
    return res


# 8 ----------------------------------------------------------------------------------------


def make_payload(root: Path, *, files: int, size: int) -> None:
    """``files`` files of random bytes (nothing for ssh or rsync to compress), in 10 folders."""
    each = size // files
    for i in range(files):
        folder = root / f"d{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:04d}.bin").write_bytes(os.urandom(each))


def pair_sync(bench: Bench) -> PairResult:
    res = PairResult(8, TITLES[8])
    files, size = (100, 20 * 10**6) if bench.quick else (1000, 200 * 10**6)
    mb = size / 1e6
    src = bench.rig.root / "p8src"
    make_payload(src, files=files, size=size)
    port, _ = shared_server(bench)
    jt = bench.jt("p8")
    name = jt.profile("data", remote_port=port, launcher="none")
    jt.connect_json(name)  # the tunnel is up: sync rides its master
    cold = bench.jt("p8cold")
    cold_name = cold.profile("data", remote_port=port, launcher="none")  # no tunnel: a master for each sync
    home = bench.rig.home
    raw_e = f"{SSH} -F {bench.rig.ssh_config}"

    def jt_sync(env: harness.JT, profile: str, dest: str) -> float:
        ran = env.run("sync", profile, str(src), f"~/{dest}", "--json", timeout=600)
        out = json.loads(ran.stdout)
        if out["total_files"] < files:
            raise BenchError(f"jupytunnel sync saw {out['total_files']} files, expected {files}")
        return ran.seconds

    def raw_sync(dest: str) -> float:
        return timed(["rsync", "-a", "-e", raw_e, f"{src}/", f"target:{home}/{dest}/"], timeout=600).seconds

    def fresh(*dests: str) -> None:
        for dest in dests:
            shutil.rmtree(home / dest, ignore_errors=True)

    full_a = Series(
        "jupytunnel sync, tunnel up", f"jupytunnel sync {name} SRC ~/p8jt ({mb:.0f} MB, {files} files)", unit="MB/s"
    )
    full_b = Series(
        "raw rsync -e ssh", f"rsync -a -e 'ssh -F CFG' SRC/ target:~/p8raw/ ({mb:.0f} MB, {files} files)", unit="MB/s"
    )
    bench.log(f"  pair 8: {mb:.0f} MB in {files} files ...")
    for i, measured in bench.round_indices():
        fresh("p8jt", "p8raw")  # not timed
        if i % 2:  # every other round the other way round: neither side always writes first
            t_b = raw_sync("p8raw")
            t_a = jt_sync(jt, name, "p8jt")
        else:
            t_a = jt_sync(jt, name, "p8jt")
            t_b = raw_sync("p8raw")
        if measured:
            full_a.add(mb / t_a)
            full_b.add(mb / t_b)
    same_a = Series("jupytunnel sync, no change, tunnel up", f"jupytunnel sync {name} SRC ~/p8jt (nothing to send)")
    same_b = Series("raw rsync -e ssh, no change", "rsync -a -e 'ssh -F CFG' SRC/ target:~/p8raw/ (nothing to send)")
    same_c = Series(
        "jupytunnel sync, no change, no tunnel", f"jupytunnel sync {cold_name} SRC ~/p8jt (nothing to send)"
    )
    for _, measured in bench.round_indices():
        t_a = jt_sync(jt, name, "p8jt")
        t_b = raw_sync("p8raw")
        t_c = jt_sync(cold, cold_name, "p8jt")
        if measured:
            same_a.add(t_a)
            same_b.add(t_b)
            same_c.add(t_c)
    res.rows += [
        Row(full_b),
        Row(full_a, baseline=full_b, target=Target(">= 0.95", at_least(0.95), ratio_of(full_a, full_b))),
        Row(same_b),
        Row(same_a, baseline=same_b, target=Target("<= 1.1", at_most(1.1), ratio_of(same_a, same_b))),
        Row(same_c, baseline=same_b),
    ]
    res.notes.append(
        f"{mb:.0f} MB of random bytes in {files} files (10 folders), pushed to the rig's target over loopback. "
        "The full transfer (figures in MB/s, the ratio MB/s over raw rsync: higher is better) starts from an "
        "empty destination each round (the deletion is not timed), jupytunnel first in even rounds and raw "
        "rsync first in odd ones; the no-change rows (ms) sync the same tree "
        "again. jupytunnel runs `sync --json` as a whole process: the remote check and rsync ride the live "
        "tunnel's master (no ssh handshake); the 'no tunnel' row opens a master for the one sync, as raw "
        "rsync opens its own ssh. Raw rsync runs `rsync -a` (jupytunnel adds `-s -8 --update "
        "--partial-dir=.rsync-partial --stats --timeout=600`)."
    )
    jt.disconnect_all()
    fresh("p8jt", "p8raw")
    shutil.rmtree(src, ignore_errors=True)
    return res
