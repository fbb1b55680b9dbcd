"""Firmware tests need arm-none-eabi-gcc and qemu-system-arm: skipped without them, failed under CI=true."""

from __future__ import annotations

import os
import shutil

import pytest

TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm", "qemu-system-arm")


def require_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if not missing:
        return
    reason = f"missing {', '.join(missing)}: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def arm_tools():
    require_tools()


@pytest.fixture(scope="session")
def mps2_target():
    from pathlib import Path

    import yaml

    from malak_pipe.mcu.target import TargetConfig

    conf = Path(__file__).resolve().parents[2] / "conf" / "target" / "mps2_an500.yaml"
    return TargetConfig(**yaml.safe_load(conf.read_text()))


@pytest.fixture(scope="session")
def digits_models(request):
    from tests.helpers.mcu_models import digits_qdq_models, model_cache_dir

    return digits_qdq_models(model_cache_dir(request))
