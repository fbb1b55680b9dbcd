"""The config objects of the compression API: versioned, frozen, round-trip through JSON.

"The config object is the API": every technique takes one of these, and the same object is
what a stage plugin validates, what enters a cache key and what is recorded next to the
compressed model. Nothing here imports torch, so stage configs can reuse these classes and
still validate fast.

    cfg = StaticPTQConfig(backend="x86", calibration_batches=16)
    assert StaticPTQConfig.from_json(cfg.to_json()) == cfg
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveFloat, PositiveInt, model_validator

QuantBackend = Literal["x86", "fbgemm", "qnnpack"]
"""Quantized CPU engines of PyTorch: x86 (oneDNN/fbgemm), fbgemm (server x86), qnnpack (ARM)."""

ActivationObserver = Literal["minmax", "histogram", "moving_average_minmax"]
"""How activation ranges are observed: running min/max, histogram (L2-optimal range search)
or an exponential moving average of batch min/max (the usual choice for QAT)."""

PRUNABLE_LAYER_KINDS = ("conv", "linear")
DYNAMIC_LAYER_KINDS = ("linear", "lstm", "gru")


class CompressionConfig(BaseModel):
    """Base of every compression config: unknown keys are errors, objects are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    config_version: Literal[1] = 1

    def to_json(self) -> str:
        """The config as canonical JSON (sorted keys), suitable for hashing and storing."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> CompressionConfig:
        """Parse and validate a config written by :meth:`to_json`."""
        return cls.model_validate_json(text)


class DynamicPTQConfig(CompressionConfig):
    """Dynamic post-training quantization: int8 weights, activations quantized on the fly.

    Only Linear and recurrent layers (LSTM, GRU) have dynamic int8 kernels in PyTorch.
    """

    kind: Literal["dynamic_ptq"] = "dynamic_ptq"
    backend: QuantBackend = "x86"
    layers: tuple[Literal["linear", "lstm", "gru"], ...] = Field(default=DYNAMIC_LAYER_KINDS, min_length=1)


class StaticPTQConfig(CompressionConfig):
    """Static post-training quantization calibrated on batches of the training split.

    Weights: symmetric int8, per output channel when ``per_channel``; activations: asymmetric
    uint8 per tensor. Conv-BN-ReLU (and Linear-ReLU) are fused before observers are placed.
    """

    kind: Literal["static_ptq"] = "static_ptq"
    backend: QuantBackend = "x86"
    observer: Literal["minmax", "histogram"] = "histogram"
    per_channel: bool = True
    calibration_batches: PositiveInt = 32
    calibration_batch_size: PositiveInt = 64
    seed: int = 0


class QATConfig(CompressionConfig):
    """Quantization-aware training: fake-quantize in training, then convert to int8.

    ``freeze_observers_after_epoch`` = K stops updating activation/weight ranges once K epochs
    have run; ``freeze_bn_after_epoch`` = J switches batch norm to its running statistics after
    J epochs (the recipe of Krishnamoorthi 2018). None keeps them updating throughout.
    """

    kind: Literal["qat"] = "qat"
    backend: QuantBackend = "x86"
    observer: Literal["moving_average_minmax"] = "moving_average_minmax"
    per_channel: bool = True
    freeze_observers_after_epoch: NonNegativeInt | None = None
    freeze_bn_after_epoch: NonNegativeInt | None = None


class MagnitudePruneConfig(CompressionConfig):
    """L1 (magnitude) unstructured pruning of conv and linear weights (never BN or biases).

    ``scope`` "local" prunes every layer to the target sparsity; "global" ranks all weights
    together. ``schedule`` "one_shot" prunes once; "gradual" follows the polynomial schedule
    of Zhu & Gupta (2017), as TFMOT and SparseML do::

        s_t = s_f + (s_i - s_f) * (1 - t / n) ** 3,   t = 1..n

    with ``epochs_per_step`` epochs of fine-tuning after each step.
    """

    kind: Literal["magnitude_prune"] = "magnitude_prune"
    sparsity: float = Field(default=0.5, ge=0.0, lt=1.0)
    scope: Literal["local", "global"] = "local"
    schedule: Literal["one_shot", "gradual"] = "one_shot"
    initial_sparsity: float = Field(default=0.0, ge=0.0, lt=1.0)
    steps: PositiveInt = 4
    epochs_per_step: NonNegativeInt = 1
    layer_kinds: tuple[Literal["conv", "linear"], ...] = Field(default=PRUNABLE_LAYER_KINDS, min_length=1)
    skip_first: bool = False
    skip_last: bool = False
    exclude: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _initial_below_final(self) -> MagnitudePruneConfig:
        if self.schedule == "gradual" and self.initial_sparsity > self.sparsity:
            raise ValueError(
                f"initial_sparsity ({self.initial_sparsity}) must not exceed sparsity ({self.sparsity}) "
                "for a gradual schedule"
            )
        return self


class StructuredPruneConfig(CompressionConfig):
    """Channel (filter) pruning that removes channels and yields a smaller dense model.

    ``importance``: "l1"/"l2" norm of each filter group, or "bn_scale" (|gamma| of the batch
    norm after it: network slimming). ``scope`` "uniform" removes ``ratio`` of the channels of
    every layer; "global" ranks channels across layers (no layer loses more than
    ``max_layer_ratio``). The final classifier's outputs are never pruned. With
    ``iterative_steps`` > 1 the ratio is reached in equal steps, with ``epochs_per_step``
    epochs of fine-tuning between them.
    """

    kind: Literal["structured_prune"] = "structured_prune"
    ratio: float = Field(default=0.3, ge=0.0, lt=1.0)
    importance: Literal["l1", "l2", "bn_scale"] = "l1"
    scope: Literal["uniform", "global"] = "uniform"
    max_layer_ratio: float = Field(default=0.9, gt=0.0, le=1.0)
    iterative_steps: PositiveInt = 1
    epochs_per_step: NonNegativeInt = 0
    round_to: PositiveInt | None = None
    ignore_layers: tuple[str, ...] = ()


class FeatureHint(CompressionConfig):
    """A FitNets hint: match a student feature map to a teacher one through a 1x1 adapter.

    Layer names are module paths as in ``model.named_modules()`` (e.g. "features.3").
    """

    student_layer: str = Field(min_length=1)
    teacher_layer: str = Field(min_length=1)
    weight: PositiveFloat = 1.0


class DistillConfig(CompressionConfig):
    """Hinton knowledge distillation, optionally with FitNets feature hints.

    loss = alpha * T^2 * KL(p_teacher^T || p_student^T) + (1 - alpha) * CE(student, y)
           + sum_h weight_h * MSE(adapter_h(student_h), teacher_h)
    """

    kind: Literal["distill"] = "distill"
    alpha: float = Field(default=0.7, ge=0.0, le=1.0)
    temperature: PositiveFloat = 4.0
    hints: tuple[FeatureHint, ...] = ()
