"""The timing core: warm-up excluded, N measured calls, robust summary statistics.

The clock is injectable (``clock`` returns seconds), so tests can drive it with a fake clock.
``warmup`` and ``runs`` have no defaults here: a profile's come from
:class:`malak_pipe.deploy.configs.LatencyConfig`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from malak_pipe.errors import ConfigError


@dataclass(frozen=True)
class LatencyStats:
    """Latency of one call (milliseconds) over ``runs`` measured calls, and the implied throughput."""

    median_ms: float
    p90_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    throughput_per_s: float
    runs: int
    batch_size: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(
    fn: Callable[[], Any], *, warmup: int, runs: int, clock: Callable[[], float] = time.perf_counter
) -> list[float]:
    """Call ``fn`` ``warmup`` times untimed, then ``runs`` times; the durations (seconds) of the latter."""
    if warmup < 0 or runs < 1:
        raise ConfigError(f"need warmup >= 0 and runs >= 1, got warmup={warmup}, runs={runs}")
    for _ in range(warmup):
        fn()
    durations = []
    for _ in range(runs):
        start = clock()
        fn()
        durations.append(clock() - start)
    return durations


def summarize(durations_s: Sequence[float], batch_size: int = 1) -> LatencyStats:
    """Median, 90th percentile, mean, std (population), min, max in ms; samples per second at the median."""
    ms = np.asarray(durations_s, dtype=np.float64) * 1e3
    if ms.size == 0:
        raise ConfigError("no measured runs to summarize")
    median = float(np.median(ms))
    return LatencyStats(
        median_ms=median,
        p90_ms=float(np.percentile(ms, 90)),
        mean_ms=float(ms.mean()),
        std_ms=float(ms.std()),
        min_ms=float(ms.min()),
        max_ms=float(ms.max()),
        throughput_per_s=batch_size * 1e3 / median if median > 0 else float("inf"),
        runs=int(ms.size),
        batch_size=batch_size,
    )


def time_call(
    fn: Callable[[], Any],
    *,
    warmup: int,
    runs: int,
    batch_size: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> LatencyStats:
    """:func:`measure` then :func:`summarize`."""
    return summarize(measure(fn, warmup=warmup, runs=runs, clock=clock), batch_size)
