"""``--dry-run server …`` is the real code with the runner recording: each command, run for
real with ``-v`` and as a dry run, runs the same commands in the same order (run-time values
aside: the temporary master's PID suffix, the server's PID, the remote home), and the dry
run leaves nothing behind."""

from __future__ import annotations

import itertools
import json

import pytest
from conftest import JT
from helpers import dry_and_real, dry_run_commands, jupyter_on_port, normalised_commands, run_json, wait_for

from testsupport.rig import Rig, free_port

pytestmark = pytest.mark.integration

_seq = itertools.count()


@pytest.mark.parametrize(("launcher", "transport"), [("nohup", "tcp"), ("tmux", "socket")])
def test_server_commands_dry_run_what_they_run(jt: JT, rig: Rig, launcher: str, transport: str) -> None:
    name = f"dry{next(_seq)}"
    port = free_port()
    jt.profile(name, remote_port=port, launcher=launcher, transport=transport)
    home = str(rig.home)
    runs = {}
    # start while none runs; the others while it runs (what their dry runs assume).
    for args in (("start",), ("list",), ("logs", "-n", "3"), ("stop",)):
        runs[args[0]] = dry_and_real(jt, "server", args[0], name, *args[1:])
        if args[0] == "start":
            listed = run_json(jt.run("server", "list", name, "--json"))
            pid = next(s["pid"] for s in listed if s["profile"])
    for command, (dry, real) in runs.items():
        assert dry.strip(), command
        assert normalised_commands(dry, pid=pid, home=home) == normalised_commands(real, pid=pid, home=home), command
    wait_for(lambda: not any(s["profile"] for s in run_json(jt.run("server", "list", name, "--json"))), 20, "stop")


def test_dry_run_start_starts_nothing(jt: JT) -> None:
    port = free_port()
    jt.profile("drystart", remote_port=port)
    out = jt.run("--dry-run", "server", "start", "drystart")
    assert out.returncode == 0, out.stderr
    commands = dry_run_commands(out.stdout)
    assert {"-N", "-f", "-M"} <= set(commands[0])  # the temporary master, then its exit
    assert commands[-1][-3:-1] == ["-O", "exit"]
    assert len(commands) == 5  # the master, discovery, the start script, one poll, the exit
    assert "# assume no server runs yet" in out.stdout
    assert jupyter_on_port(port) == []
    assert not list(jt.runtime_dir.glob("cm-*"))
    assert not (jt.state_dir / "locks").exists()


def test_password_dry_run_what_it_runs(jt: JT, rig: Rig) -> None:
    jconf = rig.root / f"dryconf{next(_seq)}"
    jconf.mkdir()
    (jconf / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {"allow_root": True}}))
    jt.profile("drypw", setup=[f"export JUPYTER_CONFIG_DIR={jconf}"])
    dry, real = dry_and_real(jt, "server", "password", "drypw", stdin="s3cret\n")
    assert "# ask for the new password" in dry
    assert "s3cret" not in dry + real
    home = str(rig.home)
    assert normalised_commands(dry, pid=None, home=home) == normalised_commands(real, pid=None, home=home)
    assert "hashed_password" in (jconf / "jupyter_server_config.json").read_text()
