"""ONNX Runtime sessions and batched inference over models whose batch axis may be frozen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from malak_pipe.errors import ArtifactError, DataError


def make_session(
    path: Path | str, *, threads: int = 1, profile_prefix: str | None = None, optimized_path: str | None = None
) -> Any:
    """An ``InferenceSession`` on the CPU with ``threads`` intra-op threads and full graph optimisation.

    ``profile_prefix`` turns on ORT's profiler (its JSON goes to ``<prefix>_<date>.json``);
    ``optimized_path`` saves the optimised graph there.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    if optimized_path is not None:
        options.optimized_model_filepath = optimized_path
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/NoSuchFile classes
        raise ArtifactError(
            f"ONNX Runtime cannot load the model ({type(exc).__name__}: {str(exc)[:300]})",
            path=str(path),
        ) from None


class OrtPredictor:
    """Run an ONNX classifier on arrays of any length, in chunks of its (possibly frozen) batch size.

    A model exported with a fixed batch dimension ``B`` gets chunks of ``B`` (the last one
    zero-padded, the padding dropped from the result); a dynamic batch axis gets chunks of
    ``chunk`` samples.
    """

    def __init__(self, path: Path | str, *, threads: int = 1, chunk: int = 256):
        self.path = Path(path)
        self.session = make_session(self.path, threads=threads)
        meta = self.session.get_inputs()[0]
        self.input_name = meta.name
        self.output_name = self.session.get_outputs()[0].name
        dims = list(meta.shape)
        self.fixed_batch = dims[0] if isinstance(dims[0], int) and dims[0] > 0 else None
        self.sample_shape = tuple(d if isinstance(d, int) else None for d in dims[1:])
        self.chunk = self.fixed_batch or chunk

    def check_shape(self, x: np.ndarray) -> None:
        """:class:`DataError` when ``x`` does not have the model's per-sample shape."""
        shape = tuple(x.shape[1:])
        expected = self.sample_shape
        fits = len(shape) == len(expected) and all(e is None or e == s for e, s in zip(expected, shape, strict=True))
        if not fits:
            raise DataError(
                f"inputs of shape {tuple(x.shape)} do not fit the model's input (N, {', '.join(map(str, expected))})",
                path=str(self.path),
            )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Logits for every row of ``x`` (float32, N x C x H x W)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        self.check_shape(x)
        outputs = []
        for start in range(0, len(x), self.chunk):
            part = x[start : start + self.chunk]
            n = len(part)
            if self.fixed_batch is not None and n < self.fixed_batch:
                pad = np.zeros((self.fixed_batch - n, *part.shape[1:]), dtype=np.float32)
                part = np.concatenate([part, pad])
            result = self.session.run([self.output_name], {self.input_name: part})[0]
            outputs.append(result[:n])
        return np.concatenate(outputs) if outputs else np.zeros((0,), dtype=np.float32)


def top1(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose arg-max equals the label."""
    if len(labels) == 0:
        return float("nan")
    return float((np.asarray(logits).argmax(axis=1) == np.asarray(labels)).mean())


def agreement(logits_a: np.ndarray, logits_b: np.ndarray) -> float:
    """Fraction of rows on which two models predict the same class."""
    if len(logits_a) == 0:
        return float("nan")
    return float((np.asarray(logits_a).argmax(axis=1) == np.asarray(logits_b).argmax(axis=1)).mean())
