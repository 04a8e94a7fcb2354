"""The completion scripts driven in the real shells: bash, zsh (a harness and a real TAB) and fish.

Each case is the words of a command line, the last one being completed; the expected
candidates come from the CLI itself where they can, so new commands do not break the tests.
"""

from __future__ import annotations

import enum
import os
import pty
import select
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import pytest
import typer

from jupytunnel import completion
from jupytunnel.cli.app import app as cli_app
from jupytunnel.completion import complete_profile

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "completions"
BASH = shutil.which("bash") or "/bin/bash"
ZSH = shutil.which("zsh") or "/usr/bin/zsh"
FISH = shutil.which("fish") or "/usr/bin/fish"
PROFILES = ("aura", "alpha", "uni")
TIMEOUT = 20

TREE = completion.command_tree(cli_app)
TOP = sorted(c.path[-1] for c in TREE.children)


def _env(config: Path | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTUNNEL_", "XDG_"))}
    if config is not None:
        env["JUPYTUNNEL_CONFIG_DIR"] = str(config)
    env.update(extra)
    return env


@pytest.fixture
def config(tmp_path: Path) -> Path:
    folder = tmp_path / "cfg" / "profiles"
    folder.mkdir(parents=True)
    for name in PROFILES:
        (folder / f"{name}.toml").write_text('host = "x"\n')
    # Not profiles: a hidden temp file (profile edit makes them), another suffix, a bad name.
    for other in (".aura.x1.toml", "notes.txt", "bad name.toml", "-dash.toml"):
        (folder / other).write_text("")
    return tmp_path / "cfg"


def run_bash(
    words: list[str], env: dict[str, str], *, script: Path = SCRIPTS / "jupytunnel.bash", pre: str = ""
) -> list[str]:
    array = " ".join(shlex.quote(w) for w in words)
    code = (
        f"source {shlex.quote(str(script))}\n{pre}\n"
        f"COMP_WORDS=({array}); COMP_CWORD={len(words) - 1}\n"
        '_jupytunnel; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    out = subprocess.run(
        [BASH, "--norc", "--noprofile", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    return sorted(line for line in out.stdout.splitlines() if line)


# A stand-in for zsh's compadd (only callable inside a real completion widget): it prints
# the candidates that match PREFIX, as compadd would offer them.
ZSH_HARNESS = r"""
compadd() {
    while (( $# )); do
        case $1 in
            -l|-Q|-f) shift ;;
            -d|-S|-P|-p|-X|-J|-V) shift 2 ;;
            --) shift; break ;;
            *) break ;;
        esac
    done
    local w
    for w in "$@"; do [[ $w == ${PREFIX}* ]] && print -r -- "$IPREFIX$w"; done
}
_files() { print -r -- "<files>"; }
source "$1"; shift
words=("$@"); CURRENT=$#; PREFIX=${words[CURRENT]}; IPREFIX=
_jupytunnel
"""


def run_zsh(words: list[str], env: dict[str, str]) -> list[str]:
    out = subprocess.run(
        [ZSH, "-f", "-c", ZSH_HARNESS, "zsh", str(SCRIPTS / "_jupytunnel"), *words],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )
    assert out.stderr == ""
    return sorted(line for line in out.stdout.splitlines() if line)


def run_fish(words: list[str], env: dict[str, str]) -> list[str]:
    line = " ".join(shlex.quote(w) if w else "" for w in words[:-1]) + " " + words[-1]
    code = f"source {shlex.quote(str(SCRIPTS / 'jupytunnel.fish'))}; complete -C {shlex.quote(line.lstrip())}"
    out = subprocess.run(
        [FISH, "--no-config", "-c", code], capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False
    )
    assert out.stderr == ""
    return sorted(line.split("\t")[0] for line in out.stdout.splitlines() if line)


RUNNERS = {"bash": run_bash, "zsh": run_zsh, "fish": run_fish}

# (words, expected); "@top" stands for the top-level commands of the CLI.
CASES: list[tuple[list[str], list[str]]] = [
    (["jupytunnel", "connect", "au"], ["aura"]),
    (["jupytunnel", "connect", "a"], ["alpha", "aura"]),
    (["jupytunnel", "connect", ""], ["alpha", "aura", "uni"]),
    (["jupytunnel", "connect", "aura", ""], []),
    (["jupytunnel", "--dry-run", "connect", "u"], ["uni"]),
    (["jupytunnel", "-v", "server", "logs", "a"], ["alpha", "aura"]),
    (["jupytunnel", "server", "logs", "aura", "-n", ""], []),
    (["jupytunnel", "server", "logs", "-n", "50", "u"], ["uni"]),
    (["jupytunnel", "disconnect", "--stop-server", "al"], ["alpha"]),
    (["jupytunnel", "doctor", "un"], ["uni"]),
    (["jupytunnel", ""], ["@top"]),
    (["jupytunnel", "pro"], ["profile"]),
    (["jupytunnel", "profile", ""], ["add", "edit", "list", "path", "remove", "show"]),
    (["jupytunnel", "server", "st"], ["start", "stop"]),
    (["jupytunnel", "completion", ""], ["install", "show"]),
    (["jupytunnel", "completion", "show", ""], ["bash", "fish", "zsh"]),
    (["jupytunnel", "completion", "install", "z"], ["zsh"]),
    (["jupytunnel", "profile", "add", "x", "--transport", ""], ["socket", "tcp"]),
    (["jupytunnel", "profile", "add", "x", "--host", "h", "--launcher", "t"], ["tmux"]),
    (["jupytunnel", "profile", "add", "x", "--launcher", ""], ["nohup", "none", "screen", "slurm", "tmux"]),
    (["jupytunnel", "profile", "add", "x", "--transport=s"], ["--transport=socket"]),
    (["jupytunnel", "profile", "add", "x", "--host", "con"], []),
    (["jupytunnel", "profile", "add", "x", "--tr"], ["--transport"]),
    (["jupytunnel", "connect", "--no-"], ["--no-browser", "--no-start"]),
    (["jupytunnel", "--ver"], ["--verbose", "--version"]),
    (["jupytunnel", "status", "--json", "a"], ["alpha", "aura"]),
    (["jupytunnel", "nosuch", ""], []),
    # profile add takes a new name: the existing ones are no candidates.
    (["jupytunnel", "profile", "add", ""], []),
    (["jupytunnel", "profile", "add", "a"], []),
]


@pytest.mark.parametrize("shell", sorted(RUNNERS))
def test_candidates(shell: str, config: Path) -> None:
    env = _env(config)
    for words, expected in CASES:
        want = TOP if expected == ["@top"] else expected
        assert RUNNERS[shell](words, env) == want, (shell, words)


def test_bash_splits_at_equals(config: Path) -> None:
    # bash's COMP_WORDBREAKS holds "=": "--transport=s" arrives as three words.
    env = _env(config)
    assert run_bash(["jupytunnel", "profile", "add", "x", "--transport", "=", "s"], env) == ["socket"]
    assert run_bash(["jupytunnel", "profile", "add", "x", "--transport", "=", "", ""], env) == []
    assert run_bash(["jupytunnel", "profile", "add", "x", "--transport", "=", ""], env) == ["socket", "tcp"]


def test_every_profile_argument_completes_profile_names(config: Path) -> None:
    """Every command whose argument takes a profile name offers the names, in each shell."""
    env = _env(config)
    taking = [node for node in TREE.walk() if any(a.values.kind == "profiles" for a in node.arguments)]
    paths = {node.key for node in taking}
    assert {
        "connect",
        "disconnect",
        "status",
        "open",
        "doctor",
        "profile show",
        "profile edit",
        "profile remove",
        "server start",
        "server stop",
        "server list",
        "server logs",
    } <= paths
    for node in taking:
        index = next(i for i, a in enumerate(node.arguments) if a.values.kind == "profiles")
        words = ["jupytunnel", *node.path, *["aura"] * index, "au"]
        for shell, runner in RUNNERS.items():
            assert runner(words, env) == ["aura"], (shell, words)
        if node.arguments[index].nargs < 0:  # variadic (write-ssh-config NAME...)
            assert run_bash(["jupytunnel", *node.path, "aura", "u"], env) == ["uni"]


@pytest.mark.parametrize("shell", sorted(RUNNERS))
def test_default_config_folder_is_platformdirs(shell: str, tmp_path: Path) -> None:
    """Without JUPYTUNNEL_CONFIG_DIR the shell lists the folder jupytunnel itself uses."""
    home = tmp_path / "home"
    for env, folder in (
        (_env(None, HOME=str(home)), home / ".config" / "jupytunnel"),
        (_env(None, HOME=str(home), XDG_CONFIG_HOME=str(tmp_path / "xdg")), tmp_path / "xdg" / "jupytunnel"),
        (_env(None, HOME=str(home), JUPYTUNNEL_CONFIG_DIR="~/jt"), home / "jt"),
    ):
        (folder / "profiles").mkdir(parents=True, exist_ok=True)
        (folder / "profiles" / "zed.toml").write_text('host = "x"\n')
        python = subprocess.run(
            [sys.executable, "-c", "from jupytunnel import paths; print(paths.profiles_dir())"],
            capture_output=True,
            text=True,
            env=env,
            timeout=TIMEOUT,
            check=True,
        )
        assert Path(python.stdout.strip()) == folder / "profiles"
        assert RUNNERS[shell](["jupytunnel", "connect", "z"], env) == ["zed"], env
        (folder / "profiles" / "zed.toml").unlink()


@pytest.mark.parametrize("shell", sorted(RUNNERS))
def test_no_profiles_folder(shell: str, tmp_path: Path) -> None:
    assert RUNNERS[shell](["jupytunnel", "connect", ""], _env(tmp_path / "none")) == []


def test_bash_user_glob_settings_neither_break_nor_change(config: Path, tmp_path: Path) -> None:
    env = _env(tmp_path / "none")
    pre = "shopt -s failglob dotglob nocaseglob"
    code_check = "shopt -q failglob && shopt -q dotglob && shopt -q nocaseglob && ! shopt -q nullglob"
    for cfg, want in ((tmp_path / "none", []), (config, ["alpha", "aura"])):
        env = _env(cfg)
        got = run_bash(["jupytunnel", "connect", "a"], env, pre=pre)
        assert got == want
    script = SCRIPTS / "jupytunnel.bash"
    out = subprocess.run(
        [
            BASH,
            "--norc",
            "-c",
            f"source {script}; {pre}; COMP_WORDS=(jupytunnel connect a); COMP_CWORD=2; _jupytunnel; {code_check}",
        ],
        env=_env(tmp_path / "none"),
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert out.returncode == 0, out.stderr


def test_tab_never_starts_python(config: Path, tmp_path: Path) -> None:
    """Fake python, python3 and jupytunnel on PATH record any call; a TAB makes none."""
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    called = tmp_path / "called"
    for name in ("python", "python3", "jupytunnel"):
        fake = fakes / name
        fake.write_text(f"#!/bin/sh\necho {name} >> {called}\n")
        fake.chmod(0o755)
    env = _env(config, PATH=f"{fakes}:/usr/bin:/bin")
    for runner in RUNNERS.values():
        assert runner(["jupytunnel", "connect", "au"], env) == ["aura"]
        assert runner(["jupytunnel", "profile", "add", "x", "--transport", ""], env) == ["socket", "tcp"]
    assert not called.exists()


def test_bash_tab_with_100_profiles(tmp_path: Path) -> None:
    """A whole bash process that sources the script and completes, with 100 profiles.

    How fast it is, is the benchmark's to say (benchmarks/run.py, pair 6): no test asserts a time.
    """
    folder = tmp_path / "cfg" / "profiles"
    folder.mkdir(parents=True)
    for i in range(100):
        (folder / f"a{i:03d}.toml").write_text("")
    (folder / "b000.toml").write_text("")
    env = _env(tmp_path / "cfg")
    code = f"source {SCRIPTS / 'jupytunnel.bash'}; COMP_WORDS=(jupytunnel connect a); COMP_CWORD=2; _jupytunnel; echo ${{#COMPREPLY[@]}}"
    out = subprocess.run(
        [BASH, "--norc", "--noprofile", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=True,
    )
    assert out.stdout.strip() == "100"


def _zsh_real_tab(line: bytes, home: Path, env: dict[str, str]) -> str:
    """Type ``line`` and a TAB in an interactive zsh with compinit; return the edited line."""
    home.mkdir(parents=True, exist_ok=True)
    dump = home / "buffer"
    (home / ".zshrc").write_text(
        f"fpath=({SCRIPTS} $fpath)\n"
        "autoload -Uz compinit && compinit -u -D\n"
        f'_jt_dump() {{ print -r -- "$BUFFER" > {dump} }}\n'
        "zle -N _jt_dump\n"
        "bindkey '^X' _jt_dump\n"
        "PS1='READY> '\n"
    )
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [ZSH, "-i"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**env, "ZDOTDIR": str(home), "HOME": str(home), "TERM": "xterm"},
        start_new_session=True,
    )
    os.close(slave)
    try:
        seen = b""
        deadline = time.monotonic() + TIMEOUT
        while b"READY> " not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                seen += os.read(master, 4096)
        assert b"READY> " in seen, seen
        os.write(master, line + b"\t\x18")  # complete, then dump the line (keys run in order)
        while not (dump.exists() and dump.read_text().endswith("\n")) and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                os.read(master, 4096)
        return dump.read_text().rstrip("\n")
    finally:
        proc.kill()
        proc.wait(timeout=TIMEOUT)
        os.close(master)


@pytest.mark.parametrize("shell", sorted(RUNNERS))
@pytest.mark.parametrize(
    "words",
    [
        ["jupytunnel", "profile", "add", "x", "--identity-file"],
        ["jupytunnel", "profile", "add", "x", "--host", "h", "--identity-file"],
        ["jupytunnel", "write-ssh-config", "--file"],
        ["jupytunnel", "write-ssh-config", "aura", "--file"],
    ],
    ids=" ".join,
)
def test_file_options_complete_file_names(shell: str, words: list[str], config: Path, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "id_ed25519").write_text("")
    (keys / "id_rsa").write_text("")
    got = RUNNERS[shell]([*words, str(keys / "id_e")], _env(config))
    # The zsh harness stands _files in with a marker; the real TAB test below runs zsh's own.
    assert got == (["<files>"] if shell == "zsh" else [str(keys / "id_ed25519")])


def _zsh_real_tab_screen(line: bytes, home: Path, env: dict[str, str]) -> tuple[str, str]:
    """Type ``line`` and a TAB in an interactive zsh; the edited line and what the screen showed."""
    home.mkdir(parents=True, exist_ok=True)
    dump = home / "buffer"
    (home / ".zshrc").write_text(
        f"fpath=({SCRIPTS} $fpath)\n"
        "autoload -Uz compinit && compinit -u -D\n"
        f'_jt_dump() {{ print -r -- "$BUFFER" > {dump} }}\n'
        "zle -N _jt_dump\n"
        "bindkey '^X' _jt_dump\n"
        "PS1='READY> '\n"
    )
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [ZSH, "-i"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=home,
        env={**env, "ZDOTDIR": str(home), "HOME": str(home), "TERM": "xterm"},
        start_new_session=True,
    )
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + TIMEOUT
        while b"READY> " not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                seen += os.read(master, 4096)
        assert b"READY> " in seen, seen
        seen = b""
        os.write(master, line + b"\t\x18")
        while not (dump.exists() and dump.read_text().endswith("\n")) and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                seen += os.read(master, 4096)
        return dump.read_text().rstrip("\n"), seen.decode(errors="replace")
    finally:
        proc.kill()
        proc.wait(timeout=TIMEOUT)
        os.close(master)


@pytest.mark.parametrize("option", ["write-ssh-config --file", "profile add x --identity-file"])
def test_zsh_real_tab_on_a_file_option_prints_no_error(option: str, config: Path, tmp_path: Path) -> None:
    """zsh's _files under the script's ``emulate -L zsh`` printed
    "(eval):1: no matches found: *:globbed-files" before completing."""
    home = tmp_path / "z"
    home.mkdir()
    (home / "ssh_config_work").write_text("")
    line, screen = _zsh_real_tab_screen(f"jupytunnel {option} ssh_con".encode(), home, _env(config))
    assert line == f"jupytunnel {option} ssh_config_work "
    assert "no matches found" not in screen
    assert "(eval)" not in screen


def test_zsh_real_tab_with_compinit(config: Path, tmp_path: Path) -> None:
    env = _env(config)
    assert _zsh_real_tab(b"jupytunnel connect au", tmp_path / "z1", env) == "jupytunnel connect aura "
    assert _zsh_real_tab(b"jupytunnel profile add x --transport so", tmp_path / "z2", env) == (
        "jupytunnel profile add x --transport socket "
    )
    assert _zsh_real_tab(b"jupytunnel serv", tmp_path / "z3", env) == "jupytunnel server "


class Color(str, enum.Enum):
    red = "red"
    blue = "blue"


def sample_app() -> typer.Typer:
    """Nested groups, a variadic profile argument, choices, paths, counts, hidden things."""
    app = typer.Typer()
    deep = typer.Typer()
    deeper = typer.Typer()

    @app.command("sync")
    def sync(
        mode: Annotated[str, typer.Argument(autocompletion=lambda: ["push", "pull"])],
        names: Annotated[Optional[list[str]], typer.Argument(autocompletion=complete_profile)] = None,
        out: Annotated[Optional[Path], typer.Option("--out", "-o")] = None,
        verbose: Annotated[int, typer.Option("--verbose", "-v", count=True)] = 0,
        color: Annotated[Color, typer.Option()] = Color.red,
        secret: Annotated[bool, typer.Option("--secret", hidden=True)] = False,
        fast: Annotated[bool, typer.Option("--fast/--slow")] = True,
    ) -> None:
        """Sync."""

    @app.command("ghost", hidden=True)
    def ghost() -> None: ...

    @deeper.command("leaf")
    def leaf(name: Annotated[str, typer.Argument(autocompletion=complete_profile)]) -> None:
        """Leaf."""

    deep.add_typer(deeper, name="deeper")
    app.add_typer(deep, name="deep")
    return app


def test_generator_handles_any_command_tree(config: Path, tmp_path: Path) -> None:
    app = sample_app()
    tree = completion.command_tree(app)
    assert completion.render("bash", tree) == completion.render("bash", completion.command_tree(app))
    script = tmp_path / "x.bash"
    script.write_text(completion.render("bash", tree))
    env = _env(config)

    def bash(*words: str) -> list[str]:
        return run_bash(["jupytunnel", *words], env, script=script)

    assert bash("") == ["deep", "sync"]  # not the hidden one
    assert bash("deep", "") == ["deeper"]
    assert bash("deep", "deeper", "") == ["leaf"]
    assert bash("deep", "deeper", "leaf", "a") == ["alpha", "aura"]
    assert bash("sync", "p") == ["pull", "push"]
    assert bash("sync", "push", "a") == ["alpha", "aura"]
    assert bash("sync", "push", "aura", "alpha", "u") == ["uni"]
    assert bash("sync", "-v", "-v", "push", "--color", "") == ["blue", "red"]
    assert bash("sync", "--color", "red", "push", "u") == ["uni"]
    assert bash("sync", "--s") == ["--slow"]  # --secret is hidden
    (tmp_path / "outfile").write_text("")
    assert bash("sync", "--out", str(tmp_path / "outf")) == [str(tmp_path / "outfile")]
    for shell in ("zsh", "fish"):
        assert "deeper" in completion.render(shell, tree)
