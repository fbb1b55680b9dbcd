"""FitSettings: every knob of a training run (imports no torch, so stage configs stay light)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    model_validator,
)


class FitSettings(BaseModel):
    """How to train: epochs, batching, optimizer, learning-rate schedule, seeding.

    ``schedule``: "none" keeps ``lr``; "cosine" anneals it to zero over the epochs after
    warm-up; "step" multiplies it by ``gamma`` every ``step_size`` epochs. ``warmup_epochs``
    ramps it linearly from lr/steps to lr, batch by batch. ``max_batches_per_epoch`` cuts
    epochs short for smoke runs. ``num_threads`` sets torch's intra-op threads during the fit
    (restored afterwards). ``augment`` turns on the dataset's train-time augmentation.
    """

    model_config = ConfigDict(extra="forbid")

    epochs: PositiveInt = 10
    batch_size: PositiveInt = 64
    optimizer: Literal["sgd", "adam", "adamw"] = "adam"
    lr: float = Field(default=1e-3, gt=0.0)
    momentum: NonNegativeFloat = 0.9
    weight_decay: NonNegativeFloat = 0.0
    nesterov: bool = False
    schedule: Literal["none", "cosine", "step"] = "none"
    step_size: PositiveInt = 10
    gamma: float = Field(default=0.1, gt=0.0)
    warmup_epochs: NonNegativeInt = 0
    label_smoothing: float = Field(default=0.0, ge=0.0, lt=1.0)
    max_batches_per_epoch: PositiveInt | None = None
    seed: int = 0
    deterministic: bool = False
    num_threads: PositiveInt | None = None
    augment: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> FitSettings:
        if self.warmup_epochs >= self.epochs and self.warmup_epochs > 0:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must be smaller than epochs ({self.epochs})")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            raise ValueError("nesterov=true needs optimizer=sgd and momentum > 0")
        return self


def fit_settings(base: FitSettings | None = None, **changes: Any) -> FitSettings:
    """``base`` (default: FitSettings()) with the fields in ``changes`` that are not None, validated."""
    base = base or FitSettings()
    given = {name: value for name, value in changes.items() if value is not None}
    return FitSettings(**{**base.model_dump(), **given}) if given else base
