"""Remote scripts for detached notebook runs (pure builders) and the parsers for their output.

A run lives in its own private folder on the remote, ``~/.local/state/jupytunnel/runs/ID``
(0700): ``input.ipynb`` (the notebook as sent), ``meta.json`` (what was asked, written from
here), ``hooks.py`` (an nbconvert ``--config`` file reporting progress and the failing cell),
``job.sh`` (the detached job), ``state.json`` (written by the job, atomically), ``run.log``,
and at the end ``executed.ipynb``. The notebook is fed to nbconvert on stdin so that its kernel
starts in the profile's workdir, where the notebook's relative data paths point, and no copy
of it is left among the user's files.

Scripts for the login shell are POSIX sh (sh, dash, bash, zsh); ``job.sh`` runs under bash
where there is one (setup lines often ``source`` a file), else sh. Run ids are checked
(``RUN_ID_RE``) before they reach any script.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import NamedTuple

from jupytunnel.paths import REMOTE_STATE_DIR, REMOTE_STATE_DIR_SH
from jupytunnel.profiles import Profile
from jupytunnel.remote import (
    MARK,
    POSIX_PRELUDE,
    PRELUDE,
    cd_line,
    command_line,
    jupyter_cli,
    say,
    setup_lines,
)
from jupytunnel.remote.run_launchers import RunLauncher, job_name

RUN_ID_RE = re.compile(r"[0-9]{8}-[0-9]{6}-[0-9a-f]{4}")
RUNS_DIR = f"{REMOTE_STATE_DIR_SH}/runs"
FINAL_STATES = ("done", "failed", "cancelled")
# A run not yet ended: "pending" is a batch job waiting for its compute node (Slurm).
ACTIVE_STATES = ("pending", "running")
NO_FILE = 3  # exit status of cat_script and log_script for a file that is not there

# Process identity on the remote: a PID is ours only while its start time is the one we
# recorded (PIDs are reused). Linux: /proc/PID/stat field 22 (after the parenthesised name,
# which may hold spaces); elsewhere ps's lstart. Zombies count as gone.
PROC_HELPERS = (
    '_jt_start() { if [ -r "/proc/$1/stat" ]; then sed \'s/.*) //\' "/proc/$1/stat" 2>/dev/null | '
    'awk \'$1 != "Z" { print $20 }\'; else ps -o stat= -o lstart= -p "$1" 2>/dev/null | '
    'awk \'$1 !~ /^Z/ { $1 = ""; sub(/^ +/, ""); print }\'; fi; }\n'
    "_jt_cmd() { tr '\\000' ' ' < \"/proc/$1/cmdline\" 2>/dev/null || ps -o args= -p \"$1\" 2>/dev/null; }\n"
    # A value of our own one-line state.json (numbers, words, or a string without quotes).
    '_jt_field() { sed -n "s/.*\\"$2\\": *\\"\\{0,1\\}\\([^\\",}]*\\).*/\\1/p" "$1" 2>/dev/null; }\n'
)

# The nbconvert --config file. It runs inside the remote nbconvert, so it is plain Python
# that needs nothing but what nbconvert has. Hooks must never break the run: all guarded.
HOOKS = """\
# jupytunnel: progress and the failing cell of a detached run (an nbconvert --config file).
import json
import os

_DIR = os.environ.get("JUPYTUNNEL_RUN_DIR") or os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(_DIR, "input.ipynb"), encoding="utf-8") as _f:
    _NB = json.load(_f)
_CELLS = len(_NB.get("cells") or [])
_SEEN = {}


def _write(name, data):
    try:
        tmp = os.path.join(_DIR, "." + name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, os.path.join(_DIR, name))
    except Exception:
        pass


def _cell_start(cell, cell_index, **kw):
    _SEEN[cell_index] = cell
    _write("progress.json", {"cell": cell_index + 1, "cells": _CELLS})


def _cell_error(cell, cell_index, execute_reply, **kw):
    content = (execute_reply or {}).get("content") or {}
    _write("error.json", {"cell": cell_index + 1, "ename": str(content.get("ename") or ""),
                          "evalue": str(content.get("evalue") or "")[:300]})
    # nbconvert writes no notebook when a cell fails: keep the cells run so far, outputs
    # and the error included, for `jupytunnel run fetch`.
    try:
        import nbformat

        nb = nbformat.from_dict(_NB)
        for i, done in _SEEN.items():
            nb.cells[i] = done
        tmp = os.path.join(_DIR, ".executed.ipynb.tmp")
        nbformat.write(nb, tmp)
        os.replace(tmp, os.path.join(_DIR, "executed.ipynb"))
    except Exception:
        pass


c.ExecutePreprocessor.on_cell_start = _cell_start  # noqa: F821 - `c` is the config object
c.ExecutePreprocessor.on_cell_error = _cell_error  # noqa: F821
"""


def run_dir(run_id: str) -> str:
    return f"{RUNS_DIR}/{check_id(run_id)}"


def check_id(run_id: str) -> str:
    if not RUN_ID_RE.fullmatch(run_id):
        raise ValueError(f"not a run id: {run_id!r}")
    return run_id


def nbconvert_argv(profile: Profile, *, kernel: str | None) -> list[str]:
    """The nbconvert command, no cell time limit; the run folder's paths are added in sh."""
    argv = [*jupyter_cli(profile), "nbconvert", "--to", "notebook", "--execute", "--ExecutePreprocessor.timeout=-1"]
    if kernel:
        argv.append(f"--ExecutePreprocessor.kernel_name={kernel}")
    if profile.nice is not None:
        argv = ["nice", "-n", str(profile.nice), *argv]
    return argv


def check_script(profile: Profile) -> str:
    """In the setup environment: nbconvert's version, then the kernels as JSON."""
    cli = command_line(jupyter_cli(profile))
    word = jupyter_cli(profile)[0]
    no_jupyter = f"error jupyter is not on the remote (looked for {word}); install nbconvert and ipykernel there"
    no_nbconvert = "error nbconvert is not installed on the remote; install it there (pip install nbconvert ipykernel)"
    return (
        PRELUDE
        + cd_line(profile, fd="1")
        + setup_lines(profile, fd="1")
        + f"command -v {cli} >/dev/null 2>&1 || "
        + f"{{ {say(no_jupyter)}; exit 1; }}\n"
        + f"v=$({cli} nbconvert --version 2>/dev/null) || "
        + f"{{ {say(no_nbconvert)}; exit 1; }}\n"
        + f"printf '%s\\n' \"{MARK} nbconvert $v\"\n"
        + say("kernels")
        + "\n"
        + f"{cli} kernelspec list --json 2>/dev/null\n"
    )


class Check(NamedTuple):
    error: str | None
    nbconvert: str | None
    kernels: list[str]


def parse_check(stdout: str) -> Check:
    error = version = None
    rest: list[str] = []
    in_kernels = False
    for line in stdout.splitlines():
        if line.startswith(f"{MARK} error "):
            error = error or line[len(MARK) + 7 :]
        elif line.startswith(f"{MARK} nbconvert "):
            version = line[len(MARK) + 11 :].strip()
        elif line == f"{MARK} kernels":
            in_kernels = True
        elif in_kernels:
            rest.append(line)
    kernels: list[str] = []
    try:
        raw = json.loads("\n".join(rest)) if rest else {}
        specs = raw.get("kernelspecs") if isinstance(raw, dict) else None
        if isinstance(specs, dict):
            kernels = sorted(str(k) for k in specs)
    except ValueError:
        pass
    return Check(error, version, kernels)


def job_script(profile: Profile, *, kernel: str | None) -> str:
    """``job.sh ID``, run detached in the run folder: workdir, setup, nbconvert, state."""
    nbconvert = command_line(nbconvert_argv(profile, kernel=kernel))
    word = jupyter_cli(profile)[0]
    missing = f"error jupyter is not on the remote (looked for {word})"
    return (
        # A run ignores hangups as under nohup, whatever launched it: tmux hung up a job
        # started from a non-interactive ssh session at once (seen on tmux 3.3).
        "trap '' HUP\n"
        # job.sh runs under the shell the start script chose, never a csh; and $1 is the run id.
        + POSIX_PRELUDE
        + PROC_HELPERS
        + "RUNDIR=$(pwd) || exit 1\n"
        + "JUPYTUNNEL_RUN_DIR=$RUNDIR; export JUPYTUNNEL_RUN_DIR\n"
        + 'exec >>"$RUNDIR/run.log" 2>&1 </dev/null\n'
        + "started=$(date +%s); job_start=$(_jt_start $$); pid=; pid_start=\n"
        # One line of JSON, replaced atomically: readers never see half a file.
        + "_jt_state() {\n"
        + '  printf \'{"version": 1, "state": "%s", "started_at": %s, "ended_at": %s, "exit_code": %s, '
        + '"pid": %s, "pid_start": "%s", "job_pid": %s, "job_start": "%s"}\\n\' '
        + '"$1" "$started" "${3:-null}" "${2:-null}" "${pid:-null}" "$pid_start" "$$" "$job_start" '
        + '> "$RUNDIR/.state.tmp" && mv -f "$RUNDIR/.state.tmp" "$RUNDIR/state.json"\n'
        + "}\n"
        + "_jt_state running\n"
        + 'echo "jupytunnel: run $1 started $(date)"\n'
        + '[ -f "$RUNDIR/cancel" ] && { _jt_state cancelled 143 "$(date +%s)"; exit 0; }\n'
        # A subshell that becomes nbconvert (exec): its PID is the run's from the start, so a
        # cancel during a slow `module load` stops that too. Errors of ours go to fd 4.
        + "(\n"
        + cd_line(profile, fd="4")
        + setup_lines(profile, fd="4")
        + f"command -v {command_line(jupyter_cli(profile))} >/dev/null 2>&1 || {{ {say(missing, '4')}; exit 127; }}\n"
        + f'exec {nbconvert} --config "$RUNDIR/hooks.py" --stdin --output-dir "$RUNDIR" --output executed '
        + '<"$RUNDIR/input.ipynb" 4>&-\n'
        + ') 4>"$RUNDIR/setup.err" &\n'
        + 'pid=$!; pid_start=$(_jt_start "$pid")\n'
        + "_jt_state running\n"
        + 'wait "$pid"; rc=$?; ended=$(date +%s)\n'
        + 'if [ -f "$RUNDIR/cancel" ]; then _jt_state cancelled "$rc" "$ended"\n'
        + 'elif [ "$rc" -eq 0 ] && [ -f "$RUNDIR/executed.ipynb" ]; then _jt_state "done" 0 "$ended"\n'
        + 'else _jt_state failed "$rc" "$ended"; fi\n'
        + 'echo "jupytunnel: run $1 ended $(date) (exit $rc)"\n'
    )


def _write_file(name: str, text: str) -> str:
    return f"printf '%s' {shlex.quote(text)} > {name} || exit 1\n"


def start_script(
    profile: Profile, run_id: str, *, meta: dict[str, object], launcher: RunLauncher, kernel: str | None
) -> str:
    """Create the run folder, take the notebook from stdin, start ``job.sh`` detached, and
    wait (5 s at most) until the job has written its first state."""
    d = run_dir(run_id)
    fail = say(f"error cannot create the remote run folder {REMOTE_STATE_DIR}/runs/{run_id}")
    need = ""
    if launcher.needs:
        missing = say(f"error {launcher.needs} is not installed on the remote (the profile's launcher)")
        need = f"command -v {launcher.needs} >/dev/null 2>&1 || {{ {missing}; exit 1; }}\n"
    return (
        PRELUDE
        + need
        + "JT_SH=$(command -v bash 2>/dev/null) || JT_SH=$(command -v sh) || JT_SH=/bin/sh\n"
        + f"(umask 077; mkdir -p {d}) && chmod 700 {REMOTE_STATE_DIR_SH} {RUNS_DIR} {d} || {{ {fail}; exit 1; }}\n"
        + f"[ -e {d}/state.json ] && {{ {say(f'error run {run_id} exists on the remote')}; exit 1; }}\n"
        + f"cd -- {d} || exit 1\n"
        + f"cat > input.ipynb || {{ {fail}; exit 1; }}\n"
        + _write_file("meta.json", json.dumps(meta, sort_keys=True) + "\n")
        + _write_file("hooks.py", HOOKS)
        + _write_file("job.sh", job_script(profile, kernel=kernel))
        + "(umask 077; : > run.log)\n"
        + f"if ! {{ {launcher.start_lines(run_id).strip()}\n}}; then\n"
        + f"  {say(f'error the {launcher.name} launcher could not start the run')}; cd /; rm -rf -- {d}; exit 1\n"
        + "fi\n"
        + "i=0; while [ ! -f state.json ] && [ $i -lt 50 ]; do sleep 0.1 2>/dev/null || sleep 1; i=$((i+1)); done\n"
        + f"[ -f state.json ] || {{ {say('error the run did not start within 5 s')}; tail -n 5 run.log; exit 1; }}\n"
        + say(f"started {run_id}")
        + "\n"
    )


def list_script(run_id: str | None = None) -> str:
    """Every run (or one): whether its job is still alive, then its small files, each line
    prefixed ``| `` so nothing in them reads as a marker."""
    where = run_dir(run_id) if run_id else f"{RUNS_DIR}/*"
    return (
        PRELUDE
        + PROC_HELPERS
        + f"for d in {where}; do\n"
        + '  [ -f "$d/state.json" ] || continue\n'
        # Alive first, state second: a job that ends between the two has written its state.
        + '  jp=$(_jt_field "$d/state.json" job_pid); js=$(_jt_field "$d/state.json" job_start); a=dead\n'
        # A batch job's PIDs are a compute node's: the scheduler says whether it lives.
        + '  if [ -f "$d/slurm.job" ]; then j=$(head -n 1 "$d/slurm.job")\n'
        + '    case "$j" in ""|*[!0-9_]*) ;; *) [ -n "$(squeue -h -j "$j" -o %T 2>/dev/null)" ] && a=alive;; esac\n'
        + '  elif [ -n "$jp" ] && [ "$jp" != null ] && [ -n "$js" ] && [ "$(_jt_start "$jp")" = "$js" ]; then a=alive\n'
        + "  fi\n"
        + f"  printf '%s\\n' \"{MARK} run ${{d##*/}} $a\"\n"
        + "  for f in meta.json state.json progress.json error.json setup.err; do\n"
        + f'    [ -f "$d/$f" ] && {{ printf \'%s\\n\' "{MARK} file $f"; sed \'s/^/| /\' "$d/$f"; echo; }}\n'
        + "  done\n"
        + "done\n"
        + say("end")
        + "\n"
    )


class RemoteRun(NamedTuple):
    """What the remote says about one run."""

    id: str
    alive: bool
    files: dict[str, str]

    def json_file(self, name: str) -> dict[str, object]:
        try:
            raw = json.loads(self.files.get(name, ""))
        except ValueError:
            return {}
        return raw if isinstance(raw, dict) else {}

    @property
    def setup_error(self) -> str | None:
        for line in self.files.get("setup.err", "").splitlines():
            if line.startswith(f"{MARK} error "):
                return line[len(MARK) + 7 :]
        return None


def parse_list(stdout: str) -> tuple[list[RemoteRun], bool]:
    """The runs, and whether the listing was complete (its end marker came)."""
    runs: list[RemoteRun] = []
    complete = False
    current: RemoteRun | None = None
    name: str | None = None
    for line in stdout.splitlines():
        if line.startswith(f"{MARK} run "):
            parts = line.split()
            if len(parts) == 4 and RUN_ID_RE.fullmatch(parts[2]):  # noqa: PLR2004 - MARK run ID alive
                current = RemoteRun(parts[2], parts[3] == "alive", {})
                runs.append(current)
            else:
                current = None
            name = None
        elif line.startswith(f"{MARK} file ") and current is not None:
            name = line[len(MARK) + 6 :]
            current.files[name] = ""
        elif line == f"{MARK} end":
            complete = True
            current = name = None
        elif line.startswith("| ") and current is not None and name is not None:
            current.files[name] += line[2:] + "\n"
    return runs, complete


def cancel_script(run_id: str, *, launcher: RunLauncher) -> str:
    """Stop a running run: nbconvert and every process under it (the kernel, what its cells
    started), each signalled only while its PID still has the start time we read."""
    d = run_dir(run_id)
    loop = "sleep 0.1 2>/dev/null || sleep 1; i=$((i+1))"
    return (
        PRELUDE
        + PROC_HELPERS
        + f"d={d}\n"
        + f'[ -f "$d/state.json" ] || {{ {say(f"error no run {run_id} on the remote")}; exit 1; }}\n'
        + '_jt_st() { _jt_field "$d/state.json" state; }\n'
        + _batch_cancel(run_id)
        # The job that records the state: while it lives, it will record the end itself.
        + '_jt_job() { j=$(_jt_field "$d/state.json" job_pid); [ -n "$j" ] && [ "$j" != null ] && '
        + '[ "$(_jt_start "$j")" = "$(_jt_field "$d/state.json" job_start)" ]; }\n'
        + 'case "$(_jt_st)" in running) ;; *) printf \'%s\\n\' "'
        + MARK
        + ' final $(_jt_st)"; exit 0;; esac\n'
        + '(umask 077; : > "$d/cancel")\n'
        # The job writes the PID a moment after it starts: wait for it (or for the end).
        + 'i=0; while [ "$(_jt_field "$d/state.json" pid)" = null ] && [ "$(_jt_st)" = running ] && _jt_job '
        + "&& [ $i -lt 100 ]; do "
        + loop
        + "; done\n"
        + 'pid=$(_jt_field "$d/state.json" pid); ps0=$(_jt_field "$d/state.json" pid_start)\n'
        # Ours: the start time recorded, and the run id in its command line (nbconvert's
        # --output-dir, or job.sh's argument while setup lines run).
        + "ok=no\n"
        + 'if [ -n "$pid" ] && [ "$pid" != null ] && [ -n "$ps0" ] && [ "$(_jt_start "$pid")" = "$ps0" ]; then\n'
        + f'  case "$(_jt_cmd "$pid")" in *{run_id}*) ok=yes;; esac\n'
        + "fi\n"
        + 'if [ "$ok" = yes ]; then\n'
        # Freeze the tree first, so nothing forks while we collect it; then TERM and CONT
        # (nbconvert shuts its kernel down on TERM), then KILL whatever is left after 5 s.
        # "PPID START" of a live process, START as _jt_start prints it.
        + '  _jt_ps() { if [ -r "/proc/$1/stat" ]; then sed \'s/.*) //\' "/proc/$1/stat" 2>/dev/null | '
        + 'awk \'$1 != "Z" { print $2, $20 }\'; else ps -o stat= -o ppid= -o lstart= -p "$1" 2>/dev/null | '
        + 'awk \'$1 !~ /^Z/ { $1 = ""; sub(/^ +/, ""); print }\'; fi; }\n'
        # PID:START of the process and its descendants. The parent links come from one
        # snapshot; a PID is taken only if its parent is still the one the snapshot said
        # when its start time is read, so a PID reused meanwhile (a child that ended) is
        # never taken for ours.
        + "  _jt_pairs() {\n"
        # PID and parent PID of every process: ps, or /proc where there is no ps (procps).
        + "    all=$(ps -e -o pid= -o ppid= 2>/dev/null) || all=$(for s in /proc/[0-9]*/stat; do "
        + "q=${s#/proc/}; printf '%s %s\\n' \"${q%/stat}\" "
        + "\"$(sed 's/.*) //' \"$s\" 2>/dev/null | cut -d' ' -f2)\"; done)\n"
        + '    todo="$1/-"; n=0\n'
        + '    while [ -n "$todo" ] && [ $n -lt 10000 ]; do\n'
        + '      set -- $todo; e=$1; shift; todo="$*"; n=$((n+1)); p=${e%/*}; want=${e#*/}\n'
        + '      i=$(_jt_ps "$p"); [ -n "$i" ] || continue\n'
        + '      [ "$want" = - ] || [ "${i%% *}" = "$want" ] || continue\n'
        + "      printf '%s ' \"$p:$(printf '%s' \"${i#* }\" | tr ' ' _)\"\n"
        + "      kids=$(printf '%s\\n' \"$all\" | awk -v p=\"$p\" '$2 == p { print $1 }')\n"
        + '      for k in $kids; do todo="$todo $k/$p"; done\n'
        + "    done\n"
        + "  }\n"
        + '  _jt_ours() { [ "$(_jt_start "${1%%:*}" | tr \' \' _)" = "${1#*:}" ]; }\n'
        + '  pairs=$(_jt_pairs "$pid")\n'
        + '  for q in $pairs; do _jt_ours "$q" && kill -STOP "${q%%:*}" 2>/dev/null; done\n'
        # Once stopped nothing forks: a second pass finds what was born during the first.
        + '  pairs=$(_jt_pairs "$pid")\n'
        + '  for q in $pairs; do _jt_ours "$q" && kill -STOP "${q%%:*}" 2>/dev/null; done\n'
        + '  for q in $pairs; do _jt_ours "$q" && kill -TERM "${q%%:*}" 2>/dev/null; done\n'
        + '  for q in $pairs; do _jt_ours "$q" && kill -CONT "${q%%:*}" 2>/dev/null; done\n'
        + "  i=0; while [ $i -lt 50 ]; do\n"
        + '    left=no; for q in $pairs; do _jt_ours "$q" && left=yes; done\n'
        + '    [ "$left" = no ] && break; '
        + loop
        + "\n"
        + "  done\n"
        + '  for q in $pairs; do _jt_ours "$q" && kill -KILL "${q%%:*}" 2>/dev/null; done\n'
        + "fi\n"
        # The job records "cancelled" once nbconvert is gone; if the job itself is gone, we do.
        + 'i=0; while [ "$(_jt_st)" = running ] && _jt_job && [ $i -lt 100 ]; do '
        + loop
        + "; done\n"
        + 'if [ "$(_jt_st)" = running ]; then\n'
        + '  sed "s/\\"state\\": \\"running\\"/\\"state\\": \\"cancelled\\"/; '
        + 's/\\"ended_at\\": null/\\"ended_at\\": $(date +%s)/" '
        + '"$d/state.json" > "$d/.state.tmp" && mv -f "$d/.state.tmp" "$d/state.json"\n'
        + "fi\n"
        + launcher.cleanup_lines(run_id)
        + f"printf '%s\\n' \"{MARK} final $(_jt_st)\"\n"
    )


def _batch_cancel(run_id: str) -> str:
    """A run that is a Slurm job (``slurm.job`` in its folder) lives on a compute node: its
    PIDs mean nothing here. ``scancel`` the recorded job, only while it carries the run's
    job name, and wait (30 s at most) until it has left the queue; Slurm signals every
    process of the job, the kernel included."""
    name = job_name(run_id)
    loop = "sleep 0.1 2>/dev/null || sleep 1; i=$((i+1))"
    return (
        'if [ -f "$d/slurm.job" ]; then\n'
        '  j=$(head -n 1 "$d/slurm.job"); case "$j" in ""|*[!0-9_]*) j="";; esac\n'
        '  case "$(_jt_st)" in pending|running) ;; *) printf \'%s\\n\' "'
        + MARK
        + ' final $(_jt_st)"; exit 0;; esac\n'
        + '  (umask 077; : > "$d/cancel")\n'
        + f'  if [ -n "$j" ] && [ "$(squeue -h -j "$j" -o %j 2>/dev/null)" = {name} ]; then\n'
        + '    scancel "$j" 2>/dev/null\n'
        + f'    i=0; while [ -n "$(squeue -h -j "$j" -o %T 2>/dev/null)" ] && [ $i -lt 300 ]; do {loop}; done\n'
        + "  fi\n"
        + '  case "$(_jt_st)" in pending|running)\n'
        + '    sed "s/\\"state\\": \\"[a-z]*\\"/\\"state\\": \\"cancelled\\"/; '
        + 's/\\"ended_at\\": null/\\"ended_at\\": $(date +%s)/" '
        + '"$d/state.json" > "$d/.state.tmp" && mv -f "$d/.state.tmp" "$d/state.json";;\n'
        + "  esac\n"
        + f"  printf '%s\\n' \"{MARK} final $(_jt_st)\"; exit 0\n"
        + "fi\n"
    )


def cat_script(run_id: str, name: str) -> str:
    """One file of the run folder on stdout; a marked error when it is not there."""
    d = run_dir(run_id)
    missing = say(f"error run {run_id} has no {name}")
    return PRELUDE + f"[ -f {d}/{name} ] || {{ {missing}; exit {NO_FILE}; }}\ncat {d}/{name}\n"


def log_script(run_id: str, *, lines: int | None = None, offset: int | None = None) -> str:
    """The log's last ``lines`` lines, or everything after byte ``offset`` (for --follow)."""
    d = run_dir(run_id)
    head = PRELUDE + f"[ -f {d}/run.log ] || {{ {say(f'error no run {run_id} on the remote')}; exit {NO_FILE}; }}\n"
    if offset is not None:
        return head + f"tail -c +{int(offset) + 1} {d}/run.log\n"
    return head + f"tail -n {int(lines or 50)} {d}/run.log\n"


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_ENAME = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|Warning))\b")


def error_name_from_log(text: str) -> str | None:
    """The exception a failed cell raised, from nbconvert's CellExecutionError output (for a
    remote nbclient too old to run our hooks)."""
    _, found, tail = _ANSI.sub("", text).rpartition("CellExecutionError")
    if not found:
        return None
    name = None
    for line in tail.splitlines():
        m = _ENAME.match(line.strip())
        if m:
            name = m.group(1)
    return name
