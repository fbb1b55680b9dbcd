"""DataConfig: which dataset, where its files are, how it is split (imports no torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

# The readers live in malak_pipe.data.readers.READERS under these names.
DATASET_NAMES: tuple[str, ...] = ("digits", "fashion_mnist", "cifar10", "synthetic")
DOWNLOADABLE: tuple[str, ...] = ("fashion_mnist", "cifar10")


class DataConfig(BaseModel):
    """A dataset and its split.

    ``root`` is searched for the files (None: ``./data``). The test split is the dataset's
    official one (digits, which has none, gets a fixed stratified 20%); ``val_fraction`` of the
    train split, drawn stratified with ``split_seed``, becomes the validation split.
    ``max_train``/``max_val``/``max_test`` take deterministic stratified subsets for smoke runs.
    ``channels``, ``image_size`` and ``num_classes`` are the shape the rest of the config relies
    on (the model interpolates them): when set, loading checks them against the data. For
    ``synthetic`` they define the generated data, with ``n_train``, ``n_test`` and ``seed``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "digits"
    root: str | None = None
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    split_seed: int = 0
    max_train: PositiveInt | None = None
    max_val: PositiveInt | None = None
    max_test: PositiveInt | None = None
    normalize: bool = True
    download: bool = False
    channels: PositiveInt | None = None
    image_size: PositiveInt | None = None
    num_classes: PositiveInt | None = None
    n_train: PositiveInt = 1000
    n_test: PositiveInt = 200
    seed: int = 0
    missing: Literal["error", "synthetic"] = "error"

    @field_validator("name")
    @classmethod
    def _known_name(cls, name: str) -> str:
        if name not in DATASET_NAMES:
            raise ValueError(f"unknown dataset '{name}'; use one of {list(DATASET_NAMES)}")
        return name

    @model_validator(mode="after")
    def _download_applies(self) -> DataConfig:
        if self.download and self.name not in DOWNLOADABLE:
            raise ValueError(f"data.download applies to {list(DOWNLOADABLE)} only; {self.name} needs no download")
        return self
