"""The Slurm launcher's pure parts: the [slurm] table, sbatch's argv, the probe's parser,
the forward to a node, and the scripts under every POSIX shell's parser and shellcheck."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

from jupytunnel import profiles, remote
from jupytunnel.errors import ProfileError
from jupytunnel.profiles import Profile, SlurmOptions
from jupytunnel.remote import slurm
from jupytunnel.remote.jobs import server_of
from jupytunnel.ssh import args as sshargs


def _build(raw: dict[str, object], defaults: dict[str, object] | None = None) -> Profile:
    return profiles.build("hpc", raw, defaults or {}, "hpc.toml")


def test_slurm_table_is_validated_and_round_trips() -> None:
    p = _build({"host": "login", "launcher": "slurm", "slurm": {"sbatch_args": ["--time=02:00:00", "--partition=gpu"]}})
    assert p.slurm == SlurmOptions(sbatch_args=("--time=02:00:00", "--partition=gpu"), wait=600.0)
    text = profiles.dump(p).decode()
    again = _build(tomllib.loads(text))
    assert again == p
    assert "wait" not in text  # the default is not written


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ({"sbatch_args": ["gpu"]}, "does not start with '-'"),
        ({"sbatch_args": ["--time=1\n--mem=1G"]}, "control characters"),
        ({"sbatch_args": "--time=1"}, "expected a list of strings"),
        ({"wait": 0}, "expected a number of seconds"),
        ({"wait": True}, "expected a number of seconds"),
        ({"wiat": 10}, "did you mean 'wait'?"),
        ({"sbatch_arg": []}, "did you mean 'sbatch_args'?"),
    ],
)
def test_bad_slurm_tables_are_one_line_errors(table: dict[str, object], fragment: str) -> None:
    with pytest.raises(ProfileError) as info:
        _build({"host": "login", "launcher": "slurm", "slurm": table})
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert "slurm." in message


def test_socket_transport_is_refused_for_slurm_even_from_defaults() -> None:
    with pytest.raises(ProfileError, match="cannot reach a compute node"):
        _build({"host": "login", "launcher": "slurm", "transport": "socket"})
    with pytest.raises(ProfileError, match="cannot reach a compute node"):
        _build({"host": "login", "launcher": "slurm"}, defaults={"transport": "socket"})


def test_defaults_slurm_table_merges_under_the_profiles() -> None:
    p = _build(
        {"host": "login", "launcher": "slurm", "slurm": {"sbatch_args": ["--mem=4G"]}},
        defaults={"slurm": {"wait": 120}},
    )
    assert p.slurm == SlurmOptions(sbatch_args=("--mem=4G",), wait=120.0)


def test_sbatch_args_ours_come_last() -> None:
    p = Profile(name="hpc", host="login", launcher="slurm", slurm=SlurmOptions(sbatch_args=("--job-name=x", "-t", "5")))
    assert slurm.submit_args(p) == ["--job-name=x", "-t", "5", "--parsable", "--job-name=jupytunnel-hpc"]


def test_jupyter_on_the_node_takes_a_free_port_and_nice() -> None:
    p = Profile(name="hpc", host="login", launcher="slurm", jupyter="jupyter lab", nice=5)
    assert slurm.jupyter_argv(p) == [
        "nice", "-n", "5", "jupyter", "lab", "--no-browser", "--port=0", "--ServerApp.port_retries=0",
    ]  # fmt: skip


def test_forward_to_a_node() -> None:
    assert sshargs.forward_spec(local_port=8888, remote_port=40001, remote_host="10.1.2.3") == (
        "127.0.0.1:8888:10.1.2.3:40001"
    )
    assert sshargs.forward_spec(local_port=8888, remote_port=40001, remote_host="fd00::2") == (
        "127.0.0.1:8888:[fd00::2]:40001"
    )


def _probe_output(state: str, *, with_file: bool = True) -> str:
    m = remote.MARK
    out = f"{m} job 17|{state}|None|cn1|59:40|jupytunnel-hpc\n"
    if state == "RUNNING":
        out += f"{m} jobaddr 10.214.0.2\n"
        if with_file:
            out += (
                f"{m} jobfile /h/.local/state/jupytunnel/hpc.rt/jpserver-99.json\n"
                '{"pid": 99, "port": 40001, "base_url": "/", "token": "t0k", "root_dir": "/h", "version": "2.14.0"}\n'
            )
    return out


def test_server_of_a_running_job_is_addressed_at_the_node() -> None:
    job, server = server_of(remote.parse_discovery(_probe_output("RUNNING")))
    assert job is not None
    assert job.id == "17"
    assert job.to_dict() == {"id": "17", "node": "cn1", "state": "RUNNING", "time_left": "59:40"}
    assert server is not None
    assert (server.host, server.port, server.job, server.node, server.token) == (
        "10.214.0.2",
        40001,
        "17",
        "cn1",
        "t0k",
    )
    assert server.endpoint == "cn1:40001"


def test_no_server_until_the_runtime_file_or_while_pending() -> None:
    assert server_of(remote.parse_discovery(_probe_output("RUNNING", with_file=False)))[1] is None
    job, server = server_of(remote.parse_discovery(_probe_output("PENDING")))
    assert server is None
    assert job is not None
    assert not job.gone


def test_a_job_that_left_the_queue_is_gone() -> None:
    job = slurm.parse_job(remote.parse_discovery(f"{remote.MARK} job 17|\n").markers)
    assert job is not None
    assert job.gone
    assert job.to_dict()["state"] == "GONE"


def test_job_files_are_not_login_node_servers() -> None:
    """A runtime file from the job's folder never counts as a server on the login node."""
    found = remote.parse_discovery(_probe_output("RUNNING"))
    assert found.servers == []
    assert len(found.job_servers) == 1


def _scripts() -> dict[str, str]:
    p = Profile(
        name="hpc",
        host="login",
        launcher="slurm",
        setup=("module load python/3.11", ". ~/venv/bin/activate"),  # user lines: shellcheck judges ours
        workdir="~/my projects",
        slurm=SlurmOptions(sbatch_args=("--time=00:10:00",)),
    )
    return {
        "submit": slurm.submit_script(p),
        "probe": remote.PRELUDE + slurm.probe_script(p, output_lines=15),
        "cancel": slurm.cancel_script(p),
        "batch": "#!/bin/sh -l\n" + slurm.batch_script(p),
        "status": slurm.job_status_script("17"),
        "logs": slurm.logs_script(p, 20),
    }


@pytest.mark.parametrize("shell", ["sh", "dash", "bash", "zsh"])
def test_scripts_parse_under_each_shell(shell: str) -> None:
    path = shutil.which(shell)
    if path is None:
        pytest.skip(f"{shell} is not installed")
    for name, script in _scripts().items():
        result = subprocess.run([path, "-n"], input=script, capture_output=True, text=True, timeout=10, check=False)
        assert result.returncode == 0, (name, result.stderr)


def test_scripts_pass_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (.ci/run installs it)")
    for name, script in _scripts().items():
        text = script if script.startswith("#!") else "#!/bin/sh\n" + script
        result = subprocess.run(
            [shellcheck, "-s", "sh", "-S", "warning", "-e", "SC1090", "-"], input=text, capture_output=True, text=True, timeout=30,
            check=False,
        )  # fmt: skip
        assert result.returncode == 0, (name, result.stdout)
