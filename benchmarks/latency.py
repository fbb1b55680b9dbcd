"""CPU latency of FP32 and int8 variants of SimpleCNN (28x28x1) and MobileNetV2 (32x32x3), as JSON.

    python benchmarks/latency.py --out outputs/bench/latency.json [--runs 200] [--warmup 10]

Variants (batch 1, one thread, median of ``--runs`` calls after ``--warmup`` untimed calls):

- torch_fp32: the eager PyTorch model;
- torch_int8: the project's static PTQ model (torch.ao FX, x86 engine);
- ort_fp32: the ONNX export in ONNX Runtime;
- ort_int8: the portable QDQ file of ``quantize_onnx`` (int8 activations, per-channel weights);
- ort_int8_qop: its QOperator variant (QLinearConv..., uint8 activations x int8 weights).

Weights are random (latency does not depend on their values); calibration uses real-shaped
synthetic images. The output is ``{model: {variant: {median_ms, p90_ms, mean_ms, std_ms,
speedup_vs_torch_fp32}}}`` plus ``_meta`` (machine, load average, versions, the ratios
torch_int8/torch_fp32, ort_int8/ort_fp32 and best int8/torch_fp32). Timings are only as quiet as
the machine: the load average before and after is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

MODELS = {
    "simple_cnn": {"channels": 1, "image_size": 28},
    "mobilenet_v2": {"channels": 3, "image_size": 32},
}
INT8 = ("torch_int8", "ort_int8", "ort_int8_qop")


def build_variants(name: str, channels: int, image_size: int, workdir: Path) -> list:
    """The five variants of one architecture (random weights, synthetic calibration images)."""
    import torch

    from malak_pipe.compress import StaticPTQ, StaticPTQConfig
    from malak_pipe.data import DataConfig, load_dataset
    from malak_pipe.deploy.onnx_export import export_onnx
    from malak_pipe.deploy.onnx_quant import quantize_ort_static
    from malak_pipe.deploy.profiler import ModelVariant
    from malak_pipe.models import ModelConfig, build_model

    torch.manual_seed(0)
    data = load_dataset(
        DataConfig(name="synthetic", channels=channels, image_size=image_size, num_classes=10, n_train=512, n_test=64)
    )
    module = build_model(ModelConfig(name=name, in_channels=channels, num_classes=10, image_size=image_size)).eval()
    int8 = StaticPTQ(StaticPTQConfig(calibration_batches=8, calibration_batch_size=32)).quantize(module, data)
    fp32 = export_onnx(module, (channels, image_size, image_size), workdir / f"{name}.onnx")
    calibration = [b.numpy() for b in data.calibration_batches(8, 32)]
    quantize_ort_static(fp32, calibration, workdir / f"{name}_qdq.onnx", qoperator_path=workdir / f"{name}_qop.onnx")
    return [
        ModelVariant("torch_fp32", "torch", module),
        ModelVariant("torch_int8", "torch", int8, engine="x86"),
        ModelVariant("ort_fp32", "onnx", fp32.path),
        ModelVariant("ort_int8", "onnx", workdir / f"{name}_qdq.onnx"),
        ModelVariant("ort_int8_qop", "onnx", workdir / f"{name}_qop.onnx"),
    ]


def ratio(table: dict, slow: str, fast: str) -> float | None:
    if slow in table and fast in table and table[fast]["median_ms"] > 0:
        return table[slow]["median_ms"] / table[fast]["median_ms"]
    return None


def bench_model(name: str, spec: dict, runs: int, warmup: int, workdir: Path) -> tuple[dict, dict]:
    """{variant: stats} and the headline ratios of one architecture."""
    from malak_pipe.deploy.configs import ProfileConfig
    from malak_pipe.deploy.profiler import profile_variants

    variants = build_variants(name, spec["channels"], spec["image_size"], workdir)
    shape = (spec["channels"], spec["image_size"], spec["image_size"])
    rows = profile_variants(variants, shape, ProfileConfig(warmup=warmup, runs=runs))
    keys = ("median_ms", "p90_ms", "mean_ms", "std_ms", "speedup_vs_torch_fp32")
    table = {row.variant: {k: row.as_dict()[k] for k in keys} for row in rows if row.stats is not None}
    best = min((v for v in INT8 if v in table), key=lambda v: table[v]["median_ms"])
    ratios = {
        "torch_int8_vs_torch_fp32": ratio(table, "torch_fp32", "torch_int8"),
        "ort_int8_vs_ort_fp32": ratio(table, "ort_fp32", "ort_int8"),
        "ort_int8_qop_vs_ort_fp32": ratio(table, "ort_fp32", "ort_int8_qop"),
        "best_int8": best,
        "best_int8_vs_torch_fp32": ratio(table, "torch_fp32", best),
    }
    return table, ratios


def environment() -> dict:
    import onnxruntime
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    return {"cpu": cpu, "cores": os.cpu_count(), "python": sys.version.split()[0], "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "batch_size": 1, "threads": 1}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    result: dict = {}
    meta: dict = {**environment(), "runs": args.runs, "warmup": args.warmup, "load_avg_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="malak-bench-") as tmp:
        for name in args.models:
            result[name], meta[f"{name}_ratios"] = bench_model(name, MODELS[name], args.runs, args.warmup, Path(tmp))
    meta["load_avg_after"] = os.getloadavg()
    result["_meta"] = meta
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    for name in args.models:
        line = ", ".join(
            f"{v} {s['median_ms']:.3f} ms (x{s['speedup_vs_torch_fp32']:.2f})" for v, s in result[name].items()
        )
        print(f"{name}: {line}")
        print(f"  {meta[f'{name}_ratios']}")
    print(f"load average before {meta['load_avg_before']}, after {meta['load_avg_after']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
