"""``malak-drift``: check a batch of images for drift against a saved reference.

    python -m malak_pipe.cli.drift check --reference drift_reference.json \\
        --model model.onnx --inputs batch.npy [--scale 16] [--normalized] [--json report.json]

Exit status: 0 no drift, 1 drift, 2 bad input (unreadable or wrong-shaped file, bad
reference or model), with a one-paragraph message and no traceback.

Inputs are raw images: integer arrays are divided by 255 and float arrays are taken to be in
[0, 1] (``--scale`` overrides the divisor, e.g. 16 for scikit-learn's digits), then normalized
with the dataset statistics stored in the reference. ``--normalized`` skips both steps.
The model is an ONNX file (run in ONNX Runtime) or a torch_model checkpoint (.pt).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from malak_pipe.errors import MalakError

EXIT_OK, EXIT_DRIFT, EXIT_BAD_INPUT = 0, 1, 2


def load_predictor(path: Path | str) -> Callable[[np.ndarray], np.ndarray]:
    """A function from normalized images to logits, for an ONNX file or a torch_model checkpoint."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        from malak_pipe.deploy.artifact import load_onnx
        from malak_pipe.deploy.ort_runtime import OrtPredictor

        return OrtPredictor(load_onnx(path).path)
    from malak_pipe.artifacts import get_type
    from malak_pipe.deploy.onnx_export import torch_logits

    artifact = get_type("torch_model").load(path)
    return lambda x: torch_logits(artifact.module, x)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="malak-drift", description="data-drift checks against a saved reference")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="compare a batch of images with the reference (exit 1 on drift)")
    check.add_argument("--reference", required=True, type=Path, help="drift_reference.json of a drift node")
    check.add_argument("--model", required=True, type=Path, help="the model (.onnx, or a torch_model .pt)")
    check.add_argument("--inputs", required=True, type=Path, help="images: .npy, .npz or IDX (.gz)")
    check.add_argument("--scale", type=float, default=None, help="value of a white pixel (default 255 / 1.0)")
    check.add_argument("--normalized", action="store_true", help="the inputs are already normalized")
    check.add_argument("--json", type=Path, default=None, help="also write the full report here")
    check.add_argument("--psi", type=float, default=None, help="override the input PSI threshold")
    check.add_argument("--output-psi", type=float, default=None, help="override the output PSI threshold")
    check.add_argument("--min-samples", type=int, default=None, help="override the minimum batch size")
    check.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def run_check(args: argparse.Namespace) -> int:
    """The ``check`` command; returns the exit status."""
    from malak_pipe.deploy.drift import check_drift, load_reference
    from malak_pipe.deploy.drift_inputs import prepare_inputs, read_array

    reference = load_reference(args.reference)
    thresholds = reference.thresholds
    overrides = {"psi": args.psi, "output_psi": args.output_psi, "min_samples": args.min_samples}
    thresholds = thresholds.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    array = read_array(args.inputs)
    x = prepare_inputs(
        array,
        reference.input_shape,
        reference.mean,
        reference.std,
        scale=args.scale,
        normalized=args.normalized,
        path=str(args.inputs),
    )
    predictor = load_predictor(args.model)
    report = check_drift(reference, x, predictor(x), thresholds)
    if args.json is not None:
        args.json.write_text(json.dumps(report.as_dict(), indent=1))
    verdict = "DRIFT" if report.drift else "no drift"
    print(f"{verdict}: {report.n} images from {args.inputs}")
    for reason in report.reasons:
        print(f"  - {reason}")
    summary = report.summary()
    print(
        f"  input PSI max {summary['input_psi_max']:.3f}, region features drifting "
        f"{summary['region_drift_fraction']:.0%}, prediction PSI {summary['prediction_psi']:.3f}, "
        f"confidence PSI {summary['confidence_psi']:.3f}"
    )
    return EXIT_DRIFT if report.drift else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``malak-drift`` (and ``python -m malak_pipe.cli.drift``)."""
    args = _parser().parse_args(argv)
    try:
        return run_check(args)
    except MalakError as exc:
        if args.debug:
            raise
        print(f"malak-drift: {exc.render()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # an unforeseen failure: still no traceback unless asked
        if args.debug:
            raise
        print(f"malak-drift: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
