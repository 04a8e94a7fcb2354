"""The local state files and their format: every file carries "version"; the files written
before that (format 0) are still read; a newer format or a damaged file is ignored, never
trusted (its PIDs may be signalled), and the next save replaces it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jupytunnel import runs, state, tunnel
from jupytunnel.profiles import Profile
from jupytunnel.remote import ServerInfo, server
from jupytunnel.state import RememberedServer, TunnelRecord

TOKEN = "t" * 48
SOCKET = Profile(name="aura", host="aura.example", user="ada", transport="socket")

# Exactly what jupytunnel wrote before state files had a format version (main at 0dd2156):
# TunnelRecord.to_json, and save_server({**srv._asdict(), "route": server.route(profile)}).
OLD_TUNNEL = """{
  "profile": "aura",
  "pid": 31337,
  "create_time": 1764470000.25,
  "control_path": "/run/user/1000/jupytunnel/cm-0123456789abcdef",
  "local_port": 8888,
  "remote": "aura.example:/home/ada/.local/state/jupytunnel/aura.sock",
  "host": "aura.example",
  "started_at": 1764470001.5,
  "url": "http://127.0.0.1:8888/lab?token=tttttttttttttttttttttttttttttttttttttttttttttttt",
  "server_pid": 4242,
  "base_url": "/",
  "job": null,
  "node": null,
  "password": false
}
"""
OLD_SERVER = (
    '{"pid": 4242, "port": null, "sock": "/home/ada/.local/state/jupytunnel/aura.sock", "base_url": "/", '
    '"token": "tttttttttttttttttttttttttttttttttttttttttttttttt", "root_dir": "/home/ada", "version": "2.14.2", '
    '"classic": false, "host": null, "job": null, "node": null, "password": false, '
    '"file": "/home/ada/.local/share/jupyter/runtime/jpserver-4242.json", "ui": "lab", '
    '"route": "[\\"aura.example\\", \\"ada\\", null, [], null, \\"sock:aura\\", false]"}\n'
)
RECORD = TunnelRecord(
    profile="aura", pid=31337, create_time=1764470000.25, control_path="/run/user/1000/jupytunnel/cm-0123456789abcdef",
    local_port=8888, remote="aura.example:/home/ada/.local/state/jupytunnel/aura.sock", host="aura.example",
    started_at=1764470001.5, url=f"http://127.0.0.1:8888/lab?token={TOKEN}", server_pid=4242,
)  # fmt: skip
SERVER = ServerInfo(
    pid=4242, port=None, sock="/home/ada/.local/state/jupytunnel/aura.sock", base_url="/", token=TOKEN,
    root_dir="/home/ada", version="2.14.2", classic=False,
    file="/home/ada/.local/share/jupyter/runtime/jpserver-4242.json", ui="lab",
)  # fmt: skip
RUN_ID = "20261130-023000-ab12"
RUN = runs.RunRecord(id=RUN_ID, profile="aura", host="aura.example", notebook="a.ipynb", state="done",
                     started_at=1764470000.0, ended_at=1764470060.5, exit_code=0, cells=3)  # fmt: skip


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("JUPYTUNNEL_STATE_DIR", str(tmp_path))
    return tmp_path


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# --- format 0, the files written before formats had a number -------------------------------


def test_old_tunnel_record_is_read(state_dir: Path) -> None:
    _write(state_dir / "tunnels" / "aura.json", OLD_TUNNEL)
    assert state.load("aura") == RECORD
    assert state.load_all() == [RECORD]


def test_old_remembered_server_is_read_and_used(state_dir: Path) -> None:
    _write(state_dir / "servers" / "aura.json", OLD_SERVER)
    assert state.load_server("aura") == RememberedServer(SERVER, server.route(SOCKET))
    assert tunnel._remembered(SOCKET) == SERVER  # connect tries it first, over its route
    assert tunnel._page_known(SOCKET, SERVER._replace(ui=None)) == "lab"
    assert tunnel._remembered(SOCKET._replace(user="bob")) is None  # another route: not this one


def test_old_remembered_port_of_an_auto_profile_is_read(state_dir: Path) -> None:
    auto = Profile(name="aura", host="aura.example", remote_port="auto")
    old = {**SERVER._replace(sock=None, port=40123)._asdict(), "route": server.route(auto)}
    _write(state_dir / "servers" / "aura.json", json.dumps(old) + "\n")
    assert server.remote_port(auto) == 40123
    assert server.remote_port(auto._replace(host="elsewhere.example")) is None


def test_old_run_mirror_is_read(state_dir: Path) -> None:
    old = {k: v for k, v in RUN.to_json().items() if k != "version"}
    _write(state_dir / "runs" / f"{RUN_ID}.json", json.dumps(old, indent=2) + "\n")
    assert runs.load_all() == [RUN]


# --- what is written ---------------------------------------------------------------------------


def test_every_file_written_carries_the_format(state_dir: Path) -> None:
    state.save(RECORD)
    server.remember(SOCKET, SERVER)
    runs.save(RUN)
    tunnel_file = json.loads((state_dir / "tunnels" / "aura.json").read_text())
    server_file = json.loads((state_dir / "servers" / "aura.json").read_text())
    run_file = json.loads((state_dir / "runs" / f"{RUN_ID}.json").read_text())
    assert tunnel_file == {"version": 1, **RECORD._asdict()}
    assert server_file == {"version": 1, "route": server.route(SOCKET), "server": SERVER._asdict()}
    assert run_file["version"] == 1
    assert state.FORMAT == 1
    # ... and each reads back as it was.
    assert state.load("aura") == RECORD
    assert state.load_server("aura") == RememberedServer(SERVER, server.route(SOCKET))
    assert runs.load_all() == [RUN]
    for path in (state_dir / "tunnels" / "aura.json", state_dir / "servers" / "aura.json"):
        assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_the_type_tables_name_every_field() -> None:
    """A field added to a record without a type here would be read from files unchecked."""
    assert list(state._TUNNEL_TYPES) == list(TunnelRecord._fields)
    assert list(state._SERVER_TYPES) == list(ServerInfo._fields)
    assert list(runs._TYPES) == list(runs.RunRecord._fields)


# --- a newer format, or damage: ignored, then replaced -------------------------------------


NEWER = [{"version": 2}, {"version": 99, "format": "whatever"}]


@pytest.mark.parametrize("extra", NEWER)
def test_newer_tunnel_record_is_ignored_and_replaced(state_dir: Path, extra: dict[str, Any]) -> None:
    path = state_dir / "tunnels" / "aura.json"
    _write(path, json.dumps({**RECORD._asdict(), **extra}))
    assert state.load("aura") is None
    assert state.load_all() == []
    fresh = RECORD._replace(pid=4000)
    state.save(fresh)
    assert json.loads(path.read_text())["version"] == 1
    assert state.load("aura") == fresh


@pytest.mark.parametrize("extra", NEWER)
def test_newer_remembered_server_is_ignored_and_replaced(state_dir: Path, extra: dict[str, Any]) -> None:
    path = state_dir / "servers" / "aura.json"
    _write(path, json.dumps({"route": server.route(SOCKET), "server": SERVER._asdict(), **extra}))
    assert state.load_server("aura") is None
    assert tunnel._remembered(SOCKET) is None  # discovery instead: no token sent from it
    server.remember(SOCKET, SERVER)
    assert json.loads(path.read_text())["version"] == 1
    assert tunnel._remembered(SOCKET) == SERVER


@pytest.mark.parametrize("extra", NEWER)
def test_newer_run_mirror_is_ignored_and_replaced(state_dir: Path, extra: dict[str, Any]) -> None:
    path = state_dir / "runs" / f"{RUN_ID}.json"
    _write(path, json.dumps({**RUN.to_json(), **extra}))
    assert runs.load_all() == []
    runs.save(RUN)
    assert runs.load_all() == [RUN]


@pytest.mark.parametrize(
    "change",
    [
        {"pid": "31337"},
        {"pid": True},
        {"pid": None},
        {"create_time": "soon"},
        {"local_port": 8888.0},
        {"password": 1},
        {"server_pid": "4242"},
        {"job": 7},
        {"version": "1"},  # a format is a number
        {"version": True},
        {"version": 1.0},
        {"version": None, "profile": None},
    ],
)
def test_tunnel_record_of_wrong_types_is_ignored(change: dict[str, Any]) -> None:
    good = json.loads(RECORD.to_json())
    assert TunnelRecord.from_json(json.dumps(good).encode()) == RECORD
    assert TunnelRecord.from_json(json.dumps({**good, **change}).encode()) is None


@pytest.mark.parametrize(
    "change",
    [
        {"pid": "4242"},
        {"pid": False},
        {"port": "8888"},
        {"sock": 5},
        {"token": None},
        {"classic": "no"},
        {"password": 1},
        {"host": ["a"]},
        {"ui": 0},
        {"version": 2},  # Jupyter's version must be a string; a number is a format, and unknown
    ],
)
def test_remembered_server_of_wrong_types_is_ignored(change: dict[str, Any]) -> None:
    new = json.loads(RememberedServer(SERVER, "r").to_json())
    assert RememberedServer.from_json(json.dumps(new).encode()) == RememberedServer(SERVER, "r")
    assert RememberedServer.from_json(json.dumps({**new, "server": {**new["server"], **change}}).encode()) is None
    old = json.loads(OLD_SERVER)
    assert RememberedServer.from_json(json.dumps({**old, **change}).encode()) is None


@pytest.mark.parametrize(
    "text",
    [
        '{"version": 1, "route": 5, "server": {}}',
        '{"version": 1, "server": {"pid": 1}}',
        '{"version": 1, "route": "r", "server": []}',
        '{"version": 1, "route": "r"}',
        '{"pid": 4242, "port": null, "sock": null}',  # format 0 without the route nor most fields
        "[]",
        "null",
        "not json",
        "[" * 100000,
    ],
)
def test_damaged_remembered_server_is_ignored(state_dir: Path, text: str) -> None:
    _write(state_dir / "servers" / "aura.json", text)
    assert state.load_server("aura") is None
    assert tunnel._remembered(SOCKET) is None
    server.remember(SOCKET, SERVER)
    assert state.load_server("aura") == RememberedServer(SERVER, server.route(SOCKET))


@pytest.mark.parametrize("change", [{"cell": "2"}, {"started_at": "x"}, {"workdir": None}, {"version": "1"}])
def test_run_mirror_of_wrong_types_is_ignored(change: dict[str, Any]) -> None:
    assert runs.RunRecord.from_json(RUN.to_json()) == RUN
    assert runs.RunRecord.from_json({**RUN.to_json(), **change}) is None


def test_reading_state_stays_light() -> None:
    """status reads tunnel records on every call: no remote scripts, no dataclasses (inspect)."""
    heavy = "{'dataclasses', 'inspect', 'jupytunnel.remote'}"
    code = f"import sys, jupytunnel.state as s; s.load_all(); print(sorted(set(sys.modules) & {heavy}))"
    # Not under coverage's subprocess patch: coverage itself imports dataclasses and inspect.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, env=env)
    assert out.stdout.strip() == "[]"
