"""Sweep benchmark (issue 6): a 3-seed x 4-variant multirun of compress_demo with joblib,
with the shared cache and with the cache disabled: wall time, and how many train stages
actually ran (target: one per seed with the cache, since every variant shares its seed's
baseline).

    python benchmarks/sweep.py --out benchmarks/results/sweep.json [--extra debug=smoke]

The variants are four magnitude-pruning sparsities; only the prune_magnitude node differs
between the variants of one seed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
VARIANTS = "stage.prune_magnitude.sparsity=0.3,0.5,0.7,0.9"


def run_sweep(cwd: Path, cache_enabled: bool, extra: list[str], jobs: int) -> dict:
    env = dict(os.environ, MALAK_CACHE_DIR=str(cwd / "cache"), MALAK_JOBS=str(jobs), OMP_NUM_THREADS="1")
    args = [str(BIN / "malak-run"), "-m", "hydra/launcher=local", "experiment=compress_demo", "seed=0,1,2",
            VARIANTS, f"cache.enabled={str(cache_enabled).lower()}", *extra]
    t0 = time.perf_counter()
    out = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"sweep failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    statuses: dict[str, dict[str, int]] = {}
    for results in (cwd / "outputs" / "multirun").rglob("results.json"):
        for node, res in json.loads(results.read_text())["nodes"].items():
            counts = statuses.setdefault(node, {})
            counts[res["status"]] = counts.get(res["status"], 0) + 1
    return {"wall_s": round(wall, 1), "jobs": 12, "node_statuses": statuses,
            "train_stages_executed": statuses.get("train", {}).get("ok", 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--extra", nargs="*", default=[], help="more overrides, e.g. debug=smoke")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    report: dict = {"overrides": ["experiment=compress_demo", "seed=0,1,2", VARIANTS, *args.extra],
                    "launcher": f"joblib, {args.jobs} workers", "load_average_at_start": os.getloadavg()}
    for label, enabled in (("cache_on", True), ("cache_off", False)):
        with tempfile.TemporaryDirectory() as tmp:
            report[label] = run_sweep(Path(tmp), enabled, args.extra, args.jobs)
    report["speedup_from_cache"] = round(report["cache_off"]["wall_s"] / report["cache_on"]["wall_s"], 2)
    report["target_train_stages_with_cache"] = 3
    report["load_average_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
