"""``jupytunnel completion show|install``: the completion scripts of a command tree
(``jupytunnel.completion`` renders them; the CLI gives the tree of its own commands)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from jupytunnel.errors import UsageError

if TYPE_CHECKING:
    from jupytunnel.completion import Node, Target


def show(shell: str, tree: Node) -> str:
    """The completion script of ``tree`` for ``shell`` (bash, zsh or fish)."""
    from jupytunnel import completion

    return completion.render(shell, tree)


class Installed(NamedTuple):
    target: Target
    changed: bool  # False: the same script was there already (or a dry run)


def install(shell: str | None, tree: Node) -> Installed:
    """Write the script where ``shell`` (None: the one ``$SHELL`` names) finds it. In a dry
    run, nothing is written (``runner.note``)."""
    from jupytunnel import completion, runner

    name = shell if shell is not None else completion.shell_from_env()
    if name is None:
        raise UsageError("cannot tell your shell from $SHELL; name it: jupytunnel completion install bash|zsh|fish")
    if runner.dry_run():
        target = completion.install_target(name)
        runner.note(f"would write {target.path}")
        return Installed(target, changed=False)
    target, changed = completion.install(name, completion.render(name, tree))
    return Installed(target, changed)
