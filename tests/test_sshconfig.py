"""The pure ssh config transformation: exact blocks, placement, and byte-for-byte safety."""

from __future__ import annotations

import re
import subprocess
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupytunnel.errors import JupytunnelError
from jupytunnel.profiles import Profile
from jupytunnel.ssh import config as sshconfig
from jupytunnel.ssh.config_file import unified_diff
from testsupport.rig import SSH

AURA = Profile(name="aura", host="aura.example.org", user="ada", jump=("gw.example.org",), remote_port=8890)
LAB = Profile(
    name="lab-2",
    host="lab.example.org",
    port=2222,
    proxy_command="ssh -W %h:%p ada@bastion.example.org",
    identity_file="~/keys/my key",
    local_port=9000,
)


def block(profile: Profile) -> bytes:
    return sshconfig.render_block(profile, hostname=profile.host, forward=sshconfig.local_forward(profile))


BLOCKS: dict[str, bytes | None] = {"aura": block(AURA), "lab-2": block(LAB)}
REMOVE_ALL: dict[str, bytes | None] = {"aura": None, "lab-2": None}


# --- rendering ---------------------------------------------------------------------------


def test_render_block_exact() -> None:
    assert block(AURA) == (
        b"# >>> jupytunnel aura >>> managed by jupytunnel; edits inside are overwritten\n"
        b"Host aura\n"
        b"    HostName aura.example.org\n"
        b"    User ada\n"
        b"    ProxyJump gw.example.org\n"
        b"    LocalForward 127.0.0.1:8890 127.0.0.1:8890\n"
        b"    ServerAliveInterval 30\n"
        b"    ServerAliveCountMax 3\n"
        b"    ExitOnForwardFailure yes\n"
        b"# <<< jupytunnel aura <<< managed by jupytunnel; edits inside are overwritten\n"
    )


def test_render_block_quotes_paths_and_keeps_proxy_command_raw() -> None:
    text = block(LAB).decode()
    assert '    IdentityFile "~/keys/my key"\n' in text
    assert "    ProxyCommand ssh -W %h:%p ada@bastion.example.org\n" in text
    assert "    Port 2222\n" in text
    assert "    LocalForward 127.0.0.1:9000 127.0.0.1:8888\n" in text


def test_ssh_options_replace_defaults_and_single_valued_keys() -> None:
    p = Profile(
        name="x",
        host="h",
        user="ada",
        ssh_options={"serveraliveinterval": 5, "Compression": True, "User": "bob", "IdentityFile": "~/k2"},
        identity_file="~/k1",
    )
    opts = sshconfig.block_options(p, hostname="h", forward=None)
    keys = [k.lower() for k, _ in opts]
    assert keys.count("serveraliveinterval") == 1
    assert keys.count("user") == 1
    assert ("User", "bob") in opts
    assert ("serveraliveinterval", "5") in opts
    assert ("Compression", "yes") in opts
    # IdentityFile accumulates in OpenSSH: both are kept, the profile's first.
    assert [v for k, v in opts if k.lower() == "identityfile"] == ["~/k1", "~/k2"]


def test_socket_forward() -> None:
    p = Profile(name="s", host="h", transport="socket")
    assert sshconfig.local_forward(p) is None
    assert sshconfig.local_forward(p, remote_socket="/home/ada/.local/state/jupytunnel/s.sock") == (
        "127.0.0.1:8888 /home/ada/.local/state/jupytunnel/s.sock"
    )
    assert sshconfig.local_forward(p, remote_socket="/home/a b/s.sock") == '127.0.0.1:8888 "/home/a b/s.sock"'
    assert sshconfig.expected_forward('127.0.0.1:8888 "/home/a b/s.sock"') == "[127.0.0.1]:8888 /home/a b/s.sock"
    assert sshconfig.expected_forward("127.0.0.1:1 127.0.0.1:2") == "[127.0.0.1]:1 [127.0.0.1]:2"


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("~/.ssh/id_ed25519", "~/.ssh/id_ed25519"),
        ("/a b/key", '"/a b/key"'),
        ("it's", '"it\'s"'),
        ("a#b", '"a#b"'),
        ("=x", '"=x"'),
    ],
)
def test_quote(value: str, quoted: str) -> None:
    assert sshconfig.quote(value) == quoted


@pytest.mark.parametrize("value", ['a"b', "a\\b", "", "a\tb"])
def test_quote_refuses_what_ssh_cannot_read(value: str) -> None:
    with pytest.raises(JupytunnelError):
        sshconfig.quote(value)


# --- parsing -----------------------------------------------------------------------------


def test_split_lines_and_eol() -> None:
    assert sshconfig.split_lines(b"") == []
    assert sshconfig.split_lines(b"a\r\nb") == [b"a\r\n", b"b"]
    assert sshconfig.split_lines(b"a\n\n") == [b"a\n", b"\n"]
    assert sshconfig.detect_eol(b"a\r\nb\r\nc\n") == b"\r\n"
    assert sshconfig.detect_eol(b"a\nb\r\n") == b"\n"
    assert sshconfig.detect_eol(b"") == b"\n"


@pytest.mark.parametrize(
    ("line", "word", "args"),
    [
        (b"Host a b\n", b"host", b"a b"),
        (b"  HOST=aura\r\n", b"host", b"aura"),
        (b"\tmatch  \t= host x", b"match", b"host x"),
        (b"# Host aura\n", b"", b""),
        (b"   #Host aura\n", b"", b""),
        (b"\n", b"", b""),
        (b'Host="a b"\n', b"host", b'"a b"'),
    ],
)
def test_keyword(line: bytes, word: bytes, args: bytes) -> None:
    assert sshconfig.keyword(line) == (word, args)


def test_find_conflicts() -> None:
    text = (
        b"Host a*\n"  # a pattern, not the name
        b"Host !aura\n"
        b"Host web AURA\n"  # line 3: case-insensitive exact pattern
        b'host="aura"\r\n'  # line 4
        b"Host x # aura\n"  # a comment
        b"Match host aura\n"
        b"# Host aura\n" + block(AURA)
    )
    found = sshconfig.find_conflicts(text, ["aura", "lab-2"])
    assert [(c.name, c.line) for c in found] == [("aura", 3), ("aura", 4)]
    assert found[0].text == "Host web AURA"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (b"x\n# >>> jupytunnel a >>>\nHost a\n", 2),
        (b"# <<< jupytunnel a <<<\n", 1),
        (b"# >>> jupytunnel a >>>\n# >>> jupytunnel b >>>\n# <<< jupytunnel b <<<\n# <<< jupytunnel a <<<\n", 2),
        (b"# >>> jupytunnel a >>>\n# <<< jupytunnel b <<<\n", 2),
        (b"# >>> jupytunnel a >>>\n# <<< jupytunnel a <<<\n# >>> jupytunnel a >>>\n# <<< jupytunnel a <<<\n", 3),
    ],
)
def test_broken_markers_are_refused_with_a_line(text: bytes, line: int) -> None:
    with pytest.raises(sshconfig.ConfigError) as info:
        sshconfig.apply(text, {"a": b"Host a\n"})
    assert info.value.line == line


# --- placement ---------------------------------------------------------------------------


def test_new_blocks_go_after_the_preamble_before_the_first_host() -> None:
    old = b"User bob\nInclude conf.d/*\n\nHost web\n  Port 1\n"
    new = sshconfig.apply(old, {"aura": block(AURA)})
    assert new == b"User bob\nInclude conf.d/*\n\n" + block(AURA) + b"\nHost web\n  Port 1\n"
    assert sshconfig.apply(new, {"aura": None}) == old


def test_match_counts_as_a_block_start() -> None:
    old = b"Compression yes\nMatch all\n  Port 1\n"
    new = sshconfig.apply(old, {"aura": block(AURA)})
    assert new.startswith(b"Compression yes\n" + block(AURA) + b"\nMatch all\n")


def test_a_comment_attached_to_the_first_host_moves_with_it_but_a_header_stays_on_top() -> None:
    old = b"User bob\n# work machines\nHost web\n"
    assert sshconfig.apply(old, {"aura": block(AURA)}) == b"User bob\n" + block(AURA) + b"\n# work machines\nHost web\n"
    header = b"# my ssh config\nHost web\n"
    assert sshconfig.apply(header, {"aura": block(AURA)}) == b"# my ssh config\n" + block(AURA) + b"\nHost web\n"


def test_appended_when_there_is_no_host_line() -> None:
    assert sshconfig.apply(b"", {"aura": block(AURA)}) == block(AURA)
    assert sshconfig.apply(b"User bob\n", {"aura": block(AURA)}) == b"User bob\n\n" + block(AURA)
    no_eol = sshconfig.apply(b"User bob", {"aura": block(AURA)})
    assert no_eol == b"User bob\n\n" + block(AURA).rstrip(b"\n")
    assert sshconfig.apply(no_eol, REMOVE_ALL) == b"User bob"


def test_crlf_file_gets_crlf_block() -> None:
    old = b"User bob\r\nHost web\r\n  Port 1"
    new = sshconfig.apply(old, {"aura": block(AURA)})
    added = new[len(b"User bob\r\n") : -len(b"Host web\r\n  Port 1")]
    assert added == block(AURA).replace(b"\n", b"\r\n") + b"\r\n"
    assert b"\n" not in added.replace(b"\r\n", b"")


def test_existing_block_is_replaced_where_it_stands() -> None:
    old = b"Host web\n  Port 1\n\n" + block(AURA) + b"# tail\n"
    changed = sshconfig.render_block(AURA, hostname="10.0.0.1", forward=None)
    new = sshconfig.apply(old, {"aura": changed})
    assert new == b"Host web\n  Port 1\n\n" + changed + b"# tail\n"


def test_unified_diff_marks_a_missing_final_newline() -> None:
    diff = unified_diff(b"User bob", b"User bob\n\nHost a", "cfg")
    assert diff.startswith(b"--- cfg\n+++ cfg\n")
    assert b"\\ No newline at end of file\n" in diff


# --- properties --------------------------------------------------------------------------

_FIXED_LINES = [
    b"",
    b"   ",
    b"\t",
    b"# a comment",
    b"  #indented comment",
    b"# caf\xe9 \xff\xfe not utf-8",
    b"User bob",
    b"user=bob",
    b"COMPRESSION yes",
    b"\tServerAliveInterval\t60",
    b"Port = 2222",
    b'IdentityFile "~/.ssh/a key"',
    b"Include ~/.ssh/conf.d/*",
    b"include other.conf",
    b"Host *",
    b"Host web",
    b"HOST web other",
    b"host=db.example.org",
    b'Host "quoted"',
    b"Host a*",
    b"Host !aura",
    b"Match host foo",
    b"match all",
    b'Match exec "test -e /nonexistent" host bar',
    b"    HostName 10.0.0.1",
    b"\tPort 22",
    b"    ProxyJump gw",
    b"  LocalForward 8080 localhost:80",
]
_MARKER = re.compile(rb"# (>>>|<<<) jupytunnel")


def _free_line() -> st.SearchStrategy[bytes]:
    return st.binary(max_size=30).filter(lambda b: b"\n" not in b and not _MARKER.match(b))


lines_st = st.lists(st.one_of(st.sampled_from(_FIXED_LINES), _free_line()), max_size=25)


@st.composite
def configs(draw: st.DrawFn, lines: st.SearchStrategy[list[bytes]] = lines_st) -> bytes:
    body = draw(lines)
    style = draw(st.sampled_from(["lf", "crlf", "mixed"]))
    out = b""
    for line in body:
        eol = {"lf": b"\n", "crlf": b"\r\n"}.get(style) or draw(st.sampled_from([b"\n", b"\r\n"]))
        out += line + eol
    if out and draw(st.booleans()):
        out = out[:-1] if out.endswith(b"\n") and not out.endswith(b"\r\n") else out.rstrip(b"\r\n")
    return out


block_sets = st.sampled_from([{"aura": block(AURA)}, {"lab-2": block(LAB)}, BLOCKS, {"lab-2": block(LAB), **BLOCKS}])


def _only_eols_added(old: bytes, kept: bytes, eol: bytes, limit: int) -> bool:
    """``old`` is ``kept`` with at most ``limit`` line ends deleted, nothing else."""
    i = j = deleted = 0
    while i < len(old) or j < len(kept):
        if i < len(old) and j < len(kept) and old[i] == kept[j]:
            i += 1
            j += 1
        elif kept.startswith(eol, j):
            j += len(eol)
            deleted += 1
        else:
            return False
    return deleted <= limit


@settings(max_examples=300, deadline=None)
@given(old=configs(), blocks=block_sets)
def test_write_then_remove_gives_back_the_original(old: bytes, blocks: dict[str, bytes | None]) -> None:
    new = sshconfig.apply(old, blocks)
    assert sshconfig.apply(new, dict.fromkeys(blocks)) == old
    assert sshconfig.remove_all(new) == old


@settings(max_examples=300, deadline=None)
@given(old=configs(), blocks=block_sets)
def test_write_twice_equals_write_once(old: bytes, blocks: dict[str, bytes | None]) -> None:
    once = sshconfig.apply(old, blocks)
    assert sshconfig.apply(once, blocks) == once


@settings(max_examples=300, deadline=None)
@given(old=configs(), blocks=block_sets)
def test_every_byte_outside_the_markers_is_unchanged(old: bytes, blocks: dict[str, bytes | None]) -> None:
    new = sshconfig.apply(old, blocks)
    lines = sshconfig.split_lines(new)
    found = sshconfig.find_blocks(lines)
    assert sorted(b.name for b in found) == sorted(blocks)
    inside = {i for b in found for i in range(b.start, b.end + 1)}
    kept = b"".join(line for i, line in enumerate(lines) if i not in inside)
    eol = sshconfig.detect_eol(old)
    assert _only_eols_added(old, kept, eol, 2 * len(blocks))
    # Each block is exactly what was rendered, in the file's line ends.
    for b in found:
        text = b"".join(lines[b.start : b.end + 1])
        data = blocks[b.name]
        assert data is not None
        assert text.rstrip(b"\r\n") == data.replace(b"\n", eol).rstrip(b"\r\n")
    # ... and placed after the global preamble: no Host/Match line of the user's comes first.
    first = min(b.start for b in found)
    assert all(sshconfig.keyword(line)[0] not in (b"host", b"match") for line in lines[:first])


@settings(max_examples=200, deadline=None)
@given(old=configs(), update=st.booleans())
def test_updating_and_removing_one_block_leaves_the_other(old: bytes, update: bool) -> None:
    both = sshconfig.apply(old, BLOCKS)
    changed = sshconfig.render_block(AURA, hostname="10.9.9.9", forward=None)
    step = sshconfig.apply(both, {"aura": changed if update else None})
    assert sshconfig.managed_names(step) == (["aura", "lab-2"] if update else ["lab-2"])
    assert sshconfig.remove_all(step) == old


# --- the real client reads what we write -------------------------------------------------

_VALID_LINES = [
    b"",
    b"# a comment",
    b"# caf\xe9 \xff",
    b"Compression yes",
    b"user=bob",
    b"\tServerAliveInterval\t60",
    b"Port = 2200",
    b"Include /nonexistent-jupytunnel-test/*",
    b"Host *",
    b"Host web",
    b"HOST web other",
    b"Host a* l*",
    b"Host !aura",
    b"Match host foo",
    b"match all",
    b"    HostName 10.0.0.1",
    b"\tPort 22",
    b"    User carol",
    b"    ProxyJump gw",
    b"    ProxyCommand none",
]


def _ssh_g(text: bytes, host: str) -> str:
    with tempfile.NamedTemporaryFile(prefix="jt-sshcfg-") as fh:
        fh.write(text)
        fh.flush()
        proc = subprocess.run(
            [SSH, "-F", fh.name, "-G", host],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=20,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _global(old: bytes, key: bytes) -> str | None:
    for line in sshconfig.split_lines(old):
        word, args = sshconfig.keyword(line)
        if word in (b"host", b"match"):
            return None
        if word == key:
            return sshconfig.arguments(args)[0].decode()
    return None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(old=configs(st.lists(st.sampled_from(_VALID_LINES), max_size=20)))
def test_ssh_reads_our_blocks_and_other_hosts_see_no_difference(old: bytes) -> None:
    new = sshconfig.apply(old, BLOCKS)
    for name, profile in (("aura", AURA), ("lab-2", LAB)):
        got = sshconfig.parse_resolved(_ssh_g(new, name))
        # Settings of the user's global lines come first and still apply; then the block's.
        # (What neither sets may come from a later Host block of the user's, as ssh intends.)
        port = _global(old, b"port") or (str(profile.port) if profile.port else None)
        if port:
            assert got["port"] == [port]
        user = _global(old, b"user") or profile.user
        if user:
            assert got["user"] == [user]
        assert got["hostname"] == [_global(old, b"hostname") or profile.host]
        assert sshconfig.expected_forward(sshconfig.local_forward(profile) or "") in got["localforward"]
        assert got["serveraliveinterval"] == [_global(old, b"serveraliveinterval") or "30"]
        if not _global(old, b"proxyjump") and not _global(old, b"proxycommand"):
            if profile.proxy_command:
                assert got["proxycommand"] == [profile.proxy_command]
            else:
                assert got["proxyjump"] == [",".join(profile.jump)]
    for other in ("web", "db.example.org", "lab"):
        assert _ssh_g(new, other) == _ssh_g(old, other)
