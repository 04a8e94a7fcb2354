"""write-ssh-config over real users' ssh configs (issue 11, 8).

The corpus (``../shared/data/sshconfigs`` beside the repository, or the folder named by
``JUPYTUNNEL_TEST_SSHCONFIGS``) holds configs from public repositories: Include, Match,
ControlMaster, CRLF, tabs, equals syntax, no final newline. For each, profiles whose host is
an alias of the file get blocks; then plain ``ssh -G NAME`` must resolve every option that
changes how the connection is made or authenticated as ``ssh -G HOST`` does, and no byte
outside the blocks may change. Skipped when the corpus is absent.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from jupytunnel.profiles import Profile
from jupytunnel.ssh import config as sshconfig
from jupytunnel.ssh.config_file import SESSION_OPTIONS
from testsupport.rig import SSH

HERE = Path(__file__).resolve().parent
_CANDIDATES = [
    HERE.parent / ".." / "shared" / "data" / "sshconfigs",
    Path(os.environ.get("JUPYTUNNEL_TEST_SSHCONFIGS", "/nonexistent")),
]
CORPUS = next((p.resolve() for p in _CANDIDATES if p.is_dir()), None)
FILES = sorted(CORPUS.glob("*.conf")) if CORPUS else []
_HOST_RE = re.compile(rb"^[ \t]*host(?:[ \t]*=[ \t]*|[ \t]+)(.+?)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_EXEC_RE = re.compile(rb"^[ \t]*match\b.*\bexec\b", re.IGNORECASE | re.MULTILINE)
_DEFAULT_IDENTITY_RE = re.compile(r"~/\.ssh/id_\w+")


def aliases(data: bytes, limit: int = 2) -> list[str]:
    """Concrete host names of ``Host`` lines (no patterns), the first few."""
    out: list[str] = []
    for match in _HOST_RE.finditer(data):
        for word in match.group(1).split():
            text = word.strip(b'"').decode(errors="replace")
            if text and not any(c in text for c in "*?!%,") and text not in out and text.isascii():
                out.append(text)
    return out[:limit]


def ssh_g(config: Path, host: str) -> dict[str, list[str]] | None:
    proc = subprocess.run(
        [SSH, "-F", str(config), "-G", host],
        capture_output=True, text=True, errors="replace", timeout=20, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    return sshconfig.parse_resolved(proc.stdout) if proc.returncode == 0 else None


def own_options(name: str, host: str) -> set[str]:
    """What the block sets itself (jupytunnel's tunnel options, such as ServerAliveInterval)."""
    profile = Profile(name=name, host=host)
    return {k.lower() for k, _ in sshconfig.block_options(profile, hostname=host, forward=None)} - {"hostname"}


def connection_options(resolved: dict[str, list[str]], skip: set[str]) -> dict[str, list[str]]:
    out = {k: v for k, v in resolved.items() if k not in SESSION_OPTIONS and k not in skip}
    out["identityfile"] = sorted(v for v in resolved.get("identityfile", []) if not _DEFAULT_IDENTITY_RE.fullmatch(v))
    return out


@pytest.mark.skipif(CORPUS is None, reason="the ssh config corpus (../shared/data/sshconfigs) is absent")
@pytest.mark.parametrize("source", FILES or [Path("none")], ids=lambda p: p.name)
def test_write_ssh_config_over_a_real_config(source: Path, tmp_path: Path) -> None:
    data = source.read_bytes()
    if _EXEC_RE.search(data):
        pytest.skip("a Match exec line would run a command during ssh -G")
    original = tmp_path / "orig_config"
    original.write_bytes(data)
    original.chmod(0o600)
    if ssh_g(original, "plain.example") is None:
        pytest.skip("OpenSSH here does not accept this config as it is")
    config = tmp_path / "config"
    config.write_bytes(data)
    config.chmod(0o600)
    hosts = aliases(data) or ["plain.example"]
    profiles = tmp_path / "cfg" / "profiles"
    profiles.mkdir(parents=True)
    names = []
    for i, host in enumerate(hosts):
        name = f"jtcorpus{i}"
        (profiles / f"{name}.toml").write_text(tomli_w.dumps({"host": host, "local_port": 18000 + i}))
        names.append(name)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("JUPYTUNNEL_")},
        "JUPYTUNNEL_CONFIG_DIR": str(tmp_path / "cfg"),
        "JUPYTUNNEL_STATE_DIR": str(tmp_path / "st"),
        "JUPYTUNNEL_RUNTIME_DIR": str(tmp_path / "rt"),
        "NO_COLOR": "1",
    }
    out = subprocess.run(
        [sys.executable, "-m", "jupytunnel", "write-ssh-config", *names, "--file", str(config)],
        capture_output=True, text=True, errors="replace", env=env, timeout=120, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert "Traceback" not in out.stderr
    new = config.read_bytes()
    if out.returncode != 0:
        assert out.returncode in (1, 2)
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert new == data  # refused: nothing written
        return
    assert sshconfig.remove_all(new) == data  # no byte outside the blocks changed
    for name, host in zip(names, hosts, strict=True):
        truth = ssh_g(original, host)
        got = ssh_g(config, name)
        assert truth is not None
        assert got is not None
        own = own_options(name, host)
        want, have = connection_options(truth, own), connection_options(got, own)
        have["identityfile"] = [v for v in have["identityfile"] if v in want["identityfile"]]
        differ = {k: (want.get(k), have.get(k)) for k in want.keys() | have.keys() if want.get(k) != have.get(k)}
        assert differ == {}, f"{name} (Host {host}): ssh -G NAME differs from ssh -G HOST"


def test_alias_block_carries_how_the_connection_is_made_not_session_options(tmp_path: Path) -> None:
    config = tmp_path / "config"
    original = (
        b"Host lab\n"
        b"    HostName 10.1.2.3\n"
        b"    GSSAPIAuthentication yes\n"
        b"    IdentityAgent /tmp/agent.sock\n"
        b"    StrictHostKeyChecking accept-new\n"
        b"    UserKnownHostsFile /tmp/known_a /tmp/known_b\n"
        b"    PreferredAuthentications gssapi-with-mic,publickey\n"
        b"    AddressFamily inet\n"
        b"    ForwardAgent yes\n"
        b"    RequestTTY force\n"
    )
    config.write_bytes(original)
    config.chmod(0o600)
    (tmp_path / "cfg" / "profiles").mkdir(parents=True)
    (tmp_path / "cfg" / "profiles" / "labby.toml").write_text('host = "lab"\nlocal_port = 18888\n')
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("JUPYTUNNEL_")},
        "JUPYTUNNEL_CONFIG_DIR": str(tmp_path / "cfg"),
        "JUPYTUNNEL_STATE_DIR": str(tmp_path / "st"),
    }
    out = subprocess.run(
        [sys.executable, "-m", "jupytunnel", "write-ssh-config", "labby", "--file", str(config)],
        capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    got = ssh_g(config, "labby")
    assert got is not None
    assert got["gssapiauthentication"] == ["yes"]
    assert got["identityagent"] == ["/tmp/agent.sock"]
    assert got["stricthostkeychecking"] == ["accept-new"]
    assert got["userknownhostsfile"] == ["/tmp/known_a /tmp/known_b"]
    assert got["preferredauthentications"] == ["gssapi-with-mic,publickey"]
    assert got["addressfamily"] == ["inet"]
    assert got["forwardagent"] == ["no"]  # a session option: the block leaves it out
    assert got["requesttty"] != ["force"]
    assert sshconfig.remove_all(config.read_bytes()) == original
