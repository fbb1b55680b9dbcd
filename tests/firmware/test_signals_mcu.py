"""A 1-D model (the zoo's DS-CNN on N x C x L signals from an .npz file) through the default
pipeline, every stage, to the simulated MCU, bit-exact: 1-D convolutions lowered as 2-D maps of height 1."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.e2e.test_cli import malak_run, results_files
from tests.helpers.user_data import signals

pytestmark = pytest.mark.firmware

SHORT = [
    "stage.train.epochs=8", "stage.train.batch_size=32", "stage.train.lr=0.005", "stage.qat.finetune.epochs=1",
    "stage.distill.train.epochs=1", "stage.prune_magnitude.steps=1", "stage.prune_magnitude.finetune.epochs=1",
    "stage.prune_structured.finetune.epochs=1", "stage.profile.runs=10", "stage.profile.memory=false",
    "stage.profile.per_layer_runs=2", "stage.sim_run.num_images=50", "run.live=false",
]  # fmt: skip


def test_ds_cnn_on_signals_reaches_qemu_bit_exact_through_the_default_pipeline(arm_tools, tmp_path):
    x, y = signals(400, channels=3, length=48, classes=4, seed=0)
    x_test, y_test = signals(100, channels=3, length=48, classes=4, seed=1)
    path = tmp_path / "sensors.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x_test, y_test=y_test, class_names=np.array(["a", "b", "c", "d"]))
    out = malak_run(tmp_path, "data=arrays", f"data.root={path}", "model=ds_cnn", "model.width_mult=0.5", *SHORT)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    [results] = results_files(tmp_path)
    nodes = json.loads(results.read_text())["nodes"]
    assert len(nodes) == 15 and {n: r["status"] for n, r in nodes.items() if r["status"] != "ok"} == {}
    assert nodes["data"]["metrics"]["input_shape"] == [3, 48]
    assert nodes["train"]["metrics"]["test_top1"] > 0.8
    assert nodes["codegen"]["metrics"]["host_bit_exact_rate"] == 1.0
    sim = nodes["sim_run"]["metrics"]
    assert sim["images"] == 50 and sim["bit_exact_rate"] == 1.0 and sim["instructions_per_inference"] > 0
    assert abs(sim["top1"] - nodes["quantize_onnx"]["metrics"]["test_top1"]) <= 0.05
