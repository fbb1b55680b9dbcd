"""Firmware benchmark: what ``malak-run`` produces on the simulated Cortex-M7, read from its result files.

    .venv/bin/python benchmarks/firmware.py --out benchmarks/results/firmware.json
    .venv/bin/python benchmarks/firmware.py --out ... --models resnet18 --set stage.sim_run.num_images=50

Each model is one ``malak-run`` of an experiment of conf/experiment/ with overrides only:
SimpleCNN on Fashion-MNIST (``firmware_fmnist``: ONNX Runtime's static PTQ, all 10,000 test
images), MobileNetV2, ResNet-18 and EfficientNet-B0 at 32x32x3 at a width that fits the
STM32H743 (``firmware_zoo``: ONNX Runtime's static PTQ and the QAT model's own QDQ graph, each
on the target). Every figure (instructions per inference, per MAC and per layer, RAM,
flash, bit-exactness, on-target top-1, the golden reference's agreement with ONNX Runtime) is
read from the run's ``result.json`` files; nothing is computed here. Writes
{record: {instructions_per_inference, instructions_per_mac, ram_bytes, flash_bytes,
param_bytes, bit_exact_rate, top1, layers, ...}}; records of models not run this time are kept.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from malak_cli import malak_run, node_record, write_report

ROOT = Path(__file__).resolve().parents[1]
ZOO = ("+experiment=firmware_zoo",)


@dataclass(frozen=True)
class Bench:
    """One benchmarked model: the record name, the malak-run overrides, the routes to record."""

    key: str
    overrides: tuple[str, ...]
    routes: tuple[str, ...] = ("ort_static", "qat")


BENCHES = {
    "simple_cnn": Bench("simple_cnn_fashion_mnist", ("+experiment=firmware_fmnist",), ("ort_static",)),
    "mobilenet_v2": Bench("mobilenet_v2_w0.75_32x32x3", (*ZOO, "model=mobilenet_v2", "model.width_mult=0.75")),
    "resnet18": Bench("resnet18_w0.375_32x32x3", (*ZOO, "model=resnet18", "model.width_mult=0.375")),
    "efficientnet_b0": Bench("efficientnet_b0_w0.5_32x32x3", (*ZOO, "model=efficientnet_b0", "model.width_mult=0.5")),
}

# route -> the suffix of its nodes in the pipeline (conf/pipeline/firmware_routes.yaml)
NODE_SUFFIX = {"ort_static": "", "qat": "_qat"}
SIM_KEYS = (
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
    "golden_ort_agreement",
    "macs",
    "images",
    "stack_used_bytes",
    "sim_seconds",
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def node_result(run_dir: Path, node: str) -> dict[str, Any]:
    """The ``result.json`` of one node of a run; SystemExit when it did not end ok or cached."""
    result = node_record(run_dir, node)
    if result["status"] not in ("ok", "cached"):
        raise SystemExit(f"{run_dir / node}: {result['status']}: {result.get('error') or result.get('reason')}")
    return result


def route_record(run_dir: Path, route: str, command: list[str]) -> dict[str, Any]:
    """The benchmark record of one route of a run, every figure from its nodes' result files."""
    suffix = NODE_SUFFIX[route]
    sim = node_result(run_dir, f"sim_run{suffix}")
    build = node_result(run_dir, f"firmware_build{suffix}")
    codegen = node_result(run_dir, f"codegen{suffix}")
    target, metrics = build["config"]["target"], build["metrics"]
    mode = " -icount shift=0" if sim["config"]["icount"] else ""
    record = {key: sim["metrics"].get(key) for key in SIM_KEYS}
    record.update(
        {
            "route": route,
            "arena_bytes": metrics["arena_bytes"],
            "arena_lower_bound_bytes": codegen["metrics"]["arena_lower_bound_bytes"],
            "code_bytes": metrics["code_bytes"],
            "stack_bytes": metrics["stack_bytes"],
            "flash_over_params_bytes": sim["metrics"]["flash_bytes"] - sim["metrics"]["param_bytes"],
            "simulated_target": f"{target['name']} (qemu-system-arm -M {target['qemu_machine']}{mode})",
            "layers": sim["metrics"]["layers"],
            "command": "malak-run " + " ".join(command),
        }
    )
    if "deploy_target" in metrics:
        board = metrics["deploy_target"]
        record[f"{board}_flash_bytes"] = metrics["deploy_flash_bytes"]
        record[f"{board}_ram_bytes"] = metrics["deploy_ram_bytes"]
        record[f"{board}_fits"] = (
            metrics["deploy_flash_bytes"] <= metrics["deploy_flash_budget_bytes"]
            and metrics["deploy_ram_bytes"] <= metrics["deploy_ram_budget_bytes"]
        )
    return record


def run_bench(bench: Bench, workdir: Path, extra: list[str]) -> dict[str, dict[str, Any]]:
    """Run one model's experiment; its records (route ort_static under the bench's key)."""
    run_dir = workdir / "runs" / bench.key
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run directory; the cache keeps what was computed
    command = [*bench.overrides, *extra, "run.live=false"]
    log("malak-run " + " ".join(command))
    run = malak_run(command, ROOT, run_dir, cache_dir=workdir / "cache")
    log(f"{bench.key}: malak-run done in {run.wall_s:.0f} s ({run.cpu_s:.0f} CPU s)")
    return {
        bench.key + ("" if route == "ort_static" else f"_{route}"): route_record(run_dir, route, command)
        for route in bench.routes
    }


def summary(name: str, record: dict[str, Any]) -> str:
    ipi, ipm = record["instructions_per_inference"], record["instructions_per_mac"]
    return (
        f"{name}: {ipi:.0f} instructions ({ipm:.3f}/MAC), RAM {record['ram_bytes']} B, flash "
        f"{record['flash_bytes']} B (params {record['param_bytes']} B), bit-exact {record['bit_exact_rate']}, "
        f"top-1 {record['top1']:.4f} (golden {record['golden_top1']:.4f}, ORT {record['ort_top1']:.4f}, "
        f"golden vs ORT {record['golden_ort_agreement']:.4f})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--models", default=",".join(BENCHES), help=f"comma-separated, of {', '.join(BENCHES)}")
    parser.add_argument("--workdir", type=Path, default=ROOT / "outputs" / "bench-firmware")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an extra malak-run override")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.models.split(",")) - set(BENCHES))
    if unknown:
        parser.error(f"unknown models {unknown}: pick from {', '.join(BENCHES)}")
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    fresh: dict[str, dict[str, Any]] = {}
    for name in args.models.split(","):
        fresh.update(run_bench(BENCHES[name], args.workdir, args.set))
    results.update(fresh)
    write_report(args.out, results)
    for name, record in fresh.items():
        log(summary(name, record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
