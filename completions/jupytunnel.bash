# bash completion for jupytunnel. Generated from the CLI by scripts/gen_completions.py:
# do not edit. Install with: jupytunnel completion install bash
# A TAB runs no program: the command tree is below, and profile names are the *.toml
# file names in the profiles folder, listed by the shell itself.

_jupytunnel_node() {
    # Subcommands and options of the command at path $1 (words after the program name).
    _jt_subs=(); _jt_opts=()
    case $1 in
        '')
            _jt_subs=(completion connect disconnect doctor open profile run runs server status sync write-ssh-config)
            _jt_opts=(--dry-run -h --help -v --verbose --version)
            ;;
        'completion')
            _jt_subs=(install show)
            _jt_opts=(-h --help)
            ;;
        'completion install')
            _jt_opts=(-h --help)
            ;;
        'completion show')
            _jt_opts=(-h --help)
            ;;
        'connect')
            _jt_opts=(-h --help --json --local-port --no-browser --no-start --save --timeout --watch)
            ;;
        'disconnect')
            _jt_opts=(--all -h --help --stop-server --timeout)
            ;;
        'doctor')
            _jt_opts=(-h --help --json --timeout)
            ;;
        'open')
            _jt_opts=(-h --help --show-token)
            ;;
        'profile')
            _jt_subs=(add edit list path remove show)
            _jt_opts=(-h --help)
            ;;
        'profile add')
            _jt_opts=(--force -h --help --host --identity-file --jump --jupyter --launcher --local-port --nice --no-browser --port --proxy-command --remote-port --sbatch-arg --setup --ssh-option --transport --user --workdir)
            ;;
        'profile edit')
            _jt_opts=(-h --help)
            ;;
        'profile list')
            _jt_opts=(-h --help --json --wide)
            ;;
        'profile path')
            _jt_opts=(-h --help)
            ;;
        'profile remove')
            _jt_opts=(--force -h --help)
            ;;
        'profile show')
            _jt_opts=(-h --help --json)
            ;;
        'run')
            _jt_subs=(cancel fetch logs)
            _jt_opts=(-h --help)
            ;;
        'run cancel')
            _jt_opts=(-h --help)
            ;;
        'run fetch')
            _jt_opts=(-h --help --to)
            ;;
        'run logs')
            _jt_opts=(-f --follow -h --help -n --lines)
            ;;
        'runs')
            _jt_opts=(-h --help --json)
            ;;
        'server')
            _jt_subs=(list logs password start stop)
            _jt_opts=(-h --help)
            ;;
        'server list')
            _jt_opts=(-h --help --json --wide)
            ;;
        'server logs')
            _jt_opts=(-f --follow -h --help -n --lines --timeout)
            ;;
        'server password')
            _jt_opts=(-h --help)
            ;;
        'server start')
            _jt_opts=(-h --help --timeout)
            ;;
        'server stop')
            _jt_opts=(-h --help)
            ;;
        'status')
            _jt_opts=(-h --help --json --show-token --wide)
            ;;
        'sync')
            _jt_opts=(--delete --dry-run --exclude -h --help --json --pull --timeout)
            ;;
        'write-ssh-config')
            _jt_opts=(--dry-run --file --force -h --help --remove)
            ;;
    esac
}

_jupytunnel_option() {
    # How many values option $2 of the command at path $1 takes, and what completes them.
    _jt_n=0; _jt_kind=none; _jt_words=()
    case "$1|$2" in
        'profile add|--identity-file'|'run fetch|--to'|'write-ssh-config|--file')
            _jt_n=1; _jt_kind=files ;;
        'connect|--local-port'|'connect|--timeout'|'disconnect|--timeout'|'doctor|--timeout'|'profile add|--host'|'profile add|--jump'|'profile add|--jupyter'|'profile add|--local-port'|'profile add|--nice'|'profile add|--port'|'profile add|--proxy-command'|'profile add|--remote-port'|'profile add|--sbatch-arg'|'profile add|--setup'|'profile add|--ssh-option'|'profile add|--user'|'profile add|--workdir'|'run logs|--lines'|'run logs|-n'|'server logs|--lines'|'server logs|--timeout'|'server logs|-n'|'server start|--timeout'|'sync|--exclude'|'sync|--timeout')
            _jt_n=1 ;;
        'profile add|--launcher')
            _jt_n=1; _jt_kind=words; _jt_words=(nohup tmux screen slurm none) ;;
        'profile add|--transport')
            _jt_n=1; _jt_kind=words; _jt_words=(tcp socket) ;;
    esac
}

_jupytunnel_argument() {
    # What completes positional argument $2 (counted from 0) of the command at path $1.
    _jt_kind=none; _jt_words=()
    case "$1|$2" in
        'connect|0'|'disconnect|0'|'doctor|0'|'open|0'|'profile edit|0'|'profile path|0'|'profile remove|0'|'profile show|0'|'runs|0'|'server list|0'|'server logs|0'|'server password|0'|'server start|0'|'server stop|0'|'status|0'|'sync|0')
            _jt_kind=profiles ;;
        'completion install|0'|'completion show|0')
            _jt_kind=words; _jt_words=(bash zsh fish) ;;
        'write-ssh-config|'*)
            _jt_kind=profiles ;;
    esac
}

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
