"""The commands, as plain functions: each takes plain values (a profile name, flags already
parsed) and returns data for the CLI to format, or raises ``JupytunnelError``.

``jupytunnel.cli`` (Typer) and ``jupytunnel.cli.fastpath`` (the hot forms, without Typer)
both call these, so the two entry points cannot drift apart. Nothing here parses argv or
imports Typer. ``--dry-run`` is no parameter: it is the runner's mode (``runner.dry_run()``),
so a dry run is the same code as a real run, with the commands recorded instead of run.
"""
