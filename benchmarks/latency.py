"""CPU latency of FP32 and int8 SimpleCNN (28x28x1) and MobileNetV2 (32x32x3), through ``malak-run``, as JSON.

    python benchmarks/latency.py --out benchmarks/results/latency.json [--runs 200] [--warmup 10]
    python benchmarks/latency.py --out /tmp/small.json --extra stage.train.epochs=1 stage.train.max_batches_per_epoch=5

Each model is one ``malak-run +experiment=...`` (``latency`` for SimpleCNN on Fashion-MNIST,
``latency_mobilenet_v2`` at 32x32x3), in a fresh cache so every timing is measured now; the
figures are the profile node's (batch 1, one thread, median of ``--runs`` calls after
``--warmup`` untimed calls, interleaved rounds):

- torch_fp32: the eager PyTorch model;
- torch_int8: the ptq_static model (torch.ao FX, x86 engine);
- ort_fp32: the export_onnx file in ONNX Runtime;
- ort_int8: the portable QDQ file of quantize_onnx (int8 activations, per-channel weights);
- ort_int8_qop: its QOperator variant (QLinearConv..., uint8 activations x int8 weights).

The output is ``{model: {variant: {median_ms, p90_ms, mean_ms, std_ms, speedup_vs_torch_fp32}}}``
plus ``_meta`` (machine, load average, versions, the commands, the ratios torch_int8/torch_fp32,
ort_int8/ort_fp32 and best int8/torch_fp32). Timings are only as quiet as the machine: the load
average before and after is recorded.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from malak_cli import malak_run, node_record, nodes, write_report

EXPERIMENTS = {"simple_cnn": "latency", "mobilenet_v2": "latency_mobilenet_v2"}
PROFILE = "profile"
# the profile node's input name -> the variant name of this benchmark's JSON
VARIANTS = {
    "torch_fp32": "torch_fp32",
    "torch_int8": "torch_int8",
    "onnx_fp32": "ort_fp32",
    "onnx_int8": "ort_int8",
    "onnx_int8_qop": "ort_int8_qop",
}
INT8 = ("torch_int8", "ort_int8", "ort_int8_qop")
KEYS = ("median_ms", "p90_ms", "mean_ms", "std_ms", "speedup_vs_torch_fp32")


def ratio(table: dict, slow: str, fast: str) -> float | None:
    if slow in table and fast in table and table[fast]["median_ms"] > 0:
        return table[slow]["median_ms"] / table[fast]["median_ms"]
    return None


def bench_model(experiment: str, overrides: list[str], workdir: Path) -> tuple[dict, dict, dict]:
    """{variant: stats}, the headline ratios and the profile node's record, of one experiment."""
    overrides = [f"+experiment={experiment}", *overrides]
    run = malak_run(overrides, workdir, workdir / experiment, cache_dir=workdir / "cache")
    latency = nodes(run.path)[PROFILE]["metrics"]["latency"]
    table = {VARIANTS[slot]: {key: stats[key] for key in KEYS} for slot, stats in latency.items() if slot in VARIANTS}
    best = min((v for v in INT8 if v in table), key=lambda v: table[v]["median_ms"])
    ratios = {
        "torch_int8_vs_torch_fp32": ratio(table, "torch_fp32", "torch_int8"),
        "ort_int8_vs_ort_fp32": ratio(table, "ort_fp32", "ort_int8"),
        "ort_int8_qop_vs_ort_fp32": ratio(table, "ort_fp32", "ort_int8_qop"),
        "best_int8": best,
        "best_int8_vs_torch_fp32": ratio(table, "torch_fp32", best),
    }
    return table, ratios, node_record(run.path, PROFILE)


def environment(record: dict) -> dict:
    """The machine and versions the profile node recorded, and its setting."""
    env, metrics = record["environment"], record["metrics"]
    return {
        "cpu": env["cpu"],
        "cores": env["cpu_count"],
        "python": env["python"],
        "torch": env["torch"],
        "onnxruntime": env["onnxruntime"],
        "batch_size": metrics["batch_size"],
        "threads": metrics["threads"],
        "runs": metrics["runs"],
        "warmup": metrics["warmup"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--runs", type=int, default=None, help="timed calls (default: the experiment's, 200)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed calls first (default: the experiment's, 10)")
    parser.add_argument("--models", nargs="*", default=list(EXPERIMENTS), choices=list(EXPERIMENTS))
    parser.add_argument("--extra", nargs="*", default=[], help="more malak-run overrides, e.g. stage.train.epochs=1")
    args = parser.parse_args(argv)
    settings = {"runs": args.runs, "warmup": args.warmup}
    overrides = [f"stage.profile.{key}={value}" for key, value in settings.items() if value is not None] + args.extra
    result: dict = {}
    meta: dict = {"load_avg_before": os.getloadavg(), "commands": {}}
    with tempfile.TemporaryDirectory(prefix="malak-bench-") as tmp:
        for name in args.models:
            experiment = EXPERIMENTS[name]
            result[name], meta[f"{name}_ratios"], record = bench_model(experiment, overrides, Path(tmp))
            meta["commands"][name] = ["malak-run", f"+experiment={experiment}", *overrides]
            meta.update(environment(record))
    meta["load_avg_after"] = os.getloadavg()
    result["_meta"] = meta
    write_report(args.out, result)
    for name in args.models:
        line = ", ".join(
            f"{v} {s['median_ms']:.3f} ms (x{s['speedup_vs_torch_fp32']:.2f})" for v, s in result[name].items()
        )
        print(f"{name}: {line}")
        print(f"  {meta[f'{name}_ratios']}")
    print(f"load average before {meta['load_avg_before']}, after {meta['load_avg_after']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
