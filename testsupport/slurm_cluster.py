"""A real one-node Slurm cluster for the tests: munged, slurmctld and slurmd as plain processes.

Everything (munge key, slurm.conf, state, spool, logs, pid files) lives under one root folder;
the daemons are our children, stopped by PID. When running as root and ``ip netns add`` works,
the compute node ``cn1`` gets a network namespace of its own, linked to the host by a veth pair
(10.214.x.y/30), a hostname of its own (a UTS namespace) and PIDs of its own (a PID namespace
with its own /proc; ``host_pid()`` maps back): a job binding the node address is reachable from
the host side at that address and not on the host's 127.0.0.1, and a PID in a job's runtime file
is not a process of the login node, as on a real cluster. Otherwise the node shares the host's
network, hostname and PIDs (``isolated = False``, ``why_not_isolated`` says why).
Facts behind the choices: ../shared/notes/slurm-test-cluster.md.

What a job sees on cn1 (checked by test_slurm_cluster.py): SLURM_CONF (sbatch exports the
submitter's environment, and slurmd sets it too), SLURMD_NODENAME=cn1, ``hostname`` = cn1 (only
when isolated: otherwise the machine's own name), and ``sinfo -h -n "$SLURMD_NODENAME" -o %o``
gives ``node_addr``, the address to bind. ``squeue -j ID`` prints nothing once a job has ended;
``squeue -j ID -t all`` (or ``scontrol show job ID``) still shows e.g. ``FAILED|(NonZeroExitCode)``
for MinJobAge seconds. A job asking more memory than any node has is refused by sbatch
(exit 1, "Requested node configuration is not available"); one asking more than cn1 but not more
than the down spare node cn2 is accepted and stays PENDING.
"""

from __future__ import annotations

import contextlib
import getpass
import ipaddress
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import psutil

from testsupport.rig import free_port

SLURMCTLD = "/usr/sbin/slurmctld"
SLURMD = "/usr/sbin/slurmd"
MUNGED = "/usr/sbin/munged"
MUNGEKEY = "/usr/sbin/mungekey"
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo", "scontrol")
IP = shutil.which("ip") or "/usr/sbin/ip"
NSENTER = shutil.which("nsenter") or "/usr/bin/nsenter"
UNSHARE = shutil.which("unshare") or "/usr/bin/unshare"

# One file per /30 in use, created with O_EXCL: it reserves the subnet (and the namespace and
# veth names derived from it) against concurrent runs, and lets a later run remove what a run
# that died left behind, by the names recorded here and nothing else.
REGISTRY = Path("/run/jt-slurm-test")
SUBNET = ipaddress.ip_network("10.214.0.0/16")
SLOTS = SUBNET.num_addresses // 4


def missing_binaries() -> list[str]:
    """The Slurm/munge programs this fixture needs that the machine lacks (empty: all there)."""
    missing = [p for p in (SLURMCTLD, SLURMD, MUNGED, MUNGEKEY) if not os.access(p, os.X_OK)]
    missing += [c for c in CLIENTS if shutil.which(c) is None]
    return missing


def _run(argv: list[str], timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def _stop_proc(proc: subprocess.Popen[bytes] | None, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL: our own child (not yet reaped, so its PID cannot be anyone else's)."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)


def _kill_pids(pids: list[int]) -> None:
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            procs.append(psutil.Process(pid))
    _kill_procs(procs)


def _kill_procs(procs: list[psutil.Process]) -> None:
    """SIGKILL; psutil refuses to signal a PID that now belongs to another process."""
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(procs, timeout=5)


def _netns_pids(ns: str) -> list[int]:
    out = _run([IP, "netns", "pids", ns])
    return [int(x) for x in out.stdout.split() if x.isdigit()] if out.returncode == 0 else []


def _remove_netns(ns: str, veth: str) -> None:
    """Kill what is left in namespace ``ns`` (only that namespace), delete it and the veth."""
    _kill_pids(_netns_pids(ns))
    _run([IP, "netns", "delete", ns])
    # Deleting the namespace deletes the pair; this is for a veth whose namespace never came.
    if Path(f"/sys/class/net/{veth}").exists():
        _run([IP, "link", "delete", veth])


def _owner_alive(entry: dict[str, object]) -> bool:
    try:
        p = psutil.Process(int(str(entry["pid"])))
        return abs(p.create_time() - float(str(entry["started"]))) < 1
    except (psutil.Error, KeyError, ValueError):
        return False


def _kill_stale_daemons(entry: dict[str, object]) -> None:
    """The daemons a dead run recorded, each only if it is still that process (same start
    time) and still runs with that run's configuration or munge folder."""
    conf = str(entry.get("conf", ""))
    marker = str(Path(conf).parent) if conf else None
    pids = []
    daemons = entry.get("daemons")
    for d in daemons if isinstance(daemons, list) else []:
        with contextlib.suppress(psutil.Error, KeyError, ValueError, TypeError):
            p = psutil.Process(int(d["pid"]))
            if marker and abs(p.create_time() - float(d["started"])) < 1 and any(marker in a for a in p.cmdline()):
                pids.append(p.pid)
    _kill_pids(pids)


def clean_stale_namespaces() -> list[str]:
    """Remove namespaces and veths recorded in REGISTRY by runs that are gone; their names."""
    removed = []
    for f in sorted(REGISTRY.glob("slot-*.json")) if REGISTRY.is_dir() else []:
        try:
            entry = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if _owner_alive(entry):
            continue
        _kill_stale_daemons(entry)
        _remove_netns(str(entry["ns"]), str(entry["veth"]))
        f.unlink(missing_ok=True)
        removed.append(str(entry["ns"]))
    return removed


class SlurmCluster:
    """A one-node cluster (node ``cn1``, partition ``debug``) under ``root``.

    ``conf`` is ``root/slurm.conf``; client commands need ``env`` (SLURM_CONF).
    """

    node = "cn1"
    partition = "debug"
    # sbatch rejects outright a job that no node of the partition could ever run ("Memory
    # specification can not be satisfied"). A job that is accepted but never starts, as on a
    # cluster whose big node is down, needs such a node: cn2, declared with 4x cn1's memory and
    # DOWN. A job asking more memory than cn1 has (``never_fits_mem_mb``) stays PENDING with
    # reason "ReqNodeNotAvail, UnavailableNodes:cn2"; every other job runs on cn1.
    spare_node = "cn2"

    def __init__(self, root: Path, *, isolate: bool = True) -> None:
        self.root = Path(root)
        self.conf = self.root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.want_isolation = isolate
        self.isolated = False
        self.node_addr = "127.0.0.1"
        self.ctld_addr = "127.0.0.1"
        self.why_not_isolated = "" if isolate else "isolation not asked for"
        self.own_pids = False  # the node's processes in a PID namespace of their own
        self.ns: str | None = None
        self.veth_host: str | None = None
        self._slot_file: Path | None = None
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.start_seconds = 0.0
        self.cpus = len(os.sched_getaffinity(0))
        self.memory_mb = self._real_memory()
        self.never_fits_mem_mb = 2 * self.memory_mb

    # ---- start ---------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> None:
        t0 = time.monotonic()
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            self._start_munge()
            if self.want_isolation:
                self._make_netns()
            self._write_conf()
            self._start_daemons()
            self._wait_idle(timeout)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0

    @staticmethod
    def _real_memory() -> int:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(int(line.split()[1]) * 0.9) // 1024
        return 1024

    def _start_munge(self) -> None:
        folder = self.munge_socket.parent
        folder.mkdir(exist_ok=True)
        os.chmod(folder, 0o755)  # munged wants o+x on the socket's folder
        key = folder / "munge.key"
        res = _run([MUNGEKEY, "--create", f"--keyfile={key}", "--bits=1024", "--force"])
        if res.returncode != 0:
            raise RuntimeError(f"mungekey failed: {res.stderr.strip()}")
        os.chmod(key, 0o600)
        log = folder / "munged.out"
        with log.open("ab") as out:
            self.procs["munged"] = subprocess.Popen(
                [
                    MUNGED,
                    "--foreground",
                    "--force",
                    f"--socket={self.munge_socket}",
                    f"--key-file={key}",
                    f"--log-file={folder / 'munged.log'}",
                    f"--pid-file={folder / 'munged.pid'}",
                    f"--seed-file={folder / 'munged.seed'}",
                ],
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.procs["munged"].poll() is not None:
                break
            if self.munge_socket.exists():
                return
            time.sleep(0.02)
        raise RuntimeError(f"munged did not start: {self._tail(folder / 'munged.log')}{self._tail(log)}")

    def _make_netns(self) -> None:
        """The node's own network namespace and a veth /30 to it; on any failure, no isolation
        (``why_not_isolated`` says why)."""
        if os.geteuid() != 0:
            self.why_not_isolated = "not root: no network namespace"
            return
        tools = [p for p in (IP, NSENTER, UNSHARE) if not os.access(p, os.X_OK)]
        if tools:
            self.why_not_isolated = f"missing {', '.join(tools)}"
            return
        try:
            REGISTRY.mkdir(mode=0o700, exist_ok=True)
            clean_stale_namespaces()
            slot = self._reserve_slot()
        except (OSError, subprocess.SubprocessError) as exc:
            self.why_not_isolated = f"{REGISTRY}: {exc}"
            return
        if slot is None:
            self.why_not_isolated = f"no free /30 in {SUBNET}"
            return
        net = ipaddress.ip_network(f"{SUBNET[slot * 4]}/30")
        host, node = str(net[1]), str(net[2])
        ns, inner = self.ns, f"jts{slot}n"
        assert ns is not None and self.veth_host is not None
        steps = [
            [IP, "netns", "add", ns],
            [IP, "link", "add", self.veth_host, "type", "veth", "peer", "name", inner],
            [IP, "link", "set", inner, "netns", ns],
            [IP, "addr", "add", f"{host}/30", "dev", self.veth_host],
            [IP, "link", "set", self.veth_host, "up"],
            [IP, "-n", ns, "addr", "add", f"{node}/30", "dev", inner],
            [IP, "-n", ns, "link", "set", inner, "up"],
            [IP, "-n", ns, "link", "set", "lo", "up"],
        ]
        for step in steps:
            res = _run(step)
            if res.returncode != 0:
                self.why_not_isolated = f"{' '.join(step[1:])}: {res.stderr.strip()}"
                self._drop_netns()
                return
        self.isolated, self.node_addr, self.ctld_addr = True, node, host

    def _reserve_slot(self) -> int | None:
        """A /30 of SUBNET that no run holds and no interface here overlaps, reserved by its
        REGISTRY file (O_EXCL); sets ``ns``/``veth_host`` to the names derived from it."""
        used = self._host_networks()
        for i in range(SLOTS):
            slot = (os.getpid() + i) % SLOTS
            net = ipaddress.ip_network(f"{SUBNET[slot * 4]}/30")
            if slot == 0 or any(net.overlaps(u) for u in used):
                continue
            slot_file = REGISTRY / f"slot-{slot}.json"
            try:
                fd = os.open(slot_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            os.close(fd)
            self._slot_file, self.ns, self.veth_host = slot_file, f"jts{slot}", f"jts{slot}h"
            self._record()
            return slot
        return None

    def _record(self) -> None:
        """Write what a later run needs to clean up after this one if it dies: the names, the
        owner (this process) and the daemons, each with its start time."""
        if self._slot_file is None:
            return
        me = psutil.Process()
        daemons = []
        for proc in self.procs.values():
            with contextlib.suppress(psutil.Error):
                daemons.append({"pid": proc.pid, "started": psutil.Process(proc.pid).create_time()})
        entry = {
            "ns": self.ns,
            "veth": self.veth_host,
            "pid": me.pid,
            "started": me.create_time(),
            "conf": str(self.conf),
            "daemons": daemons,
        }
        tmp = self._slot_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(entry))
        tmp.chmod(0o600)
        tmp.replace(self._slot_file)

    @staticmethod
    def _host_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        out = _run([IP, "-o", "-4", "addr", "show"]).stdout.split()
        nets = []
        for word in out:
            with contextlib.suppress(ValueError):
                if "/" in word:
                    nets.append(ipaddress.ip_interface(word).network)
        return nets

    def _drop_netns(self) -> None:
        if self.ns and self.veth_host:
            _remove_netns(self.ns, self.veth_host)
        if self._slot_file:
            self._slot_file.unlink(missing_ok=True)
        self.ns = self.veth_host = self._slot_file = None
        self.isolated, self.node_addr, self.ctld_addr = False, "127.0.0.1", "127.0.0.1"

    def _write_conf(self) -> None:
        r = self.root
        for d in ("state", "spool", f"spool/{self.node}", "log", "run"):
            (r / d).mkdir(exist_ok=True)
        plugstack = r / "plugstack.conf"
        plugstack.write_text("")
        self.ctld_port, self.slurmd_port = free_port(), free_port()
        lines = {
            "ClusterName": "jtcluster",
            "SlurmctldHost": f"localhost({self.ctld_addr})",
            "SlurmctldPort": self.ctld_port,
            "SlurmdPort": self.slurmd_port,
            # root here (and in CI); another user only gets a cluster that runs its own jobs.
            "SlurmUser": getpass.getuser(),
            "SlurmdUser": getpass.getuser(),
            "AuthType": "auth/munge",
            "CredType": "cred/munge",
            "AuthInfo": f"socket={self.munge_socket}",
            "StateSaveLocation": r / "state",
            "SlurmdSpoolDir": r / "spool" / "%n",
            "SlurmctldPidFile": r / "run" / "slurmctld.pid",
            "SlurmdPidFile": r / "run" / "slurmd-%n.pid",
            "SlurmctldLogFile": r / "log" / "slurmctld.log",
            "SlurmdLogFile": r / "log" / "slurmd-%n.log",
            "SlurmctldDebug": "info",
            "SlurmdDebug": "info",
            "ProctrackType": "proctrack/linuxproc",
            "TaskPlugin": "task/none",
            "JobAcctGatherType": "jobacct_gather/none",
            "AccountingStorageType": "accounting_storage/none",
            "JobCompType": "jobcomp/none",
            "MpiDefault": "none",
            "SwitchType": "switch/none",
            "SchedulerType": "sched/backfill",
            "SelectType": "select/cons_tres",
            "SelectTypeParameters": "CR_Core",
            "ReturnToService": 2,
            # Ended jobs leave squeue after a few seconds (no accounting daemon keeps them).
            "MinJobAge": 5,
            "KillWait": 5,
            "PlugStackConfig": plugstack,
            "MailProg": "/bin/true",
        }
        text = "".join(f"{k}={v}\n" for k, v in lines.items())
        text += (
            f"NodeName={self.node} NodeAddr={self.node_addr} NodeHostname={self.node}"
            f" Sockets=1 CoresPerSocket={self.cpus} ThreadsPerCore=1 RealMemory={self.memory_mb} State=UNKNOWN\n"
            # The spare: a big-memory node that is down (no slurmd, nothing listens on its port).
            f"NodeName={self.spare_node} NodeAddr=127.0.0.1 Port={free_port()} Sockets=1 CoresPerSocket=1"
            f" ThreadsPerCore=1 RealMemory={4 * self.memory_mb} State=DOWN Reason=spare\n"
            f"PartitionName={self.partition} Nodes={self.node},{self.spare_node} Default=YES MaxTime=INFINITE State=UP\n"
        )
        self.conf.write_text(text)

    def _start_daemons(self) -> None:
        out_dir = self.root / "run"  # the daemons' stderr: what they say before their log opens
        with (out_dir / "slurmctld.out").open("ab") as out:
            self.procs["slurmctld"] = subprocess.Popen(
                [SLURMCTLD, "-D", "-f", str(self.conf)], stdout=out, stderr=out, stdin=subprocess.DEVNULL
            )
        slurmd = [SLURMD, "-D", "-f", str(self.conf), "-N", self.node]
        if self.isolated:
            # Not `ip netns exec`: it remounts /sys, hiding the cgroup tree slurmd needs.
            # A PID namespace too (with its own /proc), as on a real node: the PIDs in a job's
            # runtime file mean nothing on the login node (`jupyter server list` there deletes
            # such files), and when slurmd, its init, exits, the kernel ends every job process.
            # The Popen is unshare (it waits, ignoring SIGTERM; --kill-child: SIGKILL to slurmd
            # if unshare dies); slurmd is its child (sh execs it).
            script = f"hostname {self.node} && exec {' '.join(slurmd)}"
            slurmd = [
                NSENTER,
                f"--net=/run/netns/{self.ns}",
                UNSHARE,
                "--uts",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount-proc",
                "sh",
                "-c",
                script,
            ]
            self.own_pids = True
        with (out_dir / "slurmd.out").open("ab") as out:
            self.procs["slurmd"] = subprocess.Popen(slurmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        self._record()

    def _wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            for name in ("slurmctld", "slurmd"):
                if self.procs[name].poll() is not None:
                    raise RuntimeError(f"{name} exited: {self._tail(self.root / 'run' / f'{name}.out')}{self.logs()}")
            res = self.run("sinfo", "-h", "-n", self.node, "-o", "%T", timeout=10)
            state = res.stdout.strip()
            if res.returncode == 0 and state == "idle":
                return
            time.sleep(0.05)
        raise RuntimeError(f"node {self.node} not idle after {timeout} s (state {state!r}): {self.logs()}")

    # ---- use -------------------------------------------------------------------------------

    def run(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """A client command (sbatch, squeue, ...) against this cluster."""
        return subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def queue(self) -> list[tuple[str, str, str]]:
        """(job id, state, node) of every job squeue shows (pending, running, completing)."""
        res = self.run("squeue", "-h", "-o", "%i|%T|%N")
        if res.returncode != 0:
            raise RuntimeError(f"squeue failed: {res.stderr.strip()}")
        rows = [line.split("|") for line in res.stdout.splitlines() if line.strip()]
        return [(r[0], r[1], r[2]) for r in rows]

    def job_state(self, job_id: str) -> str:
        """``STATE|REASON|NODE`` of one job (what the launcher polls), "" once it is gone."""
        res = self.run("squeue", "-h", "-j", job_id, "-o", "%T|%R|%N")
        return res.stdout.strip() if res.returncode == 0 else ""

    def wait_queue_empty(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        left: list[tuple[str, str, str]] = []
        while time.monotonic() < deadline:
            left = self.queue()
            if not left:
                return
            time.sleep(0.05)
        raise TimeoutError(f"queue not empty after {timeout} s: {left}")

    def cancel_all(self, timeout: float = 30) -> None:
        """scancel every job of the partition and wait until squeue shows none."""
        res = self.run("scancel", "--full", "--partition", self.partition, timeout=min(timeout, 10))
        if res.returncode != 0:
            raise RuntimeError(f"scancel failed: {res.stderr.strip()}")
        self.wait_queue_empty(timeout)

    def logs(self, chars: int = 1500) -> str:
        return "".join(
            f"\n--- {f.name}\n{self._tail(f, chars)}"
            for f in sorted((self.root / "log").glob("*"))
            if f.is_file() and f.stat().st_size
        )

    @staticmethod
    def _tail(path: Path, chars: int = 1500) -> str:
        try:
            return path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # ---- stop --------------------------------------------------------------------------------

    def stop(self) -> None:
        """Cancel every job, stop the daemons by PID, remove the namespace. Bounded; never raises."""
        ctld = self.procs.get("slurmctld")
        if ctld is not None and ctld.poll() is None:
            with contextlib.suppress(Exception):
                self.cancel_all(timeout=15)
        job_procs = self._job_processes()
        if self.own_pids:
            with contextlib.suppress(Exception):
                self._stop_namespaced_slurmd()
        for name in ("slurmd", "slurmctld", "munged"):
            with contextlib.suppress(Exception):
                _stop_proc(self.procs.get(name))
        with contextlib.suppress(Exception):
            _kill_procs(job_procs)
        if self.ns or self._slot_file:
            with contextlib.suppress(Exception):
                self._drop_netns()

    def _stop_namespaced_slurmd(self) -> None:
        """SIGTERM to slurmd itself (unshare ignores it), the child of our unshare, if it still
        runs our configuration; unshare exits with it."""
        proc = self.procs.get("slurmd")
        if proc is None or proc.poll() is not None:
            return
        for child in psutil.Process(proc.pid).children():
            if child.name() == "slurmd" and str(self.conf) in child.cmdline():
                child.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)

    def host_pid(self, node_pid: int) -> int | None:
        """The host's PID of a process that has PID ``node_pid`` on the node (a job's ``$$``,
        the pid in a runtime file); the same number when the node has no PID namespace."""
        if not self.own_pids:
            return node_pid
        for pid in _netns_pids(self.ns or ""):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("NSpid:") and line.split()[-1] == str(node_pid):
                        return pid
        return None

    def _job_processes(self) -> list[psutil.Process]:
        """Without a namespace: processes left from our jobs, known by our private SLURM_CONF."""
        if self.isolated:
            return []
        mine = f"SLURM_CONF={self.conf}"
        found = []
        for p in psutil.process_iter(["environ"]):
            with contextlib.suppress(psutil.Error, TypeError):
                env = p.info["environ"] or {}
                # SLURM_JOB_ID too: the rig's ssh sessions carry SLURM_CONF as well.
                if f"SLURM_CONF={env.get('SLURM_CONF')}" == mine and "SLURM_JOB_ID" in env:
                    found.append(p)
        return found
