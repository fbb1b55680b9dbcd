"""Engine benchmarks (issue 2), written as JSON.

1. Cold run vs fully cached rerun of the default pipeline (`malak-run` with no arguments),
   and the runner's own overhead on the cached run: its wall time minus the interpreter and
   import start-up (a process that only imports the CLI and the stage modules).
2. Training throughput of malak_pipe.training.fit against a plain hand-written PyTorch loop
   on the same model, data, batch size and thread count (target ratio >= 0.95).
3. One epoch of SimpleCNN on Fashion-MNIST through fit (seconds, samples/s).

    python benchmarks/engine.py --out outputs/bench/engine.json [--skip-fmnist]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child): CPU time is what a loaded machine distorts least."""
    r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def _phases(cwd: Path) -> dict[str, float]:
    """CPU seconds of each phase of a cached run, in-process: compose, validate, execute."""
    import contextlib
    import io

    from hydra import compose, initialize_config_module

    from malak_pipe.engine.app import execute
    from malak_pipe.engine.config import to_run_config
    from malak_pipe.engine.graph import build_graph

    t0 = time.process_time()
    with initialize_config_module(config_module="malak_pipe.conf", version_base="1.3"):
        cfg = compose(config_name="config")
    t1 = time.process_time()
    run_cfg, sources = to_run_config(cfg)
    build_graph(run_cfg, sources)
    t2 = time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        execute(run_cfg, sources, cwd / "phases-run", [])
    t3 = time.process_time()
    return {"compose_cpu_s": round(t1 - t0, 3), "validate_cpu_s": round(t2 - t1, 3),
            "runner_execute_cpu_s": round(t3 - t2, 3)}


def bench_cache(args: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        env = dict(os.environ, MALAK_CACHE_DIR=str(cwd / "cache"))
        cold, cold_cpu = _timed([str(BIN / "malak-run"), *args], cwd, env)
        cached = [_timed([str(BIN / "malak-run"), *args], cwd, env) for _ in range(3)]
        imports = (
            "import malak_pipe.cli, hydra, malak_pipe.engine.app, malak_pipe.engine.registry as r; "
            "[r.get_stage(n) for n in r.stage_names()]"
        )
        startup = [_timed([sys.executable, "-c", imports], cwd, env) for _ in range(3)]
        os.environ["MALAK_CACHE_DIR"] = env["MALAK_CACHE_DIR"]
        here = os.getcwd()
        os.chdir(cwd)
        try:
            phases = _phases(cwd)
        finally:
            os.chdir(here)  # the temporary directory goes away: never leave the process in it
    best_cached, best_start = min(cached, key=lambda t: t[1]), min(startup, key=lambda t: t[1])
    return {
        "pipeline_args": args,
        "cold_s": round(cold, 3),
        "cold_cpu_s": round(cold_cpu, 3),
        "cached_s": round(best_cached[0], 3),
        "cached_cpu_s": round(best_cached[1], 3),
        "cached_over_cold": round(best_cached[0] / cold, 4),
        "startup_cpu_s": round(best_start[1], 3),
        "cli_overhead_cached_cpu_s": round(best_cached[1] - best_start[1], 3),
        "phases_of_cached_run": phases,
        "targets": {"cached_over_cold_max": 0.05, "runner_overhead_cached_s_max": 0.5},
    }


def _plain_loop(model, x, y, batch_size: int, lr: float) -> float:
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    t0 = time.process_time()
    perm = torch.randperm(len(x))
    for start in range(0, len(x), batch_size):
        idx = perm[start : start + batch_size]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
    return time.process_time() - t0


def bench_throughput(dataset_name: str, max_train: int | None, threads: int, rounds: int = 2) -> dict:
    import torch

    from malak_pipe.data import DataConfig, load_dataset
    from malak_pipe.models import ModelConfig, build_model
    from malak_pipe.training import FitSettings, fit

    torch.set_num_threads(threads)
    ds = load_dataset(DataConfig(name=dataset_name, max_train=max_train, max_val=256))
    c, h, _ = ds.input_shape
    mcfg = ModelConfig(name="simple_cnn", in_channels=c, num_classes=ds.num_classes, image_size=h)
    n = len(ds.train.y)
    settings = FitSettings(epochs=1, batch_size=64, lr=1e-3, optimizer="adam", num_threads=threads)
    plain_times, fit_times = [], []
    for _ in range(rounds):  # interleaved, best of each: load on a shared machine hits both alike
        torch.manual_seed(0)
        plain_times.append(_plain_loop(build_model(mcfg), ds.train.x, ds.train.y, 64, 1e-3))
        torch.manual_seed(0)
        t0 = time.process_time()  # includes fit's per-epoch val pass (max_val keeps it small)
        fit(build_model(mcfg), ds, settings)
        fit_times.append(time.process_time() - t0)
    plain, ours = min(plain_times), min(fit_times)
    return {
        "dataset": dataset_name,
        "n_train": n,
        "threads": threads,
        "clock": "process CPU time (one thread), robust to other load on the machine",
        "plain_loop_cpu_s": round(plain, 3),
        "fit_cpu_s": round(ours, 3),
        "plain_samples_per_s": round(n / plain, 1),
        "fit_samples_per_s": round(n / ours, 1),
        "throughput_ratio": round(plain / ours, 4),
        "rounds": rounds,
        "plain_all_s": [round(t, 3) for t in plain_times],
        "fit_all_s": [round(t, 3) for t in fit_times],
        "target_ratio_min": 0.95,
    }


def bench_fmnist_epoch(threads: int) -> dict:
    import torch

    from malak_pipe.data import DataConfig, load_dataset
    from malak_pipe.models import ModelConfig, build_model
    from malak_pipe.training import FitSettings, evaluate, fit

    torch.set_num_threads(threads)
    ds = load_dataset(DataConfig(name="fashion_mnist", channels=1, image_size=28, num_classes=10))
    model = build_model(ModelConfig(name="simple_cnn", in_channels=1, num_classes=10, image_size=28))
    t0 = time.perf_counter()
    result = fit(model, ds, FitSettings(epochs=1, batch_size=64, lr=1e-3, num_threads=threads))
    wall = time.perf_counter() - t0
    return {
        "n_train": len(ds.train.y),
        "threads": threads,
        "epoch_train_s": round(result.train_seconds, 2),
        "epoch_wall_s_with_val": round(wall, 2),
        "test_top1_after_1_epoch": round(evaluate(model, ds, "test").top1, 4),
        "reference_plain_loop_s": 38,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--skip-fmnist", action="store_true", help="skip the full Fashion-MNIST epoch")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    report = {"load_average_at_start": os.getloadavg(), "cache": bench_cache([])}
    report["throughput"] = bench_throughput("fashion_mnist", 20000, args.threads)
    if not args.skip_fmnist:
        report["fmnist_epoch"] = bench_fmnist_epoch(args.threads)
    report["load_average_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
