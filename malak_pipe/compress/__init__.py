"""Compression techniques as a small Python API: quantize, prune, distill.

Every technique is a class taking one versioned config object (see ``configs``), any
``nn.Module`` and standard DataLoaders (or any iterable of (inputs, labels) batches; the
library's in-memory Dataset is the fast path)::

    from malak_pipe.compress import QAT, QATConfig
    qat = QAT(QATConfig(backend="x86"))
    model = qat.prepare(model)
    model = qat.train(model, train_loader, val_loader, epochs=5)
    int8 = qat.convert(model)

    int8 = StaticPTQ(StaticPTQConfig()).quantize(model, train_loader)        # calibrate on a loader
    MagnitudePruner(MagnitudePruneConfig(sparsity=0.5)).run(model, train_loader, FitSettings(epochs=2), val=val_loader)
    student = KnowledgeDistiller(DistillConfig()).train(student, teacher, train_loader, val_loader, epochs=5)

The configs import no torch; the techniques are imported on first use, so stage plugins can
validate their configs without loading torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from malak_pipe.compress.configs import (
    CompressionConfig,
    DistillConfig,
    DynamicPTQConfig,
    FeatureHint,
    MagnitudePruneConfig,
    QATConfig,
    StaticPTQConfig,
    StructuredPruneConfig,
)
from malak_pipe.compress.recipe import QuantRecipe

_LAZY: dict[str, str] = {
    "QuantizedModelArtifact": "malak_pipe.compress.artifact",
    "TORCH_MODEL_INT8": "malak_pipe.compress.artifact",
    "DynamicPTQ": "malak_pipe.compress.quantize",
    "StaticPTQ": "malak_pipe.compress.quantize",
    "QAT": "malak_pipe.compress.quantize",
    "MagnitudePruner": "malak_pipe.compress.magnitude",
    "polynomial_schedule": "malak_pipe.compress.magnitude",
    "sparse_size_bytes": "malak_pipe.compress.magnitude",
    "StructuredPruner": "malak_pipe.compress.structured",
    "KnowledgeDistiller": "malak_pipe.compress.distill",
    "kd_loss": "malak_pipe.compress.distill",
    "comparison_metrics": "malak_pipe.compress.report",
    "artifact_bytes": "malak_pipe.compress.report",
    "pack_state": "malak_pipe.compress.packing",
    "unpack_state": "malak_pipe.compress.packing",
}

__all__ = [
    "CompressionConfig",
    "DistillConfig",
    "DynamicPTQConfig",
    "FeatureHint",
    "MagnitudePruneConfig",
    "QATConfig",
    "QuantRecipe",
    "StaticPTQConfig",
    "StructuredPruneConfig",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'malak_pipe.compress' has no attribute '{name}'")
    return getattr(importlib.import_module(module_name), name)
