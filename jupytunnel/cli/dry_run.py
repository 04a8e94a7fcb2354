"""A dry run's output: the steps the real code records at the runner seam, printed as they come."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def printed(*, also: bool = False) -> Iterator[bool]:
    """In a dry run (the global ``--dry-run``, or ``also``: a command's own flag), print each
    command (``runner.display``) and note (``# ...``) the code inside records, and run only
    the read-only ones; yields whether it is a dry run. Otherwise nothing changes."""
    from jupytunnel import runner

    if not (also or runner.dry_run()):
        yield False
        return
    with runner.recording(lambda step: print(step.text(), flush=True)):
        yield True
