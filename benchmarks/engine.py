"""Engine benchmarks (issue 2), through ``malak-run``, as JSON.

1. Cold run vs fully cached rerun of the default pipeline (``malak-run`` with no arguments),
   and the CLI's own overhead on the cached run: its CPU time minus the interpreter and import
   start-up (a process that only loads hydra, the malak-run entry point and the stage plugins;
   the engine modules the CLI imports when it runs count as overhead). The phases are CPU-time
   differences of CLI runs that stop earlier: ``--cfg job`` (compose) against loading the CLI,
   ``run.plan=true`` (stage imports, validation, the plan against the cache) against
   ``--cfg job``, and the cached run against ``run.plan=true``.
2. Training throughput of the train node (its ``train_seconds``: wall time in training steps,
   validation excluded) against a plain hand-written PyTorch loop on the same model, data,
   batch size and thread count, timed the same way (target ratio >= 0.95).
3. One epoch of SimpleCNN on Fashion-MNIST through the train node (seconds, samples/s, test
   top-1), next to the plain loop over the same epoch.

    python benchmarks/engine.py --out benchmarks/results/engine.json [--skip-fmnist]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from malak_cli import malak_run, nodes, timed, write_report

# what every malak-run process loads before it does anything (found through the entry points)
LOAD_CLI = (
    "import hydra; from importlib.metadata import entry_points as found; "
    "found(group='console_scripts')['malak-run'].load()"
)
LOAD_STAGES = "[p.load() for p in found(group='malak_pipe.stages')]"
# one epoch of SimpleCNN, Adam 1e-3, batch 64, no schedule: the train node the throughput runs time
TRAIN_ONE_EPOCH = [
    "+experiment=smoke",
    "data=fashion_mnist",
    "stage.train.epochs=1",
    "stage.train.batch_size=64",
    "stage.train.optimizer=adam",
    "stage.train.lr=0.001",
    "stage.train.schedule=none",
    "cache.enabled=false",
]
BATCH, LR = 64, 1e-3


def bench_cache(args: list[str]) -> dict:
    """Cold, cached, start-up and the cached run's phases, all through the CLI."""
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        cache = cwd / "cache"
        cold = malak_run(args, cwd, cwd / "cold", cache_dir=cache)
        cached = [malak_run(args, cwd, cwd / f"cached-{n}", cache_dir=cache) for n in range(3)]
        planned = [malak_run([*args, "run.plan=true"], cwd, cwd / f"plan-{n}", cache_dir=cache) for n in range(3)]
        composed = [malak_run(["--cfg", "job", *args], cwd, cwd / f"cfg-{n}", cache_dir=cache) for n in range(3)]
        startup = [timed([sys.executable, "-c", f"{LOAD_CLI}; {LOAD_STAGES}"], cwd)[1] for _ in range(3)]
        cli_only = [timed([sys.executable, "-c", LOAD_CLI], cwd)[1] for _ in range(3)]
    best_cached = min(cached, key=lambda run: run.cpu_s)
    start_cpu, cli_cpu = min(startup), min(cli_only)
    compose_cpu, plan_cpu = (min(run.cpu_s for run in runs) for runs in (composed, planned))
    return {
        "pipeline_args": args,
        "cold_s": round(cold.wall_s, 3),
        "cold_cpu_s": round(cold.cpu_s, 3),
        "cached_s": round(best_cached.wall_s, 3),
        "cached_cpu_s": round(best_cached.cpu_s, 3),
        "cached_over_cold": round(best_cached.wall_s / cold.wall_s, 4),
        "startup_cpu_s": round(start_cpu, 3),
        "cli_overhead_cached_cpu_s": round(best_cached.cpu_s - start_cpu, 3),
        "phases_of_cached_run": {
            "method": "best-of-3 CPU seconds: --cfg job minus loading the CLI, run.plan=true (stage imports "
            "included) minus --cfg job, the cached run minus run.plan=true",
            "compose_cpu_s": round(compose_cpu - cli_cpu, 3),
            "validate_cpu_s": round(plan_cpu - compose_cpu, 3),
            "runner_execute_cpu_s": round(best_cached.cpu_s - plan_cpu, 3),
        },
        "targets": {"cached_over_cold_max": 0.05, "runner_overhead_cached_s_max": 0.5},
    }


def plain_loop_seconds(max_train: int | None, threads: int, seed: int = 0) -> tuple[float, int]:
    """Wall seconds of one epoch of a hand-written Adam loop on SimpleCNN, and the images it saw."""
    import torch

    from malak_pipe.data import DataConfig, load_dataset
    from malak_pipe.models import ModelConfig, build_model

    torch.set_num_threads(threads)
    data = load_dataset(DataConfig(name="fashion_mnist", max_train=max_train, max_val=256))
    x, y = data.train.x, data.train.y
    torch.manual_seed(seed)
    model = build_model(ModelConfig(name="simple_cnn", in_channels=1, num_classes=10, image_size=28))
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    started = time.perf_counter()
    order = torch.randperm(len(x))
    for start in range(0, len(x), BATCH):
        index = order[start : start + BATCH]
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x[index]), y[index]).backward()
        optimizer.step()
    return time.perf_counter() - started, len(x)


def train_node(overrides: list[str], threads: int) -> dict[str, Any]:
    """The train node of one ``malak-run`` of TRAIN_ONE_EPOCH (+ ``overrides``), in a fresh directory."""
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        run = malak_run([*TRAIN_ONE_EPOCH, f"stage.train.num_threads={threads}", *overrides], cwd, cwd / "run")
        return nodes(run.path)["train"]


def bench_throughput(max_train: int, threads: int, rounds: int = 2) -> dict:
    """The train node against the plain loop, interleaved, best of each (load hits both alike)."""
    plain_times, fit_times, n_train = [], [], 0
    for _ in range(rounds):
        seconds, n_train = plain_loop_seconds(max_train, threads)
        plain_times.append(seconds)
        node = train_node([f"data.max_train={max_train}", "data.max_val=256"], threads)
        fit_times.append(node["metrics"]["train_seconds"])
    plain, ours = min(plain_times), min(fit_times)
    return {
        "dataset": "fashion_mnist",
        "n_train": n_train,
        "threads": threads,
        "clock": "wall time of the training steps: the train node's train_seconds, the same span of the plain loop",
        "plain_loop_s": round(plain, 3),
        "fit_s": round(ours, 3),
        "plain_samples_per_s": round(n_train / plain, 1),
        "fit_samples_per_s": round(n_train / ours, 1),
        "throughput_ratio": round(plain / ours, 4),
        "rounds": rounds,
        "plain_all_s": [round(t, 3) for t in plain_times],
        "fit_all_s": [round(t, 3) for t in fit_times],
        "target_ratio_min": 0.95,
    }


def bench_fmnist_epoch(threads: int) -> dict:
    """One full Fashion-MNIST epoch through the train node, and the plain loop over the same split."""
    node = train_node([], threads)
    plain, n_train = plain_loop_seconds(None, threads)
    return {
        "n_train": n_train,
        "threads": threads,
        "epoch_train_s": round(node["metrics"]["train_seconds"], 2),
        "epoch_wall_s_with_val": round(node["duration_s"], 2),
        "samples_per_second": round(node["metrics"]["samples_per_second"], 1),
        "test_top1_after_1_epoch": round(node["metrics"]["test_top1"], 4),
        "reference_plain_loop_s": round(plain, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--skip-fmnist", action="store_true", help="skip the full Fashion-MNIST epoch")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the training runs")
    parser.add_argument("--max-train", type=int, default=20000, help="train images of the throughput runs")
    parser.add_argument("--extra", nargs="*", default=[], help="overrides of the cache runs (default: none)")
    args = parser.parse_args()
    report: dict = {"load_average_at_start": os.getloadavg(), "cache": bench_cache(args.extra)}
    report["throughput"] = bench_throughput(args.max_train, args.threads)
    if not args.skip_fmnist:
        report["fmnist_epoch"] = bench_fmnist_epoch(args.threads)
    report["load_average_at_end"] = os.getloadavg()
    write_report(args.out, report)


if __name__ == "__main__":
    main()
