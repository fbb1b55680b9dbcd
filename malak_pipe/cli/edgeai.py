"""edgeai: the Malak paper's shell commands, each one stage of a pipeline run by the same engine.

    edgeai train    --data digits --model simple_cnn --epochs 5
    edgeai quantize --mode static            # dynamic | static | qat | onnx
    edgeai prune    --method magnitude --amount 0.5   # magnitude (sparsity) | structured (channel ratio)
    edgeai distill  --temperature 4 --alpha 0.7
    edgeai evaluate                          # the baseline's metrics (trained if not cached)
    edgeai export                            # ONNX with a parity check
    edgeai profile                           # latency of every variant

Every subcommand is `malak-run` with a pipeline and `run.only=[node]`: the node runs with
what it depends on, and whatever is cached (the baseline, usually) is not recomputed.
Flags become config overrides; `--set key=value` passes any other override through.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

# subcommand -> (pipeline, node chosen from the parsed flags)
COMMANDS: dict[str, tuple[str, Callable[[argparse.Namespace], str]]] = {
    "train": ("train_only", lambda a: "train"),
    "evaluate": ("train_only", lambda a: "train"),
    "quantize": ("deploy", lambda a: {"dynamic": "ptq_dynamic", "static": "ptq_static", "qat": "qat",
                                     "onnx": "quantize_onnx"}[a.mode]),
    "prune": ("compress", lambda a: f"prune_{a.method}"),
    "distill": ("compress", lambda a: "distill"),
    "export": ("deploy", lambda a: "export_onnx"),
    "profile": ("deploy", lambda a: "profile"),
}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="dataset: digits, fashion_mnist, cifar10, synthetic")
    parser.add_argument("--model", help="model: simple_cnn, mobilenet_v2, resnet18, resnet50, efficientnet_b0")
    parser.add_argument("--epochs", type=int, help="baseline training epochs (stage.train.epochs)")
    parser.add_argument("--lr", type=float, help="baseline learning rate (stage.train.lr)")
    parser.add_argument("--batch-size", type=int, help="baseline batch size (stage.train.batch_size)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--plan", action="store_true", help="show what would run and what is cached")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any malak-run override")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgeai", description="One compression step at a time, cached.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        _common(sub.add_parser(name, help=f"run the {name} step"))
    sub.choices["quantize"].add_argument("--mode", choices=["dynamic", "static", "qat", "onnx"], default="static")
    sub.choices["quantize"].add_argument("--backend", choices=["x86", "fbgemm", "qnnpack"])
    sub.choices["prune"].add_argument("--method", choices=["magnitude", "structured"], default="magnitude")
    sub.choices["prune"].add_argument("--amount", type=float, help="sparsity (magnitude) or channel ratio (structured)")
    sub.choices["distill"].add_argument("--temperature", type=float)
    sub.choices["distill"].add_argument("--alpha", type=float)
    return parser


def _step_overrides(args: argparse.Namespace, node: str) -> list[str]:
    out = []
    if getattr(args, "backend", None) and node in ("ptq_dynamic", "ptq_static", "qat"):
        out.append(f"stage.{node}.backend={args.backend}")
    if getattr(args, "amount", None) is not None:
        field = "sparsity" if node == "prune_magnitude" else "ratio"
        out.append(f"stage.{node}.{field}={args.amount}")
    for flag in ("temperature", "alpha"):
        if getattr(args, flag, None) is not None:
            out.append(f"stage.distill.{flag}={getattr(args, flag)}")
    return out


def to_overrides(args: argparse.Namespace) -> list[str]:
    """The malak-run arguments a parsed edgeai command stands for."""
    pipeline, pick = COMMANDS[args.command]
    node = pick(args)
    out = [f"pipeline={pipeline}", f"run.only=[{node}]", f"name=edgeai_{args.command}"]
    if args.command == "quantize" and node in ("ptq_dynamic", "qat"):
        out[0] = "pipeline=compress"
    simple = {"data": "data", "model": "model", "seed": "seed", "epochs": "stage.train.epochs",
              "lr": "stage.train.lr", "batch_size": "stage.train.batch_size"}
    out += [f"{key}={getattr(args, flag)}" for flag, key in simple.items() if getattr(args, flag) is not None]
    out += _step_overrides(args, node)
    if args.plan:
        out.append("run.plan=true")
    return out + list(args.set)


def main(argv: list[str] | None = None) -> None:
    """Parse an edgeai command and run it through malak-run's entry point."""
    from malak_pipe.cli.run import run_main

    args = build_parser().parse_args(argv)
    sys.argv = ["malak-run", *to_overrides(args)]
    run_main()
