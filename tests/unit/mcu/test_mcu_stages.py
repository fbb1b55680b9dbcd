"""The codegen / firmware_build / sim_run stage plugins without the Arm toolchain."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from malak_pipe.engine.standalone import run_stage
from malak_pipe.errors import StageFailed, StageSkipped
from malak_pipe.mcu.target import TargetConfig

ROOT = Path(__file__).resolve().parents[3]


def _target(name: str, **changes) -> dict:
    data = yaml.safe_load((ROOT / "conf" / "target" / f"{name}.yaml").read_text())
    data.update(changes)
    return TargetConfig(**data).model_dump()


def _stage_defaults(name: str, **resolved) -> dict:
    data = yaml.safe_load((ROOT / "conf" / "stage" / name / "default.yaml").read_text())
    data.update(resolved)
    return data


@pytest.fixture(scope="module")
def sources(digits_models, tmp_path_factory):
    from malak_pipe.stages.codegen import Codegen

    result, outputs = run_stage(
        Codegen, _stage_defaults("codegen", seed=0), {"model": digits_models["cnn_int8"]}, tmp_path_factory.mktemp("cg")
    )
    return result, outputs["sources"]


def test_codegen_stage_writes_sources_and_checks_them_on_the_host(sources):
    result, path = sources
    assert result.metrics["host_bit_exact_rate"] == 1.0
    assert result.metrics["kernels"] == ["conv1", "conv3px", "conv3px", "fc6", "fc6"]
    assert result.metrics["arena_bytes"] >= result.metrics["arena_lower_bound_bytes"] > 0
    assert (path / "model.c").is_file() and (path / "plan.json").is_file()


def test_target_and_stage_configs_validate():
    from malak_pipe.stages.firmware_build import FirmwareBuildConfig
    from malak_pipe.stages.sim_run import SimRunConfig

    for name in ("mps2_an500", "stm32h743"):
        FirmwareBuildConfig(**_stage_defaults("firmware_build", target=_target(name)))
    cfg = SimRunConfig(**_stage_defaults("sim_run"))
    assert cfg.backend == "qemu" and cfg.icount
    assert TargetConfig(**_target("stm32h743")).flash_bytes == 2 * 1024 * 1024


def test_model_over_budget_fails_before_linking_with_the_numbers(sources, tmp_path, monkeypatch):
    from malak_pipe.stages.firmware_build import FirmwareBuild

    monkeypatch.setenv("PATH", "/nonexistent")  # proves nothing is compiled or linked
    config = _stage_defaults("firmware_build", target=_target("stm32h743", flash_bytes=20_000, ram_bytes=4096))
    with pytest.raises(StageFailed) as info:
        run_stage(FirmwareBuild, config, {"sources": sources[1]}, tmp_path)
    message = str(info.value)
    assert "before linking" in message and "flash" in message and "RAM" in message
    assert "B over" in message and "20000 B budget" in message
    assert not list(tmp_path.rglob("firmware.elf"))


def test_missing_toolchain_is_a_skip_with_the_install_hint(sources, tmp_path, monkeypatch):
    from malak_pipe.stages.firmware_build import FirmwareBuild

    monkeypatch.setenv("PATH", "/nonexistent")
    config = _stage_defaults("firmware_build", target=_target("mps2_an500"))
    with pytest.raises(StageSkipped) as info:
        run_stage(FirmwareBuild, config, {"sources": sources[1]}, tmp_path)
    assert info.value.missing_tool and "apt-get install gcc-arm-none-eabi" in info.value.reason


def test_missing_qemu_and_renode_are_skips(monkeypatch):
    from malak_pipe.mcu import qemu, renode

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(StageSkipped, match="qemu-system-arm"):
        qemu.qemu_binary()
    with pytest.raises(StageSkipped, match="renode/README.md") as info:
        renode.renode_binary()
    assert info.value.missing_tool


def test_artifact_types_check_directories(sources, tmp_path):
    from malak_pipe.artifacts import get_type
    from malak_pipe.errors import ArtifactError

    loaded = get_type("c_sources").load(sources[1])
    assert loaded == sources[1]
    with pytest.raises(ArtifactError, match="missing firmware.elf"):
        get_type("firmware_elf").load(tmp_path)


def test_renode_script_loads_platform_firmware_and_mailbox(tmp_path):
    from malak_pipe.mcu import renode

    target = TargetConfig(**_target("stm32h743"))
    text = renode.script(tmp_path / "firmware.elf", tmp_path, 1234, 10.0, target)
    assert "stm32h743.repl" in text and "sysbus LoadELF" in text
    assert "sysbus LoadBinary" in text and "0x70000100" in text
    assert "sysbus WriteDoubleWord 0x70000000 1234" in text and text.rstrip().endswith("quit")


def test_codegen_yaml_defaults_equal_the_options_and_the_stage_config_is_them():
    from omegaconf import OmegaConf

    from malak_pipe.mcu.codegen_options import CodegenOptions
    from malak_pipe.stages.codegen import CodegenConfig

    top = yaml.safe_load((ROOT / "conf" / "config.yaml").read_text())
    conf = OmegaConf.create({"seed": top["seed"], "codegen": _stage_defaults("codegen")})
    resolved = OmegaConf.to_container(conf, resolve=True)["codegen"]
    defaults = CodegenOptions().model_dump()
    assert resolved == defaults
    assert CodegenConfig().model_dump() == defaults and isinstance(CodegenConfig(), CodegenOptions)
    with pytest.raises(ValueError, match="host_check_images"):
        CodegenConfig(host_check_images=-1)
    with pytest.raises(ValueError, match="extra"):
        CodegenConfig(fuse_pools=False)
