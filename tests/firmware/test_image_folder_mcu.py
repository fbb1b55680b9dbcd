"""Done-when check of [your-data]: real images in a folder and a user's own model, through the
default pipeline (every stage) to the simulated MCU, bit-exact.

    malak-run data=image_folder data.root=DIR model.name=factory model.factory=user_models:tiny_cnn

DIR holds Fashion-MNIST images written as PNG files (Debian's dataset-fashion-mnist), at a
small size so the whole DAG runs in about half a minute.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_cli import malak_run, results_files
from tests.helpers.user_data import FASHION_CLASSES, FASHION_MNIST_DIR, write_factory_module, write_fashion_folder

pytestmark = pytest.mark.firmware

MODEL = """
from torch import nn


def tiny_cnn(classes=10):
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 7 * 7, classes),
    )
"""
SHORT = [  # the default pipeline's stages, with short epochs and small timing runs
    "stage.train.epochs=3", "stage.train.lr=0.003", "stage.qat.finetune.epochs=1", "stage.distill.train.epochs=1",
    "stage.prune_magnitude.steps=1", "stage.prune_magnitude.finetune.epochs=1",
    "stage.prune_structured.finetune.epochs=1", "stage.profile.runs=10", "stage.profile.memory=false",
    "stage.profile.per_layer_runs=2", "stage.sim_run.num_images=100", "run.live=false",
]  # fmt: skip


@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_fashion_mnist_png_folder_and_factory_model_reach_qemu_bit_exact(arm_tools, tmp_path):
    root = write_fashion_folder(tmp_path / "fashion", per_class_train=60, per_class_test=10)
    module = write_factory_module(tmp_path / "code", "user_models", MODEL)
    out = malak_run(
        tmp_path,
        "data=image_folder",
        f"data.root={root}",
        "model.name=factory",
        f"model.factory={module}:tiny_cnn",
        *SHORT,
        env={"PYTHONPATH": str(tmp_path / "code")},
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    [results] = results_files(tmp_path)
    nodes = json.loads(results.read_text())["nodes"]
    assert {name: node["status"] for name, node in nodes.items() if node["status"] != "ok"} == {}
    assert len(nodes) == 15  # the default pipeline, every stage
    data = nodes["data"]["metrics"]
    assert (data["n_train"], data["n_val"], data["n_test"]) == (540, 60, 100)
    assert data["input_shape"] == [1, 28, 28] and data["num_classes"] == 10
    saved = json.loads(next((results.parent / "data").glob("*.json")).read_text())
    assert saved["config"]["name"] == "image_folder" and saved["class_names"] == sorted(FASHION_CLASSES)
    assert nodes["train"]["metrics"]["test_top1"] > 0.5
    sim = nodes["sim_run"]["metrics"]
    assert sim["images"] == 100 and sim["bit_exact_rate"] == 1.0
    assert abs(sim["top1"] - nodes["quantize_onnx"]["metrics"]["test_top1"]) <= 0.03
    assert sim["instructions_per_inference"] > 0
