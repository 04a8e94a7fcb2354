"""The command line: ``app`` (Typer) parses arguments and ``render`` formats results; the
work is done by ``jupytunnel.commands``. ``fastpath`` parses the hottest forms without Typer.

Nothing here imports Typer at package level, so the fast path may import ``render``.
"""
