"""The MCU path on plain objects: to_firmware (torch int8 or int8 ONNX) and run_on_simulator."""

from __future__ import annotations

import shutil

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from malak_pipe.compress import StaticPTQ, StaticPTQConfig
from malak_pipe.deploy import api as deploy
from malak_pipe.errors import ConfigError, DataError, StageSkipped
from malak_pipe.mcu.api import load_target, run_on_simulator, to_firmware
from malak_pipe.mcu.codegen_options import CodegenOptions
from malak_pipe.training import FitSettings, evaluate, fit
from tests.helpers.mcu_models import digits_dataset, simple_cnn

pytestmark = pytest.mark.firmware
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits_loaders():
    data = digits_dataset()
    return tuple(
        DataLoader(TensorDataset(s.x, s.y), batch_size=64, shuffle=False) for s in (data.train, data.val, data.test)
    )


@pytest.fixture(scope="module")
def int8_model(digits_loaders):
    train, val, _ = digits_loaders
    torch.manual_seed(0)
    model = simple_cnn()
    fit(model, train, FitSettings(epochs=3, lr=3e-3), val=val)
    return model.eval(), StaticPTQ(StaticPTQConfig(calibration_batches=4)).quantize(model.eval(), train)


def test_torch_int8_to_firmware_runs_bit_exact_on_qemu(arm_tools, tmp_path, digits_loaders, int8_model):
    train, _, test = digits_loaders
    _, int8 = int8_model
    firmware = to_firmware(int8, "mps2_an500", tmp_path / "fw", data=train, codegen=CodegenOptions(host_check_images=4))
    assert firmware.elf.is_file() and (firmware.sources / "model.c").is_file() and firmware.onnx.is_file()
    assert firmware.memory["flash_bytes"] <= firmware.target.flash_bytes and firmware.host_bit_exact_rate == 1.0
    result = run_on_simulator(firmware, test, num_images=24)
    assert result["images"] == 24 and result["bit_exact_rate"] == 1.0
    assert result["instructions_per_inference"] > result["macs"]
    torch_top1 = evaluate(int8, [(x[:24], y[:24]) for x, y in [next(iter(test))]]).top1
    assert abs(result["top1"] - torch_top1) <= 2 / 24  # the QDQ twin may round one or two images differently


def test_onnx_int8_builds_for_the_stm32_budget(arm_tools, tmp_path, digits_loaders, int8_model):
    train, _, test = digits_loaders
    model, _ = int8_model
    fp32, _ = deploy.export_onnx_checked(model, tmp_path / "fp32.onnx", test)
    qdq = deploy.quantize_onnx(fp32, tmp_path / "int8.onnx", train)
    firmware = to_firmware(
        qdq, target="stm32h743", out_dir=tmp_path / "stm32", codegen=CodegenOptions(host_check_images=0)
    )
    assert firmware.target.name == "stm32h743" and firmware.host_bit_exact_rate is None
    assert 0 < firmware.memory["ram_bytes"] <= load_target("stm32h743").ram_bytes
    if shutil.which("renode") is None:
        with pytest.raises(StageSkipped):
            run_on_simulator(firmware, test, num_images=4)


def test_mcu_api_mistakes_are_named(tmp_path, int8_model):
    with pytest.raises(ConfigError, match="unknown target 'esp32'"):
        load_target("esp32")
    with pytest.raises(DataError, match="needs data="):
        to_firmware(int8_model[1], out_dir=tmp_path)
