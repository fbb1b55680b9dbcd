"""Shared test set-up: one torch thread (2-core machines), no downloads, a private cache."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own cache dir unless it sets MALAK_CACHE_DIR itself."""
    monkeypatch.setenv("MALAK_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def pytest_configure(config):
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # engine-only environments
        pass
