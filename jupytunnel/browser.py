"""Open a Jupyter URL without putting its token in a long-lived process's argv.

Like Jupyter itself, we write a private HTML file that redirects to the URL and open that
file; ``$BROWSER`` is honoured through Python's ``webbrowser``.
"""

from __future__ import annotations

import html
from pathlib import Path

from jupytunnel import paths
from jupytunnel.fsutil import atomic_write


def redirect_file(profile: str) -> Path:
    return paths.runtime_dir() / f"open-{profile}.html"


def open_url(url: str, profile: str) -> bool:
    import webbrowser

    paths.ensure_private_dir(paths.runtime_dir())
    target = redirect_file(profile)
    safe = html.escape(url, quote=True)
    page = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0;url={safe}"><title>jupytunnel</title></head>'
        f'<body><p><a href="{safe}">Open Jupyter</a></p></body></html>\n'
    )
    atomic_write(target, page.encode())
    return webbrowser.open(target.as_uri())
