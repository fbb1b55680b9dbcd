"""The config objects of mixed precision: per-layer weight bits, sensitivity, bit allocation.

Weights of conv, depthwise and linear layers are 8 or 4 bits, symmetric per output channel
(4-bit values in [-8, 7]); activations stay int8. Like every compression config these are
versioned, frozen and round-trip through JSON, and nothing here imports torch::

    bits = WeightBitsConfig(layers={"fc1": 4, "conv2": 4})
    int8 = StaticPTQ(StaticPTQConfig(), bits).quantize(model, data)

``clip`` is how a 4-bit layer's per-channel range is chosen in PTQ: "minmax" (the largest
weight sets the scale, round to nearest) or "mse" (the scale, among ``clip_grid`` candidates
from the min-max one down to ``clip_floor`` of it, that minimizes each channel's squared
weight error). QAT learns through its fake-quantizers and ignores ``clip``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from malak_pipe.compress.configs import CompressionConfig

Bits = Literal[4, 8]
WeightClip = Literal["minmax", "mse"]
WEIGHT_RANGES: dict[int, tuple[int, int]] = {8: (-128, 127), 4: (-8, 7)}
"""The integer range of symmetric weights at each bit-width."""


class WeightBitsConfig(CompressionConfig):
    """Weight bit-width per layer (module names of the float model; absent: 8 bits).

    ``clip`` applies to every 4-bit layer in PTQ unless ``clip_overrides`` names another for it.
    """

    layers: dict[str, Bits] = Field(default_factory=dict)
    clip: WeightClip = "mse"
    clip_overrides: dict[str, WeightClip] = Field(default_factory=dict)
    clip_grid: PositiveInt = 64
    clip_floor: float = Field(default=0.3, gt=0.0, lt=1.0)

    def bits(self, name: str) -> int:
        """The weight bit-width of layer ``name``."""
        return self.layers.get(name, 8)

    def four_bit(self) -> tuple[str, ...]:
        """The layers at 4 bits, sorted."""
        return tuple(sorted(name for name, bits in self.layers.items() if bits == 4))

    def clip_of(self, name: str) -> WeightClip:
        """How the 4-bit layer ``name`` picks its range in PTQ."""
        return self.clip_overrides.get(name, self.clip)


class SensitivityConfig(CompressionConfig):
    """Each layer alone at 4 bits (every other layer int8), measured on the val split.

    ``layers`` empty: every conv, depthwise and linear layer. Each layer is quantized once per
    entry of ``clips``; the output KL divergence (int8 model || layer at 4 bits) is averaged
    over the first ``kl_batches`` val batches of ``kl_batch_size`` images.
    """

    layers: tuple[str, ...] = ()
    clips: tuple[WeightClip, ...] = Field(default=("minmax", "mse"), min_length=1)
    clip_grid: PositiveInt = 64
    clip_floor: float = Field(default=0.3, gt=0.0, lt=1.0)
    kl_batches: PositiveInt = 8
    kl_batch_size: PositiveInt = 256


Budget = Literal["target", "flash_bytes", "weight_bytes", "average_bits"]
Solver = Literal["knapsack", "greedy", "random"]


class MixedPrecisionConfig(CompressionConfig):
    """Which layers go to 4 bits under a budget, chosen from a sensitivity table (val only).

    ``budget``: "target" (the target's flash), "flash_bytes" (a flash size) — both predict the
    firmware's flash as the int8 firmware's measured flash minus the weight bytes the 4-bit
    layers save, keeping ``flash_margin_bytes`` for the int4 kernels' code —, "weight_bytes"
    (the weights as the firmware stores them) or "average_bits" (mean weight bits over the
    layers of the table, weighted by parameters). ``solver``: "knapsack" (exact: minimum
    predicted drop), "greedy" (by predicted drop per byte saved) or "random" (a uniform draw,
    with ``seed``, among the layer sets that meet the budget: the control). The predicted drop
    of a layer is its val accuracy drop (``cost: val_drop``, negative values count as 0, the KL
    breaks ties) or its output KL (``cost: kl``). ``clip: auto`` takes per layer the clip with
    the smaller val drop in the table. ``finetune``: "ptq" or a short "qat".
    """

    budget: Budget = "target"
    flash_bytes: PositiveInt | None = None
    weight_bytes: PositiveInt | None = None
    average_bits: float | None = Field(default=None, ge=4.0, le=8.0)
    flash_margin_bytes: NonNegativeInt = 1024
    solver: Solver = "knapsack"
    cost: Literal["val_drop", "kl"] = "val_drop"
    clip: Literal["minmax", "mse", "auto"] = "auto"
    finetune: Literal["ptq", "qat"] = "ptq"
    seed: int = 0

    @model_validator(mode="after")
    def _value_of_the_budget(self) -> MixedPrecisionConfig:
        needed = {"flash_bytes": self.flash_bytes, "weight_bytes": self.weight_bytes, "average_bits": self.average_bits}
        if self.budget in needed and needed[self.budget] is None:
            raise ValueError(f"budget '{self.budget}' needs {self.budget} to be set")
        return self
