"""Latency, per-layer time and peak memory of model variants (torch FP32/int8, ONNX Runtime FP32/int8).

A :class:`ModelVariant` is a torch module or an ONNX file under a name ("torch_fp32",
"onnx_int8"...). :func:`profile_variants` times every variant at every (batch size, threads)
setting with the same input, and reports speed-ups against the variant named
``torch_fp32`` at the same setting.

Peak memory is the growth of the process's peak resident set size (``VmHWM`` in
``/proc/self/status``, reset through ``/proc/self/clear_refs`` first) while the runner is built
(an ORT session; nothing for an already loaded torch module) and runs warm-up and measured
calls: it counts native allocations (torch, ORT arenas) that ``tracemalloc`` cannot see. It is
None where ``/proc`` is not available.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from malak_pipe.deploy.latency import LatencyStats, time_call

BASELINE = "torch_fp32"


@dataclass
class ModelVariant:
    """A model to time: a torch ``module`` or an ONNX ``path``; ``engine`` is torch's quantized engine."""

    name: str
    kind: Literal["torch", "onnx"]
    model: Any
    engine: str | None = None

    def fixed_batch(self) -> int | None:
        """The frozen batch size of an ONNX model (None: dynamic, or a torch module)."""
        if self.kind != "onnx":
            return None
        import onnx

        dim = onnx.load(str(self.model), load_external_data=False).graph.input[0].type.tensor_type.shape.dim[0]
        return dim.dim_value if dim.HasField("dim_value") and dim.dim_value > 0 else None


@contextlib.contextmanager
def runner(variant: ModelVariant, x: np.ndarray, threads: int, **session_kwargs: Any) -> Iterator[Callable[[], Any]]:
    """A zero-argument callable running ``variant`` on ``x`` with ``threads`` intra-op threads."""
    if variant.kind == "onnx":
        from malak_pipe.deploy.ort_runtime import make_session

        session = make_session(variant.model, threads=threads, **session_kwargs)
        feed = {session.get_inputs()[0].name: np.ascontiguousarray(x, dtype=np.float32)}
        yield lambda: session.run(None, feed)
        return
    import torch

    from malak_pipe.deploy.torch_int8 import quantized_engine

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    module = variant.model.eval()
    tensor = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    try:
        with quantized_engine(variant.engine), torch.inference_mode():
            yield lambda: module(tensor)
    finally:
        torch.set_num_threads(previous)


# -- peak memory -------------------------------------------------------------------------------


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@contextlib.contextmanager
def peak_rss_growth() -> Iterator[dict[str, float | None]]:
    """Yields a dict whose ``"mb"`` is, after the block, how far peak RSS rose above RSS at its start."""
    result: dict[str, float | None] = {"mb": None}
    try:
        Path("/proc/self/clear_refs").write_text("5")
        before = _status_kb("VmRSS")
    except OSError:
        before = None
    yield result
    peak = _status_kb("VmHWM")
    if before is not None and peak is not None:
        result["mb"] = max(peak - before, 0) / 1024.0


# -- latency table -----------------------------------------------------------------------------


@dataclass
class LatencyRow:
    """One (variant, batch size, threads) measurement, or why it was skipped."""

    variant: str
    batch_size: int
    threads: int
    stats: LatencyStats | None
    peak_rss_delta_mb: float | None = None
    speedup_vs_torch_fp32: float | None = None
    skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {"variant": self.variant, "batch_size": self.batch_size, "threads": self.threads}
        if self.stats is not None:
            row.update(self.stats.as_dict())
        row["peak_rss_delta_mb"] = self.peak_rss_delta_mb
        row["speedup_vs_torch_fp32"] = self.speedup_vs_torch_fp32
        if self.skipped:
            row["skipped"] = self.skipped
        return row


def time_variant(
    variant: ModelVariant,
    sample_shape: Sequence[int],
    batch_size: int,
    threads: int,
    *,
    warmup: int = 10,
    runs: int = 200,
    clock: Callable[[], float] = time.perf_counter,
    seed: int = 0,
) -> LatencyRow:
    """Time ``variant`` on a random batch (latency does not depend on the values)."""
    fixed = variant.fixed_batch()
    if fixed is not None and fixed != batch_size:
        return LatencyRow(
            variant.name, batch_size, threads, None, skipped=f"the ONNX model's batch size is frozen at {fixed}"
        )
    x = np.random.default_rng(seed).standard_normal((batch_size, *sample_shape)).astype(np.float32)
    with peak_rss_growth() as memory, runner(variant, x, threads) as fn:
        stats = time_call(fn, warmup=warmup, runs=runs, batch_size=batch_size, clock=clock)
    return LatencyRow(variant.name, batch_size, threads, stats, peak_rss_delta_mb=memory["mb"])


def add_speedups(rows: list[LatencyRow], baseline: str = BASELINE) -> None:
    """Fill ``speedup_vs_torch_fp32`` = baseline median / variant median, per (batch, threads)."""
    reference = {(r.batch_size, r.threads): r.stats for r in rows if r.variant == baseline and r.stats}
    for row in rows:
        base = reference.get((row.batch_size, row.threads))
        if base is not None and row.stats is not None and row.stats.median_ms > 0:
            row.speedup_vs_torch_fp32 = base.median_ms / row.stats.median_ms


def profile_variants(
    variants: Sequence[ModelVariant],
    sample_shape: Sequence[int],
    *,
    batch_sizes: Sequence[int] = (1,),
    threads: Sequence[int] = (1,),
    warmup: int = 10,
    runs: int = 200,
    clock: Callable[[], float] = time.perf_counter,
) -> list[LatencyRow]:
    """Every variant at every (batch size, threads) setting, with speed-ups against torch_fp32."""
    rows = [
        time_variant(v, sample_shape, b, t, warmup=warmup, runs=runs, clock=clock)
        for b in batch_sizes
        for t in threads
        for v in variants
    ]
    add_speedups(rows)
    return rows
