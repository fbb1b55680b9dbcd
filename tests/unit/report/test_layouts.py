"""Reports find latency figures by the layouts a stage declares (``provides``), not by stage names."""

from __future__ import annotations

import json

from malak_pipe.report.aggregate import LATENCY_BY_INPUT, PER_LAYER_LATENCY, load_job
from malak_pipe.report.plots import write_plots


def write_run(root, provides):
    """A run whose node 'bench' (any stage name) timed the model of node 'fp32'."""
    latency = {"torch_fp32": {"median_ms": 2.0, "p90_ms": 2.5, "speedup_vs_torch_fp32": 1.0}}
    layers = [{"name": "conv1", "time_ms": 0.5}, {"name": "fc", "time_ms": 0.25}]
    nodes = {
        "fp32": {"stage": "train", "status": "ok", "metrics": {"test_top1": 0.9, "size_bytes": 1000}},
        "bench": {
            "stage": "my_timer",
            "status": "ok",
            "provides": provides,
            "metrics": {"latency": latency, "per_layer_top": layers},
        },
    }
    (root / "bench").mkdir(parents=True)
    (root / "bench" / "result.json").write_text(json.dumps({"inputs": {"torch_fp32": {"ref": "fp32.model"}}}))
    (root / "results.json").write_text(json.dumps({"run": {"name": "r", "seed": 0}, "nodes": nodes}))
    return root / "results.json"


def test_latency_points_join_the_producing_node_for_any_stage_that_provides_the_layout(tmp_path):
    job = load_job(write_run(tmp_path, [LATENCY_BY_INPUT, PER_LAYER_LATENCY]))
    point = job.nodes["bench/torch_fp32"]
    assert point["metrics"] == {
        "latency_median_ms": 2.0,
        "latency_p90_ms": 2.5,
        "speedup_vs_torch_fp32": 1.0,
        "test_top1": 0.9,
        "size_bytes": 1000,
    }
    written = write_plots([job], [], tmp_path / "report")
    assert "per_layer_latency" in written and written["per_layer_latency"].stat().st_size > 0


def test_a_node_without_the_layout_is_not_read_as_latency(tmp_path):
    job = load_job(write_run(tmp_path, []))
    assert "bench/torch_fp32" not in job.nodes
    assert "per_layer_latency" not in write_plots([job], [], tmp_path / "report")
