"""Which launcher and which place each profile gets, and what a profile without a launcher does."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupytunnel import runner
from jupytunnel.errors import JupytunnelError
from jupytunnel.profiles import Profile
from jupytunnel.remote import ServerInfo, jobs, launchers, places, server
from jupytunnel.ssh import Ssh
from jupytunnel.ssh.master import Master

SERVER = ServerInfo(pid=7, port=8890, sock=None, base_url="/", token="t", root_dir="/", version="2", classic=False)


@pytest.mark.parametrize(
    ("launcher", "kind", "place"),
    [
        ("nohup", launchers.Nohup, places.OnHost),
        ("tmux", launchers.Tmux, places.OnHost),
        ("screen", launchers.Screen, places.OnHost),
        ("slurm", jobs.SlurmLauncher, jobs.InJob),
        ("none", type(None), places.OnHost),
    ],
)
def test_each_profile_gets_its_launcher_and_place(launcher: str, kind: type, place: type) -> None:
    profile = Profile(name="p", host="h", launcher=launcher)  # type: ignore[arg-type]
    assert type(launchers.for_profile(profile)) is kind
    assert type(places.place_of(profile)) is place


def test_a_profile_without_a_launcher_starts_nothing_and_runs_no_command(tmp_path: Path) -> None:
    profile = Profile(name="byhand", host="h", launcher="none", remote_port=8890)
    steps: list[runner.Step] = []
    with runner.recording(steps.append), pytest.raises(JupytunnelError) as caught:
        server.start(Master(profile, tmp_path / "cm", Ssh("ssh")), home="/home/u", timeout=5)
    assert "its launcher is 'none'" in str(caught.value)
    assert steps == []


def test_the_places_tell_their_servers_apart() -> None:
    host = Profile(name="p", host="h", remote_port=8890)
    batch = Profile(name="p", host="h", launcher="slurm")
    job = SERVER._replace(host="10.0.0.2", job="12", node="cn1")
    assert server.is_profiles(host, SERVER, "/home/u")
    assert not server.is_profiles(host, SERVER._replace(port=8891), "/home/u")
    assert server.is_profiles(batch, job, "/home/u")
    assert not server.is_profiles(batch, SERVER, "/home/u")
    assert places.place_of(host).matches(host, SERVER)
    assert not places.place_of(host).matches(host, job)  # a job's, remembered: not the host's
    assert places.place_of(batch).matches(batch, job)
    assert places.place_of(batch).first_forward(batch, 9000, job) == "127.0.0.1:9000:10.0.0.2:8890"
    assert places.place_of(batch).first_forward(batch, 9000, None) is None
    assert places.place_of(host).first_forward(host, 9000, None) == "127.0.0.1:9000:127.0.0.1:8890"
    assert server.route(host) != server.route(batch)
    assert not places.place_of(host).private_route(host)
    assert places.place_of(host).private_route(host._replace(transport="socket"))
