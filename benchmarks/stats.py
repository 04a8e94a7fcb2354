"""Samples, medians and targets: what the report is made of. No I/O here."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable

TITLES = {
    1: "Connect, server already running",
    2: "Reconnect with the master alive",
    3: "Cold start to ready",
    4: "CLI start-up",
    5: "status at scale",
    6: "Completion",
    7: "Throughput",
    8: "Sync",
    9: "Slurm: cold connect to a compute node",
}


@dataclasses.dataclass
class Series:
    """One measured command: its samples (seconds, or MB/s for throughput)."""

    label: str
    command: str
    unit: str = "ms"  # "ms" (samples in seconds, shown in ms) or "MB/s"
    samples: list[float] = dataclasses.field(default_factory=list)
    note: str = ""  # "not run: ..." when it could not be measured

    def add(self, value: float) -> None:
        self.samples.append(value)

    @property
    def ok(self) -> bool:
        return bool(self.samples) and not self.note.startswith("not run")

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    def shown(self, value: float) -> str:
        if self.unit == "ms":
            return f"{value * 1000:.0f}" if value >= 0.1 else f"{value * 1000:.1f}"
        return f"{value:.0f}" if value >= 10 else f"{value:.2f}"


@dataclasses.dataclass
class Target:
    """A goal from the issue, checked against one measured figure."""

    text: str  # "<= 1.25", "<= 150 ms", ...
    check: Callable[[float], bool]
    figure: Callable[[], float | None]  # None: not measurable (a series missing)

    def verdict(self) -> str:
        try:
            value = self.figure()
        except (ValueError, ZeroDivisionError, statistics.StatisticsError):
            value = None
        if value is None:
            return "not measured"
        return "met" if self.check(value) else "MISSED"


@dataclasses.dataclass
class Row:
    """A line of a pair's table: a series, and optionally its ratio to a baseline series."""

    series: Series
    baseline: Series | None = None
    target: Target | None = None
    continuation: bool = False  # the same series again, compared with another baseline

    def ratio(self) -> float | None:
        if self.baseline is None or not (self.series.ok and self.baseline.ok):
            return None
        return self.series.median / self.baseline.median


def ratio_of(a: Series, b: Series) -> Callable[[], float | None]:
    def figure() -> float | None:
        if not (a.ok and b.ok):
            return None
        return a.median / b.median

    return figure


def median_of(a: Series) -> Callable[[], float | None]:
    def figure() -> float | None:
        return a.median if a.ok else None

    return figure


def at_most(limit: float) -> Callable[[float], bool]:
    return lambda value: value <= limit


def at_least(limit: float) -> Callable[[float], bool]:
    return lambda value: value >= limit


@dataclasses.dataclass
class PairResult:
    """One numbered pair of the issue: its rows, and notes for the report."""

    number: int
    title: str
    rows: list[Row] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None  # the harness failed here (a bug, not a slow command)

    def targets(self) -> list[tuple[Row, Target]]:
        return [(row, row.target) for row in self.rows if row.target is not None]
