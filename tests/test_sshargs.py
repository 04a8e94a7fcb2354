from __future__ import annotations

from collections.abc import Callable

import pytest

from jupytunnel.profiles import Profile
from jupytunnel.ssh import Ssh
from jupytunnel.ssh import args as sshargs

SSH = "/usr/bin/ssh"
CTL = "/run/user/1000/jupytunnel/cm-0123456789abcdef"
DEFAULTS = [
    "-o",
    "ControlPersist=yes",
    "-o",
    "ExitOnForwardFailure=yes",
    "-o",
    "ServerAliveInterval=30",
    "-o",
    "ServerAliveCountMax=3",
]
FWD = sshargs.forward_spec(local_port=9000, remote_port=8888)


def tunnel(profile: Profile, *, config_file: str | None = None, **kw: object) -> list[str]:
    ssh = Ssh(SSH, config_file)
    return sshargs.tunnel_argv(profile, ssh=ssh, control_path=CTL, forward=kw.pop("forward", FWD), **kw)  # type: ignore[arg-type]


def test_forward_spec_binds_loopback_only() -> None:
    assert FWD == "127.0.0.1:9000:127.0.0.1:8888"
    assert sshargs.forward_spec(local_port=9000, remote_socket="/home/a/x.sock") == "127.0.0.1:9000:/home/a/x.sock"
    with pytest.raises(ValueError, match="remote_port"):
        sshargs.forward_spec(local_port=1)


def test_plain_host() -> None:
    assert tunnel(Profile(name="a", host="aura")) == [
        SSH,
        "-N",
        "-f",
        "-M",
        "-S",
        CTL,
        *DEFAULTS,
        "-L",
        FWD,
        "aura",
    ]


def test_user_port_identity_and_config_file() -> None:
    p = Profile(name="a", host="aura.example.org", user="ada", port=2222, identity_file="/k/id_ed25519")
    assert tunnel(p, config_file="/tmp/cfg") == [
        SSH,
        "-F",
        "/tmp/cfg",
        "-N",
        "-f",
        "-M",
        "-S",
        CTL,
        *DEFAULTS,
        "-L",
        FWD,
        "-p",
        "2222",
        "-l",
        "ada",
        "-i",
        "/k/id_ed25519",
        "aura.example.org",
    ]


def test_two_jump_hosts() -> None:
    p = Profile(name="a", host="node7", jump=("ada@gw.example.org:2200", "login.hpc"))
    assert tunnel(p) == [
        SSH,
        "-N",
        "-f",
        "-M",
        "-S",
        CTL,
        *DEFAULTS,
        "-L",
        FWD,
        "-J",
        "ada@gw.example.org:2200,login.hpc",
        "node7",
    ]


def test_proxy_command() -> None:
    p = Profile(name="a", host="aura", proxy_command="ssh -W %h:%p bastion")
    assert tunnel(p) == [
        SSH,
        "-N",
        "-f",
        "-M",
        "-S",
        CTL,
        *DEFAULTS,
        "-L",
        FWD,
        "-o",
        "ProxyCommand=ssh -W %h:%p bastion",
        "aura",
    ]


def test_socket_transport_forward() -> None:
    p = Profile(name="a", host="aura", transport="socket")
    fwd = sshargs.forward_spec(local_port=9000, remote_socket="/home/ada/.local/state/jupytunnel/a.sock")
    assert tunnel(p, forward=fwd) == [
        SSH,
        "-N",
        "-f",
        "-M",
        "-S",
        CTL,
        *DEFAULTS,
        "-L",
        "127.0.0.1:9000:/home/ada/.local/state/jupytunnel/a.sock",
        "aura",
    ]
    # Before the remote home is known, the master starts without a forward.
    assert tunnel(p, forward=None) == [SSH, "-N", "-f", "-M", "-S", CTL, *DEFAULTS, "aura"]


def test_ssh_options_override_defaults() -> None:
    p = Profile(name="a", host="aura", ssh_options={"serveraliveinterval": 1, "Compression": True, "LogLevel": "ERROR"})
    assert tunnel(p) == [
        SSH,
        "-N",
        "-f",
        "-M",
        "-S",
        CTL,
        "-o",
        "ControlPersist=yes",
        "-o",
        "ExitOnForwardFailure=yes",
        "-o",
        "ServerAliveCountMax=3",
        "-o",
        "serveraliveinterval=1",
        "-o",
        "Compression=yes",
        "-o",
        "LogLevel=ERROR",
        "-L",
        FWD,
        "aura",
    ]


def test_remote_command_through_master() -> None:
    p = Profile(name="a", host="aura", user="ada", jump=("gw",))
    assert sshargs.remote_argv(p, "echo hi", ssh=Ssh(SSH, "/c"), control_path=CTL) == [
        SSH,
        "-F",
        "/c",
        "-S",
        CTL,
        "-o",
        "ControlMaster=no",
        "-o",
        "ProxyCommand=false",
        "-o",
        "BatchMode=yes",
        "-T",
        "aura",
        "echo hi",
    ]


def test_control_operations() -> None:
    p = Profile(name="a", host="aura")
    assert sshargs.control_argv(p, "check", ssh=Ssh(SSH), control_path=CTL) == [SSH, "-S", CTL, "-O", "check", "aura"]
    assert sshargs.control_argv(p, "exit", ssh=Ssh(SSH, "/c"), control_path=CTL) == [
        SSH,
        "-F",
        "/c",
        "-S",
        CTL,
        "-O",
        "exit",
        "aura",
    ]
    assert sshargs.control_argv(p, "forward", ssh=Ssh(SSH), control_path=CTL, forward=FWD) == [
        SSH,
        "-S",
        CTL,
        "-O",
        "forward",
        "-L",
        FWD,
        "aura",
    ]


def test_master_with_a_first_command() -> None:
    argv = sshargs.tunnel_argv(Profile(name="a", host="aura", user="ada"), ssh=Ssh(SSH), control_path=CTL, forward=FWD,
                               command="echo hi")  # fmt: skip
    assert argv == [SSH, "-T", "-M", "-S", CTL, *DEFAULTS, "-L", FWD, "-l", "ada", "aura", "echo hi"]


def test_short_persist_for_one_command_masters() -> None:
    argv = sshargs.tunnel_argv(
        Profile(name="a", host="aura"), ssh=Ssh(SSH), control_path=CTL, forward=None, persist="15"
    )
    assert argv == [SSH, "-N", "-f", "-M", "-S", CTL, "-o", "ControlPersist=15", *DEFAULTS[2:], "aura"]


def test_resolve_argv() -> None:
    p = Profile(name="a", host="aura", user="ada", port=22, jump=("gw",), ssh_options={"Compression": "yes"})
    assert sshargs.resolve_argv(p, ssh=Ssh(SSH, "/c")) == [
        SSH,
        "-F",
        "/c",
        "-G",
        "-o",
        "Compression=yes",
        "-J",
        "gw",
        "-p",
        "22",
        "-l",
        "ada",
        "aura",
    ]


# --- one vocabulary: Ssh, the loopback, the keep-alive defaults, yes/no ------------------------


def test_ssh_value_gives_binary_and_config_file() -> None:
    p = Profile(name="a", host="aura")
    with_config = Ssh(SSH, "/c")
    assert with_config.head() == [SSH, "-F", "/c"]
    assert Ssh(SSH).head() == [SSH]
    assert sshargs.resolve_argv(p, ssh=with_config) == [SSH, "-F", "/c", "-G", "aura"]
    assert sshargs.control_argv(p, "exit", ssh=with_config, control_path=CTL) == [
        SSH, "-F", "/c", "-S", CTL, "-O", "exit", "aura",
    ]  # fmt: skip
    assert sshargs.mux_client_args(ssh=Ssh(SSH), control_path=CTL)[:3] == [SSH, "-S", CTL]
    assert sshargs.diagnose_argv(p, ssh=with_config)[:4] == [SSH, "-F", "/c", "-T"]
    # Every builder takes the client and its file from the one value, and nothing else.
    builders: list[Callable[..., list[str]]] = [
        lambda **kw: sshargs.tunnel_argv(p, control_path=CTL, forward=FWD, **kw),
        lambda **kw: sshargs.remote_argv(p, "true", control_path=CTL, **kw),
        lambda **kw: sshargs.control_argv(p, "check", control_path=CTL, **kw),
        lambda **kw: sshargs.resolve_argv(p, **kw),
        lambda **kw: sshargs.diagnose_argv(p, **kw),
        lambda **kw: sshargs.mux_client_args(control_path=CTL, **kw),
    ]
    for build in builders:
        assert build(ssh=with_config)[:3] == [SSH, "-F", "/c"]
        assert build(ssh=Ssh(SSH)) == [SSH, *build(ssh=with_config)[3:]]
        with pytest.raises(TypeError):  # no second way to say the config file
            build(ssh=with_config, config_file="/other")


def test_resolve_reads_the_environment_once(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    from jupytunnel import runner, ssh

    runner.ssh_binary.cache_clear()
    monkeypatch.setenv("JUPYTUNNEL_SSH", "/opt/ssh")
    monkeypatch.setenv("JUPYTUNNEL_SSH_CONFIG", "/etc/jt/ssh_config")
    try:
        assert ssh.resolve() == ssh.Ssh("/opt/ssh", "/etc/jt/ssh_config")
        monkeypatch.delenv("JUPYTUNNEL_SSH_CONFIG")
        assert ssh.resolve() == ssh.Ssh("/opt/ssh", None)
    finally:
        runner.ssh_binary.cache_clear()


def test_one_vocabulary_for_argv_and_config_blocks() -> None:
    from jupytunnel import ssh
    from jupytunnel.ssh import config as sshconfig

    assert sshargs.LOOPBACK == ssh.LOOPBACK == "127.0.0.1"
    assert sshconfig.local_forward(Profile(name="a", host="h", remote_port=8888, local_port=9000)) == (
        "127.0.0.1:9000 127.0.0.1:8888"
    )
    # A Host block carries the tunnel's own options, with the same values as the -o flags.
    assert set(sshconfig.BLOCK_DEFAULTS) == set(sshargs.TUNNEL_DEFAULTS) - {("ControlPersist", "yes")}
    assert ssh.SERVER_ALIVE == (("ServerAliveInterval", "30"), ("ServerAliveCountMax", "3"))
    for value, text in ((True, "yes"), (False, "no"), (30, "30"), ("ask", "ask")):
        assert sshargs.option_value(value) == sshconfig.option_text(value) == ssh.yes_no(value) == text


def test_parse_resolved_is_one_type_for_every_reader() -> None:
    from jupytunnel.ssh import Ssh
    from jupytunnel.ssh import config as sshconfig

    got = sshconfig.parse_resolved("user ada\nidentityfile ~/.ssh/a\nidentityfile ~/.ssh/b\nProxyJump none\n\n")
    assert got == {"user": ["ada"], "identityfile": ["~/.ssh/a", "~/.ssh/b"], "proxyjump": ["none"]}
    assert got.one("identityfile") == "~/.ssh/a"
    assert got.all("identityfile") == ["~/.ssh/a", "~/.ssh/b"]
    assert got.one("port") is None
    assert got.all("port") == []
    assert sshconfig.check_argv("aura", ssh=Ssh(SSH, "/c")) == [SSH, "-F", "/c", "-G", "aura"]
    with pytest.raises(ValueError, match="config file"):
        sshconfig.check_argv("aura", ssh=Ssh(SSH))
