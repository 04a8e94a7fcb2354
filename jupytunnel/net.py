"""Network words every layer shares, below all of them (``procs`` and ``httpcheck`` use them,
``ssh`` passes them on to its argv and config blocks)."""

from __future__ import annotations

# Both ends of every forward bind this address, and every local check talks to it: without
# it ssh may "succeed" on [::1] when 127.0.0.1 is taken, and never all interfaces.
LOOPBACK = "127.0.0.1"
