"""Fixtures of the MCU unit tests: cached digits QDQ models and the host kernel harness."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def digits_models(request):
    """{cnn,mixed}_{int8,uint8} QDQ ONNX paths, trained once and cached in .pytest_cache."""
    from tests.helpers.mcu_models import digits_qdq_models, model_cache_dir

    return digits_qdq_models(model_cache_dir(request))


@pytest.fixture(scope="session")
def zoo_models(request):
    """The zoo's QDQ graphs by both routes ("<model>/<route>"), built once and cached in .pytest_cache."""
    from tests.helpers.mcu_models import model_cache_dir, zoo_qdq_models

    return zoo_qdq_models(model_cache_dir(request))


@pytest.fixture(scope="session")
def digits_split():
    """(x_train, y_train, x_test, y_test) of the digits dataset as numpy arrays."""
    from tests.helpers.mcu_models import digits_dataset

    data = digits_dataset()
    return data.train.x.numpy(), data.train.y.numpy(), data.test.x.numpy(), data.test.y.numpy()


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
