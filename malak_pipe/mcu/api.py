"""The MCU path on plain objects: an int8 model to firmware, and the firmware on a simulator.

    from malak_pipe.mcu.api import to_firmware, run_on_simulator
    firmware = to_firmware(int8, target="mps2_an500", data=train_loader)   # or an int8 QDQ .onnx
    firmware.memory["flash_bytes"], firmware.elf
    result = run_on_simulator(firmware, test_loader, num_images=100)
    result["top1"], result["bit_exact_rate"], result["instructions_per_inference"]

``to_firmware`` runs what the codegen and firmware_build stages run (lowering to the integer
graph, C generation with its host check, the arm-none-eabi-gcc build and memory report);
``run_on_simulator`` what sim_run runs (QEMU, or Renode for targets without a QEMU machine).
A torch int8 model (from StaticPTQ or QAT) is first written as its QDQ ONNX equivalent, which
needs ``data`` for one calibration batch. A missing toolchain or simulator raises
:class:`malak_pipe.errors.StageSkipped` with the install hint.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from malak_pipe.errors import ConfigError, DataError
from malak_pipe.mcu.codegen_options import CodegenOptions
from malak_pipe.mcu.configs import BuildOptions, SimSettings
from malak_pipe.mcu.target import TargetConfig


@dataclass(frozen=True)
class Firmware:
    """A built firmware: its directories and files, the memory report, the target and the
    int8 ONNX model it was generated from (``host_bit_exact_rate``: the host check, None
    without a host compiler or when it was off)."""

    directory: Path
    sources: Path
    firmware_dir: Path
    elf: Path
    onnx: Path
    memory: dict[str, Any]
    target: TargetConfig
    host_bit_exact_rate: float | None


def load_target(target: str | TargetConfig) -> TargetConfig:
    """A board by name (a file of conf/target/, e.g. "stm32h743") or a TargetConfig as it is."""
    if isinstance(target, TargetConfig):
        return target
    import yaml

    boards = files("malak_pipe.conf") / "target"
    path = boards / f"{target}.yaml"
    if not path.is_file():
        known = sorted(p.name[: -len(".yaml")] for p in boards.iterdir() if p.name.endswith(".yaml"))
        raise ConfigError(f"unknown target '{target}'", path="target", hint=f"use one of {known} or a TargetConfig")
    return TargetConfig(**yaml.safe_load(path.read_text()))


def _int8_onnx(model: Any, directory: Path, data: Any, backend: str | None) -> Path:
    """The int8 QDQ ONNX file of ``model``: the file itself, or a torch int8 model exported."""
    from malak_pipe.deploy.artifact import OnnxModel

    if isinstance(model, OnnxModel):
        return model.path
    if isinstance(model, (str, Path)):
        return Path(model)
    if data is None:
        raise DataError(
            "a torch int8 model needs data= (a DataLoader or inputs tensor) to be written as QDQ ONNX",
            hint="pass data=train_loader, or an int8 QDQ .onnx file instead of the torch model",
        )
    from malak_pipe.deploy.api import export_int8_onnx

    path = directory / "model_int8.onnx"
    export_int8_onnx(model, path, data, backend=backend)
    return path


def to_firmware(
    model: Any,
    target: str | TargetConfig = "mps2_an500",
    out_dir: Path | str | None = None,
    *,
    data: Any = None,
    codegen: CodegenOptions = CodegenOptions(),
    build: BuildOptions = BuildOptions(),
    backend: str | None = None,
) -> Firmware:
    """C sources, ELF and memory report of an int8 model for ``target``, in ``out_dir``
    (default: a new temporary directory, kept).

    ``model``: an int8 QDQ ONNX file (path or OnnxModel, e.g. from
    :func:`malak_pipe.deploy.api.quantize_onnx`) or a torch int8 model with ``data`` for its
    calibration batch and ``backend`` its quantized engine. A model over the target's flash or
    RAM budget raises StageFailed.
    """
    from malak_pipe.mcu.build import build_firmware
    from malak_pipe.mcu.codegen import generate
    from malak_pipe.mcu.lower import lower_onnx
    from malak_pipe.mcu.selfcheck import host_check

    board = load_target(target)
    directory = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="malak-firmware-"))
    directory.mkdir(parents=True, exist_ok=True)
    onnx_path = _int8_onnx(model, directory, data, backend)
    graph = lower_onnx(onnx_path)
    sources, firmware_dir = directory / "sources", directory / "firmware"
    generate(graph, sources, codegen)
    exact = host_check(graph, sources, codegen.host_check_images, codegen.seed) if codegen.host_check_images else None
    firmware_dir.mkdir(parents=True, exist_ok=True)
    memory = build_firmware(sources, firmware_dir, board, build)
    return Firmware(directory, sources, firmware_dir, firmware_dir / "firmware.elf", onnx_path, memory, board, exact)


def run_on_simulator(
    firmware: Firmware,
    data: Any,
    *,
    num_images: int | None = 100,
    settings: SimSettings | None = None,
) -> dict[str, Any]:
    """Run ``num_images`` labelled inputs of ``data`` (None: all) through ``firmware`` on a simulator.

    The simulator is ``settings.backend`` when settings are given, else QEMU for targets with a
    QEMU machine and Renode otherwise. Returns the sim_run stage's metrics: ``top1``,
    ``bit_exact_rate`` (against the golden integer reference), ``instructions_per_inference``,
    ``ort_top1`` (ONNX Runtime on the same inputs), flash / RAM bytes...
    """
    import numpy as np

    from malak_pipe.data.batches import collect
    from malak_pipe.mcu.simulate import evaluate_firmware

    x, y = collect(data, limit=num_images)
    if y is None:
        raise DataError("run_on_simulator needs labelled data", hint="pass (inputs, labels) batches")
    if settings is None:
        settings = SimSettings(backend="qemu" if firmware.target.qemu_machine else "renode")
    metrics, _report = evaluate_firmware(
        firmware.firmware_dir,
        firmware.sources,
        np.asarray(x.float().numpy(), dtype=np.float32),
        y.numpy(),
        settings,
        onnx_path=firmware.onnx,
    )
    return metrics
