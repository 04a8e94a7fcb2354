"""Writing managed blocks into a real ssh config: resolve, validate, back up, replace.

``jupytunnel.ssh.config`` computes the new bytes; this module decides what goes into each
block (with ``ssh -G``), proves the result with the real client before anything is written,
and writes it atomically under a lock, keeping mode, owner and a backup.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import pwd
import re
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from jupytunnel.errors import JupytunnelError
from jupytunnel.profiles import Profile
from jupytunnel.ssh import config as sshconfig

SSH_G_TIMEOUT = 20.0
LOCK_TIMEOUT = 30.0
BACKUP_SUFFIX = ".jupytunnel.bak"
# Copied as lists: every IdentityFile / CertificateFile the host gets that the name lacks.
_LISTS: tuple[tuple[str, str], ...] = (("identityfile", "IdentityFile"), ("certificatefile", "CertificateFile"))
# What must come out of ``ssh -G NAME`` exactly as out of jupytunnel's own ``ssh -G HOST``.
_VERIFIED: tuple[str, ...] = ("hostname", "port", "user", "proxyjump", "proxycommand")
# ssh lists these when no IdentityFile is configured; copying them would only add noise.
_DEFAULT_IDENTITY_RE = re.compile(r"~/\.ssh/id_\w+")
_SOCKET_RECORD_RE = re.compile(r"(.*?):(/.+)", re.DOTALL)


def default_path() -> Path:
    """``JUPYTUNNEL_SSH_CONFIG``, else ``~/.ssh/config`` of the passwd home (as ssh reads it)."""
    from jupytunnel import paths

    override = paths.ssh_config_override()
    if override is not None:
        return override
    return Path(pwd.getpwuid(os.getuid()).pw_dir) / ".ssh" / "config"


def is_default_location(path: Path) -> bool:
    return path == Path(pwd.getpwuid(os.getuid()).pw_dir) / ".ssh" / "config"


def backup_path(target: Path) -> Path:
    return target.with_name(target.name + BACKUP_SUFFIX)


@dataclasses.dataclass(frozen=True)
class Plan:
    """What ``write``/``remove`` would do; ``commit`` does it."""

    path: Path  # as given
    target: Path  # symlinks resolved: the file that is replaced
    old: bytes | None  # None: the file does not exist yet
    new: bytes
    status: dict[str, str]  # block name -> added, updated, unchanged, removed, absent
    notes: list[str]
    warnings: list[str]

    @property
    def changed(self) -> bool:
        return self.new != (self.old or b"")

    def diff(self) -> bytes:
        return unified_diff(self.old or b"", self.new, str(self.path))


def unified_diff(old: bytes, new: bytes, name: str) -> bytes:
    """A unified diff of raw bytes (non-UTF-8 and CRLF shown as they are)."""
    import difflib

    a, b = sshconfig.split_lines(old), sshconfig.split_lines(new)
    out: list[bytes] = []
    for line in difflib.diff_bytes(difflib.unified_diff, a, b, name.encode(), name.encode(), lineterm=b""):
        if line.startswith((b"---", b"+++", b"@@")):
            out.append(line.rstrip(b"\n") + b"\n")
        elif line.endswith(b"\n"):
            out.append(line)
        else:
            out.append(line + b"\n\\ No newline at end of file\n")
    return b"".join(out)


# --- reading -----------------------------------------------------------------------------


def resolve_target(path: Path) -> Path:
    """The file behind ``path``: a symlinked config is written through to its target."""
    return Path(os.path.realpath(path))


def read(path: Path, target: Path) -> bytes | None:
    try:
        st = target.stat()
    except FileNotFoundError:
        if not target.parent.is_dir() and not is_default_location(path):
            raise JupytunnelError(f"cannot create {path}: folder {target.parent} does not exist") from None
        return None
    except OSError as exc:
        raise JupytunnelError(f"cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise JupytunnelError(f"{path} is not a regular file")
    try:
        return target.read_bytes()
    except OSError as exc:
        raise JupytunnelError(f"cannot read {path}: {exc.strerror}") from None


def check_writable(path: Path, target: Path) -> None:
    """A read-only config is refused: the rename that replaces it would ignore its mode."""
    try:
        st = target.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise JupytunnelError(f"cannot read {path}: {exc.strerror}") from None
    if not st.st_mode & 0o222 or not os.access(target, os.W_OK):
        raise JupytunnelError(
            f"{path} is read-only (mode {stat.S_IMODE(st.st_mode):04o}); nothing changed; "
            "make it writable (chmod u+w) or write another file with --file"
        )


@contextlib.contextmanager
def locked(target: Path) -> Iterator[None]:
    """Serialise jupytunnel runs that edit the same file (the lock lives in the state dir)."""
    from jupytunnel import paths
    from jupytunnel.fsutil import file_lock

    folder = paths.ensure_state_dir(paths.locks_dir())
    digest = hashlib.sha256(str(target).encode()).hexdigest()[:16]
    with file_lock(folder / f"ssh-config-{digest}.lock", timeout=LOCK_TIMEOUT, what=f"editing {target}"):
        _remove_stale_temp_files(target)
        yield


def _remove_stale_temp_files(target: Path) -> None:
    """Temp files a killed writer left beside the config (``.config.XXXX.tmp``).

    Only with the lock held: then no other jupytunnel is writing one.
    """
    for name in (target.name, backup_path(target).name):
        for leftover in target.parent.glob(f".{name}.*.tmp"):
            with contextlib.suppress(OSError):
                leftover.unlink()


def _config_error(path: Path, exc: sshconfig.ConfigError) -> JupytunnelError:
    return JupytunnelError(f"{path}:{exc.line}: {str(exc).split(': ', 1)[1]}")


# --- ssh -G ------------------------------------------------------------------------------


Resolved = sshconfig.Resolved


def _resolve_many(argvs: Mapping[str, list[str]], *, config: Path, shown: str) -> dict[str, Resolved]:
    """Run several ``ssh -G`` at once (each one is a process start, nothing more).

    ``config`` is the temporary file the commands read; errors name it as ``shown``.
    """
    from jupytunnel import runner
    from jupytunnel.ssh.master import ssh_message

    started = {name: runner.Started(argv, readonly=True) for name, argv in argvs.items()}  # ssh -G changes nothing
    out: dict[str, Resolved] = {}
    try:
        for name, proc in started.items():
            result = proc.result(timeout=SSH_G_TIMEOUT)
            if not result.ok:
                message = ssh_message(result.stderr).replace(str(config), shown)
                raise JupytunnelError(f"{name}: 'ssh -G' failed with {shown}: {message}; nothing written")
            out[name] = sshconfig.parse_resolved(result.stdout)
    finally:
        for proc in started.values():
            proc.kill()  # reap the rest when one failed (a no-op for those collected)
    return out


def remote_socket(profile: Profile) -> str | None:
    """The remote socket path of a socket profile, known from its tunnel record, if any."""
    from jupytunnel import state

    record = state.load(profile.name)
    if record is None:
        return None
    match = _SOCKET_RECORD_RE.fullmatch(record.remote)
    return match.group(2) if match and match.group(2).endswith(".sock") else None


# Session options: what a session does once connected (forwardings, the multiplexer, the
# terminal, logging), not how the connection is made or authenticated. The block leaves them
# out: plain `ssh NAME` is for a shell or `ssh -N NAME` for the tunnel, with the user's own
# session settings. Everything else that `ssh -G HOST` resolves otherwise than `ssh -G NAME`
# is carried (GSSAPIAuthentication, IdentityAgent, StrictHostKeyChecking, UserKnownHostsFile,
# PreferredAuthentications, HostKeyAlgorithms, AddressFamily, ...).
SESSION_OPTIONS = frozenset({
    "host", "hostname", "localforward", "remoteforward", "dynamicforward", "forwardagent", "forwardx11",
    "forwardx11trusted", "forwardx11timeout", "xauthlocation", "exitonforwardfailure", "clearallforwardings",
    "gatewayports", "permitremoteopen", "streamlocalbindunlink", "streamlocalbindmask", "controlmaster",
    "controlpath", "controlpersist", "requesttty", "sessiontype", "stdinnull", "forkafterauthentication",
    "escapechar", "localcommand", "permitlocalcommand", "remotecommand", "sendenv", "setenv", "tunnel",
    "tunneldevice", "visualhostkey", "loglevel", "logverbose", "syslogfacility", "enableescapecommandline",
    "obscurekeystroketiming", "ipqos", "channeltimeout",
})  # fmt: skip
# Options whose value is several words (ssh -G prints them space-separated).
_MULTI_WORD = frozenset({
    "userknownhostsfile", "globalknownhostsfile", "rekeylimit", "canonicaldomains",
    "canonicalizepermittedcnames",
})  # fmt: skip
_KEYWORDS = {
    k.lower(): k
    for k in (  # noqa: SIM905 - one word a keyword, easier to read than 60 quoted strings
        "AddKeysToAgent AddressFamily BatchMode BindAddress BindInterface CanonicalDomains "
        "CanonicalizeFallbackLocal CanonicalizeHostname CanonicalizeMaxDots CanonicalizePermittedCNAMEs "
        "CASignatureAlgorithms CertificateFile CheckHostIP Ciphers Compression ConnectionAttempts ConnectTimeout "
        "EnableSSHKeysign FingerprintHash GlobalKnownHostsFile GSSAPIAuthentication GSSAPIDelegateCredentials "
        "GSSAPIKeyExchange GSSAPITrustDNS GSSAPIRenewalForcesRekey GSSAPIKexAlgorithms GSSAPIClientIdentity "
        "GSSAPIServerIdentity HashKnownHosts HostbasedAcceptedAlgorithms HostbasedAuthentication HostKeyAlgorithms "
        "HostKeyAlias IdentitiesOnly IdentityAgent IdentityFile KbdInteractiveAuthentication "
        "KbdInteractiveDevices KexAlgorithms KnownHostsCommand MACs NoHostAuthenticationForLocalhost "
        "NumberOfPasswordPrompts PasswordAuthentication PKCS11Provider Port PreferredAuthentications "
        "ProxyUseFdpass PubkeyAcceptedAlgorithms PubkeyAuthentication RekeyLimit RequiredRSASize "
        "RevokedHostKeys SecurityKeyProvider ServerAliveCountMax ServerAliveInterval StrictHostKeyChecking "
        "TCPKeepAlive UpdateHostKeys User UserKnownHostsFile VerifyHostKeyDNS"
    ).split()
}


def _value_text(key: str, value: str) -> str:
    if key in _MULTI_WORD:
        return " ".join(sshconfig.quote(word) for word in value.split())
    return sshconfig.quote(value)


def carried_keys(carried: Sequence[tuple[str, str]]) -> set[str]:
    return {k.lower() for k, _ in carried}


def _carry(truth: Resolved, cand: Resolved, present: set[str]) -> list[tuple[str, str]]:
    """Options that ``ssh HOST`` gets and ``ssh NAME`` would not: the block must say them.

    Derived from the two ``ssh -G`` outputs: every option that changes how the connection
    is made or authenticated (all but ``SESSION_OPTIONS``) and differs."""
    out: list[tuple[str, str]] = []
    if not present & {"proxyjump", "proxycommand"}:
        jump, command = truth.one("proxyjump"), truth.one("proxycommand")
        if (jump, command) != (cand.one("proxyjump"), cand.one("proxycommand")):
            if jump:
                out.append(("ProxyJump", sshconfig.quote(jump)))
            elif command:
                out.append(("ProxyCommand", command))
            else:
                out.append(("ProxyCommand", "none"))  # blocks a later ProxyJump too (readconf.c)
    for key, keyword in _LISTS:
        wanted = truth.all(key)
        if all(_DEFAULT_IDENTITY_RE.fullmatch(v) for v in wanted):
            continue
        have = cand.all(key)
        out += [(keyword, sshconfig.quote(v)) for v in wanted if not any(sshconfig.same_path(v, h) for h in have)]
    special = {"proxyjump", "proxycommand", *(k for k, _ in _LISTS)}
    for key in sorted(truth.keys() - SESSION_OPTIONS - special - present):
        wanted = truth.all(key)
        if wanted != cand.all(key) and len(wanted) == 1:
            out.append((_KEYWORDS.get(key, key), _value_text(key, wanted[0])))
    return out


def _describe(value: str | None) -> str:
    return "none" if value is None else repr(value)


def _verify(
    profile: Profile,
    truth: Resolved,
    final: Resolved,
    forward: str | None,
    *,
    path: Path,
    new: bytes,
    carried: Sequence[tuple[str, str]] = (),
) -> None:
    name = profile.name
    generic = sorted(carried_keys(carried) - {k for k, _ in _LISTS} - set(_VERIFIED))
    for key in (*_VERIFIED, *generic):
        want, got = truth.one(key), final.one(key)
        if want == got:
            continue
        found = sshconfig.global_line(new, key)
        if found is not None:
            line, text = found
            why = (
                f"line {line} {text.strip()!r} applies to every host and comes first (OpenSSH keeps the first "
                "value); move it into a 'Host *' block at the end of the file"
            )
        else:
            why = (
                "an earlier Host/Match block or an included file sets it (OpenSSH keeps the first value); "
                f"compare 'ssh -G {name}' with 'ssh -G {profile.host}'"
            )
        raise JupytunnelError(
            f"{name}: with the new {path}, 'ssh {name}' would use {key} {_describe(got)} where "
            f"'jupytunnel connect {name}' uses {_describe(want)}: {why}; nothing written"
        )
    if forward is not None:
        expected = sshconfig.expected_forward(forward)
        if expected not in final.all("localforward"):
            raise JupytunnelError(
                f"{name}: with the new {path}, 'ssh {name}' would not forward {expected}; nothing written"
            )


# --- planning ----------------------------------------------------------------------------


def _status(old: bytes, new: bytes, names: Sequence[str]) -> dict[str, str]:
    def bodies(data: bytes) -> dict[str, bytes]:
        lines = sshconfig.split_lines(data)
        return {b.name: b"".join(lines[b.start : b.end + 1]) for b in sshconfig.find_blocks(lines)}

    before, after = bodies(old), bodies(new)
    out: dict[str, str] = {}
    for name in names:
        if name not in after:
            out[name] = "removed" if name in before else "absent"
        elif name not in before:
            out[name] = "added"
        else:
            out[name] = "unchanged" if before[name] == after[name] else "updated"
    return out


def plan_write(path: Path, profiles: Sequence[Profile], *, force: bool) -> Plan:
    """The new file with a block for each profile, proven with ``ssh -G``; nothing is written."""
    target = resolve_target(path)
    old = read(path, target)
    base = old or b""
    names = [p.name for p in profiles]
    try:
        user_only = sshconfig.remove_all(base)
        warnings = _refusals(path, base, profiles, force=force)
    except sshconfig.ConfigError as exc:
        raise _config_error(path, exc) from None
    forwards, notes = _forwards(profiles)
    blocks, alias_notes = _resolve_blocks(path, base, user_only, profiles, forwards)
    new = _apply(path, base, blocks)
    return Plan(path, target, old, new, _status(base, new, names), notes + alias_notes, warnings)


def _refusals(path: Path, base: bytes, profiles: Sequence[Profile], *, force: bool) -> list[str]:
    """Refuse what would break the user's setup (or, with ``force``, warn about it)."""
    warnings: list[str] = []
    for p in profiles:
        if p.host.lower() == p.name.lower():
            # jupytunnel's own ssh commands address the host, so our block would apply to them.
            why = (
                f"{p.name}: the profile's host is {p.host!r}, its own name, so 'Host {p.name}' would also apply to "
                "jupytunnel's own ssh commands and add its LocalForward to them"
            )
            if not force:
                raise JupytunnelError(f"{why}; rename the profile, or use --force to write it anyway")
            warnings.append(why)
    existing = {b.name: b.start + 1 for b in sshconfig.find_blocks(sshconfig.split_lines(base))}
    for c in sshconfig.find_conflicts(base, [p.name for p in profiles]):
        if not force:
            raise JupytunnelError(
                f"{path}:{c.line}: {c.text!r} already defines {c.name!r} outside jupytunnel's markers; "
                "rename the profile, remove that block, or use --force to add ours as well"
            )
        ours_first = c.name not in existing or existing[c.name] < c.line
        winner = "ours comes first and wins" if ours_first else f"line {c.line} comes first and wins"
        warnings.append(f"{path}:{c.line}: {c.text!r} stays; {winner} for every option both set")
    return warnings


def _forwards(profiles: Sequence[Profile]) -> tuple[dict[str, str | None], list[str]]:
    forwards: dict[str, str | None] = {}
    notes: list[str] = []
    for p in profiles:
        sock = remote_socket(p) if p.transport == "socket" else None
        forwards[p.name] = sshconfig.local_forward(p, remote_socket=sock)
        if p.transport == "socket" and sock is None:
            notes.append(
                f"{p.name}: no LocalForward: the socket transport forwards to a path in the remote home, "
                f"which jupytunnel learns on connect; run 'jupytunnel connect {p.name}', then this again"
            )
    return forwards, notes


def _resolve_blocks(
    path: Path,
    base: bytes,
    user_only: bytes,
    profiles: Sequence[Profile],
    forwards: Mapping[str, str | None],
) -> tuple[dict[str, bytes | None], list[str]]:
    """Each profile's block, resolved and proven with the real client.

    1. ``ssh -G`` of the profile as jupytunnel connects (its host, with the user's own
       settings only): the truth the block must reproduce;
    2. ``ssh -G NAME`` with a first block: which of the truth's options ``Host NAME`` lacks
       (an alias's HostName, Port, ProxyJump, IdentityFile; a ``Host *.corp`` pattern's);
    3. the final blocks, and ``ssh -G NAME`` again: any difference left is refused.
    """
    from jupytunnel import runner
    from jupytunnel.ssh import Ssh
    from jupytunnel.ssh import args as sshargs

    ssh = runner.ssh_binary()
    names = [p.name for p in profiles]
    blocks: dict[str, bytes | None] = {}
    carries: dict[str, list[tuple[str, str]]] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="jupytunnel-") as tmpdir:
        mine = Path(tmpdir) / "config"
        mine.write_bytes(user_only)
        # Not the user's JUPYTUNNEL_SSH_CONFIG: the candidate file, in each of the three steps.
        with_mine = Ssh(ssh, str(mine))
        truths = _resolve_many(
            {p.name: sshargs.resolve_argv(p, ssh=with_mine) for p in profiles},
            config=mine,
            shown=f"{path} (without jupytunnel's blocks)",
        )
        hostnames = {p.name: truths[p.name].one("hostname") or p.host for p in profiles}
        first = {
            p.name: sshconfig.render_block(p, hostname=hostnames[p.name], forward=forwards[p.name]) for p in profiles
        }
        mine.write_bytes(_apply(path, base, first))
        cands = _resolve_many(
            {n: sshconfig.check_argv(n, ssh=with_mine) for n in names},
            config=mine,
            shown=f"the new {path}",
        )
        for p in profiles:
            present = {k.lower() for k, _ in sshconfig.block_options(p, hostname="x", forward=None)}
            carried = carries[p.name] = _carry(truths[p.name], cands[p.name], present)
            blocks[p.name] = sshconfig.render_block(
                p, hostname=hostnames[p.name], forward=forwards[p.name], carried=carried
            )
            note = _alias_note(p, hostnames[p.name], carried, path)
            if note:
                notes.append(note)
        new = _apply(path, base, blocks)
        mine.write_bytes(new)
        finals = _resolve_many(
            {n: sshconfig.check_argv(n, ssh=with_mine) for n in names},
            config=mine,
            shown=f"the new {path}",
        )
    for p in profiles:
        _verify(p, truths[p.name], finals[p.name], forwards[p.name], path=path, new=new, carried=carries[p.name])
    return blocks, notes


def _apply(path: Path, base: bytes, blocks: Mapping[str, bytes | None]) -> bytes:
    try:
        return sshconfig.apply(base, blocks)
    except sshconfig.ConfigError as exc:
        raise _config_error(path, exc) from None


def _alias_note(profile: Profile, hostname: str, carried: Sequence[tuple[str, str]], path: Path) -> str | None:
    copied = ", ".join(f"{k} {v}" for k, v in carried)
    if hostname.lower() != profile.host.lower():
        extra = f" with {copied}" if copied else ""
        return (
            f"{profile.name}: HostName {hostname}{extra}, from 'ssh -G {profile.host}': '{profile.host}' is an alias "
            f"(or matches a Host pattern) in {path}, whose settings do not apply to 'Host {profile.name}'; "
            "run this again after changing them"
        )
    if copied:
        return (
            f"{profile.name}: {copied} copied from 'ssh -G {profile.host}' (settings of {path} that apply "
            f"to {profile.host} but not to {profile.name})"
        )
    return None


def plan_remove(path: Path, names: Sequence[str] | None) -> Plan:
    """The file without the named managed blocks (every managed block when ``names`` is None)."""
    target = resolve_target(path)
    old = read(path, target)
    base = old or b""
    try:
        present = sshconfig.managed_names(base)
    except sshconfig.ConfigError as exc:
        raise _config_error(path, exc) from None
    wanted = list(present if names is None else names)
    new = _apply(path, base, {n: None for n in wanted if n in present})
    return Plan(path, target, old, new, _status(base, new, wanted), [], [])


# --- writing -----------------------------------------------------------------------------


def commit(plan: Plan, *, create_parent: bool = False) -> bool:
    """Write ``plan.new`` if it differs (backup first); False when there was nothing to do."""
    if not plan.changed:
        return False
    if create_parent and plan.old is None:
        from jupytunnel import paths

        paths.ensure_private_dir(plan.target.parent)  # ~/.ssh is 0700, as ssh wants it
    check_writable(plan.path, plan.target)
    replace_file(plan.target, plan.old, plan.new, shown=plan.path)
    return True


def replace_file(target: Path, old: bytes | None, new: bytes, *, shown: Path | None = None) -> None:
    """Replace ``target`` (expected to hold ``old``) with ``new``; ``old`` goes to the backup.

    Both writes are atomic, so a kill at any moment leaves whole files. Mode and owner of the
    existing file are kept; a new file is 0600.
    """
    from jupytunnel.fsutil import atomic_write

    shown = shown or target
    current = read(shown, target)
    if current != old:
        raise JupytunnelError(f"{shown} changed while jupytunnel was working on it; nothing written; run again")
    mode, owner = 0o600, None
    if old is not None:
        st = target.stat()
        mode, owner = stat.S_IMODE(st.st_mode), (st.st_uid, st.st_gid)
    try:
        if old is not None:
            atomic_write(backup_path(target), old, mode=mode, owner=owner)
        atomic_write(target, new, mode=mode, owner=owner)
    except OSError as exc:
        raise JupytunnelError(f"cannot write {shown}: {exc.strerror or exc}; it is unchanged") from None
