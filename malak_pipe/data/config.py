"""DataConfig: which dataset, where its files are, how it is split (imports no torch)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

# The readers live in malak_pipe.data.readers.READERS under these names.
DATASET_NAMES: tuple[str, ...] = (
    "digits",
    "fashion_mnist",
    "cifar10",
    "synthetic",
    "image_folder",
    "arrays",
    "factory",
)
DOWNLOADABLE: tuple[str, ...] = ("fashion_mnist", "cifar10")
USER_SOURCES: tuple[str, ...] = ("image_folder", "arrays", "factory")
"""The sources of the user's own data (the others are named datasets)."""

ArrayLayout = Literal["auto", "nchw", "nhwc", "ncl", "nlc"]
"""How the axes of an ``arrays`` file are ordered: images N x C x H x W or N x H x W x C,
signals N x C x L or N x L x C; "auto" takes 4-D arrays as NCHW (NHWC when the last axis
has 1, 3 or 4 entries and the second has not) and 3-D arrays as NCL."""


class DataConfig(BaseModel):
    """A dataset and its split.

    ``root`` is searched for the files (None: ``./data``); for ``image_folder`` it is the
    folder of class sub-folders, for ``arrays`` the ``.npz`` file (or a folder of ``.npy``
    files). The test split is the dataset's own one; a source without one (digits, a single
    image tree, arrays without ``x_test``, a factory without a test set) gets a fixed
    stratified ``test_fraction``. ``val_fraction`` of the train split, drawn stratified with
    ``split_seed``, becomes the validation split unless the source has its own.
    ``max_train``/``max_val``/``max_test`` take deterministic stratified subsets for smoke runs.
    ``channels``, ``image_size`` and ``num_classes`` are the shape the rest of the config relies
    on (the model interpolates them): when set, loading checks them against the data. For
    ``image_folder`` they are also the transform: images are converted to 1 (grayscale) or 3
    (RGB) channels and resized to ``image_size`` x ``image_size`` (None: from the images). For
    1-D signals ``image_size`` is the signal length. For ``synthetic`` they define the
    generated data, with ``n_train``, ``n_test`` and ``seed``. ``factory`` is an import string
    ``"pkg.module:callable"`` called with ``kwargs`` and returning torch Datasets (train, val,
    test), for ``name=factory``; ``layout`` and ``class_names`` apply to ``arrays`` and
    ``factory`` data (and ``layout: ncl`` makes ``synthetic`` data 1-D signals).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "digits"
    root: str | None = None
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
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
    layout: ArrayLayout = "auto"
    class_names: tuple[str, ...] | None = None
    factory: str | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)

    def code_modules(self) -> list[str]:
        """The user module a factory dataset is built by: its source enters the cache key of
        the data node (see malak_pipe.stage.UserCode)."""
        if self.name == "factory" and self.factory:
            return [self.factory.partition(":")[0]]
        return []

    @field_validator("name")
    @classmethod
    def _known_name(cls, name: str) -> str:
        if name not in DATASET_NAMES:
            raise ValueError(f"unknown dataset '{name}'; use one of {list(DATASET_NAMES)}")
        return name

    @model_validator(mode="after")
    def _fields_apply(self) -> DataConfig:
        if self.download and self.name not in DOWNLOADABLE:
            raise ValueError(f"data.download applies to {list(DOWNLOADABLE)} only; {self.name} needs no download")
        if self.name != "factory" and (self.factory is not None or self.kwargs):
            raise ValueError(f"data.factory and data.kwargs apply to name=factory only, not name={self.name}")
        if self.name == "synthetic" and self.layout not in ("auto", "nchw", "ncl"):
            raise ValueError(
                f"data.layout={self.layout} does not apply to synthetic data: use nchw (images) or ncl (signals)"
            )
        return self
