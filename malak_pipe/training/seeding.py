"""Seeding of every random number generator a training run touches."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python's, numpy's and torch's generators; optionally force deterministic kernels.

    With ``deterministic`` torch raises on ops that have no deterministic implementation, and
    cuBLAS is configured for reproducible results.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
