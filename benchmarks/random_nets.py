"""Random-network sweep of the MCU path: generality measured, not assumed.

    .venv/bin/python benchmarks/random_nets.py --nets 200 --out benchmarks/results/random_nets.json

Each seed draws a random network of the supported blocks (tests/helpers/mcu_random_nets.py:
convolutions with random kernel/stride/padding/groups, depthwise, residual adds, concatenations,
squeeze-and-excitation blocks, every activation the lowering knows, pools, padding, linear heads,
odd channel counts and spatial sizes, 1-D networks), gives it well-spread activations, and runs
it through both quantization routes (tests/helpers/mcu_pipeline.py): ONNX Runtime static
quantization (int8 activations on even seeds, uint8 on odd ones) and the project's torch int8
export (static PTQ or QAT, alternating) -> lowering -> golden reference vs ONNX Runtime ->
generated C built for the host. A route passes when it lowers, every layer run on ONNX
Runtime's own int8 inputs is within one step of ONNX Runtime, and the host C equals the golden
reference on every input. Writes the pass rate (per route too), the top-1 agreement with ONNX
Runtime (all inputs, and the decisive ones whose top two outputs differ by two steps or more)
and every failure with the network that caused it. Every figure is measured by this script.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CALIBRATION_IMAGES = 96
TEST_IMAGES = 64


def routes_of(seed: int) -> tuple[str, str]:
    """The ONNX Runtime route and the torch int8 route of a seed."""
    return ("ort_int8" if seed % 2 == 0 else "ort_uint8"), ("ptq" if seed % 4 in (0, 1) else "qat")


def run_seed(seed: int) -> dict:
    """One random network through both routes: its description and each route's result."""
    from tests.helpers.mcu_pipeline import run_route
    from tests.helpers.mcu_random_nets import calibrate_net, random_net

    module, spec = random_net(seed)
    rng = np.random.default_rng(seed)
    calibration = rng.normal(size=(CALIBRATION_IMAGES, *spec.input_shape)).astype(np.float32)
    calibrate_net(module, calibration)
    x = rng.normal(size=(TEST_IMAGES, *spec.input_shape)).astype(np.float32)
    results = [run_route(module, route, calibration, x).as_dict() for route in routes_of(seed)]
    for result in results:
        result["passed"] = bool(
            result["ok"] and result["host_bit_exact"] == 1.0 and result["layer_max_lsb"] <= 1.0
        )
    return {"seed": seed, "net": spec.describe(), "dims": spec.dims, "routes": results}


def summarize(nets: list[dict]) -> dict:
    routes = [r for net in nets for r in net["routes"]]
    passed = [r for r in routes if r["passed"]]
    by_route: dict[str, dict] = {}
    for r in routes:
        entry = by_route.setdefault(r["route"], {"runs": 0, "passed": 0})
        entry["runs"] += 1
        entry["passed"] += int(r["passed"])
    for entry in by_route.values():
        entry["pass_rate"] = entry["passed"] / entry["runs"]
    images = sum(r["images"] for r in passed)
    agreeing = sum(r["agreement"] * r["images"] for r in passed)
    decisive = sum(r["decisive_images"] for r in passed)
    decisive_agreeing = sum(r["decisive_agreement"] * r["decisive_images"] for r in passed if r["decisive_images"])
    return {
        "nets": len(nets),
        "route_runs": len(routes),
        "pass_rate": len(passed) / len(routes) if routes else float("nan"),
        "nets_passing_both_routes": sum(all(r["passed"] for r in net["routes"]) for net in nets),
        "by_route": by_route,
        "one_d_nets": sum(net["dims"] == 1 for net in nets),
        "ort_top1_agreement": agreeing / images if images else float("nan"),
        "ort_top1_agreement_decisive": decisive_agreeing / decisive if decisive else float("nan"),
        "images_per_route": TEST_IMAGES,
        "max_layer_lsb": max((r["layer_max_lsb"] for r in passed), default=float("nan")),
        "max_end_to_end_lsb": max((r["max_abs_lsb"] for r in passed), default=float("nan")),
        "failures": [
            {"seed": net["seed"], "net": net["net"], "route": r["route"], "stage": r["stage"], "error": r["error"]}
            for net in nets
            for r in net["routes"]
            if not r["passed"]
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", type=int, default=200)
    parser.add_argument("--start", type=int, default=1000, help="first seed (the unit tests use small seeds)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "random_nets.json")
    args = parser.parse_args()
    seeds = list(range(args.start, args.start + args.nets))
    started = time.monotonic()
    nets: list[dict] = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for net in pool.map(run_seed, seeds):
            nets.append(net)
            status = " ".join(f"{r['route']}:{'ok' if r['passed'] else 'FAIL ' + r['stage']}" for r in net["routes"])
            print(f"[{time.monotonic() - started:7.0f} s] seed {net['seed']}: {status}", file=sys.stderr, flush=True)
            if len(nets) % 10 == 0 or len(nets) == len(seeds):
                record = {"summary": summarize(nets), "seconds": round(time.monotonic() - started), "nets": nets}
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(record, indent=1))
    summary = summarize(nets)
    print(json.dumps({k: v for k, v in summary.items() if k != "failures"}, indent=1))
    print(f"{len(summary['failures'])} failing route runs; details in {args.out}")


if __name__ == "__main__":
    main()
