"""Latency, per-layer time and peak memory of model variants (torch FP32/int8, ONNX Runtime FP32/int8).

A :class:`ModelVariant` is a torch module or an ONNX file under a name ("torch_fp32",
"onnx_int8"...). :func:`profile_variants` times every variant at every (batch size, threads)
setting with the same input, and reports speed-ups against the variant named
``torch_fp32`` at the same setting.

Peak memory (:func:`peak_memory`) is measured in a fresh process per variant (see
:mod:`malak_pipe.deploy.memprobe`): resident-set growth from loading the model and peak RSS
growth while it runs. RSS counts native allocations (torch, ORT arenas) that ``tracemalloc``
cannot see; a fresh process keeps other models' freed pages out of the figure.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from malak_pipe.deploy.configs import LatencyConfig, ProfileConfig
from malak_pipe.deploy.latency import LatencyStats, measure, summarize

BASELINE = "torch_fp32"


@dataclass
class ModelVariant:
    """A model to time: a torch ``module`` or an ONNX ``path``; ``engine`` is torch's quantized engine."""

    name: str
    kind: Literal["torch", "onnx"]
    model: Any
    engine: str | None = None
    path: Path | None = None
    artifact_type: str | None = None

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


def peak_memory(
    variant: ModelVariant, sample_shape: Sequence[int], *, batch_size: int, threads: int, runs: int
) -> dict[str, float] | None:
    """Load / inference / peak RSS of ``variant`` measured in a fresh process (see memprobe).

    Needs the variant's file: ``model`` for ONNX, ``path`` and ``artifact_type`` for torch.
    None when the variant has no file or /proc is unavailable.
    """
    from malak_pipe.deploy.memprobe import probe

    if variant.kind == "onnx":
        spec = {"kind": "onnx", "path": str(variant.model)}
    elif variant.path is not None and variant.artifact_type is not None:
        spec = {"kind": "torch", "path": str(variant.path), "artifact_type": variant.artifact_type}
    else:
        return None
    spec.update(shape=list(sample_shape), batch=batch_size, threads=threads, runs=runs)
    return probe(spec)


def memory_table(
    variants: Sequence[ModelVariant], sample_shape: Sequence[int], config: ProfileConfig
) -> dict[str, dict[str, float] | None]:
    """:func:`peak_memory` of every variant at the primary setting, ``config.memory_runs`` calls each."""
    batch_size, threads = config.batch_sizes[0], config.threads[0]
    return {
        v.name: peak_memory(v, sample_shape, batch_size=batch_size, threads=threads, runs=config.memory_runs)
        for v in variants
    }


# -- per-layer tables ---------------------------------------------------------------------------


def layer_tables(
    variants: Sequence[ModelVariant], sample_shape: Sequence[int], config: ProfileConfig
) -> dict[str, list[dict[str, Any]]]:
    """Per-layer profile (slowest first) of every variant at batch size 1 and the first thread count."""
    from malak_pipe.deploy.layer_profile import ort_layer_profile, torch_layer_profile

    x = np.random.default_rng(0).standard_normal((1, *sample_shape)).astype(np.float32)
    runs, threads = config.per_layer_runs, config.threads[0]
    tables = {}
    for v in variants:
        if v.kind == "onnx":
            layers = ort_layer_profile(v.model, x, runs=runs, threads=threads)
        else:
            layers = torch_layer_profile(v.model, x, runs=runs, threads=threads, engine=v.engine)
        tables[v.name] = [layer.as_dict() for layer in layers]
    return tables


# -- latency table -----------------------------------------------------------------------------


@dataclass
class LatencyRow:
    """One (variant, batch size, threads) measurement, or why it was skipped."""

    variant: str
    batch_size: int
    threads: int
    stats: LatencyStats | None
    speedup_vs_torch_fp32: float | None = None
    skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {"variant": self.variant, "batch_size": self.batch_size, "threads": self.threads}
        if self.stats is not None:
            row.update(self.stats.as_dict())
        row["speedup_vs_torch_fp32"] = self.speedup_vs_torch_fp32
        if self.skipped:
            row["skipped"] = self.skipped
        return row


def _frozen_skip(variant: ModelVariant, batch_size: int) -> str | None:
    fixed = variant.fixed_batch()
    return f"the ONNX model's batch size is frozen at {fixed}" if fixed is not None and fixed != batch_size else None


def time_setting(
    variants: Sequence[ModelVariant],
    sample_shape: Sequence[int],
    batch_size: int,
    threads: int,
    timing: LatencyConfig,
    *,
    clock: Callable[[], float] = time.perf_counter,
    seed: int = 0,
) -> list[LatencyRow]:
    """Time every variant at one setting on the same random batch, interleaved.

    Each variant gets ``timing.warmup`` untimed calls, then the ``timing.runs`` timed calls
    are split into ``timing.rounds`` blocks taken in turn (variant A block 1, B block 1, ...,
    A block 2...), so a load change on a shared machine hits every variant alike and the
    ratios stay fair.
    """
    warmup, runs, rounds = timing.warmup, timing.runs, timing.rounds
    x = np.random.default_rng(seed).standard_normal((batch_size, *sample_shape)).astype(np.float32)
    skipped = {v.name: _frozen_skip(v, batch_size) for v in variants}
    active = [v for v in variants if skipped[v.name] is None]
    blocks = [len(part) for part in np.array_split(np.arange(runs), max(1, min(rounds, runs)))]
    durations: dict[str, list[float]] = {v.name: [] for v in active}
    with contextlib.ExitStack() as stack:
        calls = {v.name: stack.enter_context(runner(v, x, threads)) for v in active}
        for fn in calls.values():
            for _ in range(warmup):
                fn()
        for block in blocks:
            for name, fn in calls.items():
                durations[name] += measure(fn, warmup=0, runs=block, clock=clock)
    return [
        LatencyRow(v.name, batch_size, threads, summarize(durations[v.name], batch_size))
        if skipped[v.name] is None
        else LatencyRow(v.name, batch_size, threads, None, skipped=skipped[v.name])
        for v in variants
    ]


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
    config: ProfileConfig = ProfileConfig(),
    *,
    clock: Callable[[], float] = time.perf_counter,
    progress: Callable[[int], Any] | None = None,
) -> list[LatencyRow]:
    """Every variant at every (batch size, threads) setting of ``config`` (see :func:`time_setting`).

    Rows come batch size by batch size, thread count by thread count, with speed-ups filled in;
    ``progress(len(variants))`` is called after each setting.
    """
    rows = []
    for batch_size in config.batch_sizes:
        for threads in config.threads:
            rows += time_setting(variants, sample_shape, batch_size, threads, config, clock=clock)
            if progress is not None:
                progress(len(variants))
    add_speedups(rows)
    return rows
