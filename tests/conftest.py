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

from rig import SSHD, Rig, free_port

_counter = itertools.count()


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
        self, *args: str, timeout: float = 90, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jupytunnel", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env or self.env,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def profile(self, name: str, **keys: Any) -> str:
        import tomli_w

        folder = self.config_dir / "profiles"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        keys.setdefault("host", "target")
        keys.setdefault("jupyter", "jupyter server")
        keys.setdefault("browser", False)
        # The rig's "remote" is this machine: the local end must not take the remote port.
        keys.setdefault("local_port", free_port())
        (folder / f"{name}.toml").write_text(tomli_w.dumps(keys))
        return name


@pytest.fixture
def jt(rig: Rig) -> Iterator[JT]:
    j = JT(rig)
    yield j
    # Whatever a test left open is closed through jupytunnel itself (verified PIDs only).
    j.run("disconnect", "--all", timeout=60)


@pytest.fixture
def remote_port() -> int:
    return free_port()
