"""``jupytunnel sync``: the pure parts (argv, paths, the remote check, rsync's output) and
the runner's relay, with real local processes (rsync, sh, python); no ssh."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jupytunnel import runner
from jupytunnel import sync as s
from jupytunnel.errors import JupytunnelError, UsageError
from jupytunnel.profiles import Profile, SyncSettings
from jupytunnel.ssh import Ssh
from jupytunnel.ssh import args as sshargs

RSYNC = "/usr/bin/rsync"
SSH = ["/usr/bin/ssh", "-F", "/tmp/c fg", "-S", "/rt/cm-0123", "-o", "ControlMaster=no"]
E = "/usr/bin/ssh -F '/tmp/c fg' -S /rt/cm-0123 -o ControlMaster=no"
BASE = [RSYNC, "-a", "-s", "-8", "--update", "--partial-dir=.rsync-partial", "--stats", "--timeout=600"]


# --- argv -----------------------------------------------------------------------------------


def test_rsync_argv_push_defaults() -> None:
    assert s.rsync_argv(rsync=RSYNC, ssh=SSH, source="/l/p/", dest="aura:/home/a/p/") == [
        *BASE,
        "-e",
        E,
        "/l/p/",
        "aura:/home/a/p/",
    ]


def test_rsync_argv_every_option() -> None:
    argv = s.rsync_argv(
        rsync=RSYNC,
        ssh=SSH,
        source="aura:/home/a/p/",
        dest="/l/p/",
        delete=True,
        exclude=["*.ckpt", "data dir/"],
        dry_run=True,
        progress=True,
        io_timeout=60,
    )
    assert argv == [
        *BASE[:-1],
        "--timeout=60",
        "--delete",
        "--exclude=*.ckpt",
        "--exclude=data dir/",
        "--dry-run",
        "--itemize-changes",
        "--info=progress2",
        "-e",
        E,
        "aura:/home/a/p/",
        "/l/p/",
    ]


def test_the_e_string_is_the_mux_client_of_the_master() -> None:
    mux = sshargs.mux_client_args(ssh=Ssh("/usr/bin/ssh", "/c"), control_path="/rt/cm-0123")
    assert mux == [
        "/usr/bin/ssh", "-F", "/c", "-S", "/rt/cm-0123",
        "-o", "ControlMaster=no", "-o", "ProxyCommand=false", "-o", "BatchMode=yes",
    ]  # fmt: skip
    assert s.ssh_command(mux) == (
        "/usr/bin/ssh -F /c -S /rt/cm-0123 -o ControlMaster=no -o ProxyCommand=false -o BatchMode=yes"
    )
    # remote_argv is the same client with a host and a command.
    assert sshargs.remote_argv(
        Profile(name="a", host="aura"), "true", ssh=Ssh("/usr/bin/ssh", "/c"), control_path="/rt/cm-0123"
    ) == [*mux, "-T", "aura", "true"]


def test_e_string_survives_rsyncs_own_splitting(tmp_path: Path) -> None:
    """rsync splits -e on spaces and honours quotes: a fake ssh records the argv it got."""
    fake = tmp_path / "bin dir" / "fake ssh"
    fake.parent.mkdir()
    record = tmp_path / "argv"
    fake.write_text(f"#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > '{record}'\nexit 1\n")
    fake.chmod(0o755)
    ssh = [str(fake), "-F", "/tmp/it's a cfg", "-S", "/rt/cm x", "-o", 'ProxyCommand=ssh -W "%h:%p" gw']
    argv = s.rsync_argv(rsync=RSYNC, ssh=ssh, source=f"{tmp_path}/", dest="aura:/x/")
    subprocess.run(argv, capture_output=True, timeout=30, check=False)
    got = record.read_text().splitlines()
    assert got[: len(ssh) - 1] == ssh[1:]
    assert got[len(ssh) - 1] == "aura"


def test_endpoints() -> None:
    assert s.endpoints("push", local="/l/p", host="aura", remote_path="/h/p") == ("/l/p/", "aura:/h/p/")
    assert s.endpoints("pull", local="/l/p/", host="aura", remote_path="/h/p") == ("aura:/h/p/", "/l/p/")
    assert s.endpoints("push", local="/l", host="::1", remote_path="/h") == ("/l/", "[::1]:/h/")


# --- folders --------------------------------------------------------------------------------


def prof(**kw: object) -> Profile:
    return Profile(name="aura", host="aura", **kw)  # type: ignore[arg-type]


def test_default_folders_follow_cwd_and_workdir(tmp_path: Path) -> None:
    assert s.choose_folders(prof(), None, None, cwd="/l/thesis") == s.Folders("/l/thesis", "~/thesis")
    assert s.choose_folders(prof(workdir="~/projects"), None, None, cwd="/l/thesis").remote == "~/projects/thesis"
    assert s.choose_folders(prof(workdir="/scratch/ada/"), "data", None, cwd="/l").remote == "/scratch/ada/data"
    assert s.choose_folders(prof(), "../x/", None, cwd="/l/thesis") == s.Folders("/l/x", "~/x")
    home = os.path.expanduser("~")
    assert s.choose_folders(prof(), "~/res", "/abs/res/", cwd="/l") == s.Folders(f"{home}/res", "/abs/res")


def test_the_profile_sync_table() -> None:
    table = prof(sync=SyncSettings(local="/l/thesis", remote="~/work/t", exclude=("*.ckpt",)))
    assert s.choose_folders(table, None, None, cwd="/elsewhere") == s.Folders("/l/thesis", "~/work/t")
    # A LOCAL on the command line does not pair with the profile's remote.
    assert s.choose_folders(table, "/l/other", None, cwd="/") == s.Folders("/l/other", "~/other")
    only_remote = prof(sync=SyncSettings(remote="~/r"))
    assert s.choose_folders(only_remote, None, None, cwd="/l/x") == s.Folders("/l/x", "~/r")


@pytest.mark.parametrize(
    ("local", "remote", "fragment"),
    [
        (None, "~bob/x", "only '~' and '~/...'"),
        (None, "a\nb", "control characters"),
        ("/", None, "name the REMOTE folder"),
        ("", None, "empty"),
        (None, "", "must not be empty"),
    ],
)
def test_bad_folders(local: str | None, remote: str | None, fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment):
        s.choose_folders(prof(), local, remote, cwd="/l/x")


@pytest.mark.parametrize(
    ("remote", "rest", "expr", "absolute"),
    [
        ("~", "", '"$HOME"', "/home/ada"),
        ("~/a b/ü", "a b/ü", "\"$HOME\"/'a b/ü'", "/home/ada/a b/ü"),
        ("rel/x", "rel/x", '"$HOME"/rel/x', "/home/ada/rel/x"),
        ("/scratch/it's", None, "'/scratch/it'\"'\"'s'", "/scratch/it's"),
    ],
)
def test_remote_path_rules(remote: str, rest: str | None, expr: str, absolute: str) -> None:
    assert s.home_relative(remote) == rest
    assert s.remote_expr(remote) == expr
    assert s.absolute_remote(remote, "/home/ada/") == absolute


# --- the remote check, run by the local sh ----------------------------------------------------


def run_preflight(tmp_path: Path, remote: str, *, direction: s.Direction, create: bool, path: str) -> str:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    script = s.preflight_script(remote, direction=direction, create=create)
    out = subprocess.run(
        ["/bin/sh", "-c", script], capture_output=True, text=True, env={"HOME": str(home), "PATH": path}, timeout=30
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def check(stdout: str, remote: str) -> s.Remote:
    return s.check_preflight(stdout, remote=remote, host="aura", why="exit 1: x")


def test_preflight_push_makes_the_folder(tmp_path: Path) -> None:
    out = run_preflight(tmp_path, "~/a b/ü", direction="push", create=True, path="/usr/bin:/bin")
    found = check(out, "~/a b/ü")
    assert found.path == f"{tmp_path}/home/a b/ü"
    assert found.rsync.startswith("rsync  version")
    assert (tmp_path / "home" / "a b" / "ü").is_dir()


def test_preflight_dry_run_makes_nothing(tmp_path: Path) -> None:
    out = run_preflight(tmp_path, "~/new", direction="push", create=False, path="/usr/bin:/bin")
    assert check(out, "~/new").path == f"{tmp_path}/home/new"
    assert not (tmp_path / "home" / "new").exists()


def test_preflight_failures(tmp_path: Path) -> None:
    out = run_preflight(tmp_path, "~/gone", direction="pull", create=True, path="/usr/bin:/bin")
    with pytest.raises(JupytunnelError, match=r"^remote folder ~/gone \(.*/home/gone\) does not exist on aura$"):
        check(out, "~/gone")
    (tmp_path / "home" / "afile").write_text("")
    out = run_preflight(tmp_path, "~/afile", direction="pull", create=True, path="/usr/bin:/bin")
    with pytest.raises(JupytunnelError, match="is not a folder"):
        check(out, "~/afile")
    out = run_preflight(tmp_path, "~/afile/sub", direction="push", create=True, path="/usr/bin:/bin")
    with pytest.raises(JupytunnelError, match="cannot create remote folder ~/afile/sub"):
        check(out, "~/afile/sub")
    empty = tmp_path / "empty"
    empty.mkdir()
    out = run_preflight(tmp_path, "~/x", direction="push", create=True, path=str(empty))
    with pytest.raises(JupytunnelError, match=r"rsync is not installed on aura .*apt-get install rsync"):
        check(out, "~/x")
    assert not (tmp_path / "home" / "x").exists()  # checked before anything is made
    with pytest.raises(JupytunnelError, match="POSIX login shell"):
        check("fish: Unknown command\n", "~/x")
    old = f"{s.MARK} home /h\n{s.MARK} rsync rsync  version 2.6.9  protocol version 29\n"
    with pytest.raises(JupytunnelError, match="too old"):
        check(old, "~/x")


def test_rsync_versions() -> None:
    assert s.parse_rsync_version("rsync  version 3.2.7  protocol version 31\nCopyright") == (3, 2)
    assert s.parse_rsync_version("rsync  version v3.2.3  protocol version 31") == (3, 2)
    assert s.parse_rsync_version("openrsync: protocol version 29\nrsync version 2.6.9 compatible") == (2, 6)
    with pytest.raises(JupytunnelError, match=r"not rsync >= 3\.1 .*brew install rsync"):
        s.check_local_rsync("/usr/bin/rsync", "openrsync: protocol version 29\nrsync version 2.6.9 compatible\n")
    s.check_local_rsync("/usr/bin/rsync", "rsync  version 3.1.0  protocol version 31\n")


# --- rsync's output -------------------------------------------------------------------------

# Real output of rsync 3.5.0 (this machine) for 1,234 new files, digits grouped with ",".
STATS_3_5 = """
Number of files: 1,236 (reg: 1,234, dir: 2)
Number of created files: 1,236 (reg: 1,234, dir: 2)
Number of deleted files: 0
Number of regular files transferred: 1,234
Total file size: 5,063 bytes
Total transferred file size: 5,063 bytes
Literal data: 5,063 bytes
Matched data: 0 bytes
File list size: 0
File list generation time: 0.001 seconds
File list transfer time: 0.000 seconds
Total bytes sent: 78,055
Total bytes received: 23,473

sent 78,055 bytes  received 23,473 bytes  67,685.33 bytes/sec
total size is 5,063  speedup is 0.05
"""


def test_parse_stats_of_real_output() -> None:
    assert s.parse_stats(STATS_3_5) == s.Stats(
        files=1234,
        total_files=1236,
        created=1236,
        deleted=0,
        total_size=5063,
        transferred_size=5063,
        bytes_sent=78055,
        bytes_received=23473,
    )
    # Where the locale's decimal point is ",", rsync groups digits with ".".
    dotted = STATS_3_5.replace("1,23", "1.23").replace("78,055", "78.055")
    assert s.parse_stats(dotted) == s.parse_stats(STATS_3_5)
    assert s.parse_stats("rsync: connection unexpectedly closed\n") is None


def test_parse_stats_of_the_local_rsync(tmp_path: Path) -> None:
    """Whatever rsync this machine has: its --stats after copying, then after deleting."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "d").mkdir(parents=True)
    for i in range(1500):
        (src / "d" / f"f{i}").write_bytes(b"x" * i)
    out = subprocess.run([RSYNC, "-a", "--stats", f"{src}/", f"{dst}/"], capture_output=True, text=True, timeout=60)
    first = s.parse_stats(out.stdout)
    assert first is not None
    assert (first.files, first.created, first.total_size) == (1500, 1502, sum(range(1500)))
    assert first.bytes_sent > first.total_size
    (src / "d" / "f7").unlink()
    out = subprocess.run(
        [RSYNC, "-a", "--delete", "--stats", f"{src}/", f"{dst}/"], capture_output=True, text=True, timeout=60
    )
    again = s.parse_stats(out.stdout)
    assert again is not None
    assert (again.files, again.deleted, again.transferred_size) == (0, 1, 0)


def test_output_splitter_passes_progress_and_keeps_stats() -> None:
    echoed: list[str] = []
    out = s.OutputSplitter(echoed.append, blank_lines=True)
    chunks = [b"\r      1,000  10%", b"    1.00MB/s    0:00:01\r     10,000 100%   1.00MB/s\n", STATS_3_5.encode()]
    for chunk in chunks:
        out.feed(chunk)
    out.close()
    assert "".join(echoed) == "\r      1,000  10%    1.00MB/s    0:00:01\r     10,000 100%   1.00MB/s\n\n"
    stats = s.parse_stats("\n".join(out.stats))
    assert stats is not None
    assert stats.files == 1234


def test_output_splitter_collects_the_itemized_changes() -> None:
    listing = (
        "created directory /h/p\ncd+++++++++ ./\n<f+++++++++ a b.txt\n<f.st...... sub/ünï.txt\n"
        "*deleting   old.txt\n.d..t...... sub/\n"
    )
    echoed: list[str] = []
    out = s.OutputSplitter(echoed.append, blank_lines=False)
    out.feed(listing.encode() + b"\n" + STATS_3_5.encode())
    out.close()
    assert out.changes == [
        "cd+++++++++ ./",
        "<f+++++++++ a b.txt",
        "<f.st...... sub/ünï.txt",
        "*deleting   old.txt",
        ".d..t...... sub/",
    ]
    assert "".join(echoed) == listing  # no blank line, no stats


def test_failure_messages() -> None:
    missing = "bash: line 1: rsync: command not found\nrsync: connection unexpectedly closed (0 bytes received so far) [sender]\n"
    assert "rsync is not installed on aura" in str(s.failure(12, missing, host="aura"))
    assert "rsync is not installed on aura" in str(s.failure(127, "", host="aura"))
    ssh = "ssh: connect to host aura port 22: Connection refused\nrsync: connection unexpectedly closed (0 bytes received so far) [sender]\nrsync error: unexplained error (code 255) at io.c(232) [sender=3.2.7]\n"
    message = str(s.failure(255, ssh, host="aura"))
    assert message.startswith(
        "rsync with aura failed (exit 255, ssh failed): ssh: connect to host aura port 22: Connection refused"
    )
    assert "io.c" not in message
    assert "no data moved for 600 s" in str(
        s.failure(30, "rsync error: timeout in data send/receive (code 30)", host="a")
    )
    assert "\n" not in message


def test_summary_dict_has_the_documented_keys() -> None:
    result = s.SyncResult(
        profile="aura", direction="push", local="/l", host="aura", remote_path="/h/p", dry_run=False,
        through_tunnel=True, stats=s.parse_stats(STATS_3_5), seconds=1.23456, changes=[], warnings="",
    )  # fmt: skip
    assert result.to_dict() == {
        "profile": "aura", "direction": "push", "local": "/l", "remote": "aura:/h/p", "dry_run": False,
        "through_tunnel": True, "files": 1234, "total_files": 1236, "created": 1236, "deleted": 0,
        "total_size": 5063, "transferred_size": 5063, "bytes_sent": 78055, "bytes_received": 23473, "seconds": 1.235,
    }  # fmt: skip
    assert result._replace(dry_run=True, changes=["<f+++++++++ a"]).to_dict()["changes"] == ["<f+++++++++ a"]


# --- the runner's relay ---------------------------------------------------------------------


def test_run_relayed_streams_both_pipes() -> None:
    out: list[bytes] = []
    err: list[bytes] = []
    code = "import sys; sys.stdout.write('a\\rb\\n'); sys.stdout.flush(); sys.stderr.write('warn\\n'); sys.exit(3)"
    ran = runner.run_relayed([sys.executable, "-c", code], on_stdout=out.append, on_stderr=err.append)
    assert (ran.returncode, ran.interrupted) == (3, False)
    assert b"".join(out) == b"a\rb\n"
    assert b"".join(err) == b"warn\n"


def test_run_relayed_ctrl_c_lets_the_child_finish(tmp_path: Path) -> None:
    """A SIGINT to us alone is passed on; the child's own handler runs (rsync keeps its
    partial file there), and the relay reports the interruption."""
    done = tmp_path / "cleaned"
    child = (
        "import signal, sys, time\n"
        f"signal.signal(signal.SIGINT, lambda *a: (open({str(done)!r}, 'w').write('yes'), sys.exit(20)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    driver = (
        "import sys\n"
        "from jupytunnel import runner\n"
        f"ran = runner.run_relayed([sys.executable, '-c', {child!r}], on_stdout=lambda b: (sys.stdout.buffer.write(b), sys.stdout.flush()), on_stderr=lambda b: None)\n"
        "print(ran.returncode, ran.interrupted, flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", driver], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)  # to the driver only, as when a SIGINT is not from a terminal
    out, _ = proc.communicate(timeout=30)
    assert out.split() == ["20", "True"]
    assert done.read_text() == "yes"
    assert time.monotonic() - start < 10


def test_rsync_binary_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JUPYTUNNEL_RSYNC", raising=False)
    runner.rsync_binary.cache_clear()
    try:
        with pytest.raises(JupytunnelError, match=r"^rsync not found on PATH; install rsync \(Debian/Ubuntu"):
            runner.rsync_binary()
    finally:
        runner.rsync_binary.cache_clear()
