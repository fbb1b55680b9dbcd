"""The fake-quant twin of a torch.ao int8 model: a float graph that computes what the int8 one does.

The converted int8 ``GraphModule`` runs real int8 kernels that no ONNX exporter translates.
Its twin is a float ``GraphModule`` of the same graph in which every quantized tensor becomes
``fake_quantize`` with the scale and zero point the int8 model actually uses (read by running
it once, so nothing depends on attribute names), every quantized conv/linear becomes a float
conv/linear over its dequantized int8 weights (fake-quantized per channel), and
``quantized.add/mul/cat`` become float ops followed by fake-quantize.

torch's quint8 activations are written as uint8, or as int8 with zero point ``z - 128`` and
the same scale: the integer grids are identical and both saturate at the ends of their 8-bit
type, so the mapping is exact (torch kernels clamp at [0, 255] even with x86's reduced
calibration range).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from malak_pipe.deploy.configs import ActivationType
from malak_pipe.errors import StageFailed


@dataclass(frozen=True)
class QParams:
    """Per-tensor quantization of an activation: ``real = scale * (q - zero_point)``."""

    scale: float
    zero_point: int
    qmin: int
    qmax: int

    def as_type(self, activation_type: ActivationType) -> QParams:
        """The same grid expressed in int8 or uint8 (shifting the zero point by 128)."""
        if activation_type == "int8" and self.qmin == 0:
            return QParams(self.scale, self.zero_point - 128, -128, 127)
        if activation_type == "uint8" and self.qmin == -128:
            return QParams(self.scale, self.zero_point + 128, 0, 255)
        return self


def _qparams_of(value: Any) -> QParams | None:
    import torch

    if not isinstance(value, torch.Tensor) or not value.is_quantized:
        return None
    if value.qscheme() not in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        raise StageFailed(f"activation quantized with {value.qscheme()} (only per-tensor is exportable)")
    info = torch.iinfo(value.dtype)
    return QParams(float(value.q_scale()), int(value.q_zero_point()), int(info.min), int(info.max))


def record_qparams(int8_module: Any, sample: Any) -> dict[str, QParams]:
    """Run ``int8_module`` once on ``sample``; the qparams of every node whose output is quantized."""
    import torch
    from torch import fx

    recorded: dict[str, QParams] = {}

    class _Recorder(fx.Interpreter):
        def run_node(self, node: fx.Node) -> Any:
            result = super().run_node(node)
            qparams = _qparams_of(result)
            if qparams is not None:
                recorded[node.name] = qparams
            return result

    with torch.no_grad():
        _Recorder(int8_module).run(sample)
    return recorded


def _make_modules() -> dict[str, Any]:
    """The twin's module classes (defined lazily so this module imports without torch)."""
    import torch
    from torch import nn

    class FakeQuant(nn.Module):
        """``fake_quantize_per_tensor_affine`` with fixed qparams (exports as QuantizeLinear/DequantizeLinear)."""

        def __init__(self, qparams: QParams):
            super().__init__()
            self.scale, self.zero_point = qparams.scale, qparams.zero_point
            self.qmin, self.qmax = qparams.qmin, qparams.qmax

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.fake_quantize_per_tensor_affine(x, self.scale, self.zero_point, self.qmin, self.qmax)

    class QDQWeightLayer(nn.Module):
        """A float conv/linear whose weight passes through int8 fake-quantization (optionally + ReLU)."""

        def __init__(self, kind: str, weight: torch.Tensor, bias: torch.Tensor | None, conv: dict, relu: bool):
            super().__init__()
            self.kind, self.conv, self.relu = kind, conv, relu
            self.per_channel = weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)
            self.register_buffer("weight", weight.dequantize())
            self.register_buffer("bias", None if bias is None else bias.detach().float())
            if self.per_channel:
                self.register_buffer("w_scale", weight.q_per_channel_scales().float())
                self.register_buffer("w_zero", weight.q_per_channel_zero_points().to(torch.int32))
            else:
                self.w_scale_f, self.w_zero_i = float(weight.q_scale()), int(weight.q_zero_point())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.per_channel:
                w = torch.fake_quantize_per_channel_affine(self.weight, self.w_scale, self.w_zero, 0, -128, 127)
            else:
                w = torch.fake_quantize_per_tensor_affine(self.weight, self.w_scale_f, self.w_zero_i, -128, 127)
            if self.kind == "linear":
                y = nn.functional.linear(x, w, self.bias)
            else:
                conv = nn.functional.conv1d if w.dim() == 3 else nn.functional.conv2d
                y = conv(x, w, self.bias, **self.conv)
            return torch.relu(y) if self.relu else y

    return {"FakeQuant": FakeQuant, "QDQWeightLayer": QDQWeightLayer}


def _twin_of_module(layer: Any, classes: dict[str, Any]) -> Any:
    """A float module computing what the quantized ``layer`` computes (before output requantization)."""
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.quantized as nnq
    from torch import nn

    if isinstance(layer, (nnq.Conv1d, nnq.Conv2d)):  # also ConvReLU1d/2d, subclasses
        conv = {"stride": layer.stride, "padding": layer.padding, "dilation": layer.dilation, "groups": layer.groups}
        if layer.padding_mode != "zeros":
            raise StageFailed(f"quantized conv with padding_mode={layer.padding_mode} is not exportable to QDQ")
        relu = isinstance(layer, (nniq.ConvReLU1d, nniq.ConvReLU2d))
        return classes["QDQWeightLayer"]("conv", layer.weight(), layer.bias(), conv, relu)
    if isinstance(layer, nnq.Linear):  # also LinearReLU
        relu = isinstance(layer, nniq.LinearReLU)
        return classes["QDQWeightLayer"]("linear", layer.weight(), layer.bias(), {}, relu)
    simple = {
        nnq.Dropout: lambda m: nn.Identity(),
        nnq.ReLU6: lambda m: nn.ReLU6(),
        nnq.Hardswish: lambda m: nn.Hardswish(),
        nnq.LeakyReLU: lambda m: nn.LeakyReLU(m.negative_slope),
        nnq.Sigmoid: lambda m: nn.Sigmoid(),
        nnq.Softmax: lambda m: nn.Softmax(m.dim),
    }
    for kind, factory in simple.items():
        if isinstance(layer, kind):
            return factory(layer)
    if type(layer).__module__.startswith("torch.ao.nn.") and ".quantized" in type(layer).__module__:
        raise StageFailed(
            f"the QDQ exporter does not handle the quantized layer type {type(layer).__name__}",
            hint="use quantize_onnx with source: ort_static, or extend malak_pipe.deploy.fake_quant_twin",
        )
    return None


def _quantized_functions() -> dict[Any, Any]:
    import torch

    q = torch.ops.quantized
    return {
        q.add: (torch.add, False),
        q.add_relu: (torch.add, True),
        q.mul: (torch.mul, False),
        q.mul_relu: (torch.mul, True),
        q.cat: (torch.cat, False),
    }


def _replace_quantized_function(graph: Any, node: Any, table: dict[Any, Any]) -> Any:
    """``quantized.add(a, b, scale, zp)`` and friends -> float op (+ relu); returns the new node."""
    import torch

    base = getattr(node.target, "overloadpacket", node.target)
    func, relu = table[base]
    args = (node.args[0], node.args[1]) if func is torch.cat else node.args[:2]
    with graph.inserting_after(node):
        new = graph.call_function(func, tuple(args))
    last = new
    if relu:
        with graph.inserting_after(new):
            last = graph.call_function(torch.relu, (new,))
    node.replace_all_uses_with(last)
    graph.erase_node(node)
    return last


def fake_quant_twin(int8_module: Any, sample: Any, *, activation_type: ActivationType) -> Any:
    """A float ``GraphModule`` that computes what ``int8_module`` computes, in fake-quant form."""
    import torch
    from torch import fx

    if not isinstance(int8_module, fx.GraphModule):
        raise StageFailed(
            f"the int8 model is a {type(int8_module).__name__}, not a torch.fx GraphModule from FX graph-mode "
            "quantization (dynamic quantization has no static activation scales to export)",
            hint="export a ptq_static or qat model, or use quantize_onnx with source: ort_static",
        )
    recorded = record_qparams(int8_module, sample)
    twin = copy.deepcopy(int8_module)
    classes, functions = _make_modules(), _quantized_functions()
    counter = 0
    for node in list(twin.graph.nodes):
        qparams = recorded.get(node.name)
        if node.op == "call_function" and node.target is torch.quantize_per_tensor:
            counter += 1
            fq = _insert_fake_quant(twin, classes, node, (node.args[0],), qparams, activation_type, counter)
            node.replace_all_uses_with(fq)
            twin.graph.erase_node(node)
            continue
        last = _rewrite_node(twin, node, classes, functions)
        if last is None or qparams is None:
            continue
        counter += 1
        fq = _insert_fake_quant(twin, classes, last, (last,), qparams, activation_type, counter)
        last.replace_all_uses_with(fq, delete_user_cb=lambda user, fq=fq: user is not fq)
    twin.graph.eliminate_dead_code()
    twin.delete_all_unused_submodules()
    twin.recompile()
    return twin.eval()


def _rewrite_node(twin: Any, node: Any, classes: dict[str, Any], functions: dict[Any, Any]) -> Any:
    """Turn one int8 node into float; returns the node whose output gets requantized (None if removed)."""
    if node.op == "call_method" and node.target == "dequantize":
        node.replace_all_uses_with(node.args[0])
        twin.graph.erase_node(node)
        return None
    if node.op == "call_function" and getattr(node.target, "overloadpacket", node.target) in functions:
        return _replace_quantized_function(twin.graph, node, functions)
    if node.op == "call_module":
        twin_layer = _twin_of_module(twin.get_submodule(node.target), classes)
        if twin_layer is not None:
            _set_submodule(twin, node.target, twin_layer)
    return node


def _insert_fake_quant(
    twin: Any,
    classes: dict[str, Any],
    after: Any,
    args: tuple,
    qparams: QParams | None,
    activation_type: ActivationType,
    counter: int,
) -> Any:
    if qparams is None:
        raise StageFailed(f"node '{after.name}' quantizes a tensor that never ran while recording qparams")
    name = f"_qdq_{counter}"
    twin.add_module(name, classes["FakeQuant"](qparams.as_type(activation_type)))
    with twin.graph.inserting_after(after):
        return twin.graph.call_module(name, args)


def _set_submodule(root: Any, target: str, module: Any) -> None:
    parent_name, _, child = target.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)
