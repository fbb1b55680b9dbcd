"""Compression benchmark of SimpleCNN on Fashion-MNIST (Malak Table V), through ``malak-run``, as JSON.

    python benchmarks/compression.py --out benchmarks/results/compression.json --seeds 0 1 2
    python benchmarks/compression.py --out /tmp/small.json --seeds 0 --epochs 2 --extra data.max_train=5000

It runs ``malak-run -m +experiment=compression_bench seed=...`` (the simplecnn_fmnist
experiment plus the nodes these figures need: the magnitude prune before fine-tuning, a
half-width student from scratch and distilled with two alphas, batch-1 latency) and reads every
figure from the jobs' results.json and result.json files. Per seed: the FP32 baseline, static
INT8 PTQ, QAT, magnitude and structured pruning, dynamic PTQ, the pipeline's prune -> distill
node and KD into the half-width student, against the same student from scratch (the KD alpha
with the better val top-1 is kept; test is never used to choose). Then mean/std over seeds
and the targets:

    FP32 test top-1 >= 92.2%          static INT8: compression >= 3.9x, drop <= 0.3 pp
    QAT drop <= 0.1 pp                magnitude 50%: drop <= 1 pp after fine-tuning
    structured 30%: params, size and batch-1 latency below FP32
    KD: the student gains over the same student from scratch

Figures follow the stages' definitions (docs/CONTRACTS.md): int8 ``size_bytes`` and
``compression_vs_input`` compare artifact files, float ones ``torch.save`` of the state.
``--cache-dir`` reuses a cache (nodes already computed are read back, marked cached); every
``seconds`` is the node's compute time, also when read back, and ``compute_seconds`` their sum
over the jobs (``seconds`` at the top is this invocation's wall time).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from malak_cli import input_nodes, job_dirs, malak_run, node_record, nodes, write_report

EXPERIMENT = "compression_bench"
SCRATCH, ONE_SHOT = "student_scratch", "prune_magnitude_one_shot"
# figure group in the JSON -> pipeline node
TECHNIQUES = {
    "fp32": "train",
    "ptq_dynamic": "ptq_dynamic",
    "ptq_static": "ptq_static",
    "qat": "qat",
    "prune_magnitude": "prune_magnitude",
    "prune_structured": "prune_structured",
    "prune_distill": "distill",
}
# what changed against the JSON of the benchmark that ran the techniques outside the engine
NOTES = {
    "payload_bytes": "reported by the int8 nodes only (ptq_static, qat, ptq_dynamic); float nodes report size_bytes",
    "merged_from_previous": "gone: --cache-dir reuses the nodes a previous run computed",
    "settings": "the compression_bench experiment's (simplecnn_fmnist): e.g. QAT and magnitude fine-tune 2 epochs",
}
CURVES = ("loss_curve", "val_curve", "sparsity_schedule", "sparsity_per_layer")
TARGETS = {
    "fp32.test_top1": (">=", 0.922),
    "ptq_static.compression_vs_input": (">=", 3.9),
    "ptq_static.payload_compression_vs_input": (">=", 3.9),
    "ptq_static.test_top1_drop_vs_input_pp": ("<=", 0.3),
    "qat.test_top1_drop_vs_input_pp": ("<=", 0.1),
    "prune_magnitude.test_top1_drop_vs_input_pp": ("<=", 1.0),
    "prune_structured.params_ratio": ("<", 1.0),
    "prune_structured.size_ratio": ("<", 1.0),
    "prune_structured.latency_ratio": ("<", 1.0),
    "distill.gain_over_scratch_pp": (">", 0.0),
}


def compute_seconds(job: Path, name: str) -> float:
    """How long node ``name`` took to compute, also when this run read it from the cache."""
    record = node_record(job, name)
    computed = record.get("computed_duration_s")
    return record["duration_s"] if computed is None else computed


def figures(job: Path, name: str, node: dict[str, Any]) -> dict[str, Any]:
    """A node's metrics without the long curves, with its status and compute time (``seconds``)."""
    kept = {key: value for key, value in node["metrics"].items() if key not in CURVES}
    return {**kept, "status": node["status"], "seconds": compute_seconds(job, name)}


def latencies(job: Path, results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """node -> batch-1 median latency (ms) measured by the profile nodes (the first one wins)."""
    found: dict[str, float] = {}
    for name, node in results.items():
        if node["stage"] != "profile":
            continue
        for slot, source in input_nodes(node_record(job, name)).items():
            timing = node["metrics"]["latency"].get(slot)
            if timing is not None:
                found.setdefault(source, timing["median_ms"])
    return found


def distill_figures(job: Path, results: dict[str, dict[str, Any]], latency: dict[str, float]) -> dict[str, Any]:
    """The KD student with the best val top-1 (first on ties) against the student from scratch."""
    kd = [name for name, node in results.items() if node["stage"] == "distill"]
    candidates = sorted(name for name in kd if results[name]["metrics"]["student_from"] == "scratch")
    configs = {name: node_record(job, name)["config"] for name in candidates}
    chosen = max(candidates, key=lambda name: results[name]["metrics"]["val_top1"])
    scratch, metrics = results[SCRATCH], results[chosen]["metrics"]
    return {
        **figures(job, chosen, results[chosen]),
        "node": chosen,
        "latency_ms_batch1": latency.get(chosen),
        "student_width_mult": configs[chosen]["student"]["width_mult"],
        "alpha": configs[chosen]["alpha"],
        "temperature": configs[chosen]["temperature"],
        "alpha_candidates": {
            str(configs[name]["alpha"]): {key: results[name]["metrics"][key] for key in ("val_top1", "test_top1")}
            for name in candidates
        },
        "scratch_val_top1": scratch["metrics"]["val_top1"],
        "scratch_test_top1": scratch["metrics"]["test_top1"],
        "gain_over_scratch_pp": (metrics["test_top1"] - scratch["metrics"]["test_top1"]) * 100.0,
        "val_gain_over_scratch_pp": (metrics["val_top1"] - scratch["metrics"]["val_top1"]) * 100.0,
        "scratch_seconds": compute_seconds(job, SCRATCH),
    }


def job_figures(job: Path) -> dict[str, Any]:
    """Every technique's figures of one seed's run."""
    results = nodes(job)
    latency = latencies(job, results)
    run: dict[str, Any] = {}
    for group, node in TECHNIQUES.items():
        run[group] = figures(job, node, results[node])
        run[group].setdefault("latency_ms_batch1", latency.get(node))
    run["prune_magnitude"]["test_top1_before_finetune"] = results[ONE_SHOT]["metrics"]["test_top1"]
    structured = run["prune_structured"]
    structured["size_ratio"] = structured["size_bytes"] / structured["input_size_bytes"]
    structured["latency_ratio"] = structured["latency_ms_batch1"] / structured["input_latency_ms_batch1"]
    run["distill"] = distill_figures(job, results, latency)
    return run


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean, std and n of every numeric figure over the seeds, keyed "technique.metric"."""
    values: dict[str, list[float]] = {}
    for run in runs:
        for technique, numbers in run.items():
            for name, value in numbers.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    values.setdefault(f"{technique}.{name}", []).append(float(value))
    return {
        key: {"mean": statistics.fmean(xs), "std": statistics.stdev(xs) if len(xs) > 1 else 0.0, "n": len(xs)}
        for key, xs in values.items()
    }


def check_targets(summary: dict[str, dict[str, float]]) -> dict[str, dict[str, Any]]:
    """Each target with the mean it is judged on and whether it is met."""
    compare = {">=": float.__ge__, "<=": float.__le__, "<": float.__lt__, ">": float.__gt__}
    out = {}
    for key, (op, bound) in TARGETS.items():
        mean = summary.get(key, {}).get("mean")
        out[key] = {"target": f"{op} {bound}", "mean": mean, "met": mean is not None and compare[op](mean, bound)}
    return out


def dataset_figures(job: Path) -> dict[str, Any]:
    """The data node's name, split sizes and input shape."""
    data = nodes(job)["data"]["metrics"]
    sizes = {"train": data["n_train"], "val": data["n_val"], "test": data["n_test"]}
    return {"name": data["dataset"], "sizes": sizes, "input_shape": data["input_shape"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="FP32 and student epochs (default: the experiment's)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="a cache to reuse (default: a fresh one)")
    parser.add_argument("--extra", nargs="*", default=[], help="more malak-run overrides, e.g. data.max_train=5000")
    args = parser.parse_args(argv)
    overrides = [f"+experiment={EXPERIMENT}", f"seed={','.join(map(str, args.seeds))}", *args.extra]
    if args.epochs is not None:
        overrides.append(f"stage.train.epochs={args.epochs}")
    with tempfile.TemporaryDirectory(prefix="malak-bench-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        sweep = malak_run(overrides, work, work / "sweep", multirun=True, cache_dir=args.cache_dir or work / "cache")
        jobs = job_dirs(sweep.path)
        runs = [job_figures(job) for job in jobs]
        summary = summarize(runs)
        report = {
            "benchmark": "compression",
            "arguments": {**vars(args), "out": str(args.out), "cache_dir": args.cache_dir and str(args.cache_dir)},
            "command": ["malak-run", "-m", *overrides],
            "dataset": dataset_figures(jobs[0]),
            "environment": node_record(jobs[0], "train")["environment"],
            "seconds": time.perf_counter() - started,
            "compute_seconds": sum(
                compute_seconds(job, name)
                for job in jobs
                for name, node in nodes(job).items()
                if node["status"] in ("ok", "cached")
            ),
            "runs": runs,
            "summary": summary,
            "targets": check_targets(summary),
            "notes": NOTES,
        }
    write_report(args.out, report)
    for key, target in report["targets"].items():
        print(f"{key}: {target['mean']} (target {target['target']}): {'met' if target['met'] else 'NOT met'}")


if __name__ == "__main__":
    main()
