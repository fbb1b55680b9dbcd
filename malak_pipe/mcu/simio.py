"""The file protocol between the runner (firmware/src/main.c) and the host: input.bin, output.bin."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from malak_pipe.errors import StageFailed

MAGIC_IN = 0x31494B4D
MAGIC_OUT = 0x314F4B4D
MAGIC_CAL = 0x31434B4D
HEADER = struct.Struct("<6I")


@dataclass
class RunOutput:
    """What one run of the runner produced."""

    logits: np.ndarray  # (N, output bytes) int8
    ticks: np.ndarray  # (N,) timer ticks of each inference
    layer_ticks: np.ndarray  # (layers,) total ticks per layer over the N inferences
    stack_used: int
    loop_ticks: int


def write_input(path: Path, images: np.ndarray, output_bytes: int) -> None:
    """input.bin for mode 0: ``images`` int8 (N, ...) in the model's HWC layout."""
    images = np.ascontiguousarray(images, dtype=np.int8).reshape(len(images), -1)
    with open(path, "wb") as handle:
        handle.write(HEADER.pack(MAGIC_IN, 0, len(images), images.shape[1], output_bytes, 0))
        handle.write(images.tobytes())


def write_calibration(path: Path, iterations: int) -> None:
    """input.bin for mode 1: spin ``iterations`` times (2 instructions each) between two timer reads."""
    path.write_bytes(HEADER.pack(MAGIC_IN, 1, 0, 0, 0, iterations))


def record_bytes(output_bytes: int) -> int:
    return output_bytes + 4


def read_output(path: Path, count: int, output_bytes: int, layers: int) -> RunOutput:
    """Parse output.bin of a mode-0 run; :class:`StageFailed` when it is short or corrupt."""
    data = path.read_bytes() if path.exists() else b""
    rec = record_bytes(output_bytes)
    body = count * rec
    expected = body + 12 + 8 * layers + 8
    if len(data) != expected:
        raise StageFailed(
            f"the firmware wrote {len(data)} bytes of results, expected {expected} for {count} images",
            path=str(path),
        )
    records = np.frombuffer(data[:body], dtype=np.uint8).reshape(count, rec)
    logits = records[:, :output_bytes].view(np.int8).copy()
    ticks = records[:, output_bytes:].copy().view("<u4").ravel().astype(np.int64)
    magic, n, n_layers = struct.unpack_from("<3I", data, body)
    if magic != MAGIC_OUT or n != count or n_layers != layers:
        raise StageFailed(f"corrupt results footer (magic {magic:#x}, {n} images, {n_layers} layers)", path=str(path))
    layer_ticks = np.frombuffer(data, dtype="<u8", count=layers, offset=body + 12).astype(np.int64)
    stack_used, loop_ticks = struct.unpack_from("<2I", data, body + 12 + 8 * layers)
    return RunOutput(logits, ticks, layer_ticks, stack_used, loop_ticks)


def read_calibration(path: Path) -> tuple[int, int]:
    """(iterations, ticks) of a mode-1 run."""
    data = path.read_bytes() if path.exists() else b""
    if len(data) != 12:
        raise StageFailed(f"calibration result has {len(data)} bytes, expected 12", path=str(path))
    magic, iterations, ticks = struct.unpack("<3I", data)
    if magic != MAGIC_CAL:
        raise StageFailed(f"corrupt calibration result (magic {magic:#x})", path=str(path))
    return iterations, ticks
