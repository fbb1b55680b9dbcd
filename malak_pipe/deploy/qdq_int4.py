"""4-bit weights in a QDQ graph: ONNX INT4 initializers behind their DequantizeLinear.

The torch int8 model holds a 4-bit layer's weights as qint8 values in [-8, 7]; its QDQ export
(:mod:`malak_pipe.deploy.torch_qdq`) folds them into int8 initializers like every weight.
:func:`store_int4_weights` then rewrites those of the named layers as INT4 tensors (two values
per byte in the file) with an INT4 zero point of their own, and raises the opset to 21, the
first where DequantizeLinear takes INT4 (ONNX Runtime runs it on the CPU, per output channel).
Readers find the bit-width in the initializer's type: the MCU lowering gives such a layer
4-bit kernels.

A layer is found by its weight scale, the ``<module name>.w_scale`` initializer the
fake-quant twin's weight layers export, so a 4-bit layer that cannot be found is an error,
not a silent int8 layer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from malak_pipe.errors import StageFailed

INT4_OPSET = 21
SCALE_SUFFIX = ".w_scale"


def _int4_tensor(name: str, values: np.ndarray) -> Any:
    from onnx import TensorProto, helper

    if values.size and (values.min() < -8 or values.max() > 7):
        raise StageFailed(f"the weights '{name}' hold values outside [-8, 7]: not a 4-bit layer")
    return helper.make_tensor(name, TensorProto.INT4, list(values.shape), values.astype(np.int8).ravel().tolist())


def _raise_opset(model: Any) -> Any:
    """The model at opset 21 or later (unchanged when it already is)."""
    from onnx import version_converter

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return model if opset >= INT4_OPSET else version_converter.convert_version(model, INT4_OPSET)


def store_int4_weights(model: Any, layers: Iterable[str]) -> Any:
    """``model`` (weights already folded to integer initializers) with the weights of ``layers``
    (torch module names) as INT4; returns the model (a new one at opset >= 21 when ``layers`` is
    not empty). Zero points the INT4 ones replace may be left unused."""
    from onnx import numpy_helper

    wanted = {f"{name}{SCALE_SUFFIX}": name for name in layers}
    if not wanted:
        return model
    model = _raise_opset(model)
    inits = {init.name: init for init in model.graph.initializer}
    found: set[str] = set()
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[1] not in wanted or node.input[0] not in inits:
            continue
        values = numpy_helper.to_array(inits[node.input[0]])
        zero_name = f"{node.input[0]}_zero_point_int4"
        replaced = [_int4_tensor(node.input[0], values), _int4_tensor(zero_name, np.zeros(values.shape[0], np.int8))]
        model.graph.initializer.remove(inits[node.input[0]])
        model.graph.initializer.extend(replaced)
        node.input[2] = zero_name
        found.add(wanted[node.input[1]])
    missing = sorted(set(wanted.values()) - found)
    if missing:
        raise StageFailed(
            f"the QDQ export has no weight DequantizeLinear for the 4-bit layers {missing}",
            hint="4-bit layers must be conv/linear modules of the torch int8 model, quantized per channel",
        )
    return model
