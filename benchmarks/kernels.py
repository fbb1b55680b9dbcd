"""Kernel microbenchmark: instructions per MAC of one layer on the simulated Cortex-M7.

    .venv/bin/python benchmarks/kernels.py --out benchmarks/results/kernels.json
    .venv/bin/python benchmarks/kernels.py --out ... --shapes dw3x3_s1_32x32x72,pw_32x32x24_144

Each shape is a one-layer integer graph (random int8 weights, per-channel scales that keep the
outputs in range) run through the real code generator (``plan_steps`` picks the kernel as it
does for any model), the firmware build (arm-none-eabi-gcc -O3 for mps2-an500) and QEMU with
``-icount shift=0``: the runner's per-layer timer ticks (40 instructions each) give the
instructions of the layer's kernel call. The outputs are checked byte for byte against the
golden reference. Writes {shape: {kernel, reason, macs, instructions, instructions_per_mac,
bit_exact}}; records of shapes not run this time are kept.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from malak_pipe.mcu import qemu
from malak_pipe.mcu.build import build_firmware
from malak_pipe.mcu.codegen import generate
from malak_pipe.mcu.golden import run_golden
from malak_pipe.mcu.ir import IntGraph, Layer, QTensor
from malak_pipe.mcu.ops.onnx_params import requant
from malak_pipe.mcu.target import TargetConfig

ROOT = Path(__file__).resolve().parents[1]
IMAGES = 2


@dataclass(frozen=True)
class Shape:
    """One benchmarked layer: input (H, W, C), its operator and window, and the output channels."""

    op: str
    hwc: tuple[int, int, int]
    out_c: int
    kernel: tuple[int, int] = (1, 1)
    stride: int = 1
    pad: int = 0
    pool: bool = False
    clamp: tuple[int, int] = (-128, 127)  # act_min, act_max: narrower as a QAT model's ReLU6 leaves them


SHAPES = {
    "dw3x3_s1_32x32x72": Shape("depthwise_conv2d", (32, 32, 72), 72, (3, 3), 1, 1),
    "dw3x3_s1_32x32x72_clamp": Shape("depthwise_conv2d", (32, 32, 72), 72, (3, 3), 1, 1, clamp=(-100, 90)),
    "dw3x3_s2_32x32x72": Shape("depthwise_conv2d", (32, 32, 72), 72, (3, 3), 2, 1),
    "dw3x3_s1_8x8x288": Shape("depthwise_conv2d", (8, 8, 288), 288, (3, 3), 1, 1),
    "pw_32x32x24_144": Shape("conv2d", (32, 32, 24), 144),
    "pw_32x32x24_144_clamp": Shape("conv2d", (32, 32, 24), 144, clamp=(-100, 90)),
    "pw_32x32x12_72": Shape("conv2d", (32, 32, 12), 72),
    "pw_16x16x18_108": Shape("conv2d", (16, 16, 18), 108),
    "pw_16x16x144_32": Shape("conv2d", (16, 16, 144), 32),
    "pw_8x8x48_288": Shape("conv2d", (8, 8, 48), 288),
    "pw_4x4x432_72": Shape("conv2d", (4, 4, 432), 72),
    "simplecnn_conv1": Shape("conv2d", (28, 28, 1), 32, (3, 3), 1, 1, pool=True),
    "simplecnn_conv2": Shape("conv2d", (14, 14, 32), 64, (3, 3), 1, 1, pool=True),
    "simplecnn_conv3": Shape("conv2d", (7, 7, 64), 64, (3, 3), 1, 1),
    "simplecnn_fc1": Shape("fully_connected", (7, 7, 64), 128),
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _out_hw(shape: Shape) -> tuple[int, int]:
    h, w, _ = shape.hwc
    kh, kw = shape.kernel
    return (h + 2 * shape.pad - kh) // shape.stride + 1, (w + 2 * shape.pad - kw) // shape.stride + 1


def layer_graph(shape: Shape, seed: int = 0) -> IntGraph:
    """The one-layer (a conv with a fused pool: two-layer) integer graph of ``shape``."""
    rng = np.random.default_rng(seed)
    x = QTensor("x", shape.hwc, 0.02, int(rng.integers(-20, 20)))
    depthwise, fc = shape.op == "depthwise_conv2d", shape.op == "fully_connected"
    k = int(np.prod(shape.hwc)) if fc else shape.kernel[0] * shape.kernel[1] * (1 if depthwise else shape.hwc[2])
    wshape = {
        "depthwise_conv2d": (*shape.kernel, shape.out_c),
        "conv2d": (shape.out_c, *shape.kernel, shape.hwc[2]),
        "fully_connected": (shape.out_c, int(np.prod(shape.hwc))),
    }[shape.op]
    weights = np.clip(np.round(rng.normal(0, 40, size=wshape)), -127, 127).astype(np.int8)
    w_scale = rng.uniform(0.002, 0.02, size=shape.out_c)
    y_scale = float(x.scale * w_scale.mean() * 74 * np.sqrt(k))  # outputs spread over about +-40 codes
    oh, ow = _out_hw(shape)
    y = QTensor("y", (shape.out_c,) if fc else (oh, ow, shape.out_c), y_scale, int(rng.integers(-20, 20)))
    arrays = {"weights": weights, "bias": rng.integers(-2000, 2000, size=shape.out_c).astype(np.int32)}
    arrays.update(requant(x.scale * w_scale / y_scale))
    attrs: dict[str, Any] = {"act_min": shape.clamp[0], "act_max": shape.clamp[1]}
    if not fc:
        attrs.update({"kernel": list(shape.kernel), "stride": [shape.stride] * 2, "pads": [shape.pad] * 4})
    if depthwise:
        attrs["depth_multiplier"] = 1
    tensors = {"x": x, "y": y}
    layers = [Layer("layer", shape.op, ["x"], "y", attrs, arrays)]
    if shape.pool:
        tensors["z"] = QTensor("z", (oh // 2, ow // 2, shape.out_c), y.scale, y.zero_point)
        pool = {"kernel": [2, 2], "stride": [2, 2], "pads": [0, 0, 0, 0], "act_min": -128, "act_max": 127}
        layers.append(Layer("pool", "max_pool", ["y"], "z", pool, {}))
    return IntGraph(tensors, layers, "x", layers[-1].output)


def mps2_target() -> TargetConfig:
    return TargetConfig(**yaml.safe_load((ROOT / "conf" / "target" / "mps2_an500.yaml").read_text()))


def measure(name: str, shape: Shape, workdir: Path) -> dict[str, Any]:
    """Generate, build and run ``shape``'s layer in QEMU; its kernel, instructions and bit-exactness."""
    graph = layer_graph(shape)
    generated = generate(graph, workdir / "src")
    build_firmware(workdir / "src", workdir / "fw", mps2_target())
    images = np.random.default_rng(1).integers(-128, 128, size=(IMAGES, *shape.hwc)).astype(np.int8)
    out = qemu.run_images(workdir / "fw" / "firmware.elf", images, graph.output_tensor.size, len(generated.steps))
    want = run_golden(graph, images).reshape(IMAGES, -1)
    (step,) = generated.steps
    instructions = float(out.layer_ticks[0]) * 40 / IMAGES
    return {
        "kernel": step.kernel,
        "reason": step.reason,
        "macs": step.macs,
        "instructions": instructions,
        "instructions_per_mac": instructions / step.macs,
        "bit_exact": bool(np.array_equal(out.logits, want)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated, of {', '.join(SHAPES)}")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.shapes.split(",")) - set(SHAPES))
    if unknown:
        parser.error(f"unknown shapes {unknown}: pick from {', '.join(SHAPES)}")
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    for name in args.shapes.split(","):
        with tempfile.TemporaryDirectory(prefix="mk-bench-") as tmp:
            results[name] = record = measure(name, SHAPES[name], Path(tmp))
        log(
            f"{name}: {record['kernel']} {record['instructions_per_mac']:.3f} instructions/MAC, "
            f"bit-exact {record['bit_exact']}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
