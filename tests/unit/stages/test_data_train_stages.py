"""The data and train stage plugins, run through the real context (malak_pipe.engine.standalone.run_stage)."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from malak_pipe.data import clear_memo
from malak_pipe.engine.registry import get_stage
from malak_pipe.engine.standalone import run_stage
from malak_pipe.errors import ConfigError
from malak_pipe.models.artifact import load_model
from malak_pipe.stages.data import Data
from malak_pipe.stages.train import Train
from malak_pipe.training import evaluate

torch.set_num_threads(1)

DATA = {
    "name": "synthetic", "root": None, "val_fraction": 0.1, "split_seed": 0, "max_train": None,
    "max_val": None, "max_test": None, "normalize": True, "download": False, "channels": 1,
    "image_size": 8, "num_classes": 4, "n_train": 320, "n_test": 80, "seed": 0,
}  # fmt: skip
MODEL = {"name": "simple_cnn", "in_channels": 1, "num_classes": 4, "image_size": 8, "width_mult": 0.25,
         "factory": None, "kwargs": {}}  # fmt: skip


@pytest.fixture(scope="module")
def dataset_path(tmp_path_factory):
    clear_memo()
    result, outputs = run_stage(Data, DATA, {}, tmp_path_factory.mktemp("run"))
    assert result.metrics["n_train"] == 288 and result.metrics["n_val"] == 32 and result.metrics["n_test"] == 80
    assert result.metrics["num_classes"] == 4 and len(result.metrics["fingerprint"]) == 64
    return outputs["dataset"]


def test_stages_are_registered():
    assert get_stage("data") is Data and get_stage("train") is Train


def test_data_stage_config_is_strict_and_fingerprints_its_source(dataset_path):
    with pytest.raises(ValidationError):
        Data.Config.model_validate({**DATA, "bogus": 1})
    cfg = Data.Config.model_validate(DATA)
    assert Data.source_fingerprint(cfg) != Data.source_fingerprint(Data.Config.model_validate({**DATA, "seed": 1}))
    assert dataset_path.name.startswith("dataset.") and dataset_path.is_file()


def test_train_stage_trains_saves_and_reports(dataset_path, tmp_path):
    config = {"model": MODEL, "seed": 0, "epochs": 3, "batch_size": 32, "lr": 0.003}
    result, outputs = run_stage(Train, config, {"data": dataset_path}, tmp_path)
    metrics = result.metrics
    for name in ("val_top1", "test_top1", "test_loss", "test_per_class_top1", "best_epoch", "epochs", "params",
                 "macs", "size_bytes", "train_seconds", "samples_per_second", "loss_curve", "val_curve"):  # fmt: skip
        assert name in metrics, name
    assert metrics["test_top1"] > 0.6 and len(metrics["test_per_class_top1"]) == 4
    assert len(metrics["loss_curve"]) == len(metrics["val_curve"]) == 3
    assert metrics["val_top1"] == max(metrics["val_curve"])
    artifact = load_model(outputs["model"])
    assert artifact.config.name == "simple_cnn"
    from malak_pipe.data.artifact import load_dataset_artifact

    dataset = load_dataset_artifact(dataset_path)
    assert evaluate(artifact.module, dataset, "test").top1 == metrics["test_top1"]


def test_train_stage_refuses_a_model_that_does_not_fit_the_data(dataset_path, tmp_path):
    config = {"model": {**MODEL, "in_channels": 3}, "epochs": 1}
    with pytest.raises(ConfigError, match="model.in_channels is 3 but the dataset has 1"):
        run_stage(Train, config, {"data": dataset_path}, tmp_path)
