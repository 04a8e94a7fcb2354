# fish completion for jupytunnel. Generated from the CLI by scripts/gen_completions.py:
# do not edit. Install with: jupytunnel completion install fish
# A TAB runs no program: the command tree is below, and profile names are the *.toml
# file names in the profiles folder, listed by the shell itself.

function __jupytunnel_subcommands
    switch $argv[1]
        case ''
            printf '%s\t%s\n' 'completion' 'Shell completion for bash, zsh and fish: subcommands, options and profile names.' 'connect' 'Open (or reuse) the tunnel to a profile\'s Jupyter and print its URL.' 'disconnect' 'Close a tunnel (only what jupytunnel started, verified by PID and start time).' 'doctor' 'Check ssh, folders and profiles; with NAME, log in and check Jupyter there.' 'open' 'Open a live tunnel\'s URL in the browser ($BROWSER is honoured).' 'profile' 'Create and manage profiles (one TOML file each).' 'run' 'Run a notebook on a profile\'s remote, detached (it survives disconnect), and...' 'runs' 'List detached notebook runs: id, profile, notebook, state, start, duration,...' 'server' 'Manage the Jupyter server on a profile\'s remote.' 'status' 'Show recorded tunnels: up, stale (tunnel open, Jupyter not answering) or down.' 'sync' 'Copy a folder to the remote (or back with --pull) with rsync, over the...' 'write-ssh-config' 'Add managed Host blocks for profiles to your ssh config.'
        case 'completion'
            printf '%s\t%s\n' 'install' 'Install the completion script where SHELL looks for it; print the path and...' 'show' 'Print the completion script for SHELL.'
        case 'profile'
            printf '%s\t%s\n' 'add' 'Add a profile.' 'edit' 'Edit a profile in $VISUAL or $EDITOR; an invalid result reopens the editor,...' 'list' 'List profiles.' 'path' 'Print the profiles folder, or the file of one profile.' 'remove' 'Remove a profile; a live tunnel or a server it started is closed first (asks,...' 'show' 'Show a profile as TOML: the file\'s keys, then every default as a comment.'
        case 'run'
            printf '%s\t%s\n' 'cancel' 'Stop a running run: nbconvert, its kernel and what the kernel started,...' 'fetch' 'Download a finished run\'s executed notebook (outputs, and the error of a...' 'logs' 'Print the end of a run\'s log (nbconvert\'s output) on the remote.'
        case 'server'
            printf '%s\t%s\n' 'list' 'List every Jupyter server of the remote user; PROFILE names the profile\'s own.' 'logs' 'Print the last lines of the server\'s log on the remote (--follow: and what...' 'password' 'Set or change the password of the profile\'s Jupyter (asked without echo;...' 'start' 'Start the profile\'s Jupyter server on the remote (or report the one running).' 'stop' 'Stop the profile\'s server (and its tmux/screen session).'
    end
end

function __jupytunnel_options
    switch $argv[1]
        case ''
            printf '%s\t%s\n' '--dry-run' 'Print the commands that would run; run none.' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.' '-v' 'Print every ssh command before it runs.' '--verbose' 'Print every ssh command before it runs.' '--version' 'Print the version and exit.'
        case 'completion'
            printf '%s\t%s\n' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.'
        case 'completion install'
            printf '%s\t%s\n' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.'
        case 'completion show'
            printf '%s\t%s\n' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.'
        case 'connect'
            printf '%s\t%s\n' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.' '--json' 'Print JSON for scripts.' '--local-port' 'Local port number, or \'auto\'.' '--no-browser' 'Do not open the browser.' '--no-start' 'Never start a server; fail if none runs.' '--save' 'NAME is a host, not a profile: keep it as a profile after connecting.' '--timeout' 'Give up after this many seconds (default 30; a slurm profile: its [slurm] wai...' '--watch' 'Stay in the foreground; reconnect when the tunnel drops.'
        case 'disconnect'
            printf '%s\t%s\n' '--all' 'Close every recorded tunnel.' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.' '--stop-server' 'Stop the remote Jupyter server too.' '--timeout' 'Give up after this many seconds.'
        case 'doctor'
            printf '%s\t%s\n' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.' '--json' 'Print JSON for scripts.' '--timeout' 'Give up on the remote after this many seconds.'
        case 'open'
            printf '%s\t%s\n' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.' '--show-token' 'Print the URL with its token.'
        case 'profile'
            printf '%s\t%s\n' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.'
        case 'profile add'
            printf '%s\t%s\n' '--force' 'Replace an existing profile.' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.' '--host' 'Hostname or an alias from your ssh config.' '--identity-file' 'Private key file.' '--jump' 'Jump host [user@]host[:port]; repeat for a chain.' '--jupyter' 'Jupyter command on the remote.' '--launcher' 'nohup, tmux, screen, slurm or none.' '--local-port' 'Local port, or \'auto\'.' '--nice' 'Niceness 0..19 of the remote server.' '--no-browser' 'Do not open a browser on connect.' '--port' 'ssh port.' '--proxy-command' 'ProxyCommand (%h %p %r are ssh\'s).' '--remote-port' 'Port Jupyter listens on, on the remote.' '--sbatch-arg' 'sbatch option for the slurm launcher (--time=2:00:00); repeatable.' '--setup' 'Shell line run before Jupyter; repeatable.' '--ssh-option' 'Extra ssh option KEY=VALUE; repeatable.' '--transport' 'tcp or socket.' '--user' 'Remote login.' '--workdir' 'Folder the remote server starts in.'
        case 'profile edit'
            printf '%s\t%s\n' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.'
        case 'profile list'
            printf '%s\t%s\n' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.' '--json' 'Print JSON for scripts.' '--wide' 'Every column, whole, however wide the terminal.'
        case 'profile path'
            printf '%s\t%s\n' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.'
        case 'profile remove'
            printf '%s\t%s\n' '--force' 'Close its tunnel and stop its server first, without asking.' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.'
        case 'profile show'
            printf '%s\t%s\n' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.' '--json' 'Print JSON for scripts.'
        case 'run'
            printf '%s\t%s\n' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.'
        case 'run cancel'
            printf '%s\t%s\n' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.'
        case 'run fetch'
            printf '%s\t%s\n' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.' '--to' 'Folder to save into.'
        case 'run logs'
            printf '%s\t%s\n' '-f' 'Keep printing until the run ends.' '--follow' 'Keep printing until the run ends.' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.' '-n' 'How many lines.' '--lines' 'How many lines.'
        case 'runs'
            printf '%s\t%s\n' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.' '--json' 'Print JSON for scripts.'
        case 'server'
            printf '%s\t%s\n' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.'
        case 'server list'
            printf '%s\t%s\n' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.' '--json' 'Print JSON for scripts.' '--wide' 'Every column, whole, however wide the terminal.'
        case 'server logs'
            printf '%s\t%s\n' '-f' 'Keep printing what the server logs, until Ctrl-C.' '--follow' 'Keep printing what the server logs, until Ctrl-C.' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.' '-n' 'How many lines.' '--lines' 'How many lines.' '--timeout' 'Give up connecting after this many seconds.'
        case 'server password'
            printf '%s\t%s\n' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.'
        case 'server start'
            printf '%s\t%s\n' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.' '--timeout' 'Give up after this many seconds (default 60; a slurm profile: its [slurm] wai...'
        case 'server stop'
            printf '%s\t%s\n' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.'
        case 'status'
            printf '%s\t%s\n' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.' '--json' 'Print JSON for scripts.' '--show-token' 'Show the token in URLs.' '--wide' 'Every column, whole, however wide the terminal.'
        case 'sync'
            printf '%s\t%s\n' '--delete' 'Delete files on the receiving side that the sending side lacks.' '--dry-run' 'As the global --dry-run: list what would change, change nothing.' '--exclude' 'rsync exclude PATTERN; repeatable.' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.' '--json' 'Print JSON for scripts.' '--pull' 'Copy from the remote to LOCAL (default: push).' '--timeout' 'Give up on the login and the remote check after this many seconds.'
        case 'write-ssh-config'
            printf '%s\t%s\n' '--dry-run' 'Print a diff of what would change; write nothing.' '--file' 'The ssh config to edit (default: $JUPYTUNNEL_SSH_CONFIG, else ~/.ssh/config).' '--force' 'Write a block even when the file has its own \'Host NAME\' block.' '-h' 'Show this message and exit.' '--help' 'Show this message and exit.' '--remove' 'Take out the named managed blocks (every one, with no NAME).'
    end
end

function __jupytunnel_option
    # Prints how many values option $argv[2] of the command at path $argv[1] takes,
    # then what completes them.
    switch "$argv[1]|$argv[2]"
        case 'profile add|--identity-file' 'run fetch|--to' 'write-ssh-config|--file'
            printf '%s\n' 1 files
        case 'connect|--local-port' 'connect|--timeout' 'disconnect|--timeout' 'doctor|--timeout' 'profile add|--host' 'profile add|--jump' 'profile add|--jupyter' 'profile add|--local-port' 'profile add|--nice' 'profile add|--port' 'profile add|--proxy-command' 'profile add|--remote-port' 'profile add|--sbatch-arg' 'profile add|--setup' 'profile add|--ssh-option' 'profile add|--user' 'profile add|--workdir' 'run logs|--lines' 'run logs|-n' 'server logs|--lines' 'server logs|--timeout' 'server logs|-n' 'server start|--timeout' 'sync|--exclude' 'sync|--timeout'
            printf '%s\n' 1 none
        case 'profile add|--launcher'
            printf '%s\n' 1 words nohup tmux screen slurm none
        case 'profile add|--transport'
            printf '%s\n' 1 words tcp socket
        case '*'
            printf '%s\n' 0 none
    end
end

function __jupytunnel_argument
    # Prints what completes positional argument $argv[2] (from 0) of the command at path $argv[1].
    switch "$argv[1]|$argv[2]"
        case 'connect|0' 'disconnect|0' 'doctor|0' 'open|0' 'profile edit|0' 'profile path|0' 'profile remove|0' 'profile show|0' 'runs|0' 'server list|0' 'server logs|0' 'server password|0' 'server start|0' 'server stop|0' 'status|0' 'sync|0'
            printf '%s\n' profiles
        case 'completion install|0' 'completion show|0'
            printf '%s\n' words bash zsh fish
        case 'write-ssh-config|*'
            printf '%s\n' profiles
        case '*'
            printf '%s\n' none
    end
end

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
