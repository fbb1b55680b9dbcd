"""firmware_build's deploy target: the board the firmware ships to is budget-checked before anything compiles."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from malak_pipe.engine.standalone import run_stage
from malak_pipe.errors import StageFailed
from malak_pipe.mcu.build import read_plan, width_factor_that_fits
from malak_pipe.mcu.target import TargetConfig

ROOT = Path(__file__).resolve().parents[3]


def _target(name: str, **changes) -> TargetConfig:
    data = yaml.safe_load((ROOT / "conf" / "target" / f"{name}.yaml").read_text())
    return TargetConfig(**{**data, **changes})


@pytest.fixture(scope="module")
def sources(digits_models, tmp_path_factory):
    from malak_pipe.stages.codegen import Codegen

    _, outputs = run_stage(
        Codegen, {"host_check_images": 0}, {"model": digits_models["cnn_int8"]}, tmp_path_factory.mktemp("cg")
    )
    return outputs["sources"]


def test_a_deploy_target_too_small_fails_before_compiling_with_the_sizes_and_a_width(sources, tmp_path, monkeypatch):
    from malak_pipe.stages.firmware_build import FirmwareBuild

    monkeypatch.setenv("PATH", "/nonexistent")  # proves nothing is compiled or linked
    plan = read_plan(sources)
    small = _target("stm32h743", flash_bytes=plan["param_bytes"] // 2)
    config = {"target": _target("mps2_an500").model_dump(), "deploy_target": small.model_dump()}
    with pytest.raises(StageFailed) as info:
        run_stage(FirmwareBuild, config, {"sources": sources}, tmp_path)
    error = info.value
    assert error.path == "stage.firmware_build.deploy_target"
    assert "'stm32h743' (checked before linking)" in error.message
    assert f"flash {plan['param_bytes']} B > {small.flash_bytes} B budget" in error.message
    assert f"parameters: {plan['param_bytes']} B" in error.message
    factor = width_factor_that_fits(small, plan["param_bytes"], plan["arena"]["arena_bytes"], 2048)
    assert factor == pytest.approx(0.5**0.5, rel=0.01)
    assert f"model.width_mult at most about {factor:.2f} x the current one" in error.hint
    assert not list(tmp_path.rglob("firmware.elf"))


def test_width_factor_follows_the_tighter_of_flash_and_ram():
    board = _target("stm32h743", flash_bytes=1_000_000, ram_bytes=102_048)
    assert width_factor_that_fits(board, 500_000, 50_000, 2048) == 1.0
    assert width_factor_that_fits(board, 4_000_000, 50_000, 2048) == pytest.approx(0.5)  # flash: the square root
    assert width_factor_that_fits(board, 500_000, 400_000, 2048) == pytest.approx(0.25)  # RAM: linear
