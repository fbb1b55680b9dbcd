"""The config objects of the deployment API: one per technique, each default written once.

Export, int8 ONNX, profiling and drift each take one of these; the stage plugins subclass them
(``class ExportONNXConfig(StageConfig, OnnxExportConfig)``) and conf/stage/<name>/default.yaml
shows the same defaults (tests/config/test_stage_defaults.py holds the three equal). Nothing
here imports torch or onnxruntime, so stage configs validate fast.

    cfg = OrtQuantConfig(calibrate_method="entropy")
    assert OrtQuantConfig.from_json(cfg.to_json()) == cfg
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

from malak_pipe.compress.configs import CompressionConfig

ActivationType = Literal["int8", "uint8"]
"""Integer type of int8-model activations in ONNX: uint8 (U8S8 in ONNX Runtime) or int8."""

CalibrateMethod = Literal["minmax", "entropy", "percentile"]


class DeployConfig(CompressionConfig):
    """Base of every deployment config: the compression configs' contract, inherited.

    Unknown keys are errors, objects are immutable, ``config_version`` is recorded, and
    ``to_json`` / ``from_json`` round-trip.
    """

    @classmethod
    def of(cls, config: BaseModel, **changes: Any) -> Self:
        """This config, with the values of the fields it shares with ``config`` (and ``changes``)."""
        shared = {name: getattr(config, name) for name in cls.model_fields if name in type(config).model_fields}
        return cls(**{**shared, **changes})


class OrtEvalConfig(DeployConfig):
    """How a stage evaluates an ONNX model in ONNX Runtime."""

    eval_threads: PositiveInt = 1


class OnnxGraphConfig(DeployConfig):
    """The opset and the input batch of an exported ONNX graph."""

    opset: int = 18
    batch_size: PositiveInt = 1
    dynamic_batch: bool = False


class OnnxExportConfig(OnnxGraphConfig, OrtEvalConfig):
    """FP32 export (:func:`malak_pipe.deploy.onnx_export.export_onnx`) and its parity check.

    ``require_bn_folded`` fails the export when a BatchNormalization node remains; the parity
    check compares ONNX Runtime with PyTorch on ``parity_samples`` held-out images and allows
    ``parity_atol`` of absolute logit difference.
    """

    require_bn_folded: bool = True
    parity_atol: PositiveFloat = 1e-4
    parity_samples: PositiveInt = 64


class Int8OnnxConfig(DeployConfig):
    """What both routes to an int8 ONNX model share: activation types and the calibration sample.

    ``activation_type`` is the QDQ model's; ``qoperator_activation_type`` that of its QOperator
    twin. Calibration images are drawn from the TRAIN split in batches of
    ``calibration_batch_size`` with ``seed``.
    """

    activation_type: ActivationType = "uint8"
    qoperator_activation_type: ActivationType = "uint8"
    calibration_batch_size: PositiveInt = 32
    seed: int = 0


class OrtQuantConfig(Int8OnnxConfig):
    """ONNX Runtime static quantization (:func:`malak_pipe.deploy.onnx_quant.quantize_ort_static`).

    ``calibration_batches`` TRAIN batches calibrate with ``calibrate_method``; ``percentile``
    applies to percentile calibration, ``entropy_bins`` (histogram bins) to entropy
    calibration. ``reduce_range`` writes 7-bit weights (x86 CPUs without VNNI).
    """

    calibration_batches: PositiveInt = 16
    calibrate_method: CalibrateMethod = "minmax"
    percentile: float = 99.999
    entropy_bins: PositiveInt = 2048
    per_channel: bool = True
    reduce_range: bool = False


class TorchQDQConfig(Int8OnnxConfig, OnnxGraphConfig):
    """The project's torch int8 model written as QDQ ONNX (:mod:`malak_pipe.deploy.torch_qdq`)."""


class LatencyConfig(DeployConfig):
    """How one model is timed: ``warmup`` untimed calls, then ``runs`` timed calls.

    The runs are taken in ``rounds`` blocks, interleaved across the variants timed together.
    """

    warmup: NonNegativeInt = 10
    runs: PositiveInt = 200
    rounds: PositiveInt = 10


class ProfileConfig(LatencyConfig):
    """Latency at every (batch size, threads) setting, per-layer tables and peak memory.

    The first batch size and thread count are the primary setting. ``per_layer`` tables
    average ``per_layer_runs`` calls and list the ``top_layers`` slowest layers; ``memory``
    measures peak RSS over ``memory_runs`` calls in a fresh process per model.
    """

    batch_sizes: tuple[PositiveInt, ...] = Field(default=(1,), min_length=1)
    threads: tuple[PositiveInt, ...] = Field(default=(1,), min_length=1)
    per_layer: bool = True
    per_layer_runs: PositiveInt = 20
    top_layers: PositiveInt = 10
    memory: bool = True
    memory_runs: PositiveInt = 20


class DriftThresholds(DeployConfig):
    """When a drift feature counts as drifted: PSI or KL above these plus the expected sampling bias.

    ``psi`` / ``kl`` hold for the input features, ``output_psi`` / ``output_kl`` for the
    predicted classes and the confidence histogram; more than ``region_fraction`` of the
    region features must drift to flag the regions. ``alpha`` smooths histogram counts;
    batches under ``min_samples`` images get no verdict. A reference stores these.
    """

    psi: PositiveFloat = 0.2
    kl: PositiveFloat = 0.1
    output_psi: PositiveFloat = 0.2
    output_kl: PositiveFloat = 0.1
    region_fraction: float = Field(default=0.25, ge=0.0, le=1.0)
    alpha: PositiveFloat = 0.5
    min_samples: PositiveInt = 30


class DriftConfig(DriftThresholds):
    """A drift reference, its verdict thresholds and the synthetic shifts of its self-check.

    The reference has ``bins`` pixel-value bins per channel (plus two open-ended ones) and
    ``region_bins`` bins per region mean of a ``grid`` (rows, cols); its output statistics
    come from the ``output_reference`` split. The self-check shifts test images by
    ``brightness_raw`` and Gaussian noise of ``noise_std_raw`` (raw [0, 1] pixel units) and
    keeps ``prior_keep_fraction`` of the second half of the classes, drawn with ``seed``.
    """

    bins: PositiveInt = 20
    region_bins: PositiveInt = 10
    grid: tuple[PositiveInt, PositiveInt] = (4, 4)
    output_reference: Literal["train", "val"] = "train"
    brightness_raw: float = 0.3
    noise_std_raw: NonNegativeFloat = 0.1
    prior_keep_fraction: float = Field(default=0.2, ge=0.0, le=1.0)
    seed: int = 0
