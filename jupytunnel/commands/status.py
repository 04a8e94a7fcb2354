"""``jupytunnel status``: every recorded tunnel (and orphan master), checked."""

from __future__ import annotations


def status(name: str | None = None, *, as_json: bool = False, show_token: bool = False, wide: bool = False) -> None:
    """``jupytunnel status``: one row a recorded tunnel; fits the terminal unless ``wide``."""
    from jupytunnel import tunnel
    from jupytunnel.cli.render import print_json, print_table

    if name is not None:
        require_known(name)
    rows = [s.to_dict(show_token=show_token) for s in tunnel.status(name)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        print("no tunnels")
        return
    # Narrow, the URL is its port (the whole one: --wide, or --show-token to copy it).
    whole = wide or show_token
    # A Slurm job's id, node and time left, only when some tunnel leads to one.
    jobs = any(r.get("job") for r in rows)
    print_table(
        ["profile", "state", "url", "remote", *(["job"] if jobs else []), "pid", "uptime"],
        [
            [
                str(r["profile"]), str(r["state"]), str(r["url"]) if whole else f":{r['local_port']}",
                str(r["remote"]), *([_job_cell(r.get("job"))] if jobs else []), str(r["pid"]), _duration(r["uptime"]),
            ]
            for r in rows
        ],
        wide=wide,
        shrink={"remote": 16, "profile": 12},
        drop=("pid", "remote"),
    )  # fmt: skip


def _job_cell(job: object) -> str:
    """``4711 cn1 9:41 left``: the job, its node and what is left of its time limit."""
    if not isinstance(job, dict):
        return "-"
    parts = [str(job.get("id")), str(job.get("node") or "")]
    if job.get("state") not in (None, "RUNNING"):
        parts.append(str(job.get("state")))
    if job.get("time_left"):
        parts.append(f"{job['time_left']} left")
    return " ".join(p for p in parts if p)


def _duration(seconds: object) -> str:
    if not isinstance(seconds, float | int):
        return "-"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"  # noqa: PLR2004


def require_known(name: str) -> None:
    """A name with a profile or a tunnel record (a first-run host has only the record)."""
    from jupytunnel import profiles, state

    if not profiles.profile_path(name).exists() and state.load(name) is None:
        raise profiles.unknown(name)
