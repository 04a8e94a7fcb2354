"""connect as a transaction: an interruption after any step undoes every step before it, in
reverse, and a success undoes nothing. The steps' own work is replaced here by recorders (the
rig tests run them for real: test_tunnel, test_remote_procs, test_slurm); what is pinned is
the order of the undo."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupytunnel import runner, state, tunnel
from jupytunnel.errors import JupytunnelError
from jupytunnel.profiles import Profile
from jupytunnel.remote import ServerInfo
from jupytunnel.remote import server as remote_server

SERVER = ServerInfo(pid=77, port=8888, sock=None, base_url="/", token="t0k", root_dir="/h", version="2", classic=False)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM, which connect turns into it) at one chosen step."""


@pytest.fixture
def steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("JUPYTUNNEL_STATE_DIR", str(tmp_path / "st"))
    monkeypatch.setenv("JUPYTUNNEL_RUNTIME_DIR", str(tmp_path / "rt"))
    done: list[str] = []

    def open_master(*_a: object, **_k: object) -> tuple[runner.Result, int, str | None]:
        done.append("open master")
        return runner.Result([], 0, "", ""), 9999, None

    def teardown(record: state.TunnelRecord | None, _master: object) -> None:
        done.append(f"undo: end master pid {record.pid if record else None}")

    def start(*_a: object, **_k: object) -> ServerInfo:
        done.append("start server")
        return SERVER

    def stop(_master: object, srv: ServerInfo, **_k: object) -> None:
        done.append(f"undo: stop server {srv.pid}")

    def forward(*_a: object, **_k: object) -> int:
        done.append("forward")
        return 9999

    def settle(_p: object, record: state.TunnelRecord, *_a: object, **_k: object) -> state.TunnelRecord:
        done.append("settle")
        return record

    monkeypatch.setattr(tunnel, "_open_master", open_master)
    monkeypatch.setattr(tunnel, "_verified_master", lambda _m: (4242, 1.5))
    monkeypatch.setattr(tunnel, "teardown", teardown)
    monkeypatch.setattr(tunnel, "choose_port", lambda *_a: 9999)
    monkeypatch.setattr(tunnel, "_add_forward", forward)
    monkeypatch.setattr(tunnel, "_settle", settle)
    monkeypatch.setattr(tunnel, "job_info", lambda _r: None)
    monkeypatch.setattr(remote_server, "find", lambda *_a, **_k: remote_server.Found(None, "/h", []))
    monkeypatch.setattr(remote_server, "start", start)
    monkeypatch.setattr(remote_server, "stop", stop)
    return done


def interrupt_at(monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """Make the step named ``where`` raise after it has been done."""
    original = {"settle": tunnel._settle, "forward": tunnel._add_forward}[where]

    def then_interrupt(*a: object, **k: object) -> object:
        original(*a, **k)  # type: ignore[operator]
        raise Interrupted

    monkeypatch.setattr(tunnel, {"settle": "_settle", "forward": "_add_forward"}[where], then_interrupt)


PROFILE = Profile(name="aura", host="h", remote_port=8888, local_port=9999)


def test_success_undoes_nothing(steps: list[str]) -> None:
    result = tunnel.connect(PROFILE, timeout=5)
    assert steps == ["open master", "start server", "forward", "settle"]
    assert result.started_server is True
    assert result.record.pid == 4242
    assert state.load("aura") == result.record


@pytest.mark.parametrize(
    ("where", "undone"),
    [
        ("forward", ["undo: stop server 77", "undo: end master pid 4242"]),
        ("settle", ["undo: stop server 77", "undo: end master pid 4242"]),
    ],
)
def test_an_interruption_undoes_every_step_before_it_in_reverse(
    steps: list[str], monkeypatch: pytest.MonkeyPatch, where: str, undone: list[str]
) -> None:
    interrupt_at(monkeypatch, where)
    with pytest.raises(Interrupted):
        tunnel.connect(PROFILE, timeout=5)
    assert steps[steps.index(where) + 1 :] == undone
    assert state.load("aura") is None  # the record (written at step 3) is gone too
    assert not state.record_path("aura").exists()


def test_an_interrupted_start_leaves_the_start_to_undo_itself(
    steps: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start cut off undoes itself (server.start aborts its launch); connect ends the master."""

    def start(*_a: object, **_k: object) -> ServerInfo:
        steps.append("start server")
        raise Interrupted

    monkeypatch.setattr(remote_server, "start", start)
    with pytest.raises(Interrupted):
        tunnel.connect(PROFILE, timeout=5)
    assert steps == ["open master", "start server", "undo: end master pid 4242"]


def test_the_master_is_ended_even_when_its_pid_was_never_proven(
    steps: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unproven(_master: object) -> tuple[int, float]:
        raise JupytunnelError("ssh to h started but its master cannot be found")

    monkeypatch.setattr(tunnel, "_verified_master", unproven)
    with pytest.raises(JupytunnelError):
        tunnel.connect(PROFILE, timeout=5)
    assert steps == ["open master", "undo: end master pid None"]  # found by its socket instead


def test_a_remembered_server_the_discovery_does_not_find_is_forgotten(steps: list[str]) -> None:
    """The hint that lets the first session's nudges connect to the forward (a server
    answered there) goes with the server: the next connect pokes no dead port."""
    remote_server.remember(PROFILE, SERVER)
    assert tunnel._server_expected(PROFILE)
    tunnel.connect(PROFILE, timeout=5)  # found none (the fixture's find), so started one
    assert steps == ["open master", "start server", "forward", "settle"]
    assert state.load_server("aura") is None
    assert not tunnel._server_expected(PROFILE)


def test_without_the_hint_nothing_is_forgotten(steps: list[str]) -> None:
    remembered = SERVER._replace(port=8890)  # another port than the profile's: no hint
    remote_server.remember(PROFILE, remembered)
    assert not tunnel._server_expected(PROFILE)
    tunnel.connect(PROFILE, timeout=5)
    loaded = state.load_server("aura")
    assert loaded is not None and loaded.server == remembered
