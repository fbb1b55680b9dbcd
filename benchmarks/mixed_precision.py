"""Mixed-precision benchmark: SimpleCNN on Fashion-MNIST with 4/8-bit weights on the simulated Cortex-M7.

    .venv/bin/python benchmarks/mixed_precision.py --out benchmarks/results/mixed_precision.json
    .venv/bin/python benchmarks/mixed_precision.py --epochs 3 --seeds 0 --num-images 500 \\
        --out benchmarks/results/mixed_precision_reduced.json          # a reduced run

Drives ``malak-run experiment=mixed_precision_fmnist`` (train, int8 PTQ and its firmware,
per-layer sensitivity, the 4-bit layers under the 256 KB target's flash, INT4 QDQ, C code,
firmware, QEMU; all-int4 PTQ with min-max and MSE clips, all-int4 QAT and a random choice
under the same budget beside it) once per seed, then again for seed 0 with each flash budget
of ``--budgets`` and the floor where every layer is at 4 bits (``budget=flash_bytes`` on the
4 MB board, so every budget builds; only the mixed chain and the random control run), and the
choice study: on every seed's model, under the 256 KB budget, the sensitivity (knapsack) choice
and ``--random-draws`` random ones, with the experiment's clips and with min-max clips only.
Every figure is read from the runs' results.json:

* per seed: int8 and mixed test top-1, the drop vs int8 and FP32, flash and instructions per
  inference on target, on-target top-1 vs the golden reference's, the 4-bit layers;
* ``targets``: the checks of the issue (flash <= 280 KB at <= 0.5 pp vs int8, fits 256 KB,
  top-1 on target = golden, instructions <= 1.3x int8) and the smallest budget within 1 pp;
* ``comparison``: all-int4 PTQ (min-max, MSE) vs all-int4 QAT vs the sensitivity choice vs
  the random choice of the same budget, over the seeds;
* ``choice_vs_random``: per clip, the sensitivity choice against every random draw on the same
  model (how many draws did worse, tied, better); ``sensitivity``: the per-layer table of seed 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from malak_cli import job_dirs, malak_run, nodes, write_report  # noqa: E402

KB = 1024
FLASH_280KB = 280 * KB
FLASH_256KB = 256 * KB
BUDGETS = (FLASH_280KB, FLASH_256KB, 252 * KB, 248 * KB, 244 * KB)
"""Flash budgets of the sweep; the one every layer at 4 bits meets is added (the floor)."""
VARIANTS = ("mixed_precision", "mixed_random", "all_int4_minmax", "all_int4_mse", "all_int4_qat")


def overrides(args: argparse.Namespace, seed: int) -> list[str]:
    """The experiment at this benchmark's size."""
    return [
        "experiment=mixed_precision_fmnist",
        f"seed={seed}",
        f"stage.train.epochs={args.epochs}",
        f"stage.mixed_precision.qat_finetune.epochs={args.qat_epochs}",
        f"stage.sim_run.num_images={args.num_images or 'null'}",
        "run.live=false",
    ]


def mcu_figures(results: dict[str, Any]) -> dict[str, Any]:
    """The int8 and mixed models of one run, on torch and on target."""
    int8, mixed = results["ptq_static"]["metrics"], results["mixed_precision"]["metrics"]
    sim8, sim = results["sim_int8"]["metrics"], results["sim_run"]["metrics"]
    return {
        "fp32_test_top1": results["train"]["metrics"]["test_top1"],
        "int8_test_top1": int8["test_top1"],
        "mixed_test_top1": mixed["test_top1"],
        "mixed_val_top1": mixed["val_top1"],
        "mixed_drop_vs_int8_pp": mixed["test_top1_drop_vs_int8_pp"],
        "mixed_drop_vs_fp32_pp": mixed["test_top1_drop_vs_baseline_pp"],
        "four_bit_layers": mixed["four_bit_layers"],
        "predicted_flash_bytes": mixed.get("predicted_flash_bytes"),
        "weight_bytes": mixed["weight_bytes"],
        "weight_bytes_int8": mixed["weight_bytes_int8"],
        "average_weight_bits": mixed["average_weight_bits"],
        "int8_flash_bytes": sim8["flash_bytes"],
        "flash_bytes": sim["flash_bytes"],
        "int8_instructions_per_inference": sim8["instructions_per_inference"],
        "instructions_per_inference": sim["instructions_per_inference"],
        "instructions_vs_int8": sim["instructions_per_inference"] / sim8["instructions_per_inference"],
        "on_target_top1": sim["top1"],
        "golden_top1": sim["golden_top1"],
        "bit_exact_rate": sim["bit_exact_rate"],
        "int8_on_target_top1": sim8["top1"],
        "four_bit_layers_on_target": four_bit_layer_ratios(sim8["layers"], sim["layers"]),
    }


def variant_figures(results: dict[str, Any], names: tuple[str, ...] = VARIANTS) -> dict[str, Any]:
    """Accuracy, 4-bit layers and weight bytes of the comparison nodes."""
    figures = {}
    for name in names:
        metrics = results[name]["metrics"]
        figures[name] = {
            "test_top1": metrics["test_top1"],
            "val_top1": metrics["val_top1"],
            "test_drop_vs_int8_pp": metrics["test_top1_drop_vs_int8_pp"],
            "val_drop_vs_int8_pp": metrics["val_top1_drop_vs_int8_pp"],
            "four_bit_layers": metrics["four_bit_layers"],
            "weight_bytes": metrics["weight_bytes"],
        }
    return figures


def four_bit_layer_ratios(int8_layers: list[dict], layers: list[dict]) -> list[dict[str, Any]]:
    """Instructions per MAC of every 4-bit layer on target against the same layer at 8 bits."""
    at_8 = {layer["name"]: layer for layer in int8_layers}
    rows = []
    for layer in layers:
        reference = at_8.get(layer["name"])
        if layer.get("weight_bits") == 4 and reference and reference["instructions_per_mac"]:
            rows.append(
                {
                    "layer": layer["name"],
                    "kernel": layer["kernel"],
                    "macs": layer["macs"],
                    "int8_instructions_per_mac": reference["instructions_per_mac"],
                    "int4_instructions_per_mac": layer["instructions_per_mac"],
                    "ratio": layer["instructions_per_mac"] / reference["instructions_per_mac"],
                }
            )
    return rows


def mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def budget_sweep(args: argparse.Namespace, workdir: Path, budgets: list[int]) -> list[dict[str, Any]]:
    """Seed 0 under each flash budget (on the 4 MB board, so a budget above 256 KB still builds);
    only the mixed model's chain and the random control run."""
    rows = []
    for budget in budgets:
        extra = [
            "target=mps2_an500",
            "stage.mixed_precision.budget=flash_bytes",
            f"stage.mixed_precision.flash_bytes={budget}",
            "run.only=[sim_run,sim_int8,mixed_random]",
        ]
        run = malak_run([*overrides(args, args.seeds[0]), *extra], workdir, workdir / "runs" / f"budget_{budget}")
        results = nodes(run.path)
        figures = mcu_figures(results)
        random = variant_figures(results, ("mixed_random",))["mixed_random"]
        rows.append({"budget_bytes": budget, **{k: figures[k] for k in SWEEP_KEYS}, "random": random})
    return rows


def floor_budget(figures: dict[str, Any], sensitivity: dict[str, Any]) -> int:
    """A flash budget every layer at 4 bits meets: the int8 flash less all the savings, the
    margin (1024 B) and room for the int4 kernels' code (1024 B)."""
    return figures["int8_flash_bytes"] - sensitivity["bytes_saved_all_int4"] + 2048


SWEEP_KEYS = (
    "four_bit_layers",
    "flash_bytes",
    "predicted_flash_bytes",
    "mixed_test_top1",
    "mixed_drop_vs_int8_pp",
    "instructions_vs_int8",
    "on_target_top1",
    "golden_top1",
)


CLIPS = ("auto", "minmax")
"""The clips of the choice study: the experiment's (per layer, the better on val) and min-max
alone, where 4-bit errors are larger and which layers go to 4 bits should matter more."""


def choice_row(metrics: dict[str, Any]) -> dict[str, Any]:
    """The 4-bit layers of one choice and its drops vs int8."""
    return {
        "four_bit_layers": metrics["four_bit_layers"],
        "test_drop_vs_int8_pp": metrics["test_top1_drop_vs_int8_pp"],
        "val_drop_vs_int8_pp": metrics["val_top1_drop_vs_int8_pp"],
    }


def seed_choices(args: argparse.Namespace, workdir: Path, seed: int, clip: str) -> dict[str, Any]:
    """One seed's model under the 256 KB budget with ``clip``: the sensitivity (knapsack) choice,
    and ``--random-draws`` uniform random choices (draw seeds 1001.., one ``-m`` sweep)."""
    base = [*overrides(args, seed), f"stage.mixed_precision.clip={clip}"]
    run = malak_run([*base, "run.only=[mixed_precision]"], workdir, workdir / "runs" / f"knapsack_{clip}_{seed}")
    draws = [1000 + d for d in range(1, args.random_draws + 1)]
    sweep = malak_run(
        [
            *base,
            "hydra/launcher=local",
            "run.only=[mixed_random]",
            "stage.mixed_precision.seed=" + ",".join(map(str, draws)),
        ],
        workdir,
        workdir / "runs" / f"random_{clip}_{seed}",
        multirun=True,
    )
    randoms = [
        {"draw": draw, **choice_row(nodes(job)["mixed_random"]["metrics"])}
        for draw, job in zip(draws, job_dirs(sweep.path), strict=True)
    ]
    return {"seed": seed, "sensitivity": choice_row(nodes(run.path)["mixed_precision"]["metrics"]), "random": randoms}


def choice_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The sensitivity choice against the random draws of the same seeds (test drop vs int8, pp)."""
    pairs = [
        (row["sensitivity"]["test_drop_vs_int8_pp"], draw["test_drop_vs_int8_pp"])
        for row in rows
        for draw in row["random"]
    ]
    sensitivity = [row["sensitivity"]["test_drop_vs_int8_pp"] for row in rows]
    randoms = [draw for _, draw in pairs]
    return {
        "sensitivity": mean_std(sensitivity),
        "random": mean_std(randoms),
        "sensitivity_minus_random_mean_per_seed_pp": [
            s - statistics.fmean(d["test_drop_vs_int8_pp"] for d in row["random"])
            for s, row in zip(sensitivity, rows, strict=True)
        ],
        "random_draws_worse": sum(draw > s for s, draw in pairs),
        "random_draws_tied": sum(draw == s for s, draw in pairs),
        "random_draws_better": sum(draw < s for s, draw in pairs),
        "distinct_random_sets": len({tuple(d["four_bit_layers"]) for row in rows for d in row["random"]}),
        "sensitivity_beats_random_mean": statistics.fmean(sensitivity) < statistics.fmean(randoms),
        "per_seed": rows,
    }


def choice_study(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Sensitivity vs random choices under the 256 KB budget, per clip, over every seed."""
    return {clip: choice_summary([seed_choices(args, workdir, seed, clip) for seed in args.seeds]) for clip in CLIPS}


def targets(per_seed: list[dict[str, Any]], sweep: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's checks on the measured figures."""
    at_280 = next((row for row in sweep if row["budget_bytes"] == FLASH_280KB and "flash_bytes" in row), None)
    within_1pp = [row for row in sweep if "flash_bytes" in row and row["mixed_drop_vs_int8_pp"] <= 1.0]
    return {
        "flash_le_280kb_at_drop_le_0p5pp": at_280 is not None
        and at_280["flash_bytes"] <= FLASH_280KB
        and at_280["mixed_drop_vs_int8_pp"] <= 0.5,
        "fits_256kb_every_seed": all(fig["flash_bytes"] <= FLASH_256KB for fig in per_seed),
        "drop_vs_int8_at_256kb_pp": mean_std([fig["mixed_drop_vs_int8_pp"] for fig in per_seed]),
        "smallest_budget_within_1pp": min((row["budget_bytes"] for row in within_1pp), default=None),
        "on_target_top1_equals_golden": all(fig["on_target_top1"] == fig["golden_top1"] for fig in per_seed),
        "instructions_within_1p3x_int8": all(fig["instructions_vs_int8"] <= 1.3 for fig in per_seed),
    }


def comparison(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Test drop vs int8 of each variant over the seeds (pp)."""
    return {name: mean_std([fig[name]["test_drop_vs_int8_pp"] for fig in per_seed]) for name in VARIANTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--qat-epochs", type=int, default=2)
    parser.add_argument("--seeds", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1, 2])
    parser.add_argument("--num-images", type=int, default=0, help="test images on the simulated MCU (0: all)")
    parser.add_argument("--budgets", type=lambda s: [int(v) for v in s.split(",")], default=list(BUDGETS))
    parser.add_argument("--random-draws", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=Path("outputs/bench_mixed_precision"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/mixed_precision.json"))
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    per_seed, sensitivity = [], None
    for seed in args.seeds:
        run = malak_run(overrides(args, seed), workdir, workdir / "runs" / f"seed_{seed}")
        results = nodes(run.path)
        per_seed.append({"seed": seed, "wall_s": run.wall_s, **mcu_figures(results), **variant_figures(results)})
        sensitivity = sensitivity or results["sensitivity"]["metrics"]
    floor = floor_budget(per_seed[0], sensitivity)
    budgets = sorted({*(b for b in args.budgets if b > floor), floor}, reverse=True)
    sweep, choices = budget_sweep(args, workdir, budgets), choice_study(args, workdir)
    report = {
        "command": " ".join(sys.argv),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "targets": targets(per_seed, sweep),
        "comparison": comparison(per_seed),
        "choice_vs_random": choices,
        "per_seed": per_seed,
        "budget_sweep": sweep,
        "sensitivity": sensitivity,
    }
    write_report(args.out, report)


if __name__ == "__main__":
    main()
