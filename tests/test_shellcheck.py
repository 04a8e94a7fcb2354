"""Every remote script jupytunnel generates passes shellcheck as POSIX sh (warnings and
errors), for profiles that reach every branch: each launcher, both transports, setup lines,
a workdir with spaces, nice, Slurm. User setup lines are shell of the user's: SC1090 (a
`source` shellcheck cannot follow) is theirs, not ours."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from jupytunnel import doctor, remote
from jupytunnel.profiles import Profile, SlurmOptions
from jupytunnel.remote import ServerInfo, launchers, places, slurm

SHELLCHECK = shutil.which("shellcheck")
pytestmark = pytest.mark.skipif(SHELLCHECK is None, reason="shellcheck is not installed (.ci/run installs it)")

PROFILES = [
    Profile(name="plain", host="h"),
    Profile(
        name="full.x", host="h", launcher="tmux", transport="socket", setup=("module load py", ". ~/v/bin/activate"),
        workdir="~/my work", nice=5, jupyter="/opt/conda/bin/jupyter lab",
    ),
    Profile(name="scr", host="h", launcher="screen", setup=("export A=1",)),
    Profile(name="none", host="h", launcher="none", jupyter="jupyter notebook"),
    Profile(name="hpc", host="h", launcher="slurm", setup=("module load py",), slurm=SlurmOptions(("--time=1:00:00",))),
]  # fmt: skip
SERVER = ServerInfo(pid=42, port=8888, sock=None, base_url="/", token="t", root_dir="/", version="2", classic=False)


def _scripts() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for p in PROFILES:
        sock = remote.socket_path("/home/u", p.name) if p.transport == "socket" else None
        out += [
            (f"{p.name} discovery", remote.discovery_script(places.discovery_extra(p), runtime_dir="/x y")),
            (f"{p.name} server list", remote.server_list_script(p)),
            (f"{p.name} stop", remote.stop_script(p, SERVER, session="jupytunnel-x", multiplexer=p.launcher)),
            (f"{p.name} logs", remote.logs_script(p.name, 10)),
            (f"{p.name} doctor", doctor.remote_script(p)),
        ]
        if p.launcher == "slurm":
            out += [
                (f"{p.name} submit", slurm.submit_script(p)),
                (f"{p.name} batch", "#!/bin/sh -l\n" + slurm.batch_script(p)),
                (f"{p.name} cancel", slurm.cancel_script(p)),
            ]
        elif (launcher := launchers.scripted(p)) is not None:
            out += [
                (f"{p.name} start", launcher.start_script(p, sock=sock)),
                (f"{p.name} probe", remote.PRELUDE + launcher.probe_script(p, "123")),
                (f"{p.name} abort", launcher.abort_script(p)),
            ]
    return out


@pytest.mark.parametrize(("name", "script"), _scripts(), ids=[n for n, _ in _scripts()])
def test_shellcheck(name: str, script: str) -> None:
    assert SHELLCHECK is not None
    text = script if script.startswith("#!") else "#!/bin/sh\n" + script
    result = subprocess.run(
        [SHELLCHECK, "-s", "sh", "-S", "warning", "-e", "SC1090", "-"],
        input=text, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{name}:\n{result.stdout}"
