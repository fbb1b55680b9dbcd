"""Every zoo model and a user's own model end on the simulated MCU through the real CLI,
bit-exact, by both quantization sources, at smoke size; the headline experiment is wired to.

The routes: ONNX Runtime's static PTQ of the FP32 ONNX (``sim_run``) and the QAT model's own
scales written as QDQ (``sim_run_qat``, quantize_onnx with source torch_int8), both in
pipeline=firmware_routes. All runs share one cache, so what they have in common (the data
node) runs once. The host check of the generated C is off (host_check_images=0): QEMU checks
the same C against the golden reference bit for bit, at half the compile time. The agreement
with ONNX Runtime of untrained smoke models is not asserted (their logits are near ties);
benchmarks/firmware.py measures it on trained ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.e2e.test_cli import malak_run, results_files
from tests.firmware.conftest import require_tools

pytestmark = pytest.mark.firmware

ZOO = ("simple_cnn", "mobilenet_v2", "resnet18", "efficientnet_b0", "resnet50")
ROUTES = {"sim_run": "ort_static", "sim_run_qat": "torch_int8"}
FAST_CHECKS = ("stage.codegen.host_check_images=0",)

SE_NET = '''
import torch
from torch import nn


class SqueezeExcite(nn.Module):
    def __init__(self, channels, squeeze):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.act = nn.SiLU()
        self.expand = nn.Conv2d(squeeze, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class SENet(nn.Module):
    """Conv-BN-SiLU, depthwise-BN-SiLU, a squeeze-and-excitation block, 1x1 projection to an odd
    width, AdaptiveAvgPool2d(1), torch.flatten, a linear head."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 24, 3, padding=1), nn.BatchNorm2d(24), nn.SiLU())
        self.dw = nn.Sequential(nn.Conv2d(24, 24, 3, padding=1, groups=24), nn.BatchNorm2d(24), nn.SiLU())
        self.se = SqueezeExcite(24, 6)
        self.project = nn.Sequential(nn.Conv2d(24, 40, 1), nn.BatchNorm2d(40))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(40, num_classes)

    def forward(self, x):
        y = self.project(self.se(self.dw(self.stem(x))))
        return self.head(torch.flatten(self.pool(y), 1))
'''


@pytest.fixture(scope="module")
def zoo_cache(tmp_path_factory):
    require_tools()
    return tmp_path_factory.mktemp("zoo-cache")


def run_nodes(tmp_path: Path, *args: str, cache: Path) -> tuple[Path, dict]:
    """Run malak-run; the run directory and its results.json nodes (the run must succeed)."""
    out = malak_run(tmp_path, *args, "run.live=false", cache=cache)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    [results] = results_files(tmp_path)
    return results.parent, json.loads(results.read_text())["nodes"]


def node_record(run_dir: Path, node: str) -> dict:
    return json.loads((run_dir / node / "result.json").read_text())


def assert_bit_exact_on_target(nodes: dict, node: str) -> dict:
    record = nodes[node]
    assert record["status"] in ("ok", "cached"), record
    metrics = record["metrics"]
    assert metrics["images"] == 8 and metrics["bit_exact_rate"] == 1.0 and metrics["bit_exact_mismatches"] == 0
    assert metrics["top1"] == metrics["golden_top1"]
    assert metrics["instructions_per_inference"] > 0 and metrics["flash_bytes"] > metrics["param_bytes"] > 0
    assert 0.0 <= metrics["golden_ort_agreement"] <= 1.0
    return metrics


def assert_routes(run_dir: Path, nodes: dict, model_node: str) -> None:
    """sim_run runs ORT's static PTQ; sim_run_qat the QAT model's own QDQ graph."""
    for sim, source in ROUTES.items():
        assert_bit_exact_on_target(nodes, sim)
        quantize = sim.replace("sim_run", "quantize_onnx")
        assert node_record(run_dir, quantize)["config"]["source"] == source
        assert node_record(run_dir, sim)["inputs"]["onnx_int8"]["ref"] == f"{quantize}.model"
    quantize_qat = node_record(run_dir, "quantize_onnx_qat")
    qat = node_record(run_dir, model_node)
    assert quantize_qat["inputs"]["model_int8"]["sha256"] == qat["outputs"]["model"]["sha256"]


@pytest.mark.parametrize("model", ZOO)
def test_zoo_model_is_bit_exact_on_qemu_by_both_routes(model, tmp_path, zoo_cache):
    run_dir, nodes = run_nodes(tmp_path, "pipeline=firmware_routes", f"model={model}", "debug=smoke", *FAST_CHECKS,
                               cache=zoo_cache)
    assert_routes(run_dir, nodes, "qat")


def test_factory_model_with_se_block_silu_and_adaptive_pool_is_bit_exact(tmp_path, monkeypatch, zoo_cache):
    (tmp_path / "se_net.py").write_text(SE_NET)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    run_dir, nodes = run_nodes(
        tmp_path,
        "pipeline=firmware_routes",
        "model.name=factory",
        "model.factory=se_net:SENet",
        "debug=smoke",
        *FAST_CHECKS,
        cache=zoo_cache,
    )
    assert_routes(run_dir, nodes, "qat")
    kernels = node_record(run_dir, "codegen")["metrics"]["kernels"]
    assert len(kernels) >= 6  # stem, depthwise, the SE block's convolutions, the projection, the head


def test_mobilenet_qat_experiment_ends_on_the_mcu_with_the_qat_model(tmp_path):
    """The wiring of the headline experiment, from the composed config: qat -> quantize_onnx_qat
    (torch_int8) -> codegen_qat -> firmware_build_qat (built for the STM32H743 too) -> sim_run_qat,
    and the same for the static-PTQ model. tests/e2e/test_experiments_smoke.py runs the
    experiment itself (debug=smoke, every node ok); the QAT route of MobileNetV2 is bit-exact
    on QEMU above."""
    out = malak_run(tmp_path, "--cfg", "job", "+experiment=mobilenet_qat", "debug=smoke")
    assert out.returncode == 0, out.stderr
    config = yaml.safe_load(out.stdout)
    pipeline = config["pipeline"]
    for model in ("qat", "ptq_static"):
        quantize = pipeline[f"quantize_onnx_{model}"]
        assert quantize["stage"] == "quantize_onnx" and quantize["params"] == {"source": "torch_int8"}
        assert quantize["inputs"]["model_int8"] == f"{model}.model"
        assert pipeline[f"codegen_{model}"]["inputs"] == {"model": f"quantize_onnx_{model}.model"}
        assert pipeline[f"firmware_build_{model}"]["inputs"] == {"sources": f"codegen_{model}.sources"}
        sim = pipeline[f"sim_run_{model}"]
        assert sim["stage"] == "sim_run"
        assert sim["inputs"]["firmware"] == f"firmware_build_{model}.firmware"
        assert sim["inputs"]["onnx_int8"] == f"quantize_onnx_{model}.model"
    assert config["stage"]["firmware_build"]["deploy_target"]["name"] == "stm32h743"
