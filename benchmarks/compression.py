"""Compression benchmarks of SimpleCNN (issue 3), written as JSON.

For each seed: train the FP32 SimpleCNN, then from it static INT8 PTQ, QAT, 50% magnitude
pruning (one-shot, fine-tuned), 30% structured channel pruning (fine-tuned), and knowledge
distillation into a half-width SimpleCNN (``--student-width``) compared with the same student
trained from scratch with the same recipe (same initial weights, epochs, optimizer, schedule
and batch order). KD runs once per ``--kd-alphas`` value (T = ``--temperature``) and keeps
the student with the best validation top-1; test accuracy is never used to choose. Every
figure (accuracy, per-class drops, sizes, parameters, MACs, batch-1 latency) goes into the
JSON, with mean/std over seeds and the targets:

    FP32 test top-1 >= 92.2%          static INT8: compression >= 3.9x, drop <= 0.3 pp
    QAT drop <= 0.1 pp                magnitude 50%: drop <= 1 pp after fine-tuning
    structured 30%: params, size and batch-1 latency below FP32
    KD: the student gains over the same student from scratch

``size_bytes`` is always the bytes of the artifact file the pipeline would write for the model
(torch_model for float models, the packed torch_model_int8 for int8 ones), so compression is
file against file; ``payload_bytes`` counts raw tensor bytes without any container.

    python benchmarks/compression.py --out outputs/bench/compression.json \\
        [--dataset fashion_mnist --epochs 20 --seeds 0 1 2]
    python benchmarks/compression.py --out /tmp/smoke.json --epochs 1 --max-train 2000   # smoke
    # re-run some techniques only, reusing the trained FP32 models and keeping the other figures:
    python benchmarks/compression.py --out outputs/bench/compression_seed0.json --seeds 0 \\
        --fp32-cache outputs/bench/fp32_cache --only distill ptq_static --merge

Everything runs through the malak_pipe.compress API (the same code the stages call), on the
CPU with ``--threads`` torch threads (latency is always measured single-threaded).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from malak_pipe.compress import (
    QAT,
    DistillConfig,
    KnowledgeDistiller,
    MagnitudePruneConfig,
    MagnitudePruner,
    QATConfig,
    QuantizedModelArtifact,
    StaticPTQ,
    StaticPTQConfig,
    StructuredPruneConfig,
    StructuredPruner,
)
from malak_pipe.compress.artifact import TORCH_MODEL_INT8
from malak_pipe.compress.magnitude import dense_size_bytes, sparse_size_bytes
from malak_pipe.compress.report import (
    artifact_bytes,
    comparison_metrics,
    evaluation_metrics,
    latency_ms,
    payload_bytes,
)
from malak_pipe.data import DataConfig, load_dataset
from malak_pipe.models import ModelConfig, build_model, count_macs, count_parameters, model_metrics
from malak_pipe.models.artifact import TORCH_MODEL, ModelArtifact, load_model, save_model
from malak_pipe.training import FitSettings, fit, seed_everything

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


def _one_thread_latency(module: Any, input_shape: tuple[int, ...]) -> float:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return latency_ms(module, input_shape, repeats=100)
    finally:
        torch.set_num_threads(threads)


def _report(module: Any, data: Any, reference: dict[str, Any], sizes: dict[str, Any]) -> dict[str, Any]:
    """Accuracy figures, sizes and the comparison with the FP32 model, minus the long lists."""
    metrics = {**evaluation_metrics(module, data), **sizes}
    metrics.update(comparison_metrics(metrics, reference))
    metrics["payload_bytes"] = payload_bytes(module)
    metrics["payload_compression_vs_input"] = reference["payload_bytes"] / metrics["payload_bytes"]
    metrics["latency_ms_batch1"] = _one_thread_latency(module, data.input_shape)
    return metrics


def _timed(function: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def _cache_path(cache: Path | None, data: Any, settings: FitSettings, max_train: int | None) -> Path | None:
    if cache is None:
        return None
    return cache / f"fp32_{data.name}_e{settings.epochs}_s{settings.seed}_n{max_train or 'all'}.pt"


def bench_fp32(
    data: Any, model_cfg: ModelConfig, settings: FitSettings, cached: Path | None = None
) -> tuple[Any, dict[str, Any]]:
    """Train the FP32 model, or reload it from ``cached`` (written on the first run).

    The cache keeps the weights and the training figures (best epoch, seconds); accuracy and
    sizes are measured again on the reloaded model, so they follow the current definitions.
    """
    if cached is not None and cached.exists():
        module = load_model(cached).module
        training = json.loads(cached.with_suffix(".json").read_text())
    else:
        seed_everything(settings.seed)
        module = build_model(model_cfg)
        result, seconds = _timed(fit, module, data, settings)
        training = {"best_epoch": result.best_epoch, "train_seconds": seconds}
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            save_model(ModelArtifact(config=model_cfg, module=module), cached)
            cached.with_suffix(".json").write_text(json.dumps(training, indent=2))
    module.eval()
    metrics = {**evaluation_metrics(module, data), **_float_sizes(module, model_cfg, data)}
    metrics.update(
        training,
        latency_ms_batch1=_one_thread_latency(module, data.input_shape),
        payload_bytes=payload_bytes(module),
    )
    return module, metrics


def _float_sizes(module: Any, cfg: ModelConfig, data: Any) -> dict[str, Any]:
    """params, MACs and ``size_bytes``: the bytes of the torch_model artifact file of ``module``."""
    metrics = model_metrics(module, data.input_shape)
    metrics["size_bytes"] = artifact_bytes(TORCH_MODEL, ModelArtifact(config=cfg, module=module))
    return metrics


def _int8_sizes(fp32: Any, cfg: ModelConfig, artifact: Any, data: Any) -> dict[str, Any]:
    """params and MACs of the float model, ``size_bytes``: the bytes of the torch_model_int8 artifact file."""
    return {
        "params": count_parameters(fp32),
        "macs": count_macs(fp32, data.input_shape),
        "size_bytes": artifact_bytes(TORCH_MODEL_INT8, artifact),
    }


def bench_ptq_static(fp32: Any, cfg: ModelConfig, data: Any, reference: dict[str, Any], seed: int) -> dict[str, Any]:
    ptq = StaticPTQ(StaticPTQConfig(calibration_batches=32, calibration_batch_size=64, seed=seed))
    int8, seconds = _timed(ptq.quantize, fp32, data)
    artifact = QuantizedModelArtifact(cfg, ptq.recipe(fp32, data.input_shape), int8)
    metrics = _report(int8, data, reference, _int8_sizes(fp32, cfg, artifact, data))
    metrics["seconds"] = seconds
    return metrics


def bench_qat(
    fp32: Any, cfg: ModelConfig, data: Any, reference: dict[str, Any], settings: FitSettings
) -> dict[str, Any]:
    qat = QAT(QATConfig(freeze_observers_after_epoch=max(1, settings.epochs - 1)))
    prepared = qat.prepare(fp32)
    result, seconds = _timed(qat.train, prepared, data, settings)
    int8 = qat.convert(prepared)
    artifact = QuantizedModelArtifact(cfg, qat.recipe(fp32, data.input_shape), int8)
    metrics = _report(int8, data, reference, _int8_sizes(fp32, cfg, artifact, data))
    metrics.update(seconds=seconds, best_epoch=result.best_epoch)
    return metrics


def bench_magnitude(
    fp32: Any, cfg: ModelConfig, data: Any, reference: dict[str, Any], settings: FitSettings
) -> dict[str, Any]:
    module = _copy(fp32)
    pruner = MagnitudePruner(MagnitudePruneConfig(sparsity=0.5, scope="global"))
    pruner.prune(module)
    one_shot_top1 = evaluation_metrics(module, data)["test_top1"]
    _, seconds = _timed(pruner.run, module, data, settings)
    pruner.remove_masks(module)
    metrics = _report(module, data, reference, _float_sizes(module, cfg, data))
    metrics.update(
        sparsity=pruner.sparsity(module)["overall"],
        test_top1_before_finetune=one_shot_top1,
        sparse_size_bytes=sparse_size_bytes(module),
        dense_weight_bytes=dense_size_bytes(module),
        seconds=seconds,
    )
    return metrics


def bench_structured(
    fp32: Any, cfg: ModelConfig, data: Any, reference: dict[str, Any], settings: FitSettings
) -> dict[str, Any]:
    module = _copy(fp32)
    pruner = StructuredPruner(StructuredPruneConfig(ratio=0.3, importance="l1"))
    _, seconds = _timed(pruner.run, module, data, settings)
    module.eval()
    metrics = _report(module, data, reference, _float_sizes(module, cfg, data))
    metrics.update(
        params_ratio=metrics["params"] / reference["params"],
        macs_ratio=metrics["macs"] / reference["macs"],
        size_ratio=metrics["size_bytes"] / reference["size_bytes"],
        latency_ratio=metrics["latency_ms_batch1"] / reference["latency_ms_batch1"],
        seconds=seconds,
    )
    return metrics


def bench_distill(
    teacher: Any,
    data: Any,
    reference: dict[str, Any],
    student_cfg: ModelConfig,
    settings: FitSettings,
    alphas: list[float],
    temperature: float,
) -> dict[str, Any]:
    """KD student vs the same student from scratch, both trained with ``settings``.

    Same architecture, same initial weights (seeded), same epochs, optimizer, schedule and
    batch order; the only difference is the loss. With several ``alphas`` one student is
    distilled per alpha and the one with the best *validation* top-1 is reported (test is
    never used to choose).
    """
    seed_everything(settings.seed)
    scratch = build_model(student_cfg)
    _, scratch_seconds = _timed(fit, scratch, data, settings)
    scratch.eval()
    scratch_metrics = evaluation_metrics(scratch, data)
    candidates = []
    for alpha in alphas:
        seed_everything(settings.seed)
        student = build_model(student_cfg)
        distiller = KnowledgeDistiller(DistillConfig(alpha=alpha, temperature=temperature))
        _, seconds = _timed(distiller.fit, student, teacher, data, settings)
        student.eval()
        figures = evaluation_metrics(student, data)
        candidates.append({"alpha": alpha, "module": student, "seconds": seconds, **figures})
        print(f"  distill alpha={alpha} T={temperature}: val {figures['val_top1']:.4f}", flush=True)
    chosen = max(candidates, key=lambda c: c["val_top1"])  # first on ties
    student = chosen["module"]
    metrics = _report(student, data, reference, _float_sizes(student, student_cfg, data))
    metrics.update(
        student_width_mult=student_cfg.width_mult,
        alpha=chosen["alpha"],
        temperature=temperature,
        alpha_candidates={
            str(c["alpha"]): {"val_top1": c["val_top1"], "test_top1": c["test_top1"]} for c in candidates
        },
        scratch_val_top1=scratch_metrics["val_top1"],
        scratch_test_top1=scratch_metrics["test_top1"],
        gain_over_scratch_pp=(metrics["test_top1"] - scratch_metrics["test_top1"]) * 100.0,
        val_gain_over_scratch_pp=(metrics["val_top1"] - scratch_metrics["val_top1"]) * 100.0,
        teacher_student_gap_pp=(reference["test_top1"] - metrics["test_top1"]) * 100.0,
        seconds=chosen["seconds"],
        scratch_seconds=scratch_seconds,
    )
    return metrics


def _copy(module: Any) -> Any:
    import copy

    return copy.deepcopy(module)


TECHNIQUES = ("ptq_static", "qat", "prune_magnitude", "prune_structured", "distill")


def run_seed(data: Any, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """The techniques of ``args.only`` from one FP32 model trained with ``seed``."""
    model_cfg = ModelConfig(
        name="simple_cnn", in_channels=data.input_shape[0], num_classes=data.num_classes, image_size=data.input_shape[1]
    )
    common = {"batch_size": 64, "optimizer": "adam", "schedule": "cosine", "seed": seed}
    train = FitSettings(epochs=args.epochs, lr=1e-3, **common)
    finetune = FitSettings(epochs=args.finetune_epochs, lr=args.finetune_lr, **common)
    fp32, reference = bench_fp32(data, model_cfg, train, _cache_path(args.fp32_cache, data, train, args.max_train))
    print(f"seed {seed}: fp32 test top-1 {reference['test_top1']:.4f}", flush=True)
    student_cfg = model_cfg.model_copy(update={"width_mult": args.student_width})
    benches = {
        "ptq_static": lambda: bench_ptq_static(fp32, model_cfg, data, reference, seed),
        "qat": lambda: bench_qat(fp32, model_cfg, data, reference, finetune),
        "prune_magnitude": lambda: bench_magnitude(fp32, model_cfg, data, reference, finetune),
        "prune_structured": lambda: bench_structured(fp32, model_cfg, data, reference, finetune),
        "distill": lambda: bench_distill(fp32, data, reference, student_cfg, train, args.kd_alphas, args.temperature),
    }
    results = {"fp32": reference}
    for name in args.only:
        results[name] = benches[name]()
        print(f"seed {seed}: {name}: test top-1 {results[name]['test_top1']:.4f}", flush=True)
    return results


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean, std and n of every numeric figure over the seeds, keyed "technique.metric"."""
    values: dict[str, list[float]] = {}
    for run in runs:
        for technique, figures in run.items():
            for name, value in figures.items():
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


def merge_previous(out: Path, runs: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Fill ``runs`` with the techniques not re-run from the previous report at ``out``.

    Only when that report ran the same seeds on the same data and its FP32 model is the same
    (identical val/test top-1 and best epoch: the cached or retrained model is the one the old
    figures came from); otherwise nothing is merged. Returns {seed: [merged techniques]}.
    """
    if not out.exists():
        return {}
    previous = json.loads(out.read_text())
    same_data = previous.get("arguments", {}).get("seeds") == args.seeds and all(
        previous["arguments"].get(key) == getattr(args, key) for key in ("dataset", "epochs", "max_train")
    )
    if not same_data:
        print("--merge: the previous report ran other seeds or data; nothing merged")
        return {}
    merged = {}
    for seed, run, old in zip(args.seeds, runs, previous["runs"], strict=True):
        same_fp32 = all(old["fp32"].get(key) == run["fp32"].get(key) for key in ("val_top1", "test_top1", "best_epoch"))
        if not same_fp32:
            print(f"--merge: seed {seed}: the FP32 model differs from the previous report's; nothing merged")
            continue
        kept = [name for name in old if name not in run]
        run.update({name: old[name] for name in kept})
        merged[str(seed)] = kept
    return merged


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "quantized_engines": torch.backends.quantized.supported_engines,
        "cpu": platform.processor() or platform.machine(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--dataset", default="fashion_mnist", help="fashion_mnist | digits | cifar10")
    parser.add_argument("--epochs", type=int, default=20, help="FP32 and student training epochs")
    parser.add_argument("--finetune-epochs", type=int, default=3, help="QAT and pruning fine-tune epochs")
    parser.add_argument("--finetune-lr", type=float, default=1e-4)
    parser.add_argument("--student-width", type=float, default=0.5, help="width_mult of the KD student")
    parser.add_argument(
        "--kd-alphas", type=float, nargs="+", default=[0.5, 0.9], help="KD soft-loss weights; the best on val is kept"
    )
    parser.add_argument("--temperature", type=float, default=4.0, help="KD temperature")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-train", type=int, default=None, help="subset of the train split (smoke runs)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for training")
    parser.add_argument(
        "--only", nargs="*", choices=TECHNIQUES, default=list(TECHNIQUES), help="techniques to run (FP32 always runs)"
    )
    parser.add_argument(
        "--fp32-cache", type=Path, default=None, help="folder to keep and reuse the trained FP32 models"
    )
    parser.add_argument(
        "--merge", action="store_true", help="keep the techniques not in --only from the previous --out report"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_dataset(DataConfig(name=args.dataset, max_train=args.max_train))
    started = time.perf_counter()
    runs = [run_seed(data, args, seed) for seed in args.seeds]
    merged = merge_previous(args.out, runs, args) if args.merge else {}
    summary = summarize(runs)
    report = {
        "benchmark": "compression",
        "arguments": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "dataset": {"name": data.name, "sizes": data.sizes(), "input_shape": list(data.input_shape)},
        "environment": environment(),
        "seconds": time.perf_counter() - started,
        "runs": runs,
        "merged_from_previous": merged,
        "summary": summary,
        "targets": check_targets(summary),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    for key, target in report["targets"].items():
        print(f"{key}: {target['mean']} (target {target['target']}): {'met' if target['met'] else 'NOT met'}")


if __name__ == "__main__":
    main()
