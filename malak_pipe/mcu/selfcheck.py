"""The generated C compiled for the host against the golden reference on random inputs."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from malak_pipe.errors import StageFailed, StageSkipped
from malak_pipe.mcu import hosttest
from malak_pipe.mcu.golden import run_golden
from malak_pipe.mcu.ir import IntGraph


def host_check(graph: IntGraph, sources: Path, images: int, seed: int = 0) -> float | None:
    """Fraction of random int8 inputs whose outputs match bit for bit; None without a host compiler.

    A mismatch is a bug of the code generator or kernels: StageFailed names the first image.
    """
    try:
        hosttest.host_compiler()
    except StageSkipped:
        return None
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(images, *graph.input_tensor.shape), dtype=np.int64).astype(np.int8)
    with tempfile.TemporaryDirectory(prefix="mk-selfcheck-") as tmp:
        exe = hosttest.build_host_model(sources, Path(tmp))
        layers = len(json.loads((sources / "plan.json").read_text())["layers"])
        out = hosttest.run_host_model(exe, x, graph.output_tensor.size, layers)
    golden = run_golden(graph, x).reshape(images, -1)
    same = (out.logits == golden).all(axis=1)
    if not same.all():
        first = int(np.flatnonzero(~same)[0])
        raise StageFailed(
            f"the generated C differs from the golden reference on random input {first} "
            f"({int((~same).sum())} of {images} differ): a code generator or kernel bug",
            path=str(sources),
        )
    return float(same.mean())
