from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupytunnel import profiles
from jupytunnel.errors import ProfileError, UsageError


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("JUPYTUNNEL_CONFIG_DIR", str(tmp_path / "cfg"))
    return tmp_path / "cfg"


def build(raw: dict[str, object]) -> profiles.Profile:
    return profiles.build("aura", raw, {}, "aura.toml")


def test_defaults() -> None:
    p = build({"host": "aura"})
    assert (p.remote_port, p.local_port, p.transport, p.jupyter, p.workdir, p.launcher, p.browser) == (
        8888,
        "auto",
        "tcp",
        "jupyter lab",
        "~",
        "nohup",
        True,
    )


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({}, "key 'host': missing"),
        ({"host": "-oProxyCommand=x"}, "starts with '-'"),
        ({"host": "a b"}, "whitespace"),
        ({"host": "a", "user": "x\ny"}, "whitespace or control"),
        ({"host": "a", "jump": ["-J"]}, "starts with '-'"),
        ({"host": "a", "jump": ["a,b"]}, "own list entry"),
        ({"host": "a", "jump": "gw"}, "expected a list"),
        ({"host": "a", "jump": ["gw"], "proxy_command": "ssh -W %h:%p gw"}, "cannot both be set"),
        ({"host": "a", "port": 70000}, "expected an integer 1..65535, got 70000"),
        ({"host": "a", "port": True}, "expected an integer"),
        ({"host": "a", "remote_port": "8888"}, "expected an integer"),
        ({"host": "a", "local_port": "sometimes"}, "or 'auto'"),
        ({"host": "a", "transport": "udp"}, "expected one of 'tcp', 'socket'"),
        ({"host": "a", "launcher": "systemd"}, "'nohup', 'tmux', 'screen', 'slurm', 'none'"),
        ({"host": "a", "nice": 20}, "0..19"),
        ({"host": "a", "setup": ["ok", "bad\x00"]}, "control characters"),
        ({"host": "a", "workdir": "a\tb"}, "control characters"),
        ({"host": "a", "ssh_options": {"Bad Key": "x"}}, "not an ssh option name"),
        ({"host": "a", "ssh_options": {"Ok": 1.5}}, "string, integer or boolean"),
        ({"host": "a", "ssh_options": {"controlpersist": "no"}}, "jupytunnel's to set"),
        ({"host": "a", "ssh_options": {"ControlPath": "/x"}}, "jupytunnel's to set"),
        ({"host": "a", "jupyter": "'unterminated"}, "cannot split"),
        ({"host": "a", "hots": "x"}, "did you mean 'host'"),
        ({"host": "a", "browser": "yes"}, "true or false"),
    ],
)
def test_invalid_profiles(raw: dict[str, object], fragment: str) -> None:
    with pytest.raises(ProfileError) as info:
        build(raw)
    message = str(info.value)
    assert fragment in message
    assert message.startswith("aura.toml: profile 'aura': key ")
    assert "\n" not in message


def test_toml_syntax_error_has_line_and_column() -> None:
    with pytest.raises(ProfileError, match=r"line 2, column"):
        profiles.parse_toml(b'host = "a"\nport = = 3\n', "x.toml")


@pytest.mark.parametrize("name", ["", "-a", ".a", "a/b", "a b", "x" * 101, "ä"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(UsageError):
        profiles.validate_name(name)


def test_save_load_round_trip_is_private(config_dir: Path) -> None:
    p = build(
        {
            "host": "aura",
            "user": "ada",
            "jump": ["gw"],
            "setup": ["module load x"],
            "nice": 5,
            "ssh_options": {"Compression": True},
            "local_port": 9000,
        }
    )
    path = profiles.save(p)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(config_dir.stat().st_mode) == 0o700
    assert profiles.load("aura") == p
    assert profiles.list_names() == ["aura"]


def test_defaults_file_applies_and_merges_ssh_options(config_dir: Path) -> None:
    (config_dir / "profiles").mkdir(parents=True)
    (config_dir / "defaults.toml").write_text('user = "ada"\nremote_port = 9999\n[ssh_options]\nCompression = true\n')
    (config_dir / "profiles" / "aura.toml").write_text('host = "aura"\n[ssh_options]\nLogLevel = "ERROR"\n')
    p = profiles.load("aura")
    assert (p.user, p.remote_port) == ("ada", 9999)
    assert dict(p.ssh_options) == {"Compression": True, "LogLevel": "ERROR"}


def test_missing_profile_suggests(config_dir: Path) -> None:
    profiles.save(build({"host": "aura"}))
    with pytest.raises(UsageError, match="did you mean 'aura'"):
        profiles.load("auro")


def test_classic_notebook_detection() -> None:
    assert build({"host": "a", "jupyter": "jupyter notebook"}).is_classic_notebook
    assert not build({"host": "a"}).is_classic_notebook


toml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_no_traceback_on_binary_junk(data: bytes) -> None:
    try:
        raw = profiles.parse_toml(data, "x.toml")
        profiles.build("x", raw, {}, "x.toml")
    except ProfileError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([*profiles.KEYS, "junk"]), toml_values, max_size=6))
def test_no_traceback_on_wrong_types(raw: dict[str, object]) -> None:
    try:
        profiles.build("x", raw, {}, "x.toml")
    except ProfileError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_no_traceback_on_text(text: str) -> None:
    try:
        raw = profiles.parse_toml(text.encode("utf-8", "surrogatepass"), "x.toml")
        profiles.build("x", raw, {}, "x.toml")
    except ProfileError as exc:
        assert "\n" not in str(exc)


def test_stray_files_with_invalid_names_are_not_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 120-character *.toml or *.json is no profile and no tunnel record: listings skip it."""
    from jupytunnel import profiles as p
    from jupytunnel import state

    monkeypatch.setenv("JUPYTUNNEL_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("JUPYTUNNEL_STATE_DIR", str(tmp_path / "st"))
    folder = tmp_path / "cfg" / "profiles"
    folder.mkdir(parents=True)
    (folder / ("x" * 120 + ".toml")).write_text('host = "h"\n')
    (folder / "ok.toml").write_text('host = "h"\n')
    assert p.list_names() == ["ok"]
    tunnels = tmp_path / "st" / "tunnels"
    tunnels.mkdir(parents=True)
    (tunnels / ("y" * 120 + ".json")).write_text("{}")
    assert state.load_all() == []


@pytest.mark.parametrize(
    ("sync", "fragment"),
    [
        ("~/x", "key 'sync': expected a table ([sync] with local, remote, exclude)"),
        ({"locl": "/x"}, "key 'sync.locl': unknown key; did you mean 'sync.local'?"),
        ({"zzz": "/x"}, "key 'sync.zzz': unknown key; known keys: local, remote, exclude"),
        ({"local": "projects/x"}, "key 'sync.local': 'projects/x': give an absolute path or one that starts with '~/'"),
        ({"local": 3}, "key 'sync.local': expected a string"),
        ({"remote": "~bob/x"}, "key 'sync.remote': '~bob/x': only '~' and '~/...'"),
        ({"remote": "a\nb"}, "key 'sync.remote': contains control characters"),
        ({"exclude": "*.ckpt"}, "key 'sync.exclude': expected a list of strings"),
        ({"exclude": [""]}, "key 'sync.exclude': an empty pattern"),
    ],
)
def test_invalid_sync_tables(sync: object, fragment: str) -> None:
    with pytest.raises(ProfileError) as info:
        build({"host": "a", "sync": sync})
    assert str(info.value).startswith(f"aura.toml: profile 'aura': {fragment}")
    assert "\n" not in str(info.value)


def test_sync_table_round_trip_and_defaults(config_dir: Path) -> None:
    (config_dir / "profiles").mkdir(parents=True)
    (config_dir / "defaults.toml").write_text('[sync]\nexclude = [".git", "*.ckpt"]\n')
    (config_dir / "profiles" / "aura.toml").write_text('host = "aura"\n[sync]\nlocal = "~/thesis"\nremote = "~/w"\n')
    p = profiles.load("aura")
    assert p.sync == profiles.SyncSettings(local="~/thesis", remote="~/w", exclude=(".git", "*.ckpt"))
    assert build({"host": "a"}).sync == profiles.SyncSettings()
    saved = build({"host": "a", "sync": {"remote": "/r", "exclude": ["x"]}})
    assert profiles.dump(saved).decode() == 'host = "a"\n\n[sync]\nremote = "/r"\nexclude = [\n    "x",\n]\n'
    profiles.save(saved._replace(name="aura"))
    assert profiles.load("aura").sync == profiles.SyncSettings(remote="/r", exclude=("x",))
