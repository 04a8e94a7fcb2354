"""A real OpenSSH rig on loopback: a "gateway" and a "target" sshd, a client config, keys.

The target account is the current user, with HOME pointed (sshd ``SetEnv``) at a folder of
the rig, so nothing touches the real home. Everything lives under one short /tmp folder:
control socket paths must fit in about 100 bytes.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"
SSH = shutil.which("ssh") or "/usr/bin/ssh"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
VENV_BIN = str(Path(sys.executable).parent)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def write_profile(config_dir: Path, name: str, **keys: object) -> str:
    """A profile for the rig's target: ``jupyter server`` (what the test extra installs), no
    browser, and a local port of its own (the rig's "remote" is this machine, so the local
    end must not take the remote port)."""
    import tomli_w

    folder = config_dir / "profiles"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    keys.setdefault("host", "target")
    keys.setdefault("jupyter", "jupyter server")
    keys.setdefault("browser", False)
    keys.setdefault("local_port", free_port())
    (folder / f"{name}.toml").write_text(tomli_w.dumps(keys))
    return name


class Sshd:
    def __init__(self, rig: Rig, name: str) -> None:
        self.rig = rig
        self.name = name
        self.port = free_port()
        self.host_key = rig.root / f"{name}_host_key"
        subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)], check=True)
        self.config = rig.root / f"{name}_sshd_config"
        self.log = rig.root / f"{name}_sshd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    def _write_config(self) -> None:
        env = " ".join(f"{k}={v}" for k, v in self.rig.remote_env.items())
        self.config.write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {self.host_key}\n"
            f"PidFile {self.rig.root}/{self.name}.pid\n"
            f"AuthorizedKeysFile {self.rig.root}/authorized_keys\n"
            "StrictModes no\n"
            "UsePAM no\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\n"
            "PermitRootLogin prohibit-password\n"
            "AllowTcpForwarding yes\n"
            "AllowStreamLocalForwarding yes\n"
            "StreamLocalBindUnlink yes\n"
            "X11Forwarding no\n"
            "PrintMotd no\n"
            "PrintLastLog no\n"
            "MaxSessions 200\n"
            "MaxStartups 200\n"
            "ClientAliveInterval 0\n"
            f"SetEnv {env}\n"
        )

    def start(self) -> None:
        # -D: stay in the foreground (so we own the process); -e: log to stderr.
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)], stdout=log, stderr=log)
        try:
            wait_port(self.port)
        except TimeoutError:
            raise RuntimeError(f"sshd {self.name} did not start: {self.log.read_text()[-2000:]}") from None

    def kill(self) -> None:
        """Kill the listener and every session process it forked (all started by this rig)."""
        import psutil

        if self.proc is None:
            return
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            children = []
        self.proc.kill()
        self.proc.wait()
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()
        self.proc = None


class Rig:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="jt", dir="/tmp"))
        os.chmod(self.root, 0o700)
        self.user = getpass.getuser()
        self.home = self.root / "home"
        self.home.mkdir(mode=0o700)
        jconf = self.root / "jconf"
        jconf.mkdir()
        # Jupyter refuses to run as root (CI) without this.
        (jconf / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {"allow_root": True}}))
        # Where the `slurm` fixture's cluster writes its configuration: the target plays the
        # login node, so `ssh target sbatch ...` must find it (harmless when no cluster runs).
        self.slurm_conf = self.root / "slurm" / "slurm.conf"
        self.remote_env = {
            "HOME": str(self.home),
            "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
            "JUPYTER_CONFIG_DIR": str(jconf),
            "JUPYTER_PLATFORM_DIRS": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            # Private tmux and screen servers, so tests never meet a real session.
            "TMUX_TMPDIR": str(self.root),
            "SCREENDIR": str(self.root / "screens"),
            "SLURM_CONF": str(self.slurm_conf),
        }
        (self.root / "screens").mkdir(mode=0o700)
        # A login shell (the Slurm batch script runs as one) starts from /etc/profile's PATH,
        # as on a real machine; the user's ~/.profile puts their Python back in front and,
        # as Debian's skeleton does, reads ~/.bashrc under bash (where `module` may live).
        (self.home / ".profile").write_text(
            f'PATH="{VENV_BIN}:$PATH"; export PATH\n'
            'if [ -n "${BASH_VERSION-}" ] && [ -f "$HOME/.bashrc" ]; then . "$HOME/.bashrc"; fi\n'
        )
        self.client_key = self.root / "client_key"
        subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(self.client_key)], check=True)
        shutil.copy(f"{self.client_key}.pub", self.root / "authorized_keys")
        self.gateway = Sshd(self, "gateway")
        self.target = Sshd(self, "target")
        self.known_hosts = self.root / "known_hosts"
        lines = []
        for d in (self.gateway, self.target):
            pub = Path(f"{d.host_key}.pub").read_text().split()
            lines.append(f"[127.0.0.1]:{d.port} {pub[0]} {pub[1]}\n")
        self.known_hosts.write_text("".join(lines))
        self.ssh_config = self.root / "ssh_config"
        self.ssh_config.write_text(self.client_config_text())
        os.chmod(self.ssh_config, 0o600)  # ssh rejects a group/world-writable config
        self.config_dir = self.root / "cfg"
        self.state_dir = self.root / "st"
        self.runtime_dir = self.root / "rt"

    def client_config_text(self) -> str:
        return (
            f"Host gateway\n    HostName 127.0.0.1\n    Port {self.gateway.port}\n\n"
            f"Host target\n    HostName 127.0.0.1\n    Port {self.target.port}\n\n"
            # The target again, reached only through the gateway (a first-run connect test).
            f"Host behind\n    HostName 127.0.0.1\n    Port {self.target.port}\n    ProxyJump gateway\n\n"
            "Host *\n"
            f"    User {self.user}\n"
            f"    IdentityFile {self.client_key}\n"
            "    IdentitiesOnly yes\n"
            f"    UserKnownHostsFile {self.known_hosts}\n"
            "    GlobalKnownHostsFile /dev/null\n"
            "    StrictHostKeyChecking yes\n"
            "    BatchMode yes\n"
            "    LogLevel ERROR\n"
            "    ConnectTimeout 10\n"
        )

    @property
    def env(self) -> dict[str, str]:
        """Environment for running jupytunnel against this rig."""
        env = dict(os.environ)
        env.update(
            {
                "JUPYTUNNEL_SSH_CONFIG": str(self.ssh_config),
                "JUPYTUNNEL_CONFIG_DIR": str(self.config_dir),
                "JUPYTUNNEL_STATE_DIR": str(self.state_dir),
                "JUPYTUNNEL_RUNTIME_DIR": str(self.runtime_dir),
                "NO_COLOR": "1",
            }
        )
        env.pop("BROWSER", None)
        return env

    def start(self) -> None:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir (root)
        self.gateway.start()
        self.target.start()

    def runtime_files(self) -> list[Path]:
        return sorted((self.home / ".local/share/jupyter/runtime").glob("jpserver-*.json"))

    def jupyter_pids(self) -> list[int]:
        """PIDs of the Jupyter servers started on the target (their runtime files say)."""
        pids = []
        for f in self.runtime_files():
            with contextlib.suppress(OSError, ValueError):
                pids.append(int(json.loads(f.read_text())["pid"]))
        return pids

    def kill_servers(self) -> None:
        import psutil

        for pid in self.jupyter_pids():
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                if any("jupyter" in part for part in proc.cmdline()):
                    proc.kill()
        tmux = shutil.which("tmux")
        if tmux:
            subprocess.run(
                [tmux, "kill-server"],
                env={**os.environ, "TMUX_TMPDIR": str(self.root)},
                capture_output=True,
                check=False,
                timeout=10,
            )

    def stop(self) -> None:
        self.kill_servers()
        self.gateway.kill()
        self.target.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def ssh(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SSH, "-F", str(self.ssh_config), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
