"""The sensitivity and mixed_precision stages through the real node context."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from malak_pipe.compress.artifact import TORCH_MODEL_INT8
from malak_pipe.compress.sensitivity_report import PNG_SIGNATURE, SENSITIVITY_PLOT
from malak_pipe.engine.registry import get_stage
from malak_pipe.engine.standalone import run_stage
from malak_pipe.errors import ArtifactError, ConfigError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
ROOT = Path(__file__).resolve().parents[3]
PTQ = {"calibration_batches": 2, "calibration_batch_size": 32, "observer": "minmax"}
TARGET = yaml.safe_load((ROOT / "conf" / "target" / "mps2_an500.yaml").read_text())


@pytest.fixture(scope="module")
def sensitivity(files, tmp_path_factory):
    config = {"ptq": PTQ, "kl_batches": 2, "kl_batch_size": 16}
    result, outputs = run_stage(get_stage("sensitivity"), config, dict(files), tmp_path_factory.mktemp("sens"))
    return result, outputs


def test_sensitivity_measures_every_layer_with_both_clips(sensitivity, dataset):
    result, outputs = sensitivity
    table = json.loads(outputs["table"].read_text())
    assert [(row["layer"], row["clip"]) for row in table["layers"][:2]] == [("conv1", "minmax"), ("conv1", "mse")]
    assert len(table["layers"]) == 10 and result.metrics["layers_measured"] == 5
    fc1 = next(row for row in table["layers"] if row["layer"] == "fc1" and row["clip"] == "mse")
    assert fc1["bytes_saved"] == fc1["weight_bytes_int8"] - fc1["weight_bytes_int4"] > 0
    assert fc1["weight_bytes_int8"] == fc1["params"]  # 4-row blocks, k a multiple of 4: one byte per weight
    for row in table["layers"]:
        assert row["val_drop_pp"] == pytest.approx(100 * (table["int8_val_top1"] - row["val_top1"]))
        assert row["kl"] >= 0.0 and 0.0 <= row["weight_error"] < 1.0
    assert result.metrics["mean_weight_error_mse"] <= result.metrics["mean_weight_error_minmax"]
    assert table["val_images"] == len(dataset.val.y)
    assert outputs["plot"].read_bytes()[:8] == PNG_SIGNATURE
    assert SENSITIVITY_PLOT.load(outputs["plot"]) == outputs["plot"]


def test_a_plot_that_is_no_png_is_refused(tmp_path):
    (tmp_path / "plot.png").write_text("not a picture")
    with pytest.raises(ArtifactError, match="not a PNG"):
        SENSITIVITY_PLOT.load(tmp_path / "plot.png")


def _mixed(files, sensitivity, tmp_path, config, extra=None, metrics=None):
    inputs = {**files, "sensitivity": sensitivity[1]["table"], "baseline": files["model"], **(extra or {})}
    config = {"target": TARGET, "ptq": PTQ, **config}
    return run_stage(get_stage("mixed_precision"), config, inputs, tmp_path, input_metrics=metrics)


def test_mixed_precision_meets_a_weight_byte_budget_and_records_the_bits(files, sensitivity, tmp_path):
    table = json.loads(sensitivity[1]["table"].read_text())
    fc1 = next(row for row in table["layers"] if row["layer"] == "fc1")
    budget = sum(row["weight_bytes_int8"] for row in table["layers"] if row["clip"] == "minmax") - fc1["bytes_saved"]
    result, outputs = _mixed(files, sensitivity, tmp_path, {"budget": "weight_bytes", "weight_bytes": budget})
    metrics = result.metrics
    assert metrics["weight_bytes"] <= budget and metrics["saving_chosen"] >= metrics["saving_needed"]
    assert metrics["four_bit_layers"] and set(metrics["four_bit_clips"]) == set(metrics["four_bit_layers"])
    assert metrics["average_weight_bits"] < 8.0 and {"test_top1", "val_top1", "test_top1_drop_vs_baseline_pp"} <= set(
        metrics
    )
    loaded = TORCH_MODEL_INT8.load(outputs["model"])
    assert sorted(loaded.recipe.weight_bits) == sorted(metrics["four_bit_layers"])
    for name in metrics["four_bit_layers"]:
        values = loaded.module.get_submodule(name).weight().int_repr()
        assert values.min() >= -8 and values.max() <= 7
    assert json.loads(outputs["selection"].read_text())["four_bit_layers"] == metrics["four_bit_layers"]


def test_flash_budgets_read_the_int8_firmware_and_report_drops_vs_int8(files, sensitivity, tmp_path, dataset):
    reference = tmp_path / "int8_fw"
    reference.mkdir()
    for name in ("firmware.elf", "target.json"):
        (reference / name).write_text("")
    (reference / "memory.json").write_text(json.dumps({"flash_bytes": 40_000}))
    int8_metrics = {"test_top1": 0.9, "val_top1": 0.9}
    config = {"budget": "flash_bytes", "flash_bytes": 36_000, "flash_margin_bytes": 0, "finetune": "qat",
              "qat_finetune": {"epochs": 1, "batch_size": 32, "max_batches_per_epoch": 2}}
    extra = {"reference": reference, "int8": files["model"]}
    result, _ = _mixed(files, sensitivity, tmp_path / "run", config, extra, {"int8": int8_metrics})
    metrics = result.metrics
    assert metrics["saving_needed"] == 4_000 and metrics["predicted_flash_bytes"] <= 36_000
    assert metrics["test_top1_drop_vs_int8_pp"] == pytest.approx(100 * (0.9 - metrics["test_top1"]))
    assert metrics["epochs"] == 1 and result.warnings  # QAT, cut short
    with pytest.raises(ConfigError, match="predicts the firmware's flash"):
        _mixed(files, sensitivity, tmp_path / "no_reference", {"budget": "target"})
