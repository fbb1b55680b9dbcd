"""Random-network sweep of the MCU path through ``malak-run``: generality measured, not assumed.

    .venv/bin/python benchmarks/random_nets.py --nets 200 --jobs 2 --out benchmarks/results/random_nets.json

Each seed draws an input shape (square images C x H x H, or 1-D signals C x L one time in four)
and a random network of the supported blocks for it (malak_pipe/models/random_net.py:
convolutions with random kernel/stride/padding/groups, depthwise, residual adds,
concatenations, squeeze-and-excitation blocks, every activation the lowering knows, pools,
padding, linear heads, odd channel counts and sizes), and runs it as a user's factory model
through the firmware pipeline of the engine, at smoke size on synthetic data of that shape:

    malak-run pipeline=firmware_routes model.name=factory model.factory=malak_pipe.models.random_net:build
        +model.kwargs.seed=S +model.kwargs.input_shape=[C,H,H] data=synthetic ... debug=smoke

that is train -> ONNX export -> ONNX Runtime's static PTQ (``sim_run``) and QAT -> its own QDQ
graph (``sim_run_qat``) -> lowering -> C -> firmware -> QEMU. A route passes when its
``sim_run`` node ends ok with every image bit-exact against the golden reference. Every figure
is read from the runs' result files: the pass rate (per route too), the golden reference's top-1
agreement with ONNX Runtime, instructions per MAC, and every failure with its net and the node's
error. All runs share one cache (what they have in common runs once).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from malak_cli import malak_run, nodes, write_report

ROOT = Path(__file__).resolve().parents[1]
ROUTES = {"sim_run": "ort_static", "sim_run_qat": "qat"}
CLASSES = 10
SIM_KEYS = ("bit_exact_rate", "golden_ort_agreement", "instructions_per_mac", "images")


def input_shape(seed: int) -> tuple[int, ...]:
    """The seed's input shape, as the generator draws it, made square (synthetic images are)."""
    from malak_pipe.models.random_net import draw_input_shape

    shape = draw_input_shape(np.random.default_rng(seed))
    return shape if len(shape) == 2 else (shape[0], shape[1], shape[1])


def overrides(seed: int, shape: tuple[int, ...]) -> list[str]:
    """The malak-run overrides of one random net (a factory model) on synthetic data of ``shape``."""
    data = ["data=synthetic", f"data.channels={shape[0]}", f"data.image_size={shape[1]}", f"data.num_classes={CLASSES}"]
    data += ["data.layout=ncl"] if len(shape) == 2 else []
    return [
        "pipeline=firmware_routes",
        "model.name=factory",
        "model.factory=malak_pipe.models.random_net:build",
        f"+model.kwargs.seed={seed}",
        f"+model.kwargs.input_shape=[{','.join(map(str, shape))}]",
        f"+model.kwargs.num_classes={CLASSES}",
        *data,
        "debug=smoke",
        "stage.codegen.host_check_images=0",  # QEMU checks the same C against the golden reference
        "run.live=false",
    ]


def route_result(record: dict[str, Any] | None) -> dict[str, Any]:
    """One route's outcome from its sim_run node (absent: an upstream node failed)."""
    if record is None:
        return {"passed": False, "status": "not run", "error": "an upstream node failed"}
    metrics = record.get("metrics") or {}
    passed = record["status"] in ("ok", "cached") and metrics.get("bit_exact_rate") == 1.0
    return {
        "passed": bool(passed),
        "status": record["status"],
        "error": record.get("error") or record.get("reason"),
        **{key: metrics.get(key) for key in SIM_KEYS},
    }


def first_failure(results: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The first node that did not end ok or cached: where a failing run stopped."""
    for name, record in results.items():
        if record["status"] not in ("ok", "cached"):
            return {"node": name, "status": record["status"], "error": record.get("error") or record.get("reason")}
    return None


def run_seed(seed: int, workdir: Path) -> dict[str, Any]:
    """One random net through the engine: its description, each route's outcome, the failing node."""
    from malak_pipe.models.random_net import describe

    shape = input_shape(seed)
    run_dir = workdir / "runs" / str(seed)
    run = malak_run(overrides(seed, shape), ROOT, run_dir, cache_dir=workdir / "cache", check=False)
    results = nodes(run_dir) if (run_dir / "results.json").exists() else {}
    net = {"seed": seed, "net": describe(seed, shape, CLASSES), "dims": len(shape) - 1, "exit_code": run.returncode}
    net["routes"] = {route: route_result(results.get(node)) for node, route in ROUTES.items()}
    net["failure"] = first_failure(results) or (None if results else {"node": "-", "error": run.stdout[-2000:]})
    net["wall_s"] = round(run.wall_s, 1)
    return net


def summarize(nets: list[dict[str, Any]]) -> dict[str, Any]:
    """Pass rates, agreement and instructions per MAC over the nets run so far."""
    runs = [(route, r) for net in nets for route, r in net["routes"].items()]
    passed = [r for _, r in runs if r["passed"]]
    by_route = {
        route: {"runs": sum(n == route for n, _ in runs), "passed": sum(n == route and r["passed"] for n, r in runs)}
        for route in ROUTES.values()
    }
    for entry in by_route.values():
        entry["pass_rate"] = entry["passed"] / entry["runs"] if entry["runs"] else float("nan")
    agreement = [r["golden_ort_agreement"] for r in passed if r["golden_ort_agreement"] is not None]
    per_mac = [r["instructions_per_mac"] for r in passed if r["instructions_per_mac"]]
    return {
        "nets": len(nets),
        "route_runs": len(runs),
        "pass_rate": len(passed) / len(runs) if runs else float("nan"),
        "nets_passing_both_routes": sum(all(r["passed"] for r in net["routes"].values()) for net in nets),
        "by_route": by_route,
        "one_d_nets": sum(net["dims"] == 1 for net in nets),
        "golden_ort_top1_agreement_mean": float(np.mean(agreement)) if agreement else float("nan"),
        "instructions_per_mac_median": float(np.median(per_mac)) if per_mac else float("nan"),
        "failures": [
            {"seed": net["seed"], "net": net["net"], **(net["failure"] or {}), "routes": net["routes"]}
            for net in nets
            if not all(r["passed"] for r in net["routes"].values())
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", type=int, default=200)
    parser.add_argument("--start", type=int, default=1000, help="first seed (the unit tests use small seeds)")
    parser.add_argument("--jobs", type=int, default=2, help="malak-run processes at once")
    parser.add_argument("--workdir", type=Path, default=ROOT / "outputs" / "bench-random-nets")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "random_nets.json")
    args = parser.parse_args(argv)
    seeds = list(range(args.start, args.start + args.nets))
    started = time.monotonic()
    nets: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # threads: each job is a malak-run subprocess
        for net in pool.map(lambda seed: run_seed(seed, args.workdir), seeds):
            nets.append(net)
            status = " ".join(f"{route}:{'ok' if r['passed'] else 'FAIL'}" for route, r in net["routes"].items())
            print(f"[{time.monotonic() - started:7.0f} s] seed {net['seed']}: {status}", file=sys.stderr, flush=True)
            if len(nets) % 10 == 0 or len(nets) == len(seeds):
                record = {"summary": summarize(nets), "seconds": round(time.monotonic() - started), "nets": nets}
                write_report(args.out, record)
    summary = summarize(nets)
    print(json.dumps({k: v for k, v in summary.items() if k != "failures"}, indent=1))
    print(f"{len(summary['failures'])} nets failing a route; details in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
