"""The nudges of a master's first session (``ssh.master.Nudge``, ``runner.Forking.wait``):
newlines on the session's stdin, and connections to our own forward, so that no 40 ms
delayed-ACK stall holds the connect up. Real processes and real sockets; the figures they
buy are pair 1 of ``benchmarks/run.py``."""

from __future__ import annotations

import ast
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupytunnel import runner, tunnel
from jupytunnel.errors import CommandError
from jupytunnel.profiles import Profile
from jupytunnel.remote import ServerInfo, server
from jupytunnel.ssh import Ssh
from jupytunnel.ssh.master import Master, Nudge, finish_master

# A child that, after a while, says whether anything waits on its stdin (and what).
REPORT_STDIN = (
    "import select, sys, time\n"
    "time.sleep(0.15)\n"
    "ready = select.select([sys.stdin], [], [], 0)[0]\n"
    "print(repr(sys.stdin.buffer.read1(100)) if ready else 'nothing')\n"
)


def _forking(tmp_path: Path, code: str) -> runner.Forking:
    return runner.Forking([sys.executable, "-c", code], log_path=tmp_path / "log", capture=True)


@pytest.mark.parametrize("answer", [True, False])
def test_a_nudge_writes_a_newline_only_when_it_says_yes(tmp_path: Path, answer: bool) -> None:
    calls: list[bool] = []

    def nudge(output_started: bool) -> bool:
        calls.append(output_started)
        return answer

    result = _forking(tmp_path, REPORT_STDIN).wait(timeout=10, nudge=nudge)
    assert result.returncode == 0
    assert len(calls) >= 10  # asked every few ms while the session was quiet (150 ms)
    if not answer:
        assert result.stdout == "nothing\n"
        return
    written = ast.literal_eval(result.stdout)
    assert set(written) == {ord("\n")}
    assert len(written) >= 10  # one per quiet interval
    assert not any(calls[: len(written)])  # nudged before any output


def test_no_more_nudges_close_the_sessions_stdin(tmp_path: Path) -> None:
    """A remote reader (a login script that reads its stdin) is never left waiting."""
    answers = iter([True, True, None])
    code = "import sys\nprint(repr(sys.stdin.buffer.read()))\n"  # reads to end-of-file
    result = _forking(tmp_path, code).wait(timeout=10, nudge=lambda _: next(answers))
    assert result.stdout == repr(b"\n\n") + "\n"


def test_without_nudges_the_session_gets_end_of_file_at_once(tmp_path: Path) -> None:
    result = _forking(tmp_path, REPORT_STDIN).wait(timeout=10)
    assert result.stdout == "b''\n"  # as from /dev/null


def test_a_session_that_outlives_the_timeout_is_killed(tmp_path: Path) -> None:
    forked = _forking(tmp_path, "import time; time.sleep(30)")
    start = time.monotonic()
    with pytest.raises(CommandError, match="did not connect within"):
        forked.wait(timeout=0.3, nudge=lambda _: True)
    assert time.monotonic() - start < 5
    proc = forked._proc
    assert proc.returncode is not None  # killed and reaped
    assert proc.stdin is not None and proc.stdin.closed
    assert proc.stdout is not None and proc.stdout.closed


def test_kill_after_the_exit_closes_the_pipes(tmp_path: Path) -> None:
    forked = _forking(tmp_path, "pass")
    forked._proc.wait(timeout=10)
    forked.kill()
    assert forked._proc.stdin is not None and forked._proc.stdin.closed
    assert forked._proc.stdout is not None and forked._proc.stdout.closed


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.setblocking(False)
        yield sock


def _accepted(sock: socket.socket) -> int:
    count = 0
    time.sleep(0.05)
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def test_nudge_waits_for_the_control_socket_then_pokes_only_before_output(
    tmp_path: Path, listener: socket.socket
) -> None:
    ctl = tmp_path / "cm"
    port = listener.getsockname()[1]
    nudge = Nudge(ctl, port)
    assert nudge(False) is False  # still shaking hands: nothing is sent
    assert _accepted(listener) == 0
    ctl.touch()  # the master authenticated
    assert nudge(True) is True  # output started: the session's stdin only
    assert [nudge(False) for _ in range(12)] == [True] * 12
    assert _accepted(listener) == Nudge._MAX_POKES  # a few connections, no more
    late = Nudge(ctl, port)
    late.up_at = time.monotonic() - Nudge._POKE_WINDOW
    assert late(False) is True
    assert _accepted(listener) == 0  # past the poke window: no connection


def test_nudges_end_after_their_window(tmp_path: Path, listener: socket.socket) -> None:
    ctl = tmp_path / "cm"
    ctl.touch()
    nudge = Nudge(ctl, None)
    nudge._WINDOW = 0.1
    assert nudge(False) is True
    time.sleep(0.1)
    assert nudge(False) is None  # no more: the stdin is closed
    assert _accepted(listener) == 0  # no port given: never a connection


def test_a_session_without_our_socket_is_left_alone(tmp_path: Path) -> None:
    nudge = Nudge(tmp_path / "cm", None)
    assert nudge(False) is False
    assert nudge(True) is None  # output, and still no socket: ssh runs without multiplexing


def test_finish_master_pokes_the_forward_it_is_given(tmp_path: Path, listener: socket.socket) -> None:
    """The wiring: finish_master hands Nudge the port (a real child stands in for ssh)."""
    ctl = tmp_path / "cm"
    ctl.touch()
    master = Master(Profile(name="aura", host="aura.example"), ctl, Ssh("ssh"))
    forked = _forking(tmp_path, REPORT_STDIN)
    result = finish_master(master, forked, timeout=10, poke_port=listener.getsockname()[1])
    assert set(ast.literal_eval(result.stdout)) == {ord("\n")}
    assert _accepted(listener) >= 1


# --- when connect pokes: a server answered at that very port last time -----------------------


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("JUPYTUNNEL_STATE_DIR", str(tmp_path))
    return tmp_path


TCP = Profile(name="aura", host="aura.example", remote_port=8890)
SRV = ServerInfo(
    pid=4242, port=8890, sock=None, base_url="/", token="t" * 48, root_dir="/home/ada", version="2.14.2", classic=False
)


def test_server_expected_only_where_one_answered_last(state_dir: Path) -> None:
    assert not tunnel._server_expected(TCP)  # never connected
    server.remember(TCP, SRV)
    assert tunnel._server_expected(TCP)
    assert not tunnel._server_expected(TCP._replace(remote_port=8891))  # another port now
    assert not tunnel._server_expected(TCP._replace(host="elsewhere.example"))  # another route
    assert not tunnel._server_expected(TCP._replace(jump=("gateway",)))
    # With these, the forward's local port may not be ssh's: no connection to it.
    assert not tunnel._server_expected(TCP._replace(ssh_options={"ExitOnForwardFailure": "no"}))
    assert not tunnel._server_expected(TCP._replace(ssh_options={"clearallforwardings": "yes"}))
    auto = TCP._replace(remote_port="auto")
    server.remember(auto, SRV)
    assert tunnel._server_expected(auto)  # auto: the port it took last time
    assert not tunnel._server_expected(auto._replace(host="elsewhere.example"))  # not over this route
    sock = Profile(name="aura", host="aura.example", transport="socket")
    server.remember(sock, SRV._replace(port=None, sock="/home/ada/.local/state/jupytunnel/aura.sock"))
    assert not tunnel._server_expected(sock)  # a socket's connect has no first session to nudge
