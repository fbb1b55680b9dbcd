"""Fixtures of the deploy tests: digits, a small SimpleCNN trained on it, its int8 twin, artifacts on disk."""

from __future__ import annotations

import pytest
import torch

from malak_pipe.artifacts import get_type
from malak_pipe.data import DataConfig, load_dataset
from malak_pipe.models import ModelArtifact, ModelConfig, build_model
from malak_pipe.training import FitSettings, fit

torch.set_num_threads(1)

MODEL = ModelConfig(name="simple_cnn", in_channels=1, num_classes=10, image_size=8, width_mult=0.5)


@pytest.fixture(scope="session")
def digits():
    return load_dataset(DataConfig(name="digits"))


@pytest.fixture(scope="session")
def trained(digits):
    """SimpleCNN (half width) trained for a few epochs on digits (about 97% test top-1)."""
    torch.manual_seed(0)
    module = build_model(MODEL)
    fit(module, digits, FitSettings(epochs=6, batch_size=64, lr=3e-3))
    return module.eval()


@pytest.fixture(scope="session")
def int8_artifact(trained, digits):
    """The project's torch int8 model of ``trained`` (static PTQ, x86 engine)."""
    from malak_pipe.compress import QuantizedModelArtifact, StaticPTQ, StaticPTQConfig

    quantizer = StaticPTQ(StaticPTQConfig(calibration_batches=8, calibration_batch_size=32))
    int8 = quantizer.quantize(trained, digits)
    return QuantizedModelArtifact(MODEL, quantizer.recipe(trained, digits.input_shape), int8)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory, digits, trained, int8_artifact):
    """Paths of the dataset, torch_model and torch_model_int8 artifacts, as upstream stages write them."""
    root = tmp_path_factory.mktemp("artifacts")
    paths = {
        "dataset": root / "dataset.dataset.json",
        "torch_model": root / "torch_model.model.pt",
        "torch_model_int8": root / "torch_model_int8.model.pt",
    }
    get_type("dataset").save(digits, paths["dataset"])
    get_type("torch_model").save(ModelArtifact(MODEL, trained), paths["torch_model"])
    get_type("torch_model_int8").save(int8_artifact, paths["torch_model_int8"])
    return paths
