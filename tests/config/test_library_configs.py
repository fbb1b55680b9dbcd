"""The deploy and mcu config objects: JSON round trip, strict keys, frozen, and what the stages pass."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from malak_pipe.deploy import configs as deploy
from malak_pipe.mcu import configs as mcu

CONFIGS = [
    deploy.OnnxExportConfig(dynamic_batch=True, parity_atol=1e-3),
    deploy.OrtQuantConfig(calibrate_method="entropy", entropy_bins=512, activation_type="int8"),
    deploy.TorchQDQConfig(opset=17, qoperator_activation_type="int8"),
    deploy.ProfileConfig(batch_sizes=(1, 8), threads=(1, 2), memory=False),
    deploy.DriftConfig(grid=(2, 3), psi=0.3, seed=4),
    mcu.BuildOptions(opt_level="Os", stack_bytes=4096, extra_cflags=("-DFOO",)),
    mcu.SimSettings(backend="renode", icount=False, timeout_s=5.0),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: type(c).__name__)
def test_round_trip_strict_and_frozen(config):
    cls = type(config)
    assert cls.from_json(config.to_json()) == config
    assert cls.from_json(cls().to_json()) == cls()
    with pytest.raises(ValidationError, match="extra"):
        cls(not_a_setting=1)
    with pytest.raises(ValidationError, match="frozen"):
        config.config_version = 1


def test_of_takes_the_shared_fields():
    drift = deploy.DriftConfig(psi=0.3, min_samples=50, bins=7)
    assert deploy.DriftThresholds.of(drift) == deploy.DriftThresholds(psi=0.3, min_samples=50)
    qdq = deploy.TorchQDQConfig(opset=17, batch_size=4)
    exported = deploy.OnnxExportConfig.of(qdq, require_bn_folded=False)
    assert (exported.opset, exported.batch_size, exported.require_bn_folded) == (17, 4, False)


def test_stage_configs_are_the_library_configs():
    """A stage validates the library's object and writes none of its fields again."""
    from malak_pipe.stages.drift import DriftStageConfig
    from malak_pipe.stages.export_onnx import ExportONNXConfig
    from malak_pipe.stages.firmware_build import FirmwareBuildConfig
    from malak_pipe.stages.profile import ProfileStageConfig
    from malak_pipe.stages.quantize_onnx import QuantizeONNXConfig
    from malak_pipe.stages.sim_run import SimRunConfig

    pairs = [
        (ExportONNXConfig, deploy.OnnxExportConfig),
        (QuantizeONNXConfig, deploy.OrtQuantConfig),
        (QuantizeONNXConfig, deploy.TorchQDQConfig),
        (ProfileStageConfig, deploy.ProfileConfig),
        (DriftStageConfig, deploy.DriftConfig),
        (FirmwareBuildConfig, mcu.BuildOptions),
        (SimRunConfig, mcu.SimSettings),
    ]
    for stage_config, library_config in pairs:
        assert issubclass(stage_config, library_config)
        rewritten = set(vars(stage_config).get("__annotations__", {})) & set(library_config.model_fields)
        assert not rewritten, (stage_config.__name__, rewritten)


def test_firmware_opt_level_is_a_gcc_flag():
    from malak_pipe.mcu.build import cflags
    from malak_pipe.mcu.target import TargetConfig

    target = TargetConfig(
        name="t", linker_script="t.ld", flash_bytes=1024, ram_bytes=1024, clock_hz=1, timer="none",
        instructions_per_tick=1,
    )  # fmt: skip
    assert "-Os" in cflags(target, mcu.BuildOptions(opt_level="Os"))
    assert "-O3" in cflags(target, mcu.BuildOptions())
