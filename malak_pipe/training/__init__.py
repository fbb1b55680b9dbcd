"""Training and evaluation of classifiers, on in-memory datasets or any DataLoader.

``FitSettings`` imports no torch; the rest is imported on first use::

    from malak_pipe.training import FitSettings, fit, evaluate
    result = fit(module, dataset, FitSettings(epochs=5, lr=1e-3))
    print(result.best_epoch, evaluate(module, dataset, "test").top1)

    result = fit(module, train_loader, FitSettings(epochs=5), val=val_loader)
    print(evaluate(module, test_loader).top1)
"""

from __future__ import annotations

import importlib
from typing import Any

from malak_pipe.training.settings import FitSettings, fit_settings

_LAZY: dict[str, str] = {
    "fit": "malak_pipe.training.loop",
    "FitResult": "malak_pipe.training.loop",
    "total_steps": "malak_pipe.training.loop",
    "steps_per_epoch": "malak_pipe.training.sources",
    "cross_entropy_loss": "malak_pipe.training.loop",
    "evaluate": "malak_pipe.training.evaluation",
    "EvalResult": "malak_pipe.training.evaluation",
    "per_class_accuracy": "malak_pipe.training.evaluation",
    "seed_everything": "malak_pipe.training.seeding",
    "lr_at": "malak_pipe.training.schedule",
    "make_optimizer": "malak_pipe.training.schedule",
    "model_metrics": "malak_pipe.models.metrics",
}

__all__ = ["FitSettings", "fit_settings", *_LAZY]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'malak_pipe.training' has no attribute '{name}'")
    return getattr(importlib.import_module(module_name), name)
