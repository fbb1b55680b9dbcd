"""The "fits my MCU" search against its baselines, through the real CLI.

    python benchmarks/search.py --out benchmarks/results/search.json [--trials 40] [--seeds 0 1 2]
        [--samplers nsga2 tpe random]
        [--set data.max_train=4000 --set stage.train.epochs=2]   # a reduced size, same overrides everywhere

For each search seed, `malak-run -m +experiment=fits_mcu_fmnist` with each sampler of
`--samplers` (NSGA-II, TPE) and with random search, the same trial budget, 2 joblib workers, one
shared cache. `--merge` joins the reports of runs made separately (per seed or per sampler)
into one. Reported:
- the hypervolume of each search's feasible val front (val top-1 on target up, flash and
  instructions down, scaled by fixed bounds), and whether each sampler beat random on each seed;
- the pick's val and test top-1 on target, flash, RAM and instructions;
- the hand-chosen baseline: the widest uniformly width-scaled SimpleCNN (static PTQ, no
  pruning) whose firmware fits, run through the same experiment without the sweeper;
- the cache hit rate across trials (nodes taken from the cache / all nodes that ran or were
  cached), trials per hour and the wall time of each search.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from malak_cli import malak_run, nodes  # noqa: E402

from malak_pipe.search.front import TrialRecord, normalized_hypervolume  # noqa: E402
from malak_pipe.search.goals import parse_goals  # noqa: E402

EXPERIMENT = "fits_mcu_fmnist"
OBJECTIVES = [
    {"metric": "sim_run.top1", "direction": "maximize"},
    {"metric": "firmware_build.flash_bytes", "direction": "minimize"},
    {"metric": "sim_run.instructions_per_inference", "direction": "minimize"},
]
BOUNDS = [(0.0, 1.0), (0.0, 65536.0), (0.0, 10e6)]  # top-1; the 64 KB budget; 10 M instructions
WIDTHS = (1.0, 0.75, 0.5, 0.375, 0.25, 0.125)
BASELINE = ["stage.prune_structured.ratio=0.0", "pipeline.quantize_onnx.inputs.model_int8=ptq_static.model",
            "++pipeline.qat.enabled=false", "++pipeline.distill.enabled=false", "stage.sim_run.split=val"]


def search(work: Path, sampler: str, seed: int, trials: int, extra: list[str]) -> dict[str, Any]:
    sweep = work / f"{sampler}-{seed}"
    overrides = [
        f"+experiment={EXPERIMENT}", *extra, "hydra/launcher=local", f"hydra.sweeper.sampler={sampler}",
        f"hydra.sweeper.seed={seed}", f"hydra.sweeper.n_trials={trials}", f"hydra.sweeper.study_name={sampler}{seed}",
    ]
    run = malak_run(overrides, work, sweep, multirun=True, cache_dir=work / "cache", env={"MALAK_JOBS": "2"})
    summary = json.loads((sweep / "report" / "search.json").read_text())
    records = [TrialRecord(**t) for t in summary["trials"]]
    objectives, _ = parse_goals(OBJECTIVES, [])
    statuses = [r["status"] for t in records if t.run_dir for r in nodes(Path(t.run_dir)).values()
                if Path(t.run_dir, "results.json").exists()]
    ran = [s for s in statuses if s in ("ok", "cached")]
    pick = summary["pick"] or {}
    return {
        "sampler": sampler,
        "seed": seed,
        "trials": len(records),
        "states": summary["states"],
        "hypervolume": normalized_hypervolume(records, objectives, BOUNDS),
        "front_size": len(summary["front"]),
        "pick": {"params": pick.get("params"), "val_top1_on_target": (pick.get("values") or [None])[0],
                 **{k: v for k, v in pick.get("test", {}).items()}} if pick else None,
        "cache_hit_rate": sum(s == "cached" for s in ran) / len(ran) if ran else None,
        "wall_s": round(run.wall_s, 1),
        "trials_per_hour": round(len(records) / run.wall_s * 3600, 1),
    }


def hand_chosen(work: Path, extra: list[str]) -> dict[str, Any]:
    """The widest uniform width whose int8 firmware fits the budget (plain runs, widest first)."""
    tried = []
    for width in WIDTHS:
        path = work / f"width-{width}"
        try:
            malak_run([f"+experiment={EXPERIMENT}", *extra, f"model.width_mult={width}", *BASELINE], work, path,
                      cache_dir=work / "cache")
        except SystemExit:  # exit 1: the model does not fit (infeasible)
            tried.append({"width_mult": width, "fits": False})
            continue
        val = nodes(path)
        test_path = work / f"width-{width}-test"
        malak_run([f"+experiment={EXPERIMENT}", *extra, f"model.width_mult={width}", *BASELINE[:-1],
                   "stage.sim_run.split=test"], work, test_path, cache_dir=work / "cache")
        test = nodes(test_path)["sim_run"]["metrics"]
        figures = {"width_mult": width, "fits": True, "val_top1_on_target": val["sim_run"]["metrics"]["top1"],
                   "test_top1_on_target": test["top1"], "flash_bytes": val["firmware_build"]["metrics"]["flash_bytes"],
                   "ram_bytes": val["firmware_build"]["metrics"]["ram_bytes"],
                   "instructions_per_inference": test["instructions_per_inference"]}
        return {"chosen": figures, "tried": tried}
    return {"chosen": None, "tried": tried}


def beats_random(searches: list[dict[str, Any]]) -> dict[str, dict[str, bool]]:
    """Per sampler and seed: did its front's hypervolume beat random search's?"""
    hv = {(r["sampler"], r["seed"]): r["hypervolume"] for r in searches}
    return {
        sampler: {str(seed): hv[sampler, seed] > hv["random", seed] for (name, seed) in hv if name == sampler
                  and ("random", seed) in hv}
        for sampler in sorted({name for name, _ in hv} - {"random"})
    }


def merged(paths: list[Path]) -> dict[str, Any]:
    """One report of several runs' reports (the same experiment, trial budget and overrides)."""
    reports = [json.loads(p.read_text()) for p in paths]
    shape = {(r["experiment"], r["trials_per_search"], tuple(r["overrides"])) for r in reports}
    if len(shape) != 1:
        raise SystemExit(f"--merge: the reports differ in experiment, trial budget or overrides: {shape}")
    searches = [s for r in reports for s in r["searches"]]
    first = {k: v for k, v in reports[0].items() if k != "nsga2_beats_random"}  # the older reports' key
    return {**first, "searches": searches, "beats_random": beats_random(searches),
            "merged_from": [p.name for p in paths], "machine_load_1min": [r["machine_load_1min"] for r in reports]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--samplers", nargs="+", default=["nsga2", "random"], choices=["nsga2", "tpe", "random"])
    ap.add_argument("--work", type=Path, default=None, help="keep runs here (default: a temporary directory)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an override of every run")
    ap.add_argument("--merge", type=Path, nargs="+", default=None, help="join these reports into --out, run nothing")
    args = ap.parse_args()
    if args.merge:
        report = merged(args.merge)
    else:
        with tempfile.TemporaryDirectory(prefix="malak-search-") as tmp:
            work = (args.work or Path(tmp)).resolve()
            work.mkdir(parents=True, exist_ok=True)
            baseline = hand_chosen(work, args.set)
            searches = [search(work, sampler, seed, args.trials, args.set) for seed in args.seeds
                        for sampler in args.samplers]
        report = {
            "experiment": EXPERIMENT,
            "trials_per_search": args.trials,
            "overrides": args.set,
            "hypervolume_bounds": BOUNDS,
            "hand_chosen_uniform_width": baseline,
            "searches": searches,
            "beats_random": beats_random(searches),
            "machine_load_1min": os.getloadavg()[0],
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
