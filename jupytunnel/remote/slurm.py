"""Jupyter as a Slurm batch job on a compute node: pure script builders and parsers.

The scripts run on the login node through the profile's master (``jupytunnel.remote.jobs`` runs
them). Everything the job needs lives in the private remote folder (0700), named after the
profile: ``NAME.sbatch`` (the batch script), ``NAME.job`` (the job id, so another laptop or a
later connect finds the job), ``NAME.out`` (the job's output: Jupyter's log),
``NAME.token`` (read and removed by the job at its start) and ``NAME.rt/`` (the job's own
Jupyter runtime folder).

Why a runtime folder of its own: ``jupyter server list`` run on a login node deletes every
runtime file whose PID is not alive *there*, that is, every file of a server on a compute
node; a folder only we read is out of its reach, and holds only this job's server.

Another scheduler (PBS ``qsub``, LSF ``bsub``) is one more module with the same four
builders (submit, probe, cancel, output path) and the same markers.
"""

from __future__ import annotations

import shlex
from typing import NamedTuple

from jupytunnel.paths import REMOTE_STATE_DIR, REMOTE_STATE_DIR_SH
from jupytunnel.profiles import Profile
from jupytunnel.remote import MARK, POSIX_PRELUDE, PRELUDE, cd_line, command_line, say, setup_lines

# Job states in which the job still holds (or waits for) an allocation: ``squeue -o %T``.
ACTIVE_STATES = frozenset(
    {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED", "SIGNALING"}
)
# POSIX shells our scripts run under; any other login shell (csh, fish) gets /bin/sh.
_POSIX_SHELLS = "sh|bash|zsh|ksh|mksh|dash"
CANCEL_WAIT_TENTHS = 300  # scancel to gone: bounded at 30 s (KillWait is usually 30 s or less)


# The batch script's interpreter: the login shell, so that setup lines see what a login
# sees (Lmod's `module` function); a shell outside the sh family gets /bin/sh.
LOGIN_SHELL_LINES = f'sh_="${{SHELL:-/bin/sh}}"\ncase "${{sh_##*/}}" in {_POSIX_SHELLS}) ;; *) sh_=/bin/sh;; esac\n'


def job_name(profile: Profile) -> str:
    return f"jupytunnel-{profile.name}"


def _file(profile: Profile, suffix: str) -> str:
    return f"{REMOTE_STATE_DIR_SH}/{shlex.quote(profile.name + suffix)}"


def output_path_expr(profile: Profile) -> str:
    """The job's output file (Jupyter's log), as a remote shell word."""
    return _file(profile, ".out")


def jupyter_argv(profile: Profile) -> list[str]:
    """Jupyter on the node: its own address (the login node cannot reach the node's
    127.0.0.1), a port the node's kernel picks (``--port=0``: free on that node, whatever
    other users run there), no silent port hopping."""
    argv = [*shlex.split(profile.jupyter), "--no-browser", "--port=0", "--ServerApp.port_retries=0"]
    if profile.nice is not None:
        argv = ["nice", "-n", str(profile.nice), *argv]
    return argv


def batch_script(profile: Profile) -> str:
    """What runs on the compute node. Its interpreter line is written at submit time."""
    word = shlex.split(profile.jupyter)[0]
    missing = say(f"error command not found on the compute node: {word}")
    no_token = say("error no token (the private folder is not shared with the node?)")
    return (
        POSIX_PRELUDE  # the interpreter line names a POSIX shell: no csh guard here
        + f"D={REMOTE_STATE_DIR_SH}\n"
        + f'RT="$D"/{shlex.quote(profile.name + ".rt")}\n'
        + "umask 077\n"
        # The token: from a private file, removed at once; never in argv or the output file.
        + f"JUPYTER_TOKEN=$(cat {_file(profile, '.token')} 2>/dev/null); rm -f {_file(profile, '.token')}\n"
        + f'[ -n "$JUPYTER_TOKEN" ] || {{ {no_token}; exit 1; }}\n'
        # A clean runtime folder, stamped with this job's id: a file from an earlier job
        # is never mistaken for this job's server.
        + 'rm -rf "$RT" && mkdir -p "$RT" && printf \'%s\\n\' "${SLURM_JOB_ID:-}" > "$RT"/job || exit 1\n'
        + cd_line(profile, fd="1")
        + setup_lines(profile, fd="1")
        + f"command -v {command_line([word])} >/dev/null 2>&1 || {{ {missing}; exit 1; }}\n"
        # The address the login node reaches the node at: Slurm's NodeAddr, which is also
        # what the tunnel forwards to; the node's hostname as a last resort.
        + 'node="${SLURMD_NODENAME:-$(hostname)}"\n'
        + 'addr=$(sinfo -h -n "$node" -o %o 2>/dev/null | head -n 1)\n'
        + '[ -n "$addr" ] || addr=$(hostname)\n'
        + f"printf '%s\\n' \"{MARK} node $node $addr\"\n"
        + 'export JUPYTER_TOKEN JUPYTER_RUNTIME_DIR="$RT"\n'
        + f'exec {command_line(jupyter_argv(profile))} --ip="$addr"\n'
    )


def submit_args(profile: Profile) -> list[str]:
    """sbatch's options: the profile's first, ours last (sbatch keeps the last value), so a
    ``--job-name`` or ``--output`` in ``sbatch_args`` cannot hide the job from us."""
    return [*profile.slurm.sbatch_args, "--parsable", f"--job-name={job_name(profile)}"]


def submit_script(profile: Profile) -> str:
    """Write the batch script and the token (read from stdin), then ``sbatch`` it.

    Prints ``MARK submitted ID``, or ``MARK error ...`` before anything is queued.
    """
    missing = say("error sbatch not found on the login node (is this a Slurm cluster? try: module load slurm)")
    failed = say("error sbatch refused the job")
    script = batch_script(profile)
    sbatch = command_line(["sbatch", *submit_args(profile)])
    return (
        PRELUDE
        + f"(umask 077; mkdir -p {REMOTE_STATE_DIR_SH}) && chmod 700 {REMOTE_STATE_DIR_SH} || "
        + f"{{ {say(f'error cannot create the remote folder {REMOTE_STATE_DIR}')}; exit 1; }}\n"
        + f"command -v sbatch >/dev/null 2>&1 || {{ {missing}; exit 1; }}\n"
        + f"IFS= read -r t || {{ {say('error no token on stdin')}; exit 1; }}\n"
        + f"(umask 077; printf '%s\\n' \"$t\" > {_file(profile, '.token')}); unset t\n"
        + LOGIN_SHELL_LINES
        + f"{{ printf '#!%s -l\\n' \"$sh_\"; printf '%s' {shlex.quote(script)}; }} > {_file(profile, '.sbatch')}\n"
        + f"rm -f {output_path_expr(profile)}\n"
        # stdout is the id alone (``--parsable``: "ID" or "ID;CLUSTER"); warnings go aside.
        + f"out=$({sbatch} --output={output_path_expr(profile)} {_file(profile, '.sbatch')} "
        + f"2>{_file(profile, '.err')}) "
        + f"|| {{ rm -f {_file(profile, '.token')}; {failed}; "
        + f"sed 's/^/{MARK} sbatch /' {_file(profile, '.err')}; exit 1; }}\n"
        + "id=$(printf '%s\\n' \"$out\" | tail -n 1); id=${id%%;*}\n"
        + f"printf '%s\\n' \"$id\" > {_file(profile, '.job')}\n"
        + f"printf '%s\\n' \"{MARK} submitted $id\"\n"
    )


def probe_script(profile: Profile, *, output_lines: int = 0) -> str:
    """The profile's job as the login node sees it, in one round trip.

    ``MARK job ID|STATE|REASON|NODE|TIME_LEFT|NAME`` (only ``ID|`` once the job left the
    queue), then for a running job ``MARK jobaddr ADDR`` and its server's runtime file as
    ``MARK jobfile PATH`` + the JSON; with ``output_lines``, the end of the job's output.
    """
    out = (
        f"id=$(head -n 1 {_file(profile, '.job')} 2>/dev/null)\n"
        'case "$id" in ""|*[!0-9_]*) id="";; esac\n'
        'if [ -n "$id" ]; then\n'
        "  q=$(squeue -h -j \"$id\" -o '%T|%r|%N|%L|%j' 2>/dev/null | head -n 1)\n"
        f"  printf '%s\\n' \"{MARK} job $id|$q\"\n"
        '  case "$q" in RUNNING\\|*)\n'
        "    n=$(printf '%s' \"$q\" | cut -d '|' -f 3)\n"
        '    a=$(sinfo -h -n "$n" -o %o 2>/dev/null | head -n 1)\n'
        f"    printf '%s\\n' \"{MARK} jobaddr $a\"\n"
        f"    rt={REMOTE_STATE_DIR_SH}/{shlex.quote(profile.name + '.rt')}\n"
        '    if [ "$(cat "$rt"/job 2>/dev/null)" = "$id" ]; then\n'
        '      for f in "$rt"/jpserver-*.json; do\n'
        f'        [ -f "$f" ] && {{ printf \'%s\\n\' "{MARK} jobfile $f"; cat "$f"; echo; }}\n'
        "      done\n"
        "    fi;;\n"
        "  esac\n"
        "fi\n"
    )
    if output_lines:
        out += f"tail -n {int(output_lines)} {output_path_expr(profile)} 2>/dev/null | sed 's/^/{MARK} out /'\n"
    return out


def cancel_script(profile: Profile) -> str:
    """``scancel`` the profile's recorded job, only if it still carries our job name, and
    wait (bounded) until it has left the queue. Prints ``MARK cancelled ID`` or
    ``MARK nojob``; ``MARK stuck ID`` if it is still there after the wait."""
    name = shlex.quote(job_name(profile))
    return (
        PRELUDE
        + f"id=$(head -n 1 {_file(profile, '.job')} 2>/dev/null)\n"
        + 'case "$id" in ""|*[!0-9_]*) id="";; esac\n'
        + f"rm -f {_file(profile, '.token')}\n"
        + f'[ -n "$id" ] || {{ {say("nojob")}; exit 0; }}\n'
        + 'n=$(squeue -h -j "$id" -o %j 2>/dev/null | head -n 1)\n'
        + f'if [ "$n" != {name} ]; then rm -f {_file(profile, ".job")}; {say("nojob")}; exit 0; fi\n'
        + 'scancel "$id" 2>/dev/null\n'
        + f'i=0; while [ -n "$(squeue -h -j "$id" -o %T 2>/dev/null)" ] && [ $i -lt {CANCEL_WAIT_TENTHS} ]; do\n'
        + "  sleep 0.1 2>/dev/null || sleep 1; i=$((i+1))\n"
        + "done\n"
        + 'if [ -n "$(squeue -h -j "$id" -o %T 2>/dev/null)" ]; then '
        + f"printf '%s\\n' \"{MARK} stuck $id\"; exit 0; fi\n"
        + f"rm -f {_file(profile, '.job')}\n"
        + f"printf '%s\\n' \"{MARK} cancelled $id\"\n"
    )


def job_status_script(job_id: str) -> str:
    """One job's line as ``probe_script`` prints it (``status`` asks this of each job)."""
    if not job_id.replace("_", "").isdigit():  # from our own record, but it reaches a shell
        raise ValueError(f"not a Slurm job id: {job_id!r}")
    return (
        f"q=$(squeue -h -j {job_id} -o '%T|%r|%N|%L|%j' 2>/dev/null | head -n 1)\n"
        f"printf '%s\\n' \"{MARK} job {job_id}|$q\"\n"
    )


def logs_script(profile: Profile, lines: int) -> str:
    return PRELUDE + f"tail -n {int(lines)} {output_path_expr(profile)}\n"


class Job(NamedTuple):
    """The profile's job as ``probe_script`` reported it."""

    id: str
    state: str  # "" once the job has left the queue
    reason: str
    node: str
    time_left: str
    name: str
    addr: str = ""

    @property
    def gone(self) -> bool:
        return self.state not in ACTIVE_STATES

    def to_dict(self) -> dict[str, str | None]:
        return {
            "id": self.id,
            "node": self.node or None,
            "state": self.state or "GONE",
            "time_left": self.time_left or None,
        }


def parse_job(markers: list[str]) -> Job | None:
    """The job from the probe's marker lines (as ``remote.parse_discovery`` collects them)."""
    job: Job | None = None
    for marker in markers:
        kind, _, value = marker.partition(" ")
        if kind == "job":
            fields = [*value.split("|"), "", "", "", "", "", ""][:6]
            job = Job(*fields)
        elif kind == "jobaddr" and job is not None:
            job = job._replace(addr=value.strip())
    return job


def output_tail(markers: list[str]) -> str:
    return " | ".join(m[4:].strip() for m in markers if m.startswith("out ") and m[4:].strip())[-800:]


def error_in_output(markers: list[str]) -> str | None:
    """The reason our batch script wrote into the job's output."""
    prefix = f"{MARK} error "
    for m in markers:
        line = m[4:].strip() if m.startswith("out ") else ""
        if line.startswith(prefix):
            return line[len(prefix) :]
    return None
