"""The quantization API: DynamicPTQ, StaticPTQ and QAT, each driven by its config object.

Any ``nn.Module`` (traceable by torch.fx) and any data: a DataLoader or iterable of
``(inputs, labels)`` batches, or the library's in-memory Dataset (the fast path)::

    from malak_pipe.compress import QAT, QATConfig
    qat = QAT(QATConfig(backend="x86"))
    model = qat.prepare(model)
    model = qat.train(model, train_loader, val_loader, epochs=5)
    int8 = qat.convert(model)

    int8 = StaticPTQ(StaticPTQConfig(calibration_batches=16)).quantize(model, train_loader)

``QAT.fit`` is the same fine-tuning returning the :class:`~malak_pipe.training.FitResult`.

``recipe(model, input_shape)`` gives the :class:`QuantRecipe` to store next to the int8 model
(see :class:`~malak_pipe.compress.artifact.QuantizedModelArtifact`). All torch.ao calls live in
``_quant_backend``.

Weights are int8 unless ``with_weight_bits`` puts layers at 4 bits (activations stay int8)::

    bits = WeightBitsConfig(layers={"fc1": 4}, clip="mse")
    int8 = StaticPTQ(StaticPTQConfig()).with_weight_bits(bits).quantize(model, data)
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from malak_pipe.compress import _quant_backend as backend
from malak_pipe.compress.artifact import float_shapes
from malak_pipe.compress.configs import DynamicPTQConfig, QATConfig, StaticPTQConfig
from malak_pipe.compress.precision import WeightBitsConfig
from malak_pipe.compress.recipe import QuantRecipe, activation_range
from malak_pipe.compress.weight_quant import check_layer_names
from malak_pipe.errors import ConfigError
from malak_pipe.training.settings import FitSettings, fit_settings

QAT_FINETUNE = FitSettings(epochs=3, lr=1e-4)
"""What :meth:`QAT.train` fine-tunes with unless told otherwise (the qat stage's default too)."""


class _Quantizer:
    """What every quantizer shares: the recipe stored next to its int8 model."""

    def recipe(self, model: nn.Module, input_shape: Sequence[int]) -> QuantRecipe:
        """How the int8 model of the float ``model`` is rebuilt (stored with it)."""
        return self._scheme().model_copy(
            update={"input_shape": tuple(input_shape), "float_shapes": float_shapes(model)}
        )

    def _scheme(self) -> QuantRecipe:
        """The numerics of the recipe (no shapes): what quantizing needs."""
        raise NotImplementedError


class DynamicPTQ(_Quantizer):
    """Int8 weights for Linear/LSTM/GRU layers; activations are quantized at run time."""

    def __init__(self, config: DynamicPTQConfig | None = None):
        self.config = config or DynamicPTQConfig()

    def quantize(self, model: nn.Module) -> nn.Module:
        """An int8 copy of ``model`` (``model`` is left untouched)."""
        return backend.quantize_dynamic(model, self._scheme())

    def quantizable_fraction(self, model: nn.Module) -> float:
        """Fraction of ``model``'s parameters in layers this quantizer converts."""
        return backend.dynamic_param_fraction(model, self.config.layers)

    def _scheme(self) -> QuantRecipe:
        return QuantRecipe(mode="dynamic", backend=self.config.backend, dynamic_layers=self.config.layers)


class _GraphModeQuantizer(_Quantizer):
    """Shared prepare/convert of the static and QAT flows (torch.ao FX graph mode)."""

    mode: str
    config: StaticPTQConfig | QATConfig
    weight_bits: WeightBitsConfig = WeightBitsConfig()

    def with_weight_bits(self, weight_bits: WeightBitsConfig):  # -> the same quantizer class
        """A copy of this quantizer with ``weight_bits`` (layers at 4 bits; the rest int8)."""
        if weight_bits.four_bit() and not self.config.per_channel:
            raise ConfigError("4-bit weights are per output channel", hint="set per_channel: true")
        quantizer = copy.copy(self)
        quantizer.weight_bits = weight_bits
        return quantizer

    def prepare(self, model: nn.Module) -> nn.Module:
        """A fused copy of ``model`` (left untouched) with observers (static) or fake-quantizers (QAT)."""
        check_layer_names(model, self.weight_bits.four_bit(), "weight_bits.layers")
        return backend.prepare(model, self._scheme())

    def convert(self, prepared: nn.Module) -> nn.Module:
        """The int8 model (real int8 kernels) of a calibrated or trained prepared model."""
        return backend.convert(prepared, self._scheme())  # type: ignore[arg-type]

    def _scheme(self) -> QuantRecipe:
        """The numerics of the recipe (no shapes): what prepare and convert need."""
        return QuantRecipe(
            mode=self.mode,  # type: ignore[arg-type]
            backend=self.config.backend,
            per_channel=self.config.per_channel,
            activation_observer=self.config.observer,
            activation_quant_range=activation_range(self.config.backend),
            **_precision_fields(self.weight_bits, self.mode),
        )


def _precision_fields(bits: WeightBitsConfig, mode: str) -> dict[str, Any]:
    """The recipe's record of the 4-bit layers (and, in PTQ, how each clipped its range)."""
    four = bits.four_bit()
    fields: dict[str, Any] = {"weight_bits": dict.fromkeys(four, 4)}
    if mode == "static" and four:
        fields.update(
            weight_clips={name: bits.clip_of(name) for name in four},
            weight_clip_grid=bits.clip_grid,
            weight_clip_floor=bits.clip_floor,
        )
    return fields


class StaticPTQ(_GraphModeQuantizer):
    """Post-training static quantization: fuse, observe calibration batches, convert."""

    mode = "static"

    def __init__(self, config: StaticPTQConfig | None = None):
        self.config = config or StaticPTQConfig()

    def calibration_batches(self, data: Any) -> list[torch.Tensor]:
        """The configured number of input batches: from an in-memory Dataset's TRAIN split
        (never val or test; ``calibration_batch_size`` images each, drawn with ``seed``), or the
        first ``calibration_batches`` batches of a DataLoader (its own batch size) or of a list
        of input tensors."""
        if hasattr(data, "calibration_batches"):
            return data.calibration_batches(
                self.config.calibration_batches, self.config.calibration_batch_size, seed=self.config.seed
            )
        from malak_pipe.data.batches import inputs

        return inputs(data, max_batches=self.config.calibration_batches)

    def calibrate(self, prepared: nn.Module, data: Any) -> None:
        """Feed calibration batches through the observers of ``prepared``: those of
        :meth:`calibration_batches` (a list of input tensors is taken as it is)."""
        if isinstance(data, Sequence) and all(isinstance(batch, torch.Tensor) for batch in data):
            backend.calibrate(prepared, list(data))
            return
        backend.calibrate(prepared, self.calibration_batches(data))

    def quantize(self, model: nn.Module, data: Any) -> nn.Module:
        """prepare -> calibrate on ``data`` (a Dataset's train split, or a loader) -> convert."""
        prepared = self.prepare(model)
        self.calibrate(prepared, self.calibration_batches(data))
        return self.convert(prepared)


class QAT(_GraphModeQuantizer):
    """Quantization-aware training: fake-quantized fine-tuning, then conversion to int8.

    During :meth:`train` the fake-quantizers update their ranges only in training mode, so
    the validation passes that pick the best epoch do not move the activation ranges.
    """

    mode = "qat"

    def __init__(self, config: QATConfig | None = None):
        self.config = config or QATConfig()
        self.last_fit: Any = None

    def observers_frozen(self, epoch: int) -> bool:
        """Whether ranges stop updating in ``epoch`` (epochs from 1; frozen after epoch K)."""
        after = self.config.freeze_observers_after_epoch
        return after is not None and epoch > after

    def bn_frozen(self, epoch: int) -> bool:
        """Whether BN uses running statistics in ``epoch`` (frozen after epoch J)."""
        after = self.config.freeze_bn_after_epoch
        return after is not None and epoch > after

    def train(
        self,
        prepared: nn.Module,
        train: Any,
        val: Any = None,
        *,
        epochs: int | None = None,
        settings: FitSettings | None = None,
        progress: Any = None,
        **fit_fields: Any,
    ) -> Any:
        """Fine-tune ``prepared`` (from :meth:`prepare`) in place on ``train``, choosing the best
        epoch on ``val``; returns it, ready for :meth:`convert`.

        ``train``/``val`` are DataLoaders (or any (inputs, labels) batches), or ``train`` is an
        in-memory Dataset (validated on its val split). ``settings`` default to
        :data:`QAT_FINETUNE`; ``epochs`` and other FitSettings fields (``lr=...``) override them.
        The FitResult is kept as ``self.last_fit``. The earlier form ``train(prepared, data,
        settings)`` (FitSettings in third place) still works and returns the FitResult, like
        :meth:`fit`.
        """
        if isinstance(val, FitSettings):  # the earlier form train(prepared, data, settings): its FitResult
            return self.fit(prepared, train, val, progress=progress)
        chosen = fit_settings(settings or QAT_FINETUNE, epochs=epochs, **fit_fields)
        self.last_fit = self.fit(prepared, train, chosen, val=val, progress=progress)
        return prepared

    def fit(self, prepared: nn.Module, data: Any, settings: Any, *, val: Any = None, progress: Any = None) -> Any:
        """Fine-tune ``prepared`` in place with ``malak_pipe.training.fit``; returns its FitResult."""
        from malak_pipe.training import fit

        if not backend.has_fake_quant(prepared):
            raise ConfigError(
                f"the {type(prepared).__name__} has no fake-quantizers to train",
                hint="call qat.prepare(model) first and train what it returns",
            )
        trainee = _ObserveWhileTraining(prepared)

        def on_epoch_start(epoch: int, _module: nn.Module) -> None:
            trainee.observers_frozen = self.observers_frozen(epoch)
            if self.bn_frozen(epoch):
                backend.freeze_bn_stats(prepared)
            trainee.train()

        result = fit(trainee, data, settings, val=val, on_epoch_start=on_epoch_start, progress=progress)
        backend.freeze_observers(prepared)
        return result


class _ObserveWhileTraining(nn.Module):
    """Wraps a QAT model so its fake-quantizers observe only in training mode."""

    def __init__(self, prepared: nn.Module):
        super().__init__()
        self.prepared = prepared
        self.observers_frozen = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prepared(x)

    def train(self, mode: bool = True) -> _ObserveWhileTraining:
        super().train(mode)
        if mode and not self.observers_frozen:
            backend.unfreeze_observers(self.prepared)
        else:
            backend.freeze_observers(self.prepared)
        return self
