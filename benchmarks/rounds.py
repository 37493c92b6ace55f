"""Side-by-side timing that a noisy machine can be read through: paired rounds.

Every variant runs once per round, in an order that rotates from round to
round, so a burst of load elsewhere weighs on all of them alike. Each round
gives one ratio per variant (its time over the baseline's in the same round);
the result is the median of those ratios and their p25-p75, next to the
median time per operation.
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

#: Seconds per operation of one run of a variant (it runs a fixed, small batch).
Trial = Callable[[], Awaitable[float]]


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """p25, median and p75 of ``values`` (inclusive method; one value is all three)."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    p25, p50, p75 = statistics.quantiles(values, n=4, method="inclusive")
    return p25, p50, p75


async def paired(
    trials: Mapping[str, Trial],
    *,
    rounds: int,
    warmup: int = 2,
    baseline: str = "plain",
) -> dict[str, dict[str, Any]]:
    """Time ``trials`` in ``rounds`` paired rounds after ``warmup`` unrecorded ones.

    Returns, per variant: ``us`` (median microseconds per operation),
    ``ratio`` (median of the per-round ratios to ``baseline``), and
    ``ratio_p25`` / ``ratio_p75``.
    """
    names = list(trials)
    if baseline not in trials:
        raise ValueError(f"no baseline variant {baseline!r} among {names}")
    samples: dict[str, list[float]] = {name: [] for name in names}
    for index in range(warmup + rounds):
        shift = index % len(names)
        seconds: dict[str, float] = {}
        for name in names[shift:] + names[:shift]:
            seconds[name] = await trials[name]()
        if index >= warmup:
            for name in names:
                samples[name].append(seconds[name])
    return summarise(samples, baseline)


def summarise(samples: Mapping[str, list[float]], baseline: str) -> dict[str, dict[str, Any]]:
    """The per-variant summary of :func:`paired` from per-round seconds per operation."""
    base = samples[baseline]
    report: dict[str, dict[str, Any]] = {}
    for name, values in samples.items():
        ratios = [value / reference for value, reference in zip(values, base, strict=True)]
        p25, median, p75 = quartiles(ratios)
        report[name] = {
            "us": round(statistics.median(values) * 1e6, 1),
            "ratio": round(median, 3),
            "ratio_p25": round(p25, 3),
            "ratio_p75": round(p75, 3),
        }
    return report


def ratio_text(row: Mapping[str, Any]) -> str:
    """``1.012 (1.004-1.020)``: the median ratio and its p25-p75."""
    return f"{row['ratio']:.3f} ({row['ratio_p25']:.3f}-{row['ratio_p75']:.3f})"
