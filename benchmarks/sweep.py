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
import os
import tempfile
from pathlib import Path

from malak_cli import job_dirs, malak_run, nodes, write_report

OVERRIDES = ["experiment=compress_demo", "seed=0,1,2", "stage.prune_magnitude.sparsity=0.3,0.5,0.7,0.9"]


def run_sweep(cwd: Path, cache_enabled: bool, extra: list[str], jobs: int) -> dict:
    """Wall time of the sweep and the status counts of every node over its jobs."""
    overrides = ["hydra/launcher=local", *OVERRIDES, f"cache.enabled={str(cache_enabled).lower()}", *extra]
    env = {"MALAK_JOBS": str(jobs), "OMP_NUM_THREADS": "1"}
    sweep = malak_run(overrides, cwd, cwd / "multirun", multirun=True, cache_dir=cwd / "cache", env=env)
    statuses: dict[str, dict[str, int]] = {}
    runs = job_dirs(sweep.path)
    for job in runs:
        for node, result in nodes(job).items():
            counts = statuses.setdefault(node, {})
            counts[result["status"]] = counts.get(result["status"], 0) + 1
    return {
        "wall_s": round(sweep.wall_s, 1),
        "jobs": len(runs),
        "node_statuses": statuses,
        "train_stages_executed": statuses.get("train", {}).get("ok", 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--extra", nargs="*", default=[], help="more overrides, e.g. debug=smoke")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    report: dict = {
        "overrides": [*OVERRIDES, *args.extra],
        "launcher": f"joblib, {args.jobs} workers",
        "load_average_at_start": os.getloadavg(),
    }
    for label, enabled in (("cache_on", True), ("cache_off", False)):
        with tempfile.TemporaryDirectory() as tmp:
            report[label] = run_sweep(Path(tmp), enabled, args.extra, args.jobs)
    report["speedup_from_cache"] = round(report["cache_off"]["wall_s"] / report["cache_on"]["wall_s"], 2)
    report["target_train_stages_with_cache"] = 3
    report["load_average_at_end"] = os.getloadavg()
    write_report(args.out, report)


if __name__ == "__main__":
    main()
