"""The only module of malak-pipe that touches torch.ao.quantization.

Which quantization API, and why (torch 2.13, CPU):

* **torch.ao FX graph mode** (``prepare_fx`` / ``prepare_qat_fx`` / ``convert_fx``) is what we
  use for static PTQ and QAT. It traces the model, fuses conv-bn(-relu) by graph pattern (in
  execution order, not declaration order), quantizes residual ``a + b`` and ``a * b`` as
  quantized adds/muls without touching ``forward``, and falls back to float around ops that
  have no int8 kernel (SiLU...). The converted model runs on real fbgemm/oneDNN/qnnpack int8
  kernels in eager mode, and its ``state_dict`` (int8 tensors, scales, zero points, packed
  linear params as plain tensors) loads with ``torch.load(weights_only=True)``.
* **torch.ao eager mode** is used only for dynamic quantization (``quantize_dynamic``), which
  needs no tracing and is the one path with dynamic int8 LSTM/GRU kernels. Static eager mode
  would need QuantStub/DeQuantStub and module swaps in every model.
* **torchao PT2E** (``prepare_pt2e``/``convert_pt2e`` with ``X86InductorQuantizer``) is the
  successor, and torchao 0.18 installs without pulling a torch (its wheel declares no torch
  requirement). But on this CPU setup it does not serve as well: its converted model is a
  reference graph of quantize/dequantize ops around *float* kernels (2.7x slower than FP32
  in eager, measured on a small CNN), the real int8 kernels appear only after Inductor
  lowering (``lower_pt2e_quantized_to_x86``), which packs weights into opaque oneDNN tensors
  that cannot be saved at all and bakes the batch size into the graph, and every load needs a
  ``torch.export`` re-trace. It also adds a dependency the project does not have.

Both torch.ao paths emit deprecation warnings (torch 2.13 also deprecates creating quantized
tensors at all, pytorch issue 184982, so this path has a horizon); they are silenced here,
around each call, and nowhere else. Moving to torchao means rewriting this one module: the
rest of the library sees only :func:`prepare`, :func:`convert`, :func:`quantize_dynamic`,
:func:`rebuild`, :func:`calibrate` and the freeze helpers.

4-bit weights (the recipe's ``weight_bits``) are qint8 tensors with values in [-8, 7]: their
layers get a per-module qconfig with that range (an MSE-clip observer or min-max in PTQ, a
fake-quantizer of that range in QAT). FX lowers weights without clamping to the observer's
range (max|w| / 7.5 rounds to 8), so :func:`convert` clamps them; in PTQ it also sets the
qconfig of each layer's module before converting, since static weight observers run at
conversion: one calibrated model converts at any bit-widths (what the sensitivity scan uses).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from malak_pipe.compress.precision import WEIGHT_RANGES
from malak_pipe.compress.recipe import QuantRecipe
from malak_pipe.compress.weight_quant import mse_channel_scales
from malak_pipe.errors import StageFailed

_QUIET_MESSAGES = (
    r".*torch\.ao\.quantization is deprecated.*",
    r"Please use quant_min and quant_max to specify the range.*",
    r"must run observer before calling calculate_qparams.*",
    r".*_aminmax is deprecated.*",
    r"TypedStorage is deprecated.*",
    r"torch\.quantize_per_tensor, torch\.quantize_per_channel and other quantized tensor creation.*",
)


@contextmanager
def quiet_torch_ao() -> Iterator[None]:
    """Silence torch.ao's deprecation and observer chatter for the calls inside the block."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.ao\..*")
        for message in _QUIET_MESSAGES:
            warnings.filterwarnings("ignore", message=message)
        yield


with quiet_torch_ao():
    import torch.ao.nn.intrinsic.qat as intrinsic_qat
    import torch.ao.quantization as tq
    from torch.ao.quantization.backend_config import (
        BackendConfig,
        BackendPatternConfig,
        ObservationType,
        get_native_backend_config,
    )
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx, prepare_qat_fx

_DYNAMIC_TYPES: dict[str, type[nn.Module]] = {"linear": nn.Linear, "lstm": nn.LSTM, "gru": nn.GRU}
_OBSERVERS = {
    "minmax": tq.MinMaxObserver,
    "histogram": tq.HistogramObserver,
    "moving_average_minmax": tq.MovingAverageMinMaxObserver,
}


@contextmanager
def quantized_engine(backend: str) -> Iterator[None]:
    """Select the quantized engine (weights are packed for it) and restore the previous one."""
    previous = torch.backends.quantized.engine
    if backend not in torch.backends.quantized.supported_engines:
        raise StageFailed(
            f"the quantized engine '{backend}' is not available in this torch build",
            hint=f"use one of {torch.backends.quantized.supported_engines}",
        )
    torch.backends.quantized.engine = backend
    try:
        yield
    finally:
        torch.backends.quantized.engine = previous


def _activation_fake_or_observer(recipe: QuantRecipe) -> Any:
    low, high = recipe.activation_quant_range
    observer = _OBSERVERS[recipe.activation_observer or "histogram"]
    kwargs = {"dtype": torch.quint8, "qscheme": torch.per_tensor_affine, "quant_min": low, "quant_max": high}
    if recipe.mode == "qat":
        return tq.FakeQuantize.with_args(observer=tq.MovingAverageMinMaxObserver, **kwargs)
    return observer.with_args(**kwargs)


class MSEPerChannelObserver(tq.PerChannelMinMaxObserver):
    """Per-channel symmetric weight observer whose scales minimize each channel's squared
    rounding error (:func:`malak_pipe.compress.weight_quant.mse_channel_scales`)."""

    def __init__(self, *, clip_grid: int = 64, clip_floor: float = 0.3, **kwargs: Any):
        super().__init__(**kwargs)
        self.clip_grid, self.clip_floor = clip_grid, clip_floor
        self.observed: torch.Tensor | None = None

    def forward(self, x_orig: torch.Tensor) -> torch.Tensor:
        self.observed = x_orig.detach()
        return super().forward(x_orig)

    @torch.jit.export
    def calculate_qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        scales, zero_points = super().calculate_qparams()
        if self.observed is None:
            return scales, zero_points
        grid, floor = self.clip_grid, self.clip_floor
        best = mse_channel_scales(self.observed, scales, self.quant_min, self.quant_max, grid=grid, floor=floor)
        return best, zero_points


def _weight_fake_or_observer(recipe: QuantRecipe, name: str | None = None) -> Any:
    low, high = recipe.weight_quant_range if name is None else recipe.layer_weight_range(name)
    if recipe.per_channel:
        kwargs = {"dtype": torch.qint8, "qscheme": torch.per_channel_symmetric, "ch_axis": 0}
        observer = tq.MovingAveragePerChannelMinMaxObserver if recipe.mode == "qat" else tq.PerChannelMinMaxObserver
        if recipe.mode != "qat" and name is not None and recipe.weight_clips.get(name) == "mse":
            observer = MSEPerChannelObserver
            kwargs.update(clip_grid=recipe.weight_clip_grid, clip_floor=recipe.weight_clip_floor)
    else:
        kwargs = {"dtype": torch.qint8, "qscheme": torch.per_tensor_symmetric}
        observer = tq.MovingAverageMinMaxObserver if recipe.mode == "qat" else tq.MinMaxObserver
    kwargs.update(quant_min=low, quant_max=high)
    if recipe.mode == "qat":
        return tq.FakeQuantize.with_args(observer=observer, **kwargs)
    return observer.with_args(**kwargs)


def _keeps_own_qparams(qconfig: Any) -> bool:
    """Ops whose output range is fixed (sigmoid, tanh...) or reused from their input (reshape)."""
    if qconfig is None:
        return True
    fixed = (tq.FixedQParamsObserver, tq.FixedQParamsFakeQuantize, tq.observer.ReuseInputObserver)
    return isinstance(qconfig.activation(), fixed)


def qconfig_mapping(recipe: QuantRecipe) -> tq.QConfigMapping:
    """The QConfigMapping of a static or QAT recipe.

    torch.ao's default mapping for the backend, with our observers (see :class:`QuantRecipe`)
    everywhere except on ops whose output range is fixed by the op itself (sigmoid, tanh,
    hardsigmoid, softmax), which need their fixed-qparams observers to be quantized at all.
    """
    qconfig = tq.QConfig(activation=_activation_fake_or_observer(recipe), weight=_weight_fake_or_observer(recipe))
    if recipe.mode == "qat":
        mapping = tq.get_default_qat_qconfig_mapping(recipe.backend)
    else:
        mapping = tq.get_default_qconfig_mapping(recipe.backend)
    mapping.set_global(qconfig)
    for object_type, default in list(mapping.object_type_qconfigs.items()):
        if not _keeps_own_qparams(default):
            mapping.set_object_type(object_type, qconfig)
    for name in recipe.weight_bits:
        mapping.set_module_name(name, _layer_qconfig(qconfig, recipe, name))
    return mapping


def _layer_qconfig(qconfig: Any, recipe: QuantRecipe, name: str) -> Any:
    """``qconfig`` with the weight quantizer of layer ``name``'s bit-width (and clip)."""
    return tq.QConfig(activation=qconfig.activation, weight=_weight_fake_or_observer(recipe, name))


def _set_weight_qconfigs(prepared: torch.fx.GraphModule, recipe: QuantRecipe) -> None:
    """Static PTQ: the qconfig of every module the graph calls, with its layer's weight bit-width
    and clip (the static weight observers are made from it at convert)."""
    for node in prepared.graph.nodes:
        layer = prepared.get_submodule(node.target) if node.op == "call_module" else None
        if getattr(layer, "qconfig", None) is not None:
            name = node.target if node.target in recipe.weight_bits else None
            layer.qconfig = _layer_qconfig(layer.qconfig, recipe, name)


def clamp_weights(int8_module: nn.Module, recipe: QuantRecipe) -> None:
    """Clamp the weights of the recipe's 4-bit layers to [-8, 7] (FX lowering does not)."""
    low, high = WEIGHT_RANGES[4]
    for name in recipe.weight_bits:
        layer = int8_module.get_submodule(name)
        weight = layer.weight()
        values = weight.int_repr().clamp(low, high)
        scales, zero_points = weight.q_per_channel_scales(), weight.q_per_channel_zero_points()
        axis = weight.q_per_channel_axis()
        clamped = torch._make_per_channel_quantized_tensor(values, scales, zero_points, axis)
        layer.set_weight_bias(clamped, layer.bias())


def backend_config() -> BackendConfig:
    """torch.ao's native backend config, plus ``nn.Flatten`` as a shape op sharing its input's qparams.

    FX still dequantizes before an ``nn.Flatten`` module and quantizes after it, but with the
    input's own scale and zero point, so the round trip is exact instead of a second rounding.
    """
    config = get_native_backend_config()
    flatten = next(pattern for pattern in config.configs if pattern.pattern is torch.flatten)
    module_pattern = (
        BackendPatternConfig(nn.Flatten)
        .set_observation_type(ObservationType.OUTPUT_SHARE_OBSERVER_WITH_INPUT)
        .set_dtype_configs(flatten.dtype_configs)
    )
    return config.set_backend_pattern_config(module_pattern)


def _example_inputs(recipe: QuantRecipe) -> tuple[torch.Tensor]:
    """Example inputs for FX prepare, which only needs them for standalone modules."""
    shape = recipe.input_shape if recipe.input_shape is not None else (1,)
    return (torch.zeros((2, *shape)),)


def prepare(module: nn.Module, recipe: QuantRecipe) -> torch.fx.GraphModule:
    """A fused copy of ``module`` ready for calibration or training, as ``recipe.mode`` says.

    static: conv-bn-relu fused, observers inserted (eval mode); qat: conv-bn(-relu) fused into
    QAT modules, fake-quantizers inserted (train mode). ``module`` is left untouched.
    """
    qat = recipe.mode == "qat"
    float_module = copy.deepcopy(module).train(qat)
    prepare_fn = prepare_qat_fx if qat else prepare_fx
    try:
        with quiet_torch_ao(), quantized_engine(recipe.backend):
            return prepare_fn(
                float_module, qconfig_mapping(recipe), _example_inputs(recipe), backend_config=backend_config()
            )
    except torch.fx.proxy.TraceError as exc:
        raise StageFailed(
            f"torch.fx could not trace the model for graph-mode quantization ({type(exc).__name__}: {str(exc)[:300]})",
            hint="keep forward free of data-dependent Python control flow, or use ptq_dynamic",
        ) from exc


def convert(prepared: torch.fx.GraphModule, recipe: QuantRecipe) -> torch.fx.GraphModule:
    """An int8 model from a calibrated or QAT-trained ``prepared`` model (left untouched)."""
    prepared_copy = copy.deepcopy(prepared).eval()
    with quiet_torch_ao(), quantized_engine(recipe.backend):
        if recipe.mode == "static":
            _set_weight_qconfigs(prepared_copy, recipe)
        converted = convert_fx(prepared_copy, backend_config=backend_config())
        clamp_weights(converted, recipe)
        return converted


def quantize_dynamic(module: nn.Module, recipe: QuantRecipe) -> nn.Module:
    """Int8 weights for the Linear/LSTM/GRU layers named in ``recipe.dynamic_layers``."""
    types = {_DYNAMIC_TYPES[kind] for kind in recipe.dynamic_layers}
    with quiet_torch_ao(), quantized_engine(recipe.backend):
        return tq.quantize_dynamic(copy.deepcopy(module).eval(), qconfig_spec=types, dtype=torch.qint8)


def dynamic_param_fraction(module: nn.Module, layers: tuple[str, ...]) -> float:
    """Fraction of the parameters that sit in layers dynamic quantization converts."""
    types = tuple(_DYNAMIC_TYPES[kind] for kind in layers)
    total = sum(param.numel() for param in module.parameters())
    covered = sum(
        param.numel() for layer in module.modules() if isinstance(layer, types) for param in layer.parameters()
    )
    return covered / total if total else 0.0


def has_fake_quant(module: nn.Module) -> bool:
    """Whether ``module`` holds fake-quantizers (a model prepared for QAT)."""
    return any(isinstance(layer, tq.FakeQuantizeBase) for layer in module.modules())


def freeze_observers(prepared: nn.Module) -> None:
    """Stop updating the ranges of every observer/fake-quantizer (QAT, after epoch K)."""
    with quiet_torch_ao():
        prepared.apply(tq.disable_observer)


def unfreeze_observers(prepared: nn.Module) -> None:
    """Let every fake-quantizer update its ranges again."""
    with quiet_torch_ao():
        prepared.apply(tq.enable_observer)


def freeze_bn_stats(prepared: nn.Module) -> None:
    """Use the running BN statistics in every fused QAT conv-bn (QAT, after epoch J)."""
    with quiet_torch_ao():
        prepared.apply(intrinsic_qat.freeze_bn_stats)


def float_weight(prepared: nn.Module, name: str) -> torch.Tensor:
    """The float weight a static-prepared model quantizes for layer ``name`` (conv-bn folded)."""
    layer = prepared.get_submodule(name)
    weight = getattr(layer, "weight", None)
    return weight if isinstance(weight, torch.Tensor) else layer[0].weight


def calibrate(prepared: nn.Module, batches: list[torch.Tensor]) -> None:
    """Run calibration batches through the observers of a prepared model."""
    prepared.eval()
    with quiet_torch_ao(), torch.no_grad():
        for batch in batches:
            prepared(batch)


def rebuild(float_module: nn.Module, recipe: QuantRecipe) -> nn.Module:
    """An int8 module with the structure ``recipe`` produces, ready for ``load_state_dict``.

    The recipe is replayed on ``float_module`` (whose weights do not matter) and observers see
    one batch of zeros so every scale exists; the saved state then overwrites all of it.
    """
    if recipe.mode == "dynamic":
        return quantize_dynamic(float_module, recipe)
    prepared = prepare(float_module, recipe)
    if recipe.input_shape is not None:
        calibrate(prepared, list(_example_inputs(recipe)))
    return convert(prepared, recipe)


def load_int8_state(module: nn.Module, state_dict: dict[str, Any], recipe: QuantRecipe) -> None:
    """Load an int8 state (weights are repacked for the recipe's engine)."""
    with quiet_torch_ao(), quantized_engine(recipe.backend):
        module.load_state_dict(state_dict)


def quantized_layers(int8_module: nn.Module) -> list[dict[str, Any]]:
    """Per-layer int8 parameters, for exporters (ONNX QDQ, firmware code generators).

    One entry per quantized conv/linear: name, type, weight scales and zero points (one per
    output channel when per-channel), output scale and zero point. Input quantization
    parameters are the ``*_input_scale_0``/``*_input_zero_point_0`` buffers of the state.
    """
    layers = []
    for name, layer in int8_module.named_modules():
        weight_fn = getattr(layer, "weight", None)
        if not callable(weight_fn) or not hasattr(layer, "scale"):
            continue
        weight = weight_fn()
        if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
            scales = weight.q_per_channel_scales().tolist()
            zero_points = weight.q_per_channel_zero_points().tolist()
        else:
            scales, zero_points = [weight.q_scale()], [weight.q_zero_point()]
        layers.append(
            {
                "name": name,
                "type": type(layer).__name__,
                "weight_scales": scales,
                "weight_zero_points": zero_points,
                "output_scale": float(layer.scale),
                "output_zero_point": int(layer.zero_point),
            }
        )
    return layers
