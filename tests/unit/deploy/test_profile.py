"""Latency core (warm-up exclusion with a fake clock and a real first-call cost), per-layer, the stage."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from malak_pipe.deploy.configs import ProfileConfig
from malak_pipe.deploy.latency import measure, summarize, time_call
from malak_pipe.deploy.layer_profile import ort_layer_profile, torch_layer_profile
from malak_pipe.deploy.onnx_export import export_onnx
from malak_pipe.deploy.profiler import ModelVariant, peak_memory, profile_variants
from malak_pipe.engine.standalone import run_stage
from malak_pipe.errors import ConfigError
from malak_pipe.stages.export_onnx import ExportONNX
from malak_pipe.stages.profile import Profile

torch.set_num_threads(1)


class FakeClock:
    """A clock that only moves when the timed function says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_warmup_calls_are_not_timed_fake_clock():
    clock, calls = FakeClock(), []

    def fn() -> None:
        calls.append(1)
        clock.now += 5.0 if len(calls) <= 3 else 0.002  # three expensive first calls

    durations = measure(fn, warmup=3, runs=7, clock=clock)
    assert len(calls) == 10 and len(durations) == 7
    assert durations == pytest.approx([0.002] * 7)
    stats = summarize(durations, batch_size=4)
    assert stats.median_ms == pytest.approx(2.0) and stats.max_ms == pytest.approx(2.0)
    assert stats.throughput_per_s == pytest.approx(2000.0) and stats.runs == 7


def test_summary_statistics():
    stats = summarize([0.001 * k for k in range(1, 11)])
    assert stats.median_ms == pytest.approx(5.5) and stats.mean_ms == pytest.approx(5.5)
    assert stats.p90_ms == pytest.approx(9.1) and stats.std_ms == pytest.approx(np.std(np.arange(1, 11)))
    assert (stats.min_ms, stats.max_ms) == pytest.approx((1.0, 10.0))
    with pytest.raises(ConfigError):
        measure(lambda: None, warmup=0, runs=0)


def test_real_first_call_cost_is_excluded():
    first = []

    def fn() -> None:
        if not first:
            first.append(1)
            time.sleep(0.05)

    assert time_call(fn, warmup=1, runs=20).max_ms < 5.0
    assert time_call(lambda: time.sleep(0.0), warmup=0, runs=3).runs == 3


class SlowFirstCall(torch.nn.Module):
    """A model whose first forward costs 50 ms (like a lazy initialisation)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == 1:
            time.sleep(0.05)
        return x.flatten(1)


def test_runner_excludes_a_model_first_call_cost():
    model = SlowFirstCall()
    config = ProfileConfig(warmup=1, runs=12, rounds=4)
    (row,) = profile_variants([ModelVariant("torch_fp32", "torch", model)], (1, 2, 2), config)
    assert model.calls == 13 and row.stats.runs == 12 and row.stats.max_ms < 5.0


def test_variants_rows_speedups_and_frozen_batch(tmp_path, trained):
    onnx_path = export_onnx(trained, (1, 8, 8), tmp_path / "m.onnx").path
    variants = [ModelVariant("torch_fp32", "torch", trained), ModelVariant("onnx_fp32", "onnx", onnx_path)]
    rows = profile_variants(variants, (1, 8, 8), ProfileConfig(batch_sizes=(1, 2), warmup=2, runs=5))
    by_key = {(r.variant, r.batch_size): r for r in rows}
    assert by_key[("torch_fp32", 1)].speedup_vs_torch_fp32 == pytest.approx(1.0)
    assert by_key[("onnx_fp32", 1)].speedup_vs_torch_fp32 > 0
    assert by_key[("onnx_fp32", 2)].stats is None and "frozen" in by_key[("onnx_fp32", 2)].skipped
    assert by_key[("torch_fp32", 2)].stats.batch_size == 2
    row = by_key[("onnx_fp32", 1)].as_dict()
    for key in ("median_ms", "p90_ms", "mean_ms", "std_ms", "throughput_per_s", "speedup_vs_torch_fp32"):
        assert key in row


def test_per_layer_profiles(tmp_path, trained):
    x = np.zeros((1, 1, 8, 8), dtype=np.float32)
    layers = torch_layer_profile(trained, x, runs=3, threads=1)
    conv1 = next(layer for layer in layers if layer.name == "conv1")
    assert conv1.macs == 16 * 8 * 8 * 9 and conv1.params == 16 * 9 + 16 and conv1.time_ms > 0
    assert sum(layer.share for layer in layers) == pytest.approx(1.0)
    onnx_path = export_onnx(trained, (1, 8, 8), tmp_path / "m.onnx").path
    ort_layers = ort_layer_profile(onnx_path, x, runs=3, threads=1)
    assert {layer.op for layer in ort_layers} & {"Conv", "FusedConv"}
    assert sum(layer.macs for layer in ort_layers) >= sum(layer.macs for layer in layers) * 0.9


def test_profile_stage(artifacts, tmp_path):
    _, exported = run_stage(
        ExportONNX, {}, {"model": artifacts["torch_model"], "data": artifacts["dataset"]}, tmp_path, node="export"
    )
    inputs = {"torch_fp32": artifacts["torch_model"], "torch_int8": artifacts["torch_model_int8"],
              "onnx_fp32": exported["model"], "data": artifacts["dataset"]}  # fmt: skip
    config = {"warmup": 2, "runs": 10, "per_layer_runs": 2, "top_layers": 3, "memory": False}
    result, outputs = run_stage(Profile, config, inputs, tmp_path)
    latency = result.metrics["latency"]
    assert set(latency) == {"torch_fp32", "torch_int8", "onnx_fp32"}
    assert latency["torch_fp32"]["speedup_vs_torch_fp32"] == pytest.approx(1.0)
    assert all(v["median_ms"] > 0 and v["p90_ms"] >= v["median_ms"] for v in latency.values())
    assert len(result.metrics["per_layer_top"]) == 3 and result.metrics["per_layer_top"][0]["variant"] == "torch_fp32"
    assert set(result.metrics["per_layer_top_by_variant"]) == set(latency)
    assert outputs["report"].name == "json.report.json"
    with pytest.raises(ConfigError, match="no model wired"):
        run_stage(Profile, {}, {"data": artifacts["dataset"]}, tmp_path, node="empty")


def test_peak_memory_in_a_fresh_process(artifacts, trained):
    variant = ModelVariant("torch_int8", "torch", None, path=artifacts["torch_model_int8"],
                           artifact_type="torch_model_int8")  # fmt: skip
    memory = peak_memory(variant, (1, 8, 8), batch_size=1, threads=1, runs=3)
    assert memory is not None and memory["load_mb"] >= 0 and memory["inference_mb"] >= 0
    assert memory["peak_mb"] == pytest.approx(memory["load_mb"] + memory["inference_mb"])
    no_file = ModelVariant("x", "torch", trained)
    assert peak_memory(no_file, (1, 8, 8), batch_size=1, threads=1, runs=3) is None  # no file: nothing to probe
