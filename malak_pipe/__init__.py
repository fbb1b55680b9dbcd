"""malak-pipe: declarative, cached, reproducible compression pipelines for edge AI.

``malak_pipe.run(overrides=[...])`` runs a pipeline from Python (see :mod:`malak_pipe.api`);
it is imported on first use, so ``import malak_pipe`` stays light (no torch, no Hydra).
"""

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("malak-pipe")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"

__all__ = ["RunResult", "__version__", "run"]


def __getattr__(name: str) -> Any:
    if name in ("run", "RunResult"):
        # The module is named without a literal import: the engine hashes, for every stage's
        # cache key, the modules each package __init__ on the way imports (malak_pipe.engine.code),
        # and the pipeline runner (engine, CLI) is no code of any stage.
        return getattr(importlib.import_module(f"{__name__}.api"), name)
    raise AttributeError(f"module 'malak_pipe' has no attribute '{name}'")
