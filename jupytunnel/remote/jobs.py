"""The Slurm launcher at work: submit, wait for, find and cancel the profile's job, all
through the login node's master. The scripts are ``jupytunnel.remote.slurm``'s.

``SlurmLauncher`` is the launcher (what starts the server: a job), ``InJob`` its place (where
the server runs: the job's compute node, reached at the node's address). In a dry run each
remote call says what it assumes (``runner.Assume``): no job yet, then a job that runs."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable

from jupytunnel import paths, remote, runner
from jupytunnel.errors import CommandError, JupytunnelError
from jupytunnel.profiles import Profile
from jupytunnel.remote import MARK, Discovery, ServerInfo, slurm
from jupytunnel.remote.base import Found, Stopped
from jupytunnel.remote.slurm import Job
from jupytunnel.ssh.master import SSH_FAILED, Master, ssh_message

ROUND_TRIP_TIMEOUT = 20.0
CANCEL_TIMEOUT = 60.0  # the cancel script waits at most 30 s for the job to leave the queue
# Submit to RUNNING takes a fraction of a second on an idle cluster and minutes on a busy one:
# poll fast first, then back off, so a quick start is seen at once and a long wait costs
# the login node one squeue every 2 s.
FIRST_POLL = 0.1
MAX_POLL = 2.0
# Once the job runs, Jupyter's start takes a second or two: look again often, from the start.
RUNNING_MAX_POLL = 0.5
OUTPUT_LINES = 15
READY_WAIT = 120.0  # from RUNNING to a server that answers (the job's Jupyter start)
DRY_JOB = "0"  # what a dry run says for the id of a job it cannot know
DRY_NODE = ("NODE", "NODEADDR", 8888)  # and for the node, its address and Jupyter's port there


class SlurmLauncher:
    """The server as a Slurm batch job on a compute node."""

    name = "slurm"

    def start(self, master: Master, found: Found, *, timeout: float, tick: Callable[[str], None]) -> ServerInfo:
        return start(master, timeout=timeout, tick=tick, queued=found.queued, asked=found.asked_queue)

    def start_timeout(self, profile: Profile) -> float:
        return profile.slurm.wait + READY_WAIT


class InJob:
    """The server is a batch job's, on its compute node; found, stopped and read through the job."""

    jobs = True

    def discovery_extra(self, profile: Profile) -> str:
        return slurm.probe_script(profile)

    def private_route(self, profile: Profile) -> bool:  # noqa: ARG002 - a job's node and port are its own
        return True

    def owns(self, profile: Profile, server: ServerInfo, home: str) -> bool:  # noqa: ARG002
        return server.job is not None

    def matches(self, profile: Profile, known: ServerInfo) -> bool:  # noqa: ARG002
        return bool(known.job) and known.host is not None and known.port is not None

    def first_forward(self, profile: Profile, port: int, known: ServerInfo | None) -> str | None:  # noqa: ARG002
        if known is None or known.port is None or known.host is None:
            return None  # the node is known once the job runs (a remembered job's server: see matches)
        from jupytunnel.ssh import args as sshargs

        return sshargs.forward_spec(local_port=port, remote_port=known.port, remote_host=known.host)

    def find(self, master: Master, discovered: Discovery, *, cli_timeout: float) -> Found:  # noqa: ARG002
        # Never the Jupyter CLI here: on a login node it deletes the runtime files of
        # servers on compute nodes.
        job, job_server = server_of(discovered)
        ended = how_it_ended(job, discovered.markers) if job is not None and job.gone else None
        queued = job if job is not None and not job.gone and job_server is None else None
        servers = discovered.servers + ([job_server] if job_server else [])
        return Found(job_server, discovered.home, servers, ended, queued, asked_queue=True)

    def stop(self, master: Master, *, timeout: float, server: ServerInfo | None = None) -> Stopped:  # noqa: ARG002
        """The job goes, running or still pending."""
        from jupytunnel.remote.host import forget

        cancelled = cancel(master, timeout=timeout)
        forget(master.profile)
        return Stopped(job=cancelled)

    def logs(self, master: Master, lines: int) -> str:
        return logs(master, lines)

    def follow_logs(self, master: Master, lines: int) -> int:
        script = remote.follow_logs_script(master.profile.name, lines, path=slurm.output_path_expr(master.profile))
        return runner.stream(master.remote_argv(script))


IN_JOB = InJob()


def assume_running(profile: Profile, job_id: str) -> runner.Assume:
    """A dry run's probe output: the job runs on a node, and its server has written its file."""
    import json

    node, addr, port = DRY_NODE
    info = {"pid": 0, "port": port, "base_url": "/", "token": "", "version": ""}
    rt = f"{paths.REMOTE_STATE_DIR}/{profile.name}.rt"
    return runner.Assume(
        stdout=(
            f"{MARK} job {job_id}|RUNNING|None|{node}|1:00:00|{slurm.job_name(profile)}\n{MARK} jobaddr {addr}\n"
            f"{MARK} jobfile {rt}/jpserver-0.json\n{json.dumps(info)}\n"
        ),
        says="poll until the job runs and its server's runtime file appears (bounded by [slurm] wait)",
    )


def server_of(discovery: Discovery) -> tuple[Job | None, ServerInfo | None]:
    """The job the probe saw and, once it runs and has written its runtime file, its
    server, addressed at the node (``host``) as the login node reaches it."""
    job = slurm.parse_job(discovery.markers)
    if job is None or job.state != "RUNNING" or not discovery.job_servers or not job.addr:
        return job, None
    info = discovery.job_servers[0]
    if not info.port:
        return job, None
    return job, info._replace(host=job.addr, job=job.id, node=job.node)


def how_it_ended(job: Job, markers: list[str]) -> str:
    """``job 12 ended (TIMEOUT, exit 0:0)``; the state only where accounting (sacct) has it."""
    end = next((m[7:].strip() for m in markers if m.startswith("jobend ")), "")
    state, _, code = end.partition("|")
    detail = f" ({state}, exit {code})" if state and code else f" ({state})" if state else ""
    return f"job {job.id} ended{detail}"


def probe(
    master: Master, *, timeout: float = ROUND_TRIP_TIMEOUT, output_lines: int = 0, assume: runner.Assume | None = None
) -> Discovery:
    """The profile's job as the login node sees it (a dry run: ``assume``, else no job)."""
    script = remote.PRELUDE + slurm.probe_script(master.profile, output_lines=output_lines)
    result = master.run(script, timeout=timeout, assume=assume)
    if result.returncode == SSH_FAILED:
        raise JupytunnelError(f"ssh to {master.profile.host} failed: {ssh_message(result.stderr)}")
    return remote.parse_discovery(result.stdout)


def job(master: Master) -> Job | None:
    """The profile's recorded job, None when there is none (or it left the queue)."""
    found = slurm.parse_job(probe(master).markers)
    return None if found is None or found.gone else found


def submit(master: Master, *, token: str, timeout: float) -> str:
    """``sbatch`` the batch script; the job id. The token travels on stdin only."""
    profile = master.profile
    queued = runner.Assume(stdout=f"{MARK} submitted {DRY_JOB}\n", says=f"assume sbatch queues the job (job {DRY_JOB})")
    result = master.run(slurm.submit_script(profile), timeout=timeout, stdin_text=token + "\n", assume=queued)
    parsed = remote.parse_discovery(result.stdout)
    for marker in parsed.markers:
        kind, _, value = marker.partition(" ")
        if kind == "submitted" and value.strip():
            return value.strip()
    error = next((m[6:] for m in parsed.markers if m.startswith("error ")), None)
    said = " ".join(m[7:].strip() for m in parsed.markers if m.startswith("sbatch "))
    if error:
        detail = f"{error}: {said}" if said else error
        raise JupytunnelError(f"cannot submit the Jupyter job on {profile.host}: {detail}")
    raise JupytunnelError(f"cannot submit the Jupyter job on {profile.host}: {ssh_message(result.stderr)}")


def cancel(master: Master, *, timeout: float = CANCEL_TIMEOUT) -> str | None:
    """Cancel the profile's job (only a job of ours, by the id we recorded) and wait until
    it has left the queue; the id cancelled, None when there was none."""
    said = runner.Assume(stdout=f"{MARK} cancelled {DRY_JOB}\n", says="assume the profile's recorded job is queued")
    result = master.run(slurm.cancel_script(master.profile), timeout=max(timeout, CANCEL_TIMEOUT), assume=said)
    for marker in remote.parse_discovery(result.stdout).markers:
        kind, _, value = marker.partition(" ")
        if kind == "cancelled":
            return value.strip()
        if kind == "nojob":
            return None
        if kind == "stuck":
            raise JupytunnelError(f"job {value.strip()} is still in the queue 30 s after scancel")
    raise JupytunnelError(f"could not cancel the job on {master.profile.host}: {ssh_message(result.stderr)}")


def _describe(job: Job, started: float) -> str:
    elapsed = int(time.monotonic() - started)
    reason = f" ({job.reason})" if job.reason and job.reason != "None" else ""
    where = f" on {job.node}" if job.state == "RUNNING" and job.node else ""
    return f"job {job.id} {job.state or 'starting'}{reason}{where} {elapsed // 60:d}:{elapsed % 60:02d}"


def start(
    master: Master,
    *,
    timeout: float,
    tick: Callable[[str], None] = lambda _: None,
    queued: Job | None = None,
    asked: bool = False,
) -> ServerInfo:
    """Submit the job, wait for it to run and for its server's runtime file.

    ``queued``/``asked``: the profile's job still in the queue, as the discovery just saw it
    (``asked``); otherwise the queue is asked here.

    The wait is bounded by the profile's ``slurm.wait`` and by ``timeout``, whichever ends
    first. On any failure or interruption the job is cancelled: no allocation is left held.
    """
    import secrets

    profile = master.profile
    deadline = time.monotonic() + timeout
    try:
        # Inside the try: a Ctrl-C while sbatch runs may come after the job was queued
        # and recorded; the cancel below finds it by the id on record.
        # A job of this profile already queued or starting (another laptop's connect, or
        # one whose server is not up yet) is waited for, not doubled.
        if not asked:  # the discovery that came before did not look at the queue
            queued = job(master)
        if queued is not None:
            job_id = queued.id
            print(f"jupytunnel: {profile.name}: waiting for job {job_id}, already {queued.state}", file=sys.stderr)
        else:
            job_id = submit(master, token=secrets.token_hex(24), timeout=min(timeout, ROUND_TRIP_TIMEOUT * 3))
        queue_deadline = time.monotonic() + profile.slurm.wait
        return _wait(master, job_id, deadline=deadline, queue_deadline=queue_deadline, tick=tick)
    except BaseException as exc:
        with contextlib.suppress(JupytunnelError, CommandError, KeyboardInterrupt):
            cancelled = cancel(master)
            if cancelled is not None:
                why = "interrupted" if isinstance(exc, KeyboardInterrupt) else "start failed"
                print(f"jupytunnel: {why}: cancelled job {cancelled}", file=sys.stderr, flush=True)
        raise


def _wait(
    master: Master, job_id: str, *, deadline: float, queue_deadline: float, tick: Callable[[str], None]
) -> ServerInfo:
    """Until the job's server is ready: ``queue_deadline`` bounds the time the job may wait
    to run ([slurm] wait), ``deadline`` the whole (--timeout)."""
    profile = master.profile
    started = time.monotonic()
    poll = FIRST_POLL
    running_since: float | None = None
    last: Job | None = None
    while True:
        left = max(1.0, deadline - time.monotonic())
        running = assume_running(profile, job_id)
        found = probe(master, timeout=min(ROUND_TRIP_TIMEOUT, left), output_lines=OUTPUT_LINES, assume=running)
        job, server = server_of(found)
        if job is not None and job.id != job_id:
            raise JupytunnelError(f"the job record on {profile.host} changed under us (job {job.id}, not {job_id})")
        if server is not None:
            return server
        if job is None or job.gone:
            tail = slurm.output_tail(found.markers)
            reason = slurm.error_in_output(found.markers) or "the job ended before Jupyter was ready"
            raise JupytunnelError(
                f"Jupyter job {job_id} failed on {profile.host}: {reason}" + (f"; job output: {tail}" if tail else "")
            )
        last = job
        now = time.monotonic()
        if now >= deadline or (job.state == "PENDING" and now >= queue_deadline):
            state = f"{job.state} ({job.reason})" if job.reason and job.reason != "None" else job.state
            raise JupytunnelError(
                f"job {job_id} did not start Jupyter within {time.monotonic() - started:.0f} s (state {state}); "
                "raise [slurm] wait or --timeout, or ask for fewer resources"
            )
        tick(_describe(last, started))
        time.sleep(poll)
        if job.state == "RUNNING":
            # The runtime file is the next thing to see: a fresh, short schedule for it.
            poll = FIRST_POLL if running_since is None else min(poll * 1.5, RUNNING_MAX_POLL)
            running_since = running_since or time.monotonic()
        else:
            poll = min(poll * 1.5, MAX_POLL)


def logs(master: Master, lines: int) -> str:
    assume = runner.Assume(stdout="(the job output's last lines)\n")
    result = master.run(slurm.logs_script(master.profile, lines), timeout=ROUND_TRIP_TIMEOUT, assume=assume)
    if result.returncode == SSH_FAILED:
        raise JupytunnelError(f"ssh to {master.profile.host} failed: {ssh_message(result.stderr)}")
    return result.stdout
