"""Run the firmware's C code on the host (portable path of mk_arch.h) to check it bit for bit.

* :func:`build_harness` / :func:`run_steps`: single kernel steps (any shapes) through a small
  harness generated from the kernel table.
* :func:`build_host_model` / :func:`run_host_model`: a whole generated model with the same
  runner (main.c) and file protocol as the firmware, using stdio instead of semihosting.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from malak_pipe.errors import StageFailed, StageSkipped
from malak_pipe.mcu import simio
from malak_pipe.mcu.codegen import harness_source
from malak_pipe.mcu.files import firmware_root, include_dir
from malak_pipe.mcu.kernels import Step
from malak_pipe.mcu.ops import REGISTRY

HOST_CFLAGS = ["-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-fno-strict-aliasing"]
MODEL_OPT = "-O1"  # a whole model is straight-line code with every kernel inlined: -O1 compiles ~2x faster


def host_compiler() -> str:
    """The host C compiler (cc or gcc); StageSkipped with an install hint when there is none."""
    for name in ("cc", "gcc", "clang"):
        found = shutil.which(name)
        if found:
            return found
    raise StageSkipped("no host C compiler (cc/gcc) on PATH: apt-get install gcc", missing_tool=True)


def _compile(sources: list[Path], output: Path, includes: list[Path], extra: list[str] | None = None) -> Path:
    command = [host_compiler(), *HOST_CFLAGS, *(extra or [])]
    command += [f"-I{p}" for p in includes] + [str(s) for s in sources] + ["-o", str(output)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise StageFailed(f"host compilation failed:\n{' '.join(command)}\n{result.stderr[-4000:]}")
    return output


def build_harness(directory: Path) -> Path:
    """Compile the kernel harness into ``directory``; returns the executable."""
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / "harness.c"
    source.write_text(harness_source())
    io = firmware_root() / "host" / "io_host.c"
    return _compile([source, io], directory / "harness", [include_dir()])


def _blob(array: np.ndarray) -> bytes:
    data = np.ascontiguousarray(array).tobytes()
    return struct.pack("<I", len(data)) + data


def encode_step(step: Step, inputs: list[np.ndarray], output_bytes: int) -> bytes:
    """One harness record: the step's arguments, constants, input tensors and output size."""
    kernel_id = REGISTRY.kernel_id(step)
    ints = step.int_args()
    parts = [struct.pack("<II", kernel_id, len(ints)), struct.pack(f"<{len(ints)}i", *ints)]
    parts += [_blob(step.consts[key]) for key, _ in step.spec.consts]
    parts += [_blob(np.asarray(x, dtype=np.int8)) for x in inputs]
    parts.append(struct.pack("<II", output_bytes, step.scratch_bytes))
    return b"".join(parts)


def encode_cases(cases: list[tuple[Step, list[np.ndarray], int]]) -> bytes:
    """cases.bin for the harness: (step, input tensors, output bytes) records."""
    return b"".join(encode_step(s, x, n) for s, x, n in cases)


def split_outputs(data: bytes, cases: list[tuple[Step, list[np.ndarray], int]]) -> list[np.ndarray]:
    """out.bin of the harness cut into one int8 array per case."""
    flat = np.frombuffer(data, dtype=np.int8)
    if len(flat) != sum(size for _, _, size in cases):
        raise StageFailed(f"kernel harness wrote {len(flat)} bytes, expected {sum(s for _, _, s in cases)}")
    outputs, offset = [], 0
    for _, _, size in cases:
        outputs.append(flat[offset : offset + size].copy())
        offset += size
    return outputs


def run_steps(harness: Path, cases: list[tuple[Step, list[np.ndarray], int]]) -> list[np.ndarray]:
    """Run (step, inputs, output bytes) cases in one harness process; the int8 outputs."""
    with tempfile.TemporaryDirectory(prefix="mk-harness-") as tmp:
        (Path(tmp) / "cases.bin").write_bytes(encode_cases(cases))
        result = subprocess.run([str(harness)], cwd=tmp, capture_output=True, text=True)
        if result.returncode != 0:
            raise StageFailed(f"kernel harness exited with {result.returncode}: {result.stderr[-2000:]}")
        return split_outputs((Path(tmp) / "out.bin").read_bytes(), cases)


def build_host_model(sources: Path, directory: Path) -> Path:
    """Compile a generated model (model.c, model_data.c) with the runner for the host."""
    root = firmware_root()
    directory.mkdir(parents=True, exist_ok=True)
    files = [sources / "model.c", sources / "model_data.c", root / "src" / "main.c", root / "host" / "io_host.c"]
    return _compile(files, directory / "model_host", [include_dir(), sources], [MODEL_OPT])


def run_host_model(executable: Path, images: np.ndarray, output_bytes: int, layers: int) -> simio.RunOutput:
    """Run the host build on int8 images (N, H, W, C) through input.bin/output.bin."""
    with tempfile.TemporaryDirectory(prefix="mk-host-run-") as tmp:
        simio.write_input(Path(tmp) / "input.bin", images, output_bytes)
        result = subprocess.run([str(executable)], cwd=tmp, capture_output=True, text=True)
        if result.returncode != 0:
            raise StageFailed(f"host model exited with {result.returncode}: {result.stderr[-2000:]}")
        return simio.read_output(Path(tmp) / "output.bin", len(images), output_bytes, layers)
