from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from testsupport.rig import SSHD, Rig, free_port, write_profile
from testsupport.slurm_cluster import SlurmCluster, missing_binaries

_counter = itertools.count()
# The fixtures that start real daemons: a test that uses one (directly or through another
# fixture) is in the integration tier, whatever its file says.
RIG_FIXTURES = frozenset({"rig", "jt", "slurm"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if RIG_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def rig() -> Iterator[Rig]:
    if not os.path.exists(SSHD):
        pytest.fail(f"{SSHD} is missing: install openssh-server (.ci/run does)")
    r = Rig()
    r.start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="session")
def slurm(rig: Rig) -> Iterator[SlurmCluster]:
    """A real one-node Slurm cluster whose login node is the rig's target (see slurm_cluster.py)."""
    missing = missing_binaries()
    if missing:
        pytest.skip(
            f"Slurm is not installed (no {', '.join(missing)}): apt-get install slurmctld slurmd slurm-client munge"
        )
    # JUPYTUNNEL_TEST_SLURM_NETNS=0 exercises the fallback (node on 127.0.0.1) where netns works.
    cluster = SlurmCluster(rig.slurm_conf.parent, isolate=os.environ.get("JUPYTUNNEL_TEST_SLURM_NETNS") != "0")
    assert cluster.conf == rig.slurm_conf
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


class JT:
    """jupytunnel run as a user would run it, against the rig, with private dirs per test."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        base = rig.root / f"t{next(_counter)}"
        base.mkdir()
        self.config_dir = base / "cfg"
        self.state_dir = base / "st"
        self.runtime_dir = base / "rt"
        self.env = rig.env
        self.env.update(
            {
                "JUPYTUNNEL_CONFIG_DIR": str(self.config_dir),
                "JUPYTUNNEL_STATE_DIR": str(self.state_dir),
                "JUPYTUNNEL_RUNTIME_DIR": str(self.runtime_dir),
            }
        )

    def run(
        self, *args: str, timeout: float = 90, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jupytunnel", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env or self.env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def profile(self, name: str, **keys: Any) -> str:
        return write_profile(self.config_dir, name, **keys)


@pytest.fixture
def jt(rig: Rig) -> Iterator[JT]:
    j = JT(rig)
    yield j
    # Whatever a test left open is closed through jupytunnel itself (verified PIDs only).
    j.run("disconnect", "--all", timeout=60)


@pytest.fixture(scope="module")
def server(rig: Rig) -> Iterator[int]:
    """One Jupyter server on the target, started by hand (not by jupytunnel), shared by a
    module's tests; its port."""
    from helpers import kill_pid, start_server_by_hand

    port = free_port()
    pid = start_server_by_hand(rig, port)
    yield port
    kill_pid(pid)


@pytest.fixture
def remote_port() -> int:
    return free_port()


OTHER_USER = "jtother"


@pytest.fixture(scope="session")
def other_user() -> str:
    """A second local Unix user (a colleague on a shared host), created when we are root."""
    import pwd
    import shutil

    try:
        pwd.getpwnam(OTHER_USER)
    except KeyError:
        if os.geteuid() != 0 or shutil.which("useradd") is None:
            pytest.skip("needs a second local user: run as root (useradd) or create 'jtother'")
        made = subprocess.run(
            ["useradd", "--no-create-home", "--shell", "/bin/sh", OTHER_USER],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if made.returncode not in (0, 9):  # 9: created meanwhile by another worker
            pytest.skip(f"useradd failed: {made.stderr.strip()}")
    return OTHER_USER
