"""Password-protected servers the user runs (issue 11, 3): connect without a token, a token
problem said as such, and `server password` hashing on the remote with jupyter_server."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import JT
from helpers import _runtime_file_for, kill_pid, run_json, wait_for
from jupyter_server.auth.security import passwd_check

from testsupport.rig import Rig, free_port

pytestmark = pytest.mark.integration

_seq = itertools.count()


def config_dir(rig: Rig) -> Path:
    """A Jupyter config dir of this test's own (the rig's one is shared by every server)."""
    folder = rig.root / f"pwconf{next(_seq)}"
    folder.mkdir()
    (folder / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {"allow_root": True}}))
    return folder


def run_with_stdin(jt: JT, stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jupytunnel", *args],
        input=stdin, capture_output=True, text=True, timeout=90, env=jt.env, check=False,
    )  # fmt: skip


def start_by_hand(rig: Rig, port: int, jconf: Path) -> int:
    cmd = (
        f"JUPYTER_CONFIG_DIR={jconf} nohup jupyter server --no-browser --ip=127.0.0.1 --port={port} "
        "--ServerApp.port_retries=0 </dev/null >/dev/null 2>&1 & echo $!"
    )
    out = rig.ssh("target", cmd)
    assert out.returncode == 0, out.stderr
    pid = int(out.stdout.strip())
    wait_for(lambda: _runtime_file_for(rig, pid) is not None, 60, f"jupyter pid {pid}")
    return pid


def test_password_set_then_connect_to_a_password_server(rig: Rig, jt: JT) -> None:
    jconf = config_dir(rig)
    port = free_port()
    # The password is hashed in the profile's setup environment: its config dir is set there.
    jt.profile("pw", remote_port=port, launcher="none", setup=[f"export JUPYTER_CONFIG_DIR={jconf}"])
    secret = "correct horse battery staple"
    out = run_with_stdin(jt, secret + "\n", "server", "password", "pw")
    assert out.returncode == 0, out.stderr
    assert f"{jconf}/jupyter_server_config.json" in out.stdout
    assert secret not in out.stdout + out.stderr
    written = json.loads((jconf / "jupyter_server_config.json").read_text())
    assert written["ServerApp"] == {"allow_root": True}  # the rest of the file is kept
    hashed = written["IdentityProvider"]["hashed_password"]
    assert hashed.startswith("argon2:")  # jupyter_server's own passwd, not ours
    assert passwd_check(hashed, secret)
    assert not passwd_check(hashed, "wrong")
    assert oct((jconf / "jupyter_server_config.json").stat().st_mode & 0o777) == "0o600"

    pid = start_by_hand(rig, port, jconf)
    try:
        runtime = json.loads(_runtime_file_for(rig, pid).read_text())  # type: ignore[union-attr]
        assert runtime["token"] == ""
        done = jt.run("connect", "pw", "--timeout", "20")
        assert done.returncode == 0, done.stderr
        url = done.stdout.strip()
        assert url == f"http://127.0.0.1:{run_json(jt.run('status', '--json'))[0]['local_port']}/"
        assert "?token=" not in url
        assert "pw: Jupyter will ask for its password" in done.stderr
        as_json = run_json(jt.run("connect", "pw", "--json"))
        assert as_json["password"] is True
        assert run_json(jt.run("status", "--json"))[0]["state"] == "up"
        # Jupyter itself asks: the API without credentials is refused, its login page is there.
        base = url.rsplit("/", 1)[0]
        import urllib.error
        import urllib.request

        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/api/status", timeout=10)
        assert refused.value.code == 403
        refused.value.close()
        with urllib.request.urlopen(f"{base}/login", timeout=10) as page:
            assert b"password" in page.read().lower()
    finally:
        kill_pid(pid)


def test_a_refused_token_is_a_token_problem_not_a_timeout(rig: Rig, jt: JT) -> None:
    port = free_port()
    jconf = config_dir(rig)
    pid = start_by_hand(rig, port, jconf)
    try:
        runtime = _runtime_file_for(rig, pid)
        assert runtime is not None
        info = json.loads(runtime.read_text())
        info["token"] = "0" * 48  # the file no longer tells the server's token
        runtime.write_text(json.dumps(info, indent=1))
        jt.profile("tok", remote_port=port, launcher="none")
        out = jt.run("connect", "tok", "--timeout", "60")
        assert out.returncode == 1
        assert "refused the token" in out.stderr
        assert str(runtime) in out.stderr  # which file
        assert f"pid {pid}" in out.stderr  # which server
        assert "did not answer" not in out.stderr
        assert "0" * 48 not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
        assert run_json(jt.run("status", "--json")) == []  # nothing left behind
    finally:
        kill_pid(pid)


def test_password_refuses_an_old_jupyter_server(rig: Rig, jt: JT) -> None:
    fake = rig.root / f"oldjs{next(_seq)}"
    (fake / "jupyter_server" / "auth").mkdir(parents=True)
    (fake / "jupyter_server" / "__init__.py").write_text('__version__ = "1.24.0"\n')
    (fake / "jupyter_server" / "auth" / "__init__.py").write_text("def passwd(p):\n    raise SystemExit(9)\n")
    jconf = config_dir(rig)
    jt.profile("old", setup=[f"export PYTHONPATH={fake}", f"export JUPYTER_CONFIG_DIR={jconf}"])
    out = run_with_stdin(jt, "s3cret\n", "server", "password", "old")
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "jupytunnel: cannot set the password on target: jupyter_server 1.24.0 is too old: "
        "a password needs jupyter_server 2 or newer"
    )
    assert json.loads((jconf / "jupyter_server_config.json").read_text()) == {"ServerApp": {"allow_root": True}}


def test_password_empty_is_refused_and_dry_run_only_prints(jt: JT) -> None:
    jt.profile("pw")
    empty = run_with_stdin(jt, "\n", "server", "password", "pw")
    assert empty.returncode == 2
    assert empty.stderr.strip() == "jupytunnel: empty password; nothing changed"
    plan = jt.run("--dry-run", "server", "password", "pw")
    assert plan.returncode == 0, plan.stderr
    assert "jupyter_server.auth" in plan.stdout
