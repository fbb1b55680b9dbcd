"""Every script of examples/ runs at a tiny size (--tiny), so the examples never rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(tmp_path: Path, script: str, *args: str) -> dict:
    out_file = tmp_path / "figures.json"
    env = dict(os.environ, MALAK_CACHE_DIR=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--tiny", "--json", str(out_file), *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(out_file.read_text())


def test_every_example_is_tested():
    tested = {"qat_five_lines.py", "image_folder_to_mcu.py", "sensor_1d_to_mcu.py", "sweep_report.py"}
    helpers = {"custom_models.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested | helpers


def test_qat_five_lines_next_to_the_pipeline(tmp_path):
    figures = run_example(tmp_path, "qat_five_lines.py", "--pipeline")
    five, pipeline = figures["five_lines"], figures["pipeline"]
    for numbers in (five, pipeline):
        assert 0.0 < numbers["int8_test_top1"] <= 1.0 and 0.0 < numbers["fp32_test_top1"] <= 1.0
    # the same architecture and recipe: the int8 files differ only where scales need float64
    assert abs(five["int8_size_bytes"] - pipeline["int8_size_bytes"]) < 0.02 * pipeline["int8_size_bytes"]


def test_sweep_and_its_report(tmp_path):
    stats = run_example(tmp_path, "sweep_report.py")
    top1 = [s for s in stats if s["metric"] == "test_top1"]
    assert len(top1) == 2 and all(s["n"] == 2 and s["seeds"] == [0, 1] for s in top1)
    assert (tmp_path / "outputs" / "sweep_report" / "report.md").is_file()


@pytest.mark.firmware
def test_image_folder_and_custom_model_to_the_mcu(tmp_path):
    from tests.firmware.conftest import require_tools

    require_tools()
    figures = run_example(tmp_path, "image_folder_to_mcu.py")
    assert figures["ok"] and set(figures["statuses"].values()) == {"ok"} and len(figures["statuses"]) == 15
    assert figures["classes"] == 10 and figures["bit_exact_rate"] == 1.0 and figures["instructions_per_inference"] > 0


@pytest.mark.firmware
@pytest.mark.parametrize("model", ["custom"])  # ds_cnn: tests/firmware/test_signals_mcu.py
def test_sensor_model_to_the_mcu(tmp_path, model):
    from tests.firmware.conftest import require_tools

    require_tools()
    figures = run_example(tmp_path, "sensor_1d_to_mcu.py", "--model", model)
    assert figures["ok"] and figures["input_shape"] == [3, 64]
    assert figures["fp32_test_top1"] > 0.8 and figures["bit_exact_rate"] == 1.0
