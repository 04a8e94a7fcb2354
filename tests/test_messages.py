"""Messages that name the cause (issue 11, 6): each hop's ssh cause, the page the server
serves, rounded timings."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest
from conftest import JT
from helpers import kill_pid, run_json, start_server_by_hand

from jupytunnel.errors import seconds
from jupytunnel.ssh.master import ssh_message
from testsupport.rig import Rig, free_port

# A server extension that registers one page, as JupyterLab (/lab) or Notebook 7 (/tree) do.
_EXTENSION = """
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
import tornado.web

class Page(JupyterHandler):
    @tornado.web.authenticated
    def get(self):
        self.finish("a page")

def _jupyter_server_extension_points():
    return [{"module": __name__}]

def _load_jupyter_server_extension(app):
    base = app.web_app.settings["base_url"]
    app.web_app.add_handlers(".*$", [(url_path_join(base, "PAGE"), Page)])
"""


def page_server(rig: Rig, port: int, page: str) -> int:
    folder = rig.root / f"ext_{page}_{port}"
    folder.mkdir()
    (folder / f"fake_{page}.py").write_text(_EXTENSION.replace("PAGE", page))
    return _start_with_path(rig, port, folder, f"fake_{page}")


def _start_with_path(rig: Rig, port: int, folder: Path, module: str) -> int:
    from helpers import _runtime_file_for, wait_for

    cmd = (
        f"PYTHONPATH={folder} nohup jupyter server --no-browser --ip=127.0.0.1 --port={port} "
        f"--ServerApp.port_retries=0 --ServerApp.jpserver_extensions=\"{{'{module}': True}}\" "
        "</dev/null >/dev/null 2>&1 & echo $!"
    )
    out = rig.ssh("target", cmd)
    assert out.returncode == 0, out.stderr
    pid = int(out.stdout.strip())
    wait_for(lambda: _runtime_file_for(rig, pid) is not None, 60, f"jupyter pid {pid}")
    return pid


@pytest.mark.integration
@pytest.mark.parametrize("page", ["", "lab", "tree"])
def test_url_path_is_a_page_the_server_serves(rig: Rig, jt: JT, page: str) -> None:
    port = free_port()
    pid = start_server_by_hand(rig, port) if not page else page_server(rig, port, page)
    try:
        jt.profile("pages", remote_port=port, launcher="none")
        out = run_json(jt.run("connect", "pages", "--json"))
        assert out["url"].startswith(f"http://127.0.0.1:{out['local_port']}/{page}?token=")
        with urllib.request.urlopen(out["url"], timeout=10) as resp:  # the page itself, with the token
            assert resp.status == 200
        assert run_json(jt.run("connect", "pages", "--json"))["url"] == out["url"]  # reuse keeps it
    finally:
        kill_pid(pid)


def _config_with(rig: Rig, tmp_path: Path, extra: str) -> dict[str, str]:
    cfg = tmp_path / "ssh_config"
    cfg.write_text(extra + rig.client_config_text())
    cfg.chmod(0o600)
    return {"JUPYTUNNEL_SSH_CONFIG": str(cfg)}


@pytest.mark.integration
def test_each_hops_cause_is_kept(rig: Rig, jt: JT, tmp_path: Path) -> None:
    closed = free_port()
    env = {
        **jt.env,
        **_config_with(
            rig,
            tmp_path,
            f"Host deadjump\n    HostName 127.0.0.1\n    Port {closed}\n\n"
            f"Host deadtarget\n    HostName 127.0.0.1\n    Port {closed}\n\n",
        ),
    }
    jt.profile("hop1", host="target", jump=["deadjump"], launcher="none")
    first = jt.run("connect", "hop1", "--timeout", "20", env=env)
    assert first.returncode == 1
    assert f"connect to host 127.0.0.1 port {closed}: Connection refused" in first.stderr
    assert len(first.stderr.strip().splitlines()) == 1
    # The jump host answers; the target behind it does not: the jump's own cause is kept.
    jt.profile("hop2", host="deadtarget", jump=["gateway"], launcher="none")
    second = jt.run("connect", "hop2", "--timeout", "20", env=env)
    assert second.returncode == 1
    assert "stdio forwarding failed" in second.stderr, second.stderr
    assert len(second.stderr.strip().splitlines()) == 1


def test_ssh_message_keeps_the_cause_lines_of_every_hop() -> None:
    stderr = (
        "channel 0: open failed: connect failed: Connection refused\n"
        "stdio forwarding failed\n"
        "kex_exchange_identification: Connection closed by remote host\n"
        "Connection closed by UNKNOWN port 65535\n"
    )
    assert ssh_message(stderr) == (
        "channel 0: open failed: connect failed: Connection refused / stdio forwarding failed / "
        "Connection closed by UNKNOWN port 65535"
    )
    assert ssh_message(
        "Warning: Permanently added x\nssh: Could not resolve hostname nowhere: Name or service not known\n"
    ) == ("ssh: Could not resolve hostname nowhere: Name or service not known")
    assert ssh_message("a\nb\nc\nd\n") == "b / c / d"


def test_timings_in_messages_are_rounded() -> None:
    assert [seconds(x) for x in (4.70141, 30.0, 0.04, 59.96, 3)] == ["4.7", "30", "0", "60", "3"]


@pytest.mark.integration
def test_a_slow_start_names_a_rounded_time(jt: JT) -> None:
    jt.profile("slow", remote_port=free_port(), setup=["sleep 30"])
    out = jt.run("connect", "slow", "--timeout", "2.34567", timeout=60)
    assert out.returncode == 1
    assert re.search(r"within \d+(\.\d)? s", out.stderr), out.stderr
    assert not re.search(r"\d\.\d\d", out.stderr), out.stderr
