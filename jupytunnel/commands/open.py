"""``jupytunnel open``: a live tunnel's URL in the browser."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jupytunnel.state import TunnelRecord


def open_(name: str) -> TunnelRecord:
    """Open the URL of ``name``'s live tunnel in the browser (``$BROWSER`` honoured); its
    record. A stale tunnel is refused; a server restarted with a new token is followed."""
    from jupytunnel import browser, tunnel
    from jupytunnel.commands.status import require_known

    require_known(name)
    record = tunnel.live_record(name)
    browser.open_url(record.url, name)
    return record
