"""Firmware benchmark: SimpleCNN on Fashion-MNIST and MobileNetV2 at 32x32x3 on the simulated Cortex-M7.

    .venv/bin/python benchmarks/firmware.py --out benchmarks/results/firmware.json

For each model: train (SimpleCNN: a few epochs on Fashion-MNIST; MobileNetV2: on the synthetic
32x32x3 dataset, random-ish weights are enough for instruction counts), quantize with ONNX
Runtime (QDQ, per-channel int8 weights, int8 activations), lower to the integer graph,
generate C, build for mps2-an500 (run in QEMU with -icount shift=0: exact instruction counts)
and for stm32h743 (the budget check), run the test images on the simulated MCU and compare
with the golden reference and ONNX Runtime. Writes
{model: {instructions_per_inference, instructions_per_mac, ram_bytes, flash_bytes, param_bytes,
bit_exact_rate, top1, layers, ...}}. Every number is measured by this script; nothing is copied.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_target(name: str):
    from malak_pipe.mcu.target import TargetConfig

    return TargetConfig(**yaml.safe_load((ROOT / "conf" / "target" / f"{name}.yaml").read_text()))


def train_and_quantize(
    model_cfg: dict, data_cfg: dict, epochs: int, workdir: Path, seed: int = 0
) -> tuple[Path, object]:
    """A trained model exported to QDQ int8 (cached in workdir by its settings)."""
    import torch

    from malak_pipe.data.config import DataConfig
    from malak_pipe.data.load import load_dataset
    from malak_pipe.models import build_model
    from malak_pipe.models.config import ModelConfig
    from tests.helpers.mcu_models import export_qdq, train

    dataset = load_dataset(DataConfig(**data_cfg))
    key = f"{model_cfg['name']}_w{model_cfg.get('width_mult', 1.0)}_{data_cfg['name']}_e{epochs}_s{seed}"
    path = workdir / f"{key}.onnx"
    if path.exists():
        log(f"reusing {path}")
        return path, dataset
    torch.manual_seed(seed)
    built = build_model(ModelConfig(**model_cfg))
    module = built.module if hasattr(built, "module") else built
    x, y = dataset.train.x.numpy(), dataset.train.y.numpy()
    started = time.monotonic()
    if epochs:
        train(module, x, y, epochs=epochs, seed=seed)
    log(f"trained {key} in {time.monotonic() - started:.0f} s")
    rng = np.random.default_rng(seed)
    calibration = x[rng.choice(len(x), size=min(512, len(x)), replace=False)]
    export_qdq(module.eval(), calibration, path, "int8")
    return path, dataset


def bench(name: str, onnx_path: Path, dataset, images: int | None, workdir: Path, budget_target: str) -> dict:
    """Generate, build and run one model; the benchmark record."""
    from malak_pipe.mcu.build import BuildOptions, build_firmware
    from malak_pipe.mcu.codegen import generate
    from malak_pipe.mcu.lower import lower_onnx
    from malak_pipe.mcu.simulate import SimSettings, evaluate_firmware

    graph = lower_onnx(onnx_path)
    sources = workdir / name / "sources"
    generated = generate(graph, sources)
    options = BuildOptions(stack_bytes=2048)
    budget = build_firmware(sources, workdir / name / f"firmware_{budget_target}", load_target(budget_target), options)
    build_firmware(sources, workdir / name / "firmware_mps2_an500", load_target("mps2_an500"), options)
    x, y = dataset.test.x.numpy(), dataset.test.y.numpy()
    if images:
        x, y = x[:images], y[:images]
    log(f"{name}: {len(x)} images through QEMU (icount), {generated.macs} MACs per inference")
    started = time.monotonic()
    metrics, report = evaluate_firmware(
        workdir / name / "firmware_mps2_an500",
        sources,
        x,
        y,
        SimSettings(timeout_per_image_s=2.0),
        onnx_path=onnx_path,
        progress=None,
    )
    log(f"{name}: done in {time.monotonic() - started:.0f} s")
    keys = (
        "instructions_per_inference",
        "instructions_per_mac",
        "ram_bytes",
        "flash_bytes",
        "param_bytes",
        "bit_exact_rate",
        "top1",
        "golden_top1",
        "ort_top1",
        "ort_agreement",
        "macs",
        "images",
        "stack_used_bytes",
        "sim_seconds",
    )
    record = {key: metrics.get(key) for key in keys}
    memory = report["memory"]
    record.update(
        {
            "arena_bytes": memory["arena_bytes"],
            "arena_lower_bound_bytes": memory["arena_lower_bound_bytes"],
            "code_bytes": memory["code_bytes"],
            "stack_bytes": memory["stack_bytes"],
            "flash_over_params_bytes": memory["flash_bytes"] - memory["param_bytes"],
            "simulated_target": "mps2_an500 (qemu-system-arm -M mps2-an500 -icount shift=0)",
            f"{budget_target}_flash_bytes": budget["flash_bytes"],
            f"{budget_target}_ram_bytes": budget["ram_bytes"],
            f"{budget_target}_fits": True,
            "layers": report["layers"],
        }
    )
    return record


def models_run(results: dict, models: list[str]) -> list[str]:
    """The result keys of the models of this invocation."""
    return [key for key in results if any(key.startswith(m) for m in models)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--models", default="simple_cnn,mobilenet_v2")
    parser.add_argument("--workdir", type=Path, default=ROOT / "outputs" / "bench-firmware")
    parser.add_argument("--epochs", type=int, default=2, help="SimpleCNN training epochs on Fashion-MNIST")
    parser.add_argument("--images", type=int, default=0, help="SimpleCNN test images (0: all 10000)")
    parser.add_argument("--mbv2-width", type=float, default=0.75)
    parser.add_argument("--mbv2-epochs", type=int, default=8, help="MobileNetV2 epochs on synthetic 32x32x3 data")
    parser.add_argument("--mbv2-images", type=int, default=200, help="MobileNetV2 test images (synthetic has 200)")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    import torch

    torch.set_num_threads(2)
    # records of models not run this time are kept, so one model can be re-measured alone
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    models = args.models.split(",")
    if "simple_cnn" in models:
        path, data = train_and_quantize(
            {"name": "simple_cnn", "in_channels": 1, "num_classes": 10, "image_size": 28},
            {"name": "fashion_mnist", "channels": 1, "image_size": 28, "num_classes": 10},
            args.epochs,
            args.workdir,
        )
        results["simple_cnn_fashion_mnist"] = bench(
            "simple_cnn", path, data, args.images or None, args.workdir, "stm32h743"
        )
    if "mobilenet_v2" in models:
        path, data = train_and_quantize(
            {
                "name": "mobilenet_v2",
                "in_channels": 3,
                "num_classes": 10,
                "image_size": 32,
                "width_mult": args.mbv2_width,
            },
            {"name": "synthetic", "channels": 3, "image_size": 32, "num_classes": 10, "n_train": 1000, "n_test": 200},
            args.mbv2_epochs,
            args.workdir,
        )
        key = f"mobilenet_v2_w{args.mbv2_width}_32x32x3"
        results[key] = bench(
            f"mobilenet_v2_w{args.mbv2_width}", path, data, args.mbv2_images, args.workdir, "stm32h743"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    for name in models_run(results, models):
        record = results[name]
        ipi, ipm = record["instructions_per_inference"], record["instructions_per_mac"]
        log(
            f"{name}: {ipi:.0f} instructions ({ipm:.3f}/MAC), "
            f"RAM {record['ram_bytes']} B, flash {record['flash_bytes']} B (params {record['param_bytes']} B), "
            f"bit-exact {record['bit_exact_rate']}, top-1 {record['top1']:.4f} (golden {record['golden_top1']:.4f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
