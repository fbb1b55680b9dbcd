"""The lookup tables of a lowering: functions of int8 tensors made int8 tensors again.

A function of an int8 tensor (:class:`~malak_pipe.mcu.values.Value`) that an integer consumer
needs becomes, in order of preference: its source (the identity), its source with a narrower
clamp folded into the layer producing it (a Relu/Clip in the same parameters, that tensor's
only use), or a ``lut`` layer of 256 codes (:mod:`malak_pipe.mcu.ops.lut`). The same table of
the same tensor is made once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from malak_pipe.mcu.ir import Layer, QTensor
from malak_pipe.mcu.kernels import compose_clamps
from malak_pipe.mcu.ops import REGISTRY
from malak_pipe.mcu.ops.lut import TABLE_OP
from malak_pipe.mcu.values import CODES, Coded, Value, dequantize, quantize

if TYPE_CHECKING:
    from malak_pipe.mcu.lower import Lowering


def fit(value: Value, name: str) -> Coded:
    """Quantize a function never quantized in the graph: on its source's grid when exact, else on its range."""
    real = value.values()
    t = value.tensor
    codes = quantize(real, t.scale, t.zero_point)
    if np.array_equal(dequantize(codes, t.scale, t.zero_point), real):
        return Coded(t, value.index, codes, t.scale, t.zero_point, name, value.ops)
    lo, hi = min(float(real.min()), 0.0), max(float(real.max()), 0.0)
    scale = (hi - lo) / 255.0 or 1.0
    zero_point = int(np.clip(np.rint(-128 - lo / scale), -128, 127))
    return Coded(t, value.index, quantize(real, scale, zero_point), scale, zero_point, name, value.ops)


class Tables:
    """The tables one :class:`~malak_pipe.mcu.lower.Lowering` made, by (tensor, codes, parameters)."""

    def __init__(self, lowering: Lowering):
        self.lw = lowering
        self._made: dict[tuple, QTensor] = {}

    def materialize(self, value: Value, name: str) -> QTensor:
        """The int8 tensor of ``value`` (float input ``name`` of a consumer)."""
        if value.fn is None:
            return value.tensor
        return self.table(value.coded or fit(value, name))

    def table(self, coded: Coded) -> QTensor:
        """The int8 tensor ``coded`` describes: its source, the source with a narrower clamp, or a table layer."""
        if coded.identity:
            return coded.tensor
        key = (coded.tensor.name, coded.codes.tobytes(), coded.scale, coded.zero_point)
        if key not in self._made:
            self._made[key] = self._fold_clamp(coded) or self._layer(coded)
        return self._made[key]

    def _layer(self, coded: Coded) -> QTensor:
        out = self.lw.new_tensor(coded.name or f"{coded.tensor.name}_table", coded.tensor.shape, *coded.params)
        source = ",".join(coded.ops) or "QuantizeLinear"
        name = f"{coded.name}_{TABLE_OP}" if coded.name else out.name
        self.lw.layers.append(Layer(name, TABLE_OP, [coded.tensor.name], out.name, {}, {"table": coded.codes}, source))
        return out

    def _fold_clamp(self, coded: Coded) -> QTensor | None:
        """A clamp of the same parameters narrows the clamp of the layer producing its only input."""
        t = coded.tensor
        lo, hi = int(coded.codes[0]), int(coded.codes[-1])
        if not t.same_params(*coded.params) or not np.array_equal(coded.codes, np.clip(CODES, lo, hi)):
            return None
        producer = self.lw.producer_layer(t.name)
        if producer is None or "act_min" not in producer.attrs or self._uses(t.name) != 1:
            return None
        clamp = compose_clamps((producer.attrs["act_min"], producer.attrs["act_max"]), (lo, hi))
        producer.attrs["act_min"], producer.attrs["act_max"] = clamp
        tensors = self.lw.tensors
        if coded.name and coded.name not in tensors:  # it now holds the clamped values: their ONNX name
            del tensors[t.name]
            t.name = producer.output = coded.name
            tensors[t.name] = t
        return t

    def _uses(self, name: str) -> int:
        """ONNX nodes (and graph outputs) reading ``name``, through DequantizeLinear and views."""
        onnx = self.lw.onnx
        count = int(name in onnx.output_names())
        for consumer in onnx.consumers.get(name, []):
            if consumer.op_type == "DequantizeLinear" or consumer.op_type in REGISTRY.views:
                count += self._uses(consumer.output[0])
            else:
                count += 1
        return count
