"""The ``data`` stage: load a dataset into memory and split it into train / val / test.

Its config is the ``data`` group (conf/data/*.yaml), wired as ``config: ${data}``: a named
dataset or the user's own (``image_folder``, ``arrays``, ``factory``). The source fingerprint
(a hash of the dataset's files or samples, or of its generating parameters) enters the cache
key, so changed files on disk invalidate the cached node; computing it also checks a user's
data (missing files, empty classes, mixed sizes, NaN, labels out of range), so bad data is a
config-time error (exit 2) before anything trains. A factory's module enters the key through
``DataConfig.code_modules``.
"""

from __future__ import annotations

from typing import cast

from malak_pipe.data.config import DataConfig
from malak_pipe.stage import Stage, StageConfig, StageContext, StageResult


class DataStageConfig(StageConfig, DataConfig):
    """The fields of :class:`malak_pipe.data.DataConfig`, frozen and strict like every stage config."""


def to_data_config(cfg: DataStageConfig) -> DataConfig:
    """The library's DataConfig with the same values (what the dataset artifact records)."""
    return DataConfig(**cfg.model_dump())


class Data(Stage):
    """Load, split and normalize a dataset; its artifact re-materializes it downstream."""

    name = "data"
    version = 1
    Config = DataStageConfig
    inputs = {}
    outputs = {"dataset": "dataset"}
    description = "load a named dataset or your own (image_folder, arrays, factory) and split train/val/test"
    summary = {"n_train": "train {}"}

    @classmethod
    def source_fingerprint(cls, cfg: StageConfig) -> str | None:
        from malak_pipe.data.readers import source_fingerprint

        return source_fingerprint(to_data_config(cast(DataStageConfig, cfg)))

    def run(self, cfg: StageConfig, ctx: StageContext) -> StageResult:
        from malak_pipe.data import load_dataset
        from malak_pipe.data.readers import resolve

        data_cfg = to_data_config(cast(DataStageConfig, cfg))
        dataset = load_dataset(data_cfg)
        stand_in = resolve(data_cfg).name != data_cfg.name
        ctx.save("dataset", dataset)
        sizes = dataset.sizes()
        ctx.log(f"{dataset.name}: {sizes['train']} train, {sizes['val']} val, {sizes['test']} test")
        warnings = []
        if stand_in:
            warnings.append(
                f"{data_cfg.name} is not on this machine: a synthetic stand-in of the same shape was used "
                "(data.missing=synthetic); accuracies of this run say nothing about the real dataset"
            )
        return StageResult(
            warnings=warnings,
            metrics={
                "synthetic_stand_in": stand_in,
                "dataset": data_cfg.name,
                "n_train": sizes["train"],
                "n_val": sizes["val"],
                "n_test": sizes["test"],
                "num_classes": dataset.num_classes,
                "input_shape": list(dataset.input_shape),
                "fingerprint": dataset.fingerprint,
            }
        )
