"""The six compression stages through the real node context: metrics, warnings, outputs that load."""

from __future__ import annotations

import pytest
import torch

from malak_pipe.compress.artifact import TORCH_MODEL_INT8
from malak_pipe.engine.registry import get_stage
from malak_pipe.engine.standalone import run_stage
from malak_pipe.errors import ConfigError
from malak_pipe.models.artifact import TORCH_MODEL

from .conftest import MODEL

STANDARD = {
    "val_top1",
    "test_top1",
    "test_loss",
    "test_per_class_top1",
    "params",
    "macs",
    "size_bytes",
    "test_top1_drop_vs_input_pp",
    "max_class_drop_pp",
    "max_class_drop_class",
}
WITH_BASELINE = {"test_top1_drop_vs_baseline_pp", "compression_vs_baseline"}
FINETUNE = {"epochs": 1, "batch_size": 32, "lr": 1e-4}


@pytest.fixture(scope="module")
def upstream(dataset, _trained):
    """What the train node would report for the model (so stages need not evaluate it again)."""
    from malak_pipe.compress.report import evaluation_metrics
    from malak_pipe.models import model_metrics

    return {**evaluation_metrics(_trained, dataset), **model_metrics(_trained, dataset.input_shape)}


def _run(name, config, files, tmp_path, upstream, baseline=True):
    inputs = {**files, "baseline": files["model"]} if baseline else dict(files)
    metrics = {"model": upstream, "baseline": upstream} if baseline else {"model": upstream}
    return run_stage(get_stage(name), config, inputs, tmp_path, input_metrics=metrics)


def test_ptq_static_stage(files, tmp_path, upstream, dataset):
    config = {"calibration_batches": 4, "calibration_batch_size": 32, "seed": 0}
    result, outputs = _run("ptq_static", config, files, tmp_path, upstream)
    metrics = result.metrics
    assert set(metrics) >= STANDARD | WITH_BASELINE
    assert metrics["calibration_images"] == 128 and metrics["payload_compression_vs_input"] > 3.0
    assert metrics["compression_vs_baseline"] > 2.0 and metrics["test_top1_drop_vs_baseline_pp"] < 5.0
    # sizes are artifact files on both sides: the int8 file written, the FP32 file read
    assert metrics["size_bytes"] == outputs["model"].stat().st_size
    assert metrics["input_size_bytes"] == files["model"].stat().st_size
    assert metrics["compression_vs_baseline"] == files["model"].stat().st_size / metrics["size_bytes"]
    assert metrics["compression_vs_input"] == metrics["compression_vs_baseline"]
    loaded = TORCH_MODEL_INT8.load(outputs["model"])
    assert loaded.recipe.mode == "static" and loaded.module(dataset.test.x[:2]).shape == (2, 4)


def test_ptq_dynamic_stage_warns_on_conv_nets(files, tmp_path, upstream):
    result, outputs = _run("ptq_dynamic", {}, files, tmp_path, upstream, baseline=False)
    assert set(result.metrics) >= STANDARD and not WITH_BASELINE & set(result.metrics)
    assert 0.0 < result.metrics["quantizable_param_fraction"] < 0.5
    assert any("ptq_static" in warning for warning in result.warnings)
    assert TORCH_MODEL_INT8.load(outputs["model"]).recipe.mode == "dynamic"


def test_qat_stage(files, tmp_path, upstream):
    config = {"finetune": FINETUNE, "freeze_bn_after_epoch": 0}
    result, outputs = _run("qat", config, files, tmp_path, upstream)
    assert set(result.metrics) >= STANDARD | WITH_BASELINE
    assert result.metrics["input_test_top1"] == upstream["test_top1"]
    assert result.metrics["size_bytes"] == outputs["model"].stat().st_size
    assert result.metrics["compression_vs_baseline"] == files["model"].stat().st_size / result.metrics["size_bytes"]
    assert TORCH_MODEL_INT8.load(outputs["model"]).recipe.mode == "qat"


def test_prune_magnitude_stage(files, tmp_path, upstream):
    config = {"sparsity": 0.5, "schedule": "gradual", "steps": 2, "finetune": FINETUNE}
    result, outputs = _run("prune_magnitude", config, files, tmp_path, upstream)
    metrics = result.metrics
    assert set(metrics) >= STANDARD | WITH_BASELINE
    assert abs(metrics["sparsity"] - 0.5) < 0.01 and set(metrics["sparsity_per_layer"]) >= {"conv1", "fc2"}
    assert metrics["sparse_size_bytes"] < metrics["dense_weight_bytes"]
    saved = TORCH_MODEL.load(outputs["model"]).module
    assert float((saved.fc1.weight == 0).float().mean()) == pytest.approx(0.5, abs=0.01)
    assert not result.warnings


def test_prune_structured_stage(files, tmp_path, upstream):
    result, outputs = _run("prune_structured", {"ratio": 0.4, "finetune": FINETUNE}, files, tmp_path, upstream)
    metrics = result.metrics
    assert set(metrics) >= STANDARD | WITH_BASELINE
    assert metrics["params"] < metrics["input_params"] and metrics["macs"] < metrics["input_macs"]
    assert metrics["compression_vs_input"] > 1.3
    assert TORCH_MODEL.load(outputs["model"]).module.conv1.out_channels < 16


def test_distill_stage_from_scratch_and_from_an_input_student(files, tmp_path, upstream):
    student = MODEL.model_copy(update={"width_mult": 0.25}).model_dump()
    config = {"student": student, "alpha": 0.5, "temperature": 2.0, "train": {"epochs": 2, "batch_size": 32}}
    inputs = {"teacher": files["model"], "data": files["data"]}
    result, outputs = run_stage(get_stage("distill"), config, inputs, tmp_path, input_metrics={"teacher": upstream})
    metrics = result.metrics
    assert set(metrics) >= STANDARD and metrics["student_from"] == "scratch"
    assert metrics["teacher_test_top1"] == upstream["test_top1"]
    assert metrics["teacher_student_gap_pp"] == pytest.approx((upstream["test_top1"] - metrics["test_top1"]) * 100)
    assert metrics["params"] < upstream["params"]
    # prune -> distill: the student comes from an upstream node
    inputs["student"] = outputs["model"]
    result, _ = run_stage(get_stage("distill"), {**config, "student": None}, inputs, tmp_path / "again")
    assert result.metrics["student_from"] == "input"


def test_distill_stage_checks_the_student_against_the_data(files, tmp_path):
    config = {"student": MODEL.model_copy(update={"num_classes": 7}).model_dump(), "train": {"epochs": 1}}
    with pytest.raises(ConfigError, match="num_classes"):
        run_stage(get_stage("distill"), config, {"teacher": files["model"], "data": files["data"]}, tmp_path)


def test_stages_evaluate_the_input_themselves_when_upstream_reports_nothing(files, tmp_path):
    result, _ = run_stage(get_stage("ptq_dynamic"), {}, dict(files), tmp_path)
    assert result.metrics["test_top1_drop_vs_input_pp"] == pytest.approx(0.0, abs=5.0)
    assert result.metrics["compression_vs_input"] > 1.0


def test_int8_teacher_is_accepted(files, tmp_path, upstream):
    _, outputs = _run("ptq_static", {"calibration_batches": 2}, files, tmp_path, upstream, baseline=False)
    config = {"student": MODEL.model_copy(update={"width_mult": 0.25}).model_dump(), "train": {"epochs": 1}}
    inputs = {"teacher": outputs["model"], "data": files["data"]}
    result, _ = run_stage(get_stage("distill"), config, inputs, tmp_path / "kd")
    assert result.metrics["teacher_params"] is None  # int8: parameter counts would mislead
    assert torch.isfinite(torch.tensor(result.metrics["test_loss"]))
