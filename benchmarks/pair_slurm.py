"""Pair 9: a cold Slurm connect against the same steps done by hand, on a real one-node
cluster (testsupport/slurm_cluster.py) whose login node is the rig's target.

By hand, through one ControlMaster (the quickest a person can do it): ``sbatch`` a script that
starts Jupyter on the node's address with ``--port=0``, poll ``squeue`` until RUNNING, poll
for the runtime file, ``ssh -O forward -L`` to the node, ``GET /api/status`` until 200. The
poll schedule is jupytunnel's own (0.1 s, growing by half, at most 2 s), so the ratio shows
the cost of the tool, not of a lazier loop.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time

from harness import SSH, Bench, BenchError, RawMaster, wait_api_status
from stats import TITLES, PairResult, Row, Series, Target, at_most, ratio_of

from testsupport.rig import free_port
from testsupport.slurm_cluster import SlurmCluster, missing_binaries

NUMBER = 9
FIRST_POLL, MAX_POLL = 0.1, 2.0


def _hand_script(rt: str) -> str:
    return (
        "#!/bin/sh\n"
        f"export JUPYTER_RUNTIME_DIR={shlex.quote(rt)}\n"
        'addr=$(sinfo -h -n "$SLURMD_NODENAME" -o %o | head -n 1)\n'
        'exec jupyter server --no-browser --ip="$addr" --port=0 --ServerApp.port_retries=0\n'
    )


class ByHand:
    """The hand-made recipe through one raw master; returns its phases."""

    def __init__(self, bench: Bench, cluster: SlurmCluster) -> None:
        self.bench = bench
        self.cluster = cluster
        self.raw = RawMaster(bench)
        self.base = [SSH, "-F", str(bench.rig.ssh_config), "-S", self.raw.ctl]
        self.rt = str(bench.rig.home / "byhand.rt")
        self.job: str | None = None

    def remote(self, command: str, *, stdin: str | None = None) -> str:
        out = subprocess.run(
            [*self.base, "target", command], input=stdin, capture_output=True, text=True, timeout=60, check=False
        )
        if out.returncode != 0:
            raise BenchError(f"by hand: {command!r} failed: {out.stderr.strip()[-300:]}")
        return out.stdout

    def run_once(self, local_port: int) -> tuple[float, float, float]:
        """(whole, submit to RUNNING, RUNNING to ready)."""
        start = time.perf_counter()
        subprocess.run([*self.base, "-M", "-Nf", "target"], timeout=60, check=True, stdin=subprocess.DEVNULL)
        script = _hand_script(self.rt)
        self.job = (
            self.remote(
                f"rm -rf {shlex.quote(self.rt)}; cat > ~/byhand.sbatch && sbatch --parsable --output=/dev/null "
                "--time=00:10:00 ~/byhand.sbatch",
                stdin=script,
            )
            .strip()
            .split(";")[0]
        )
        submitted = time.perf_counter()
        poll = FIRST_POLL
        node = ""
        while True:
            state = self.remote(f"squeue -h -j {self.job} -o '%T|%N'").strip()
            if state.startswith("RUNNING|"):
                node = state.split("|")[1]
                break
            if not state:
                raise BenchError(f"by hand: job {self.job} left the queue")
            time.sleep(poll)
            poll = min(poll * 1.5, MAX_POLL)
        running = time.perf_counter()
        poll = FIRST_POLL
        while True:
            text = self.remote(f"cat {shlex.quote(self.rt)}/jpserver-*.json 2>/dev/null; true")
            if text.strip():
                info = json.loads(text)
                break
            time.sleep(poll)
            poll = min(poll * 1.5, MAX_POLL)
        addr = self.remote(f"sinfo -h -n {node} -o %o").strip()
        subprocess.run(
            [*self.base, "-O", "forward", "-L", f"127.0.0.1:{local_port}:{addr}:{info['port']}", "target"],
            timeout=30,
            check=True,
            capture_output=True,
        )
        wait_api_status(local_port, str(info["token"]), deadline=60)
        ready = time.perf_counter()
        return ready - start, running - submitted, ready - running

    def clean(self) -> None:
        if self.job:
            self.cluster.run("scancel", self.job)
            self.cluster.wait_queue_empty(timeout=30)
            self.job = None
        self.raw.exit()


def pair_slurm(bench: Bench) -> PairResult:
    res = PairResult(NUMBER, TITLES[NUMBER])
    missing = missing_binaries()
    if missing:
        res.error = f"Slurm is not installed (no {', '.join(missing)})"
        return res
    cluster = SlurmCluster(bench.rig.slurm_conf.parent)
    cluster.start()
    try:
        jt = bench.jt("p9")
        name = jt.profile("hpc", launcher="slurm", slurm={"sbatch_args": ["--time=00:10:00"]})
        a = Series("jupytunnel connect (slurm, cold)", f"jupytunnel connect {name} --no-browser")
        b = Series("by hand: sbatch, poll squeue, read the runtime file, ssh -O forward", "see the note")
        to_running = Series("by hand: submit to RUNNING", "squeue polled")
        to_ready = Series("by hand: RUNNING to ready", "runtime file + forward + GET 200")
        hand = ByHand(bench, cluster)
        bench.log("  pair 9 ...")
        for _, measured in bench.round_indices():
            ran = jt.run("connect", name, "--no-browser", "--timeout", "120", timeout=180)
            jt.run("disconnect", name, "--stop-server", timeout=120)
            cluster.wait_queue_empty(timeout=30)
            try:
                whole, running, ready = hand.run_once(free_port())
            finally:
                hand.clean()
            if measured:
                a.add(ran.seconds)
                b.add(whole)
                to_running.add(running)
                to_ready.add(ready)
        res.rows += [
            Row(b),
            Row(a, baseline=b, target=Target("<= 1.1", at_most(1.1), ratio_of(a, b))),
            Row(to_running),
            Row(to_ready),
        ]
        res.notes.append(
            f"A real one-node Slurm cluster (node {cluster.node} at {cluster.node_addr}"
            + (", its own network namespace" if cluster.isolated else "")
            + "); the rig's target sshd is the login node. Both sides start `jupyter server` in a job and "
            "poll on the same schedule; the by-hand side reuses one ControlMaster for every step, which "
            "is quicker than the separate `ssh` logins of the usual recipe. `disconnect --stop-server` "
            "and scancel between rounds are not timed."
        )
    finally:
        cluster.stop()
    return res
