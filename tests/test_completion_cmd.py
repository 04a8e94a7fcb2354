"""``jupytunnel completion show|install``, the committed scripts, and every command's --help."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from jupytunnel import completion
from jupytunnel.cli.app import app as cli_app

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60


def jt(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jupytunnel", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "BASH_COMPLETION_", "JUPYTUNNEL_"))}
    env.update(HOME=str(tmp_path / "home"), JUPYTUNNEL_CONFIG_DIR=str(tmp_path / "cfg"), SHELL="/bin/sh")
    (tmp_path / "home").mkdir()
    return env


def test_committed_scripts_are_up_to_date() -> None:
    """completions/ must match the CLI: run scripts/gen_completions.py after changing commands."""
    rendered = completion.render_all(completion.command_tree(cli_app))
    assert sorted(rendered) == sorted(p.name for p in (ROOT / "completions").iterdir())
    for name, text in rendered.items():
        assert (ROOT / "completions" / name).read_text() == text, f"completions/{name} is stale"
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_completions.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def test_rendering_is_deterministic() -> None:
    """Two interpreters with different hash seeds (set and dict-of-set orders differ) render the same scripts."""
    code = "import json, sys; from jupytunnel import completion; from jupytunnel.cli.app import app; json.dump(completion.render_all(completion.command_tree(app)), sys.stdout)"
    rendered = [
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            timeout=TIMEOUT,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    ]
    assert rendered[0] == rendered[1] == rendered[2]
    assert json.loads(rendered[0]) == completion.render_all(completion.command_tree(cli_app))


@pytest.mark.parametrize("shell", completion.SHELLS)
def test_show_prints_the_script(shell: str, home: dict[str, str]) -> None:
    out = jt("completion", "show", shell, env=home)
    assert out.returncode == 0, out.stderr
    assert out.stdout == completion.render(shell, completion.command_tree(cli_app))


def test_show_refuses_an_unknown_shell(home: dict[str, str]) -> None:
    out = jt("completion", "show", "tcsh", env=home)
    assert out.returncode == 2
    assert out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("shell", "extra", "where", "says"),
    [
        ("bash", {}, ".local/share/bash-completion/completions/jupytunnel", "source "),
        ("bash", {"XDG_DATA_HOME": "@/data"}, "data/bash-completion/completions/jupytunnel", "bash-completion"),
        ("bash", {"BASH_COMPLETION_USER_DIR": "@/bc"}, "bc/completions/jupytunnel", "bash-completion"),
        ("zsh", {}, "home/.zfunc/_jupytunnel", "fpath=(~/.zfunc $fpath); autoload -Uz compinit && compinit"),
        ("fish", {}, "home/.config/fish/completions/jupytunnel.fish", "fish loads it"),
        ("fish", {"XDG_CONFIG_HOME": "@/xdg"}, "xdg/fish/completions/jupytunnel.fish", "fish loads it"),
    ],
)
def test_install(
    shell: str, extra: dict[str, str], where: str, says: str, home: dict[str, str], tmp_path: Path
) -> None:
    env = {**home, **{k: v.replace("@", str(tmp_path)) for k, v in extra.items()}}
    if shell == "bash" and not extra:
        where = "home/" + where
    target = tmp_path / where
    out = jt("completion", "install", shell, env=env)
    assert out.returncode == 0, out.stderr
    assert f"installed: {target}" in out.stdout
    assert says in out.stdout
    assert target.read_text() == completion.render(shell, completion.command_tree(cli_app))
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    again = jt("completion", "install", shell, env=env)
    assert f"up to date: {target}" in again.stdout


def test_install_takes_the_shell_from_the_environment(home: dict[str, str], tmp_path: Path) -> None:
    out = jt("completion", "install", env={**home, "SHELL": "/usr/bin/zsh"})
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "home/.zfunc/_jupytunnel").is_file()
    unknown = jt("completion", "install", env={**home, "SHELL": "/bin/tcsh"})
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("jupytunnel: cannot tell your shell")
    assert len(unknown.stderr.splitlines()) == 1


def test_install_dry_run_writes_nothing(home: dict[str, str], tmp_path: Path) -> None:
    out = jt("--dry-run", "completion", "install", "fish", env=home)
    assert out.returncode == 0
    assert out.stdout.startswith("# would write ")
    assert not (tmp_path / "home/.config").exists()


def test_installed_scripts_load_where_the_shells_look(home: dict[str, str], tmp_path: Path) -> None:
    profiles = tmp_path / "cfg" / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "aura.toml").write_text('host = "x"\n')
    for shell in ("zsh", "fish"):
        assert jt("completion", "install", shell, env=home).returncode == 0
    # zsh: the rc line we print, then a real completion registry lookup.
    zsh = subprocess.run(
        [
            "zsh",
            "-f",
            "-c",
            "fpath=(~/.zfunc $fpath); autoload -Uz compinit && compinit -u -D; print $_comps[jupytunnel]",
        ],
        capture_output=True,
        text=True,
        env=home,
        timeout=TIMEOUT,
        check=False,
    )
    assert zsh.stdout.strip() == "_jupytunnel", zsh.stderr
    # fish: autoloaded from its completions folder on first use, no rc line (fish loads
    # completions only for a command that exists: a stand-in on PATH).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "jupytunnel").write_text("#!/bin/sh\n")
    (bin_dir / "jupytunnel").chmod(0o755)
    fish = subprocess.run(
        ["fish", "-c", "complete -C 'jupytunnel connect au'"],
        capture_output=True,
        text=True,
        env={**home, "PATH": f"{bin_dir}:{home['PATH']}"},
        timeout=TIMEOUT,
        check=False,
    )
    assert fish.stdout.split() == ["aura"], fish.stderr


@pytest.mark.skipif(
    not Path("/usr/share/bash-completion/bash_completion").exists(), reason="bash-completion is not installed"
)
def test_bash_completion_loads_the_installed_script(home: dict[str, str], tmp_path: Path) -> None:
    assert jt("completion", "install", "bash", env=home).returncode == 0
    out = subprocess.run(
        [
            shutil.which("bash") or "/bin/bash",
            "--norc",
            "-c",
            "source /usr/share/bash-completion/bash_completion; __load_completion jupytunnel; complete -p jupytunnel",
        ],
        capture_output=True,
        text=True,
        env=home,
        timeout=TIMEOUT,
        check=False,
    )
    assert "-F _jupytunnel" in out.stdout, out.stderr


def test_every_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    from jupytunnel.__main__ import run

    nodes = list(completion.command_tree(cli_app).walk())
    assert len(nodes) > 10
    for node in nodes:
        assert run([*node.path, "--help"]) == 0
        out = capsys.readouterr().out
        example = out[out.find("Example:") :].split("\n\n")[0]
        assert "jupytunnel " in example, f"jupytunnel {node.key} --help has no example"
