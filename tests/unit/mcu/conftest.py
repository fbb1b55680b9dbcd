"""Fixtures of the MCU unit tests: cached digits QDQ models and the host kernel harness."""

from __future__ import annotations

import pytest


def _model_dir(request):
    """pytest's cache dir when the cache plugin is on (models survive runs), else a temp dir."""
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        return cache.mkdir("malak-mcu-models")
    return request.getfixturevalue("tmp_path_factory").mktemp("malak-mcu-models")


@pytest.fixture(scope="session")
def digits_models(request):
    """{cnn,mixed}_{int8,uint8} QDQ ONNX paths, trained once and cached in .pytest_cache."""
    from malak_pipe.mcu.testing import digits_qdq_models

    return digits_qdq_models(_model_dir(request))


@pytest.fixture(scope="session")
def digits_split():
    from malak_pipe.mcu.testing import digits_data

    return digits_data()


@pytest.fixture(scope="session")
def host_harness(tmp_path_factory):
    """The kernel harness compiled with the host C compiler (skipped without one)."""
    from malak_pipe.errors import StageSkipped
    from malak_pipe.mcu import hosttest

    try:
        hosttest.host_compiler()
    except StageSkipped as exc:
        pytest.skip(exc.reason)
    return hosttest.build_harness(tmp_path_factory.mktemp("harness"))
