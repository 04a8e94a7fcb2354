"""``jupytunnel write-ssh-config``: managed ``Host`` blocks in the user's ssh config
(``jupytunnel.ssh.config`` builds the text, ``jupytunnel.ssh.config_file`` checks and writes it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from jupytunnel.errors import UsageError

if TYPE_CHECKING:
    from jupytunnel.ssh.config_file import Plan


class Outcome(NamedTuple):
    plan: Plan | None  # None: no profiles to write
    written: bool
    orphans: list[str]  # managed blocks without a profile (after writing every profile's)


def write_ssh_config(
    names: list[str] | None = None,
    *,
    file: Path | None = None,
    remove: bool = False,
    force: bool = False,
    dry_run: bool = False,
) -> Outcome:
    """Write (or ``remove``) the managed blocks of ``names`` (default: every profile) in
    ``file`` (default: ``$JUPYTUNNEL_SSH_CONFIG``, else ``~/.ssh/config``).

    The new text is checked with ``ssh -G`` (read-only: it runs in a dry run too) before it
    is written atomically under a lock. ``dry_run`` (or the runner's): the plan, nothing
    written; its ``diff()`` says what would change."""
    from jupytunnel import profiles, runner
    from jupytunnel.ssh import config as sshconfig
    from jupytunnel.ssh import config_file as sshconfig_file

    path = (file.expanduser() if file is not None else sshconfig_file.default_path()).absolute()
    dry = dry_run or runner.dry_run()
    if remove and force:
        raise UsageError("--force applies to writing blocks, not to --remove")
    wanted = [profiles.validate_name(n) for n in names] if names else None
    chosen = []
    if not remove:
        chosen = [profiles.load(n) for n in (wanted or profiles.list_names())]
        if not chosen:
            return Outcome(None, written=False, orphans=[])
    target = sshconfig_file.resolve_target(path)

    def plan() -> Plan:
        if remove:
            return sshconfig_file.plan_remove(path, wanted)
        return sshconfig_file.plan_write(path, chosen, force=force)

    if dry:
        return Outcome(plan(), written=False, orphans=[])
    sshconfig_file.check_writable(path, target)
    with sshconfig_file.locked(target):
        result = plan()
        written = sshconfig_file.commit(result, create_parent=sshconfig_file.is_default_location(path))
    orphans = []
    if not remove and wanted is None:
        mine = {p.name for p in chosen}
        orphans = [n for n in sshconfig.managed_names(result.new) if n not in mine]
    return Outcome(result, written=written, orphans=orphans)
