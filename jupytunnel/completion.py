"""Static shell completion scripts for bash, zsh and fish, generated from the CLI's command tree.

A TAB has to answer within a few tens of milliseconds, and starting Python alone costs more
than that. So the scripts are plain shell: the command tree (subcommands, options, fixed
choices) is baked in when they are rendered, and profile names come from listing
``*.toml`` in the profiles folder, in the shell, at TAB time (nothing is parsed, no process
is started).

``render(shell)`` builds a script from the Typer app; ``jupytunnel completion show|install``
renders from the installed app, and ``scripts/gen_completions.py`` writes the committed
copies in ``completions/``. Rendering is deterministic, so "up to date" is an equality.

A parameter completes profile names when its ``autocompletion=`` is
``complete_profile`` (matched by identity), file names when it is
``complete_file`` or the parameter is a path. Any other completer, a
click choice or an Enum is evaluated once, at render time: it must return a fixed list.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

PROG = "jupytunnel"
SHELLS: tuple[str, ...] = ("bash", "zsh", "fish")
FILE_NAMES: dict[str, str] = {"bash": "jupytunnel.bash", "zsh": "_jupytunnel", "fish": "jupytunnel.fish"}

Kind = Literal["none", "words", "profiles", "files", "dirs"]

# What may appear unquoted in a generated script; anything else is refused at render time.
_COMMAND_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_OPTION_RE = re.compile(r"--?[A-Za-z0-9][A-Za-z0-9_-]*")
_WORD_RE = re.compile(r"[A-Za-z0-9_.:@+/][A-Za-z0-9_.:@+/-]*")
_DESC_LEN = 80


@dataclasses.dataclass(frozen=True)
class Values:
    """What completes a value: nothing, fixed words, profile names, file or folder names."""

    kind: Kind = "none"
    words: tuple[str, ...] = ()


NO_VALUES = Values()


@dataclasses.dataclass(frozen=True)
class Option:
    names: tuple[str, ...]  # every spelling: "-v", "--verbose"
    help: str
    nargs: int  # values it takes; 0 for a flag
    values: Values


@dataclasses.dataclass(frozen=True)
class Argument:
    name: str
    nargs: int  # -1: any number
    values: Values


@dataclasses.dataclass(frozen=True)
class Node:
    """A command or a group of commands, with what completes after it."""

    path: tuple[str, ...]
    help: str
    options: tuple[Option, ...]
    arguments: tuple[Argument, ...]
    children: tuple[Node, ...]

    @property
    def key(self) -> str:
        return " ".join(self.path)

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()


# --- reading the click command tree --------------------------------------------------------


def command_tree(app: Any) -> Node:  # noqa: ANN401 - a typer.Typer or a click command; typer is imported lazily
    """The completion model of ``app`` (the CLI passes its own: this module imports no CLI)."""
    import typer.main

    command = app if hasattr(app, "get_params") else typer.main.get_command(app)
    return _node(command, _context(command, PROG, None), ())


def complete_profile(incomplete: str) -> list[str]:
    """The profile names that start with ``incomplete`` (Typer's completer; the generated
    scripts recognise it by identity and list the profile files themselves)."""
    from jupytunnel.profiles import list_names

    return [n for n in list_names() if n.startswith(incomplete)]


def complete_file(incomplete: str) -> list[str]:
    """A marker for the completion scripts: this value is a file name (the shell lists them)."""
    del incomplete
    return []


def _context(command: Any, name: str, parent: Any) -> Any:  # noqa: ANN401 - click objects (typer vendors click)
    # make_context would parse arguments; a bare context is enough to list parameters.
    return command.context_class(command, info_name=name, parent=parent, **(command.context_settings or {}))


def _node(command: Any, ctx: Any, path: tuple[str, ...]) -> Node:  # noqa: ANN401
    options: list[Option] = []
    arguments: list[Argument] = []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        if param.param_type_name == "argument":
            arguments.append(Argument(str(param.name), int(param.nargs), _values(param, ctx)))
        elif param.param_type_name == "option":
            options.append(_option(param, ctx))
    children: list[Node] = []
    if hasattr(command, "list_commands"):
        for name in sorted(command.list_commands(ctx)):
            sub = command.get_command(ctx, name)
            if sub is None or getattr(sub, "hidden", False):
                continue
            _check(name, _COMMAND_RE, "command name")
            children.append(_node(sub, _context(sub, name, ctx), (*path, name)))
    return Node(
        path=path,
        help=_one_line(command.get_short_help_str(limit=_DESC_LEN)),
        options=tuple(sorted(options, key=lambda o: _sort_key(o.names))),
        arguments=tuple(arguments),
        children=tuple(children),
    )


def _sort_key(names: tuple[str, ...]) -> tuple[str, ...]:
    longs = sorted(n for n in names if n.startswith("--"))
    return (longs[0] if longs else names[0]).lstrip("-"), *names


def _option(param: Any, ctx: Any) -> Option:  # noqa: ANN401
    names = tuple(sorted({*param.opts, *param.secondary_opts}, key=lambda n: (n.startswith("--"), n)))
    for name in names:
        _check(name, _OPTION_RE, "option")
    flag = bool(getattr(param, "is_flag", False) or getattr(param, "count", False))
    nargs = 0 if flag else max(int(param.nargs), 1)
    return Option(names, _one_line(param.help or ""), nargs, NO_VALUES if flag else _values(param, ctx))


def _values(param: Any, ctx: Any) -> Values:  # noqa: ANN401
    if _has_completer(param, complete_profile):
        return Values("profiles")
    if _has_completer(param, complete_file):
        return Values("files")
    path = _path_kind(param)
    if path is not None:
        return Values(path)
    items = param.shell_complete(ctx, "")
    types = {str(getattr(item, "type", "plain")) for item in items}
    if "dir" in types:
        return Values("dirs")
    if "file" in types:
        return Values("files")
    words = tuple(str(item.value) for item in items)
    for word in words:
        _check(word, _WORD_RE, f"completion value of {param.name!r}")
    return Values("words", words) if words else NO_VALUES


def _path_kind(param: Any) -> Kind | None:  # noqa: ANN401
    """ "files" or "dirs" for a path parameter, else None.

    Typer's path types complete nothing themselves (they leave it to the shell), so ask the
    type: click's ``Path`` and typer's ``TyperPath`` carry ``file_okay``/``dir_okay``, click's
    ``File`` is named "filename"; typer >= 0.29 describes it on ``type_descriptor`` instead.
    """
    desc = getattr(param, "type_descriptor", None)
    ptype = getattr(param, "type", None)
    if getattr(desc, "is_path", False):
        source = getattr(desc, "parameter_info", None)
    elif hasattr(ptype, "file_okay") and hasattr(ptype, "dir_okay"):
        source = ptype
    elif getattr(desc, "is_file", False) or getattr(ptype, "name", None) == "filename":
        return "files"
    else:
        return None
    dirs_only = getattr(source, "dir_okay", True) and not getattr(source, "file_okay", True)
    return "dirs" if dirs_only else "files"


def _has_completer(param: Any, wanted: Callable[..., object]) -> bool:  # noqa: ANN401
    """Whether ``param``'s ``autocompletion=`` is ``wanted``.

    Typer keeps the callback on the parameter info (recent versions) or only inside the
    wrapper it installs as click's ``shell_complete`` (older ones); look in both.
    """
    info = getattr(getattr(param, "type_descriptor", None), "parameter_info", None)
    if getattr(info, "autocompletion", None) is wanted:
        return True
    return _in_closure(getattr(param, "_custom_shell_complete", None), wanted, depth=3)


def _in_closure(fn: object, wanted: object, *, depth: int) -> bool:
    if fn is wanted:
        return True
    if depth == 0:
        return False
    cells = getattr(fn, "__closure__", None) or ()
    return any(_in_closure(getattr(cell, "cell_contents", None), wanted, depth=depth - 1) for cell in cells)


def _check(text: str, pattern: re.Pattern[str], what: str) -> None:
    if not pattern.fullmatch(text):
        raise ValueError(f"{what} {text!r} cannot go into a completion script unquoted")


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _DESC_LEN else text[: _DESC_LEN - 3].rstrip() + "..."


# --- what the three scripts share ----------------------------------------------------------


def _sq(text: str) -> str:
    """Single-quote for bash and zsh."""
    return "'" + text.replace("'", "'\\''") + "'"


def _fish_sq(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclasses.dataclass(frozen=True)
class _Case:
    """One branch of a generated ``case``: the keys it matches and what it sets."""

    keys: tuple[str, ...]  # "PATH|OPTION" or "PATH|INDEX"; a variadic one is "PATH|" (matches any index)
    values: Values
    nargs: int = 0


def _option_cases(root: Node) -> list[_Case]:
    """Options that take values, grouped by what completes them ("PATH|OPTION" keys)."""
    groups: dict[tuple[int, Values], list[str]] = {}
    for node in root.walk():
        for opt in node.options:
            if opt.nargs:
                for name in opt.names:
                    groups.setdefault((opt.nargs, opt.values), []).append(f"{node.key}|{name}")
    ordered = sorted(groups.items(), key=lambda item: (item[0][0], *_values_key(item[0][1])))
    return [_Case(tuple(sorted(keys)), values, nargs) for (nargs, values), keys in ordered]


def _argument_cases(root: Node) -> list[_Case]:
    """Positional arguments by index ("PATH|N" keys); a variadic one matches every later index.

    Fixed indices come first, so a variadic pattern never hides them.
    """
    fixed: dict[Values, list[str]] = {}
    variadic: dict[Values, list[str]] = {}
    for node in root.walk():
        index = 0
        has_variadic = any(a.nargs < 0 for a in node.arguments)
        for arg in node.arguments:
            if arg.nargs < 0:
                variadic.setdefault(arg.values, []).append(f"{node.key}|")
                break
            for _ in range(arg.nargs):
                if arg.values != NO_VALUES or has_variadic:
                    fixed.setdefault(arg.values, []).append(f"{node.key}|{index}")
                index += 1
    out = [_Case(tuple(sorted(keys)), values) for values, keys in sorted(fixed.items(), key=_first_values_key)]
    return out + [
        _Case(tuple(sorted(keys)), values, nargs=-1) for values, keys in sorted(variadic.items(), key=_first_values_key)
    ]


def _values_key(values: Values) -> tuple[str, ...]:
    return values.kind, *values.words


def _first_values_key(item: tuple[Values, list[str]]) -> tuple[str, ...]:
    return _values_key(item[0])


def _case_patterns(case: _Case, quote: Callable[[str], str], *, quoted_star: bool = False) -> list[str]:
    """``case`` patterns; bash and zsh want the variadic ``*`` unquoted, fish quoted (or it globs)."""
    if case.nargs >= 0:
        return [quote(k) for k in case.keys]
    return [quote(k + "*") if quoted_star else quote(k) + "*" for k in case.keys]


def _posix_sets(values: Values, nargs: int | None) -> str:
    parts = [] if nargs is None else [f"_jt_n={nargs}"]
    if values.kind != "none":
        parts.append(f"_jt_kind={values.kind}")
    if values.words:
        parts.append(f"_jt_words=({' '.join(values.words)})")
    return "; ".join(parts) or ":"


def _posix_data(root: Node, *, descriptions: bool) -> str:
    """The three data functions, in syntax bash and zsh both accept."""
    out = [
        "_jupytunnel_node() {",
        "    # Subcommands and options of the command at path $1 (words after the program name).",
        "    _jt_subs=(); _jt_opts=()" + ("; _jt_sdesc=(); _jt_odesc=()" if descriptions else ""),
        "    case $1 in",
    ]
    for node in root.walk():
        out.append(f"        {_sq(node.key)})")
        if node.children:
            out.append(f"            _jt_subs=({' '.join(c.path[-1] for c in node.children)})")
            if descriptions:
                out.append(f"            _jt_sdesc=({_described([(c.path[-1], c.help) for c in node.children])})")
        names = [n for o in node.options for n in o.names]
        out.append(f"            _jt_opts=({' '.join(names)})")
        if descriptions:
            out.append(f"            _jt_odesc=({_described([(n, o.help) for o in node.options for n in o.names])})")
        out.append("            ;;")
    out += ["    esac", "}", ""]
    out += [
        "_jupytunnel_option() {",
        "    # How many values option $2 of the command at path $1 takes, and what completes them.",
        "    _jt_n=0; _jt_kind=none; _jt_words=()",
        '    case "$1|$2" in',
    ]
    for case in _option_cases(root):
        out.append(f"        {'|'.join(_case_patterns(case, _sq))})")
        out.append(f"            {_posix_sets(case.values, case.nargs)} ;;")
    out += ["    esac", "}", ""]
    out += [
        "_jupytunnel_argument() {",
        "    # What completes positional argument $2 (counted from 0) of the command at path $1.",
        "    _jt_kind=none; _jt_words=()",
        '    case "$1|$2" in',
    ]
    for case in _argument_cases(root):
        out.append(f"        {'|'.join(_case_patterns(case, _sq))})")
        out.append(f"            {_posix_sets(case.values, None)} ;;")
    out += ["    esac", "}", ""]
    return "\n".join(out)


def _described(pairs: list[tuple[str, str]]) -> str:
    width = max((len(word) for word, _ in pairs), default=0)
    return " ".join(_sq(f"{word.ljust(width)}  -- {text}" if text else word) for word, text in pairs)


_HEADER = """\
{comment} {name} completion for jupytunnel. Generated from the CLI by scripts/gen_completions.py:
{comment} do not edit. Install with: jupytunnel completion install {name}
{comment} A TAB runs no program: the command tree is below, and profile names are the *.toml
{comment} file names in the profiles folder, listed by the shell itself.
"""

_BASH_MAIN = r"""
_jupytunnel_profiles() {
    # $JUPYTUNNEL_CONFIG_DIR, else the platformdirs default (as jupytunnel.paths resolves it).
    local dir=${JUPYTUNNEL_CONFIG_DIR:-} f name o restore=() nullglob_off=0
    if [[ -z $dir ]]; then
        if [[ $OSTYPE == darwin* ]]; then
            dir="$HOME/Library/Application Support/jupytunnel"
        else
            dir=${XDG_CONFIG_HOME:-$HOME/.config}/jupytunnel
        fi
    fi
    [[ $dir == '~' || $dir == '~/'* ]] && dir=$HOME${dir:1}
    _jt_words=()
    # The user's glob settings must not leak in (failglob would abort the completion).
    for o in failglob nocaseglob dotglob; do
        if shopt -q "$o"; then restore+=("$o"); shopt -u "$o"; fi
    done
    shopt -q nullglob || { nullglob_off=1; shopt -s nullglob; }
    for f in "$dir"/profiles/*.toml; do
        name=${f##*/}
        name=${name%.toml}
        [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] && _jt_words+=("$name")
    done
    (( nullglob_off )) && shopt -u nullglob
    (( ${#restore[@]} )) && shopt -s "${restore[@]}"
    return 0
}

_jupytunnel_values() {
    # Fill COMPREPLY with what completes $1 (the current word, without any "--opt=").
    local cur=$1 prefix=${2:-} w
    case $_jt_kind in
        words) ;;
        profiles) _jupytunnel_profiles ;;
        files) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
        dirs) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$cur"); return ;;
        *) return ;;
    esac
    for w in "${_jt_words[@]}"; do
        [[ $w == "$cur"* ]] && COMPREPLY+=("$prefix$w")
    done
}

_jupytunnel() {
    local cur=${COMP_WORDS[COMP_CWORD]} cmdpath= vopt= w
    local -i i=1 npos=0 dd=0
    local _jt_n _jt_kind
    local -a _jt_subs _jt_opts _jt_words
    COMPREPLY=()
    # Walk the words before the cursor: subcommands extend the path, options skip their
    # values, anything else is a positional argument.
    while (( i < COMP_CWORD )); do
        w=${COMP_WORDS[i]}
        if (( ! dd )) && [[ $w == -- ]]; then
            dd=1
        elif (( ! dd )) && [[ $w == -* ]]; then
            if [[ $w != *=* ]]; then
                _jupytunnel_option "$cmdpath" "$w"
                if (( _jt_n > 0 )); then
                    # bash splits "--opt=value" at "=" (COMP_WORDBREAKS).
                    [[ ${COMP_WORDS[i+1]} == = ]] && i+=1
                    if (( i + _jt_n >= COMP_CWORD )); then vopt=$w; break; fi
                    i+=_jt_n
                fi
            fi
        else
            _jupytunnel_node "$cmdpath"
            local s found=0
            for s in "${_jt_subs[@]}"; do [[ $s == "$w" ]] && { found=1; break; }; done
            if (( found )); then cmdpath=${cmdpath:+$cmdpath }$w; npos=0; else npos+=1; fi
        fi
        i+=1
    done
    if [[ -n $vopt ]]; then
        [[ $cur == = ]] && cur=
        _jupytunnel_option "$cmdpath" "$vopt"
        _jupytunnel_values "$cur"
        return 0
    fi
    if (( ! dd )) && [[ $cur == -*=* ]]; then
        _jupytunnel_option "$cmdpath" "${cur%%=*}"
        _jupytunnel_values "${cur#*=}" "${cur%%=*}="
        return 0
    fi
    _jupytunnel_node "$cmdpath"
    if (( ! dd )) && [[ $cur == -* ]]; then
        _jt_kind=words; _jt_words=("${_jt_opts[@]}")
    elif (( ${#_jt_subs[@]} && npos == 0 )); then
        _jt_kind=words; _jt_words=("${_jt_subs[@]}")
    else
        _jupytunnel_argument "$cmdpath" "$npos"
    fi
    _jupytunnel_values "$cur"
    return 0
}

complete -F _jupytunnel jupytunnel
"""

_ZSH_MAIN = r"""
_jupytunnel_profiles() {
    # $JUPYTUNNEL_CONFIG_DIR, else the platformdirs default (as jupytunnel.paths resolves it).
    emulate -L zsh
    setopt extendedglob
    local dir=${JUPYTUNNEL_CONFIG_DIR:-}
    if [[ -z $dir ]]; then
        if [[ $OSTYPE == darwin* ]]; then
            dir="$HOME/Library/Application Support/jupytunnel"
        else
            dir=${XDG_CONFIG_HOME:-$HOME/.config}/jupytunnel
        fi
    fi
    [[ $dir == '~' || $dir == '~/'* ]] && dir=$HOME${dir#\~}
    _jt_words=( $dir/profiles/*.toml(N:t:r) )
    _jt_words=( ${(M)_jt_words:#[A-Za-z0-9][A-Za-z0-9._-]#} )
}

_jupytunnel_values() {
    # _files needs the completion system's own options (NULL_GLOB among them): under our
    # "emulate -L zsh" its "*:globbed-files" pattern would print "no matches found".
    (( ${+_comp_options} )) && setopt localoptions ${_comp_options[@]}
    case $_jt_kind in
        words) compadd -- $_jt_words ;;
        profiles) _jupytunnel_profiles; compadd -- $_jt_words ;;
        files) _files ;;
        dirs) _files -/ ;;
    esac
}

_jupytunnel() {
    emulate -L zsh
    local cur=$PREFIX cmdpath= vopt= w _jt_n _jt_kind
    integer i=2 npos=0 dd=0
    local -a _jt_subs _jt_opts _jt_sdesc _jt_odesc _jt_words
    # Walk the words before the cursor: subcommands extend the path, options skip their
    # values, anything else is a positional argument.
    while (( i < CURRENT )); do
        w=${words[i]}
        if (( ! dd )) && [[ $w == -- ]]; then
            dd=1
        elif (( ! dd )) && [[ $w == -* ]]; then
            if [[ $w != *=* ]]; then
                _jupytunnel_option "$cmdpath" "$w"
                if (( _jt_n > 0 )); then
                    if (( i + _jt_n >= CURRENT )); then vopt=$w; break; fi
                    (( i += _jt_n ))
                fi
            fi
        else
            _jupytunnel_node "$cmdpath"
            if (( ${_jt_subs[(Ie)$w]} )); then cmdpath=${cmdpath:+$cmdpath }$w; npos=0; else (( ++npos )); fi
        fi
        (( ++i ))
    done
    if [[ -n $vopt ]]; then
        _jupytunnel_option "$cmdpath" "$vopt"
        _jupytunnel_values
        return
    fi
    if (( ! dd )) && [[ $cur == -*=* ]]; then
        _jupytunnel_option "$cmdpath" "${cur%%=*}"
        IPREFIX=$IPREFIX${cur%%=*}=
        PREFIX=${cur#*=}
        _jupytunnel_values
        return
    fi
    _jupytunnel_node "$cmdpath"
    if (( ! dd )) && [[ $cur == -* ]]; then
        compadd -l -d _jt_odesc -- $_jt_opts
    elif (( ${#_jt_subs} && npos == 0 )); then
        compadd -l -d _jt_sdesc -- $_jt_subs
    else
        _jupytunnel_argument "$cmdpath" $npos
        _jupytunnel_values
    fi
}

# Autoloaded from $fpath (the usual way) the file's body runs at the first TAB; sourced, it
# registers itself.
if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
    _jupytunnel "$@"
else
    (( ${+functions[compdef]} )) && compdef _jupytunnel jupytunnel
fi
"""

_FISH_MAIN = r"""
function __jupytunnel_profiles
    # $JUPYTUNNEL_CONFIG_DIR, else the platformdirs default (as jupytunnel.paths resolves it).
    set -l dir $JUPYTUNNEL_CONFIG_DIR
    if test -z "$dir"
        if test "$__jupytunnel_uname" = Darwin
            set dir "$HOME/Library/Application Support/jupytunnel"
        else if test -n "$XDG_CONFIG_HOME"
            set dir "$XDG_CONFIG_HOME/jupytunnel"
        else
            set dir "$HOME/.config/jupytunnel"
        end
    end
    set dir (string replace -r '^~(?=/|$)' -- "$HOME" "$dir")
    for f in $dir/profiles/*.toml
        string replace -r '^.*/(.*)\.toml$' '$1' -- $f | string match -r -- '^[A-Za-z0-9][A-Za-z0-9._-]*$'
    end
end

function __jupytunnel_values --argument-names cur prefix
    set -l spec $argv[3..-1]
    switch "$spec[1]"
        case words
            printf '%s\n' $prefix$spec[2..-1]
        case profiles
            printf '%s\n' $prefix(__jupytunnel_profiles)
        case files
            __fish_complete_path $cur
        case dirs
            __fish_complete_directories $cur
    end
end

function __jupytunnel_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l cmdpath ''
    set -l vopt ''
    set -l npos 0
    set -l dd 0
    set -l n (count $tokens)
    set -l i 2
    # Walk the words before the cursor: subcommands extend the path, options skip their
    # values, anything else is a positional argument.
    while test $i -le $n
        set -l w $tokens[$i]
        if test $dd -eq 0; and test "x$w" = x--
            set dd 1
        else if test $dd -eq 0; and string match -q -- '-*' $w
            if not string match -q -- '*=*' $w
                set -l spec (__jupytunnel_option "$cmdpath" $w)
                if test $spec[1] -gt 0
                    if test (math $i + $spec[1]) -gt $n
                        set vopt $w
                        break
                    end
                    set i (math $i + $spec[1])
                end
            end
        else if contains -- $w (__jupytunnel_subcommands "$cmdpath" | string replace -r '\t.*' '')
            set cmdpath (string trim -- "$cmdpath $w")
            set npos 0
        else
            set npos (math $npos + 1)
        end
        set i (math $i + 1)
    end
    if test -n "$vopt"
        __jupytunnel_values $cur '' (__jupytunnel_option "$cmdpath" $vopt)[2..-1]
    else if test $dd -eq 0; and string match -q -- '-*=*' $cur
        set -l opt (string replace -r '=.*' '' -- $cur)
        set -l value (string replace -r '^[^=]*=' '' -- $cur)
        __jupytunnel_values $value "$opt=" (__jupytunnel_option "$cmdpath" $opt)[2..-1]
    else if test $dd -eq 0; and string match -q -- '-*' $cur
        __jupytunnel_options "$cmdpath"
    else
        set -l subs (__jupytunnel_subcommands "$cmdpath")
        if set -q subs[1]; and test $npos -eq 0
            printf '%s\n' $subs
        else
            __jupytunnel_values $cur '' (__jupytunnel_argument "$cmdpath" $npos)
        end
    end
end

set -g __jupytunnel_uname (uname -s 2>/dev/null)
complete -c jupytunnel -e
complete -c jupytunnel -f -a '(__jupytunnel_complete)'
"""


def _fish_spec(values: Values, nargs: int | None) -> str:
    words = [] if nargs is None else [str(nargs)]
    words += [values.kind, *values.words]
    return "printf '%s\\n' " + " ".join(words)


def _fish_data(root: Node) -> str:
    def pairs(items: list[tuple[str, str]]) -> str:
        return " ".join(f"{_fish_sq(w)} {_fish_sq(h)}" for w, h in items)

    out = ["function __jupytunnel_subcommands", "    switch $argv[1]"]
    for node in root.walk():
        if node.children:
            out.append(f"        case {_fish_sq(node.key)}")
            out.append(f"            printf '%s\\t%s\\n' {pairs([(c.path[-1], c.help) for c in node.children])}")
    out += ["    end", "end", ""]
    out += ["function __jupytunnel_options", "    switch $argv[1]"]
    for node in root.walk():
        out.append(f"        case {_fish_sq(node.key)}")
        out.append(f"            printf '%s\\t%s\\n' {pairs([(n, o.help) for o in node.options for n in o.names])}")
    out += ["    end", "end", ""]
    out += [
        "function __jupytunnel_option",
        "    # Prints how many values option $argv[2] of the command at path $argv[1] takes,",
        "    # then what completes them.",
        '    switch "$argv[1]|$argv[2]"',
    ]
    for case in _option_cases(root):
        out.append(f"        case {' '.join(_case_patterns(case, _fish_sq, quoted_star=True))}")
        out.append(f"            {_fish_spec(case.values, case.nargs)}")
    out += ["        case '*'", "            printf '%s\\n' 0 none", "    end", "end", ""]
    out += [
        "function __jupytunnel_argument",
        "    # Prints what completes positional argument $argv[2] (from 0) of the command at path $argv[1].",
        '    switch "$argv[1]|$argv[2]"',
    ]
    for case in _argument_cases(root):
        out.append(f"        case {' '.join(_case_patterns(case, _fish_sq, quoted_star=True))}")
        out.append(f"            {_fish_spec(case.values, None)}")
    out += ["        case '*'", "            printf '%s\\n' none", "    end", "end", ""]
    return "\n".join(out)


def render(shell: str, root: Node) -> str:
    """The completion script for ``shell`` ("bash", "zsh" or "fish")."""
    if shell not in SHELLS:
        raise ValueError(f"unknown shell {shell!r}; expected one of {', '.join(SHELLS)}")
    if shell == "bash":
        return _HEADER.format(comment="#", name="bash") + "\n" + _posix_data(root, descriptions=False) + _BASH_MAIN
    if shell == "zsh":
        header = "#compdef jupytunnel\n" + _HEADER.format(comment="#", name="zsh")
        return header + "\n" + _posix_data(root, descriptions=True) + _ZSH_MAIN
    return _HEADER.format(comment="#", name="fish") + "\n" + _fish_data(root) + _FISH_MAIN


def render_all(root: Node) -> dict[str, str]:
    """Every script by file name, from one walk of the command tree."""
    return {FILE_NAMES[shell]: render(shell, root) for shell in SHELLS}


# --- installing ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Target:
    path: Path
    note: str  # one sentence for people: how the shell picks the script up


def _home(env: dict[str, str]) -> Path:
    home = env.get("HOME")
    return Path(home) if home else Path.home()


def _xdg(env: dict[str, str], var: str, default: str) -> Path:
    # The XDG spec: a relative path in the variable is invalid and is ignored.
    value = env.get(var, "").strip()
    return Path(value) if value and os.path.isabs(value) else _home(env) / default


def install_target(shell: str, env: dict[str, str] | None = None) -> Target:
    """Where ``shell`` looks for completion scripts, and what the user may have to add."""
    env = dict(os.environ) if env is None else env
    if shell == "bash":
        # Where bash-completion (>= 2.9) looks for a user's scripts, loading them on first use.
        user_dir = env.get("BASH_COMPLETION_USER_DIR", "").split(":")[0]
        base = Path(user_dir) if user_dir else _xdg(env, "XDG_DATA_HOME", ".local/share") / "bash-completion"
        path = base / "completions" / PROG
        line = f"source {path}"
        note = f"bash-completion loads it in new shells; without bash-completion, add to ~/.bashrc: {line}"
        return Target(path, note)
    if shell == "zsh":
        path = _home(env) / ".zfunc" / FILE_NAMES["zsh"]
        line = "fpath=(~/.zfunc $fpath); autoload -Uz compinit && compinit"
        return Target(path, f"add to ~/.zshrc if it is not there yet, then open a new shell: {line}")
    if shell == "fish":
        path = _xdg(env, "XDG_CONFIG_HOME", ".config") / "fish" / "completions" / FILE_NAMES["fish"]
        return Target(path, "fish loads it by itself in new shells")
    raise ValueError(f"unknown shell {shell!r}; expected one of {', '.join(SHELLS)}")


def shell_from_env(env: dict[str, str] | None = None) -> str | None:
    """The user's shell from ``$SHELL``, if it is one we have a script for."""
    env = dict(os.environ) if env is None else env
    name = Path(env.get("SHELL", "")).name
    return name if name in SHELLS else None


def install(shell: str, script: str, env: dict[str, str] | None = None) -> tuple[Target, bool]:
    """Write ``script`` where ``shell`` finds it; returns the target and whether it changed."""
    from jupytunnel.errors import JupytunnelError
    from jupytunnel.fsutil import atomic_write

    target = install_target(shell, env)
    data = script.encode()
    try:
        if target.path.is_file() and target.path.read_bytes() == data:
            return target, False
        target.path.parent.mkdir(parents=True, exist_ok=True)
        # A completion script is not a secret: readable like any file in those folders.
        atomic_write(target.path, data, mode=0o644)
    except OSError as exc:
        raise JupytunnelError(f"cannot write {target.path}: {exc.strerror or exc}") from None
    return target, True
