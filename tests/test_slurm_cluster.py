"""The `slurm` fixture is a real cluster: jobs submitted through the rig's login node (target)
run on cn1, in the node's own network namespace when the machine allows it."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from helpers import wait_for

from testsupport.rig import Rig
from testsupport.slurm_cluster import NSENTER, SlurmCluster, clean_stale_namespaces

pytestmark = pytest.mark.integration


@pytest.fixture
def jobdir(rig: Rig, slurm: SlurmCluster) -> Iterator[Path]:
    """A folder in the shared home for one test's scripts and outputs; the queue is emptied after."""
    folder = Path(rig.home) / f"slurmtest-{secrets.token_hex(4)}"
    folder.mkdir(mode=0o700)
    yield folder
    slurm.cancel_all()


def sbatch(rig: Rig, *args: str) -> str:
    """``sbatch --parsable ARGS`` on the login node, as the launcher submits; the job id."""
    res = rig.ssh("target", " ".join(["sbatch", "--parsable", *args]))
    assert res.returncode == 0, res.stderr
    job_id = res.stdout.strip()
    assert job_id.isdigit(), res.stdout
    return job_id


def squeue_line(rig: Rig, job_id: str) -> str:
    """``STATE|REASON|NODE`` through the login node ("" once the job is gone)."""
    res = rig.ssh("target", f"squeue -h -j {job_id} -o '%T|%R|%N'")
    return res.stdout.strip() if res.returncode == 0 else ""


def wait_running(rig: Rig, job_id: str, timeout: float = 60) -> str:
    line = ""

    def running() -> bool:
        nonlocal line
        line = squeue_line(rig, job_id)
        return line.startswith("RUNNING|")

    wait_for(running, timeout, f"job {job_id} to run (last: {line!r})")
    return line


def test_cluster_is_up(slurm: SlurmCluster) -> None:
    res = slurm.run("sinfo", "-h", "-n", slurm.node, "-o", "%T|%o|%c|%m")
    assert res.returncode == 0, res.stderr
    state, addr, cpus, mem = res.stdout.strip().split("|")
    assert (state, addr, int(cpus), int(mem)) == ("idle", slurm.node_addr, slurm.cpus, slurm.memory_mb)
    assert slurm.conf.is_file()
    if slurm.isolated:
        assert not slurm.why_not_isolated
        assert slurm.node_addr.startswith("10.214.")
        assert slurm.ns is not None
        assert Path(f"/run/netns/{slurm.ns}").exists()
    else:
        assert slurm.why_not_isolated  # a reason, for the skip messages of tests that need isolation
        assert slurm.node_addr == "127.0.0.1"


def test_login_node_sees_the_cluster(rig: Rig, slurm: SlurmCluster) -> None:
    """Non-interactive ssh to the target carries SLURM_CONF (sshd SetEnv): the clients work."""
    res = rig.ssh("target", "echo $SLURM_CONF; sinfo -h -o %P")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [str(slurm.conf), f"{slurm.partition}*"]


def test_job_environment_on_the_node(rig: Rig, slurm: SlurmCluster, jobdir: Path) -> None:
    """What a batch script can learn on the node: its name, its address, the cluster's conf."""
    out = jobdir / "probe.out"
    script = jobdir / "probe.sh"
    script.write_text(
        "#!/bin/sh\n"
        'echo "hostname=$(hostname)"\n'
        'echo "nodename=$SLURMD_NODENAME"\n'
        'echo "conf=$SLURM_CONF"\n'
        'echo "addr=$(sinfo -h -n "$SLURMD_NODENAME" -o %o)"\n'
        'echo "netns=$(readlink /proc/self/ns/net)"\n'
        'echo "pidns=$(readlink /proc/self/ns/pid)"\n'
        'echo "pid=$$"\n'
        "echo done\n"
    )
    job_id = sbatch(rig, f"--output={out}", str(script))
    wait_for(lambda: out.is_file() and out.read_text().endswith("done\n"), 60, f"job {job_id}'s output")
    seen = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert seen["nodename"] == slurm.node
    assert seen["conf"] == str(slurm.conf)
    assert seen["addr"] == slurm.node_addr
    ours = os.readlink("/proc/self/ns/net")
    if slurm.isolated:
        assert seen["hostname"] == slurm.node
        assert seen["netns"] != ours
        assert slurm.own_pids
        assert seen["pidns"] != os.readlink("/proc/self/ns/pid")
    else:
        assert seen["netns"] == ours
        assert slurm.host_pid(int(seen["pid"])) == int(seen["pid"])


def test_jupyter_job_reachable_at_node_address_then_cancelled(rig: Rig, slurm: SlurmCluster, jobdir: Path) -> None:
    """(a) RUNNING on cn1; (b) Jupyter (--port=0) answers at node_addr:PORT and, when the node
    is isolated, not on 127.0.0.1:PORT; (c) scancel ends it and empties the queue."""
    token = secrets.token_hex(16)
    token_file = jobdir / "token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    runtime = jobdir / "runtime"
    out = jobdir / "jupyter.out"
    script = jobdir / "jupyter.sh"
    # The token reaches Jupyter through its environment, never argv or the output file.
    script.write_text(
        "#!/bin/sh\n"
        'addr=$(sinfo -h -n "$SLURMD_NODENAME" -o %o)\n'
        f"export JUPYTER_RUNTIME_DIR={runtime}\n"
        f'JUPYTER_TOKEN="$(cat {token_file})"\n'
        "export JUPYTER_TOKEN\n"
        'exec jupyter server --no-browser --ip="$addr" --port=0 --ServerApp.port_retries=0\n'
    )
    job_id = sbatch(rig, "--job-name=jt-fixture", f"--output={out}", str(script))
    assert wait_running(rig, job_id).endswith(f"|{slurm.node}")
    assert (job_id, "RUNNING", slurm.node) in slurm.queue()

    wait_for(lambda: any(runtime.glob("jpserver-*.json")), 60, f"job {job_id}'s Jupyter runtime file")
    info = json.loads(next(runtime.glob("jpserver-*.json")).read_text())
    port = int(info["port"])
    assert port > 0  # --port=0: the OS picked it, the runtime file says which
    assert info["hostname"] == slurm.node_addr
    host_pid = slurm.host_pid(int(info["pid"]))  # the runtime file holds the node's PID
    assert host_pid is not None
    server = psutil.Process(host_pid)
    assert "jupyter" in " ".join(server.cmdline())
    assert token not in " ".join(server.cmdline())

    req = urllib.request.Request(
        f"http://{slurm.node_addr}:{port}/api/status", headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    if slurm.isolated:
        # The forward the launcher must not make: the node's server is not on our loopback.
        with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
            pass

    res = rig.ssh("target", f"scancel {job_id}")
    assert res.returncode == 0, res.stderr
    wait_for(lambda: squeue_line(rig, job_id) == "", 30, f"job {job_id} to leave the queue")
    assert slurm.queue() == []
    wait_for(lambda: not server.is_running() or server.status() == psutil.STATUS_ZOMBIE, 30, "Jupyter to exit")
    assert token not in out.read_text()


def test_job_too_big_for_cn1_stays_pending_with_reason(rig: Rig, slurm: SlurmCluster, jobdir: Path) -> None:
    job_id = sbatch(rig, f"--mem={slurm.never_fits_mem_mb}", f"--output={jobdir / 'big.out'}", "--wrap='sleep 300'")
    line = ""

    def has_reason() -> bool:
        nonlocal line
        line = squeue_line(rig, job_id)
        return line.startswith("PENDING|") and "(None)" not in line

    wait_for(has_reason, 30, f"job {job_id} to show why it pends (last: {line!r})")
    state, reason, node = line.split("|")
    assert (state, reason, node) == ("PENDING", f"(ReqNodeNotAvail, UnavailableNodes:{slurm.spare_node})", "")
    # It does not block the queue: a job that fits runs meanwhile.
    other = sbatch(rig, f"--output={jobdir / 'small.out'}", "--wrap='sleep 300'")
    assert wait_running(rig, other).endswith(f"|{slurm.node}")
    assert squeue_line(rig, job_id).startswith("PENDING|")


def test_job_larger_than_every_node_is_refused_at_submission(rig: Rig, slurm: SlurmCluster) -> None:
    """What the launcher meets when --mem exceeds every node: sbatch fails, nothing is queued."""
    res = rig.ssh("target", f"sbatch --parsable --mem={100 * slurm.memory_mb} --wrap='sleep 1'")
    assert res.returncode == 1
    assert "Requested node configuration is not available" in res.stderr
    assert slurm.queue() == []


@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
def test_namespace_left_by_a_dead_run_is_removed(tmp_path: Path) -> None:
    """A run killed before its stop(): the next run removes its namespace, veth and what
    still runs in that namespace, by the names recorded in the registry."""
    cluster = SlurmCluster(tmp_path / "c")
    cluster._make_netns()
    if not cluster.isolated:
        pytest.skip(f"no network namespace here: {cluster.why_not_isolated}")
    ns, veth, slot_file = cluster.ns, cluster.veth_host, cluster._slot_file
    assert ns and veth and slot_file
    left = subprocess.Popen([NSENTER, f"--net=/run/netns/{ns}", "sleep", "300"])
    owner = subprocess.Popen(["sleep", "300"])  # stands for the test process that died
    entry = json.loads(slot_file.read_text())
    entry.update(pid=owner.pid, started=psutil.Process(owner.pid).create_time())
    slot_file.write_text(json.dumps(entry))
    try:
        assert ns not in clean_stale_namespaces()  # its owner still lives
        owner.kill()
        owner.wait(10)
        assert ns in clean_stale_namespaces()
        wait_for(lambda: left.poll() is not None, 10, "the process left in the namespace to be killed")
        assert not Path(f"/run/netns/{ns}").exists()
        assert not Path(f"/sys/class/net/{veth}").exists()
        assert not slot_file.exists()
    finally:
        for p in (left, owner):
            p.kill()
            p.wait(10)
        cluster._drop_netns()
