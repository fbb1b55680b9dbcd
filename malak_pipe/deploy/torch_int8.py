"""Running the project's torch int8 models (their weights are packed for one quantized engine)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np


@contextlib.contextmanager
def quantized_engine(backend: str | None) -> Iterator[None]:
    """Select torch's quantized engine ``backend`` (x86, fbgemm, qnnpack) for the block; None keeps it."""
    import torch

    previous = torch.backends.quantized.engine
    if backend is not None and backend in torch.backends.quantized.supported_engines:
        torch.backends.quantized.engine = backend
    try:
        yield
    finally:
        torch.backends.quantized.engine = previous


def engine_of(artifact: Any) -> str | None:
    """The quantized engine a ``QuantizedModelArtifact`` was made for (its recipe's backend)."""
    recipe = getattr(artifact, "recipe", None)
    return getattr(recipe, "backend", None)


def int8_logits(artifact: Any, x: np.ndarray, *, chunk: int = 256) -> np.ndarray:
    """Logits of a ``QuantizedModelArtifact`` on a float32 array, on its own quantized engine."""
    from malak_pipe.deploy.onnx_export import torch_logits

    with quantized_engine(engine_of(artifact)):
        return torch_logits(artifact.module, x, chunk=chunk)
