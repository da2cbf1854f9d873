"""The figures a run produces and the table they are printed as."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured value (a median over repetitions), with the ceiling it is compared to.

    `ratio` is value / ceiling when a ceiling was measured; `target` says what must hold and
    `passed` whether it did (None: no target for this figure at this size or database)."""

    scenario: str
    name: str
    value: float
    unit: str
    ceiling: float | None = None
    ceiling_name: str = ""
    target: str = ""
    passed: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.ceiling is None or self.ceiling == 0:
            return None
        return self.value / self.ceiling


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return ""
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def render_table(figures: Sequence[Figure]) -> str:
    """A Markdown table: figure, value, ceiling, ratio, target, pass/fail, note."""
    header = ("figure", "value", "ceiling", "ratio", "target", "result", "note")
    rows = [header, tuple("---" for _ in header)]
    for f in figures:
        ceiling = f"{_number(f.ceiling, f.unit)} ({f.ceiling_name})" if f.ceiling is not None else ""
        ratio = f"{f.ratio:.0%}" if f.ratio is not None else ""
        result = "" if f.passed is None else ("PASS" if f.passed else "FAIL")
        rows.append((f"{f.scenario}: {f.name}", _number(f.value, f.unit), ceiling, ratio, f.target, result, f.note))
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)
