"""Fixtures of the compression tests: a tiny synthetic dataset and a model trained on it."""

from __future__ import annotations

import copy

import pytest
import torch

from malak_pipe.data import DataConfig, load_dataset
from malak_pipe.data.artifact import DATASET
from malak_pipe.models import ModelArtifact, ModelConfig, build_model
from malak_pipe.models.artifact import TORCH_MODEL
from malak_pipe.training import FitSettings, fit

torch.set_num_threads(1)

DATA = DataConfig(name="synthetic", num_classes=4, channels=1, image_size=8, n_train=320, n_test=80, seed=3)
MODEL = ModelConfig(name="simple_cnn", in_channels=1, num_classes=4, image_size=8, width_mult=0.5)


@pytest.fixture(scope="session")
def dataset():
    return load_dataset(DATA)


@pytest.fixture(scope="session")
def _trained(dataset):
    torch.manual_seed(0)
    module = build_model(MODEL)
    fit(module, dataset, FitSettings(epochs=4, batch_size=32, lr=3e-3))
    return module.eval()


@pytest.fixture
def trained(_trained):
    """A SimpleCNN trained on ``dataset`` (a fresh copy per test, in eval mode)."""
    return copy.deepcopy(_trained)


@pytest.fixture(scope="module")
def files(tmp_path_factory, dataset, _trained):
    """The trained model and the dataset saved as the stages' ``model`` and ``data`` inputs."""
    root = tmp_path_factory.mktemp("inputs")
    DATASET.save(dataset, root / "data.json")
    TORCH_MODEL.save(ModelArtifact(MODEL, _trained), root / "model.pt")
    return {"model": root / "model.pt", "data": root / "data.json"}
