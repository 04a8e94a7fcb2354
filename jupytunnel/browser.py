"""Open a Jupyter URL without putting its token in a long-lived process's argv.

Like Jupyter itself, we write a private HTML file that redirects to the URL and open that
file; ``$BROWSER`` is honoured through Python's ``webbrowser``.
"""

from __future__ import annotations

import contextlib
import html
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from jupytunnel import paths
from jupytunnel.fsutil import atomic_write


def redirect_file(profile: str) -> Path:
    return paths.runtime_dir() / f"open-{profile}.html"


def open_url(url: str, profile: str) -> bool:
    """Open ``url`` through a private redirect file; the browser's own stderr is not ours.

    A browser started now (or a ``$BROWSER`` script) keeps writing warnings long after we
    return; on the user's terminal they would land in the middle of the next command. So
    its stderr is /dev/null (stdout stays: a text browser draws there).
    """
    import webbrowser

    from jupytunnel import runner

    target = redirect_file(profile)
    if runner.dry_run():
        shown = url.partition("?token=")[0] + ("?token=…" if "?token=" in url else "")
        runner.note(f"open {shown} in the browser ($BROWSER honoured), through the private page {target}")
        return True
    paths.ensure_private_dir(paths.runtime_dir())
    safe = html.escape(url, quote=True)
    page = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0;url={safe}"><title>jupytunnel</title></head>'
        f'<body><p><a href="{safe}">Open Jupyter</a></p></body></html>\n'
    )
    atomic_write(target, page.encode())
    with _quiet_stderr():
        return webbrowser.open(target.as_uri())


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """fd 2 is /dev/null for the block, so processes started in it inherit that."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
        finally:
            os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
