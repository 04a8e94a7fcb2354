"""How a detached notebook run is started on the remote: nohup, tmux or screen.

A run is one shell script, ``job.sh``, in the run's private folder; it does everything
(workdir, setup lines, nbconvert, the state file). A launcher only answers "how do I start
``job.sh ID`` in that folder so that it outlives the ssh connection", and what to tidy up
after a cancel. A batch scheduler is one more implementation: ``sbatch --chdir=DIR job.sh ID``
starts the same script on a compute node (its cancel would be ``scancel``, since the PIDs
live on another machine).

``launcher = "none"`` profiles (a server started by hand or by systemd) run with nohup: a
run always needs something to keep it alive, and nohup needs nothing installed.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Protocol

from jupytunnel.profiles import Profile
from jupytunnel.remote import kill_session_script


def session_name(run_id: str) -> str:
    """``jupytunnel-run-ID``: run ids are ``[0-9a-z-]``, which tmux and screen keep as is."""
    return f"jupytunnel-run-{run_id}"


class RunLauncher(Protocol):
    name: str
    needs: str | None  # a command the remote must have, checked before anything is written

    def start_lines(self, run_id: str) -> str:
        """Shell lines, run in the run folder, that start ``./job.sh ID`` detached; non-zero on failure."""
        ...

    def cleanup_lines(self, run_id: str) -> str:
        """Shell lines run after a cancel, once the run's processes are gone."""
        ...

    def session(self, run_id: str) -> str | None: ...


class NohupRun:
    name = "nohup"
    needs: str | None = None

    def start_lines(self, run_id: str) -> str:
        # stdin, stdout and stderr redirected, or the ssh session would wait for the job.
        # "$JT_SH": bash where there is one (setup lines often `source`), else sh.
        return f'nohup "$JT_SH" ./job.sh {shlex.quote(run_id)} </dev/null >/dev/null 2>&1 &\n'

    def cleanup_lines(self, run_id: str) -> str:  # noqa: ARG002 - the job exits with nbconvert
        return ""

    def session(self, run_id: str) -> str | None:  # noqa: ARG002
        return None


class TmuxRun:
    name = "tmux"
    needs: str | None = "tmux"

    def start_lines(self, run_id: str) -> str:
        name = shlex.quote(session_name(run_id))
        # One string for tmux's default-shell, whatever shell that is: an absolute path
        # (from `command -v`) and two plain words. -c: start in the run folder.
        return f'tmux new-session -d -s {name} -c "$PWD" "$JT_SH ./job.sh {run_id}"\n'

    def cleanup_lines(self, run_id: str) -> str:
        return kill_session_script(session_name(run_id), self.name)

    def session(self, run_id: str) -> str | None:
        return session_name(run_id)


class ScreenRun:
    name = "screen"
    needs: str | None = "screen"

    def start_lines(self, run_id: str) -> str:
        name = shlex.quote(session_name(run_id))
        # screen runs argv itself (no shell) in its own cwd, the run folder.
        return f'screen -dmS {name} "$JT_SH" ./job.sh {shlex.quote(run_id)}\n'

    def cleanup_lines(self, run_id: str) -> str:
        return kill_session_script(session_name(run_id), self.name)

    def session(self, run_id: str) -> str | None:
        return session_name(run_id)


def job_name(run_id: str) -> str:
    """The Slurm job name of a run: a cancel checks it before ``scancel``."""
    return f"jupytunnel-run-{run_id}"


class SlurmRun:
    """A batch job on a compute node: ``sbatch`` starts the same ``job.sh`` there (the run
    folder is in the shared home). Until the job runs, the run is ``pending``; its id is kept
    in ``slurm.job``, and a cancel is ``scancel`` (``run_scripts``), not signals."""

    name = "slurm"
    needs: str | None = "sbatch"

    def __init__(self, sbatch_args: tuple[str, ...] = ()) -> None:
        self.sbatch_args = sbatch_args

    def start_lines(self, run_id: str) -> str:
        args = shlex.join([*self.sbatch_args, "--parsable", f"--job-name={job_name(run_id)}", "--output=slurm.out"])
        pending = (
            '{"version": 1, "state": "pending", "started_at": %s, "ended_at": null, "exit_code": null, '
            '"pid": null, "pid_start": "", "job_pid": null, "job_start": ""}'
        )
        return (
            # The job's first state, before sbatch: the start script waits for a state.
            f"printf '{pending}\\n' \"$(date +%s)\" > .state.tmp && mv -f .state.tmp state.json && "
            # --chdir: the run folder; --wrap: job.sh under the shell the start script chose.
            f'o=$(sbatch {args} --chdir="$PWD" --wrap="exec $JT_SH ./job.sh {run_id}" 2>sbatch.err) && '
            "printf '%s\\n' \"${o%%;*}\" > slurm.job || { sed 's/^/sbatch: /' sbatch.err >&2; false; }\n"
        )

    def cleanup_lines(self, run_id: str) -> str:  # noqa: ARG002 - scancel took everything
        return ""

    def session(self, run_id: str) -> str | None:  # noqa: ARG002
        return None


def for_profile(profile: Profile) -> RunLauncher:
    """The run launcher named by the profile's launcher (nohup for ``none``: see above)."""
    by_name: dict[str, Callable[[], RunLauncher]] = {
        "tmux": TmuxRun,
        "screen": ScreenRun,
        "slurm": lambda: SlurmRun(profile.slurm.sbatch_args),
    }
    return by_name.get(profile.launcher, NohupRun)()
