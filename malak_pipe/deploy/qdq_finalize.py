"""ONNX post-processing of an exported QDQ graph: int8 weight initializers and int32 biases.

The dynamo exporter writes every fake-quantize as ``QuantizeLinear -> DequantizeLinear``, also
on constant weights. :func:`finalize_qdq` folds those weight QuantizeLinear nodes into int8
initializers and stores float Conv/Gemm biases as int32 (scale = input scale x weight scale),
the layout ONNX Runtime's own quantizer writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np


def _onnx_round(x: np.ndarray) -> np.ndarray:
    return np.rint(x)  # round half to even, as QuantizeLinear does


def fold_constant_quantize(model: Any) -> int:
    """Replace ``QuantizeLinear(initializer)`` by an integer initializer; returns how many were folded."""
    from onnx import numpy_helper

    inits = {init.name: init for init in model.graph.initializer}
    folded = 0
    for node in list(model.graph.node):
        if node.op_type != "QuantizeLinear" or node.input[0] not in inits:
            continue
        if not all(name in inits for name in node.input[1:3]):
            continue
        x = numpy_helper.to_array(inits[node.input[0]]).astype(np.float64)
        scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
        zero = numpy_helper.to_array(inits[node.input[2]])
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        shape = [1] * x.ndim
        if scale.ndim == 1 and x.ndim > 0:
            shape[axis] = -1
        info = np.iinfo(zero.dtype)
        q = _onnx_round(x / scale.reshape(shape)) + zero.astype(np.int64).reshape(shape)
        q = np.clip(q, info.min, info.max).astype(zero.dtype)
        model.graph.initializer.append(numpy_helper.from_array(q, name=node.output[0]))
        model.graph.node.remove(node)
        folded += 1
    _drop_unused_initializers(model)
    return folded


def _producer_dq_scale(model: Any, tensor: str, inits: dict[str, Any]) -> np.ndarray | None:
    from onnx import numpy_helper

    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.output[0] == tensor and node.input[1] in inits:
            return numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
    return None


def quantize_biases(model: Any) -> int:
    """Store float Conv/Gemm biases as int32 (scale = input scale x weight scale) behind a DequantizeLinear."""
    from onnx import helper, numpy_helper

    inits = {init.name: init for init in model.graph.initializer}
    done = 0
    for node in list(model.graph.node):
        if node.op_type not in ("Conv", "Gemm") or len(node.input) < 3 or node.input[2] not in inits:
            continue
        x_scale = _producer_dq_scale(model, node.input[0], inits)
        w_scale = _producer_dq_scale(model, node.input[1], inits)
        if x_scale is None or w_scale is None or x_scale.size != 1:
            continue
        bias = numpy_helper.to_array(inits[node.input[2]]).astype(np.float64)
        scale = (x_scale.reshape(()) * w_scale).reshape(-1) * np.ones_like(bias)
        q = np.clip(_onnx_round(bias / scale), -(2**31), 2**31 - 1).astype(np.int32)
        base = f"{node.input[2]}_int32"
        model.graph.initializer.extend(
            [
                numpy_helper.from_array(q, name=base),
                numpy_helper.from_array(scale.astype(np.float32), name=f"{base}_scale"),
                numpy_helper.from_array(np.zeros_like(q), name=f"{base}_zero_point"),
            ]
        )
        dq = helper.make_node(
            "DequantizeLinear",
            [base, f"{base}_scale", f"{base}_zero_point"],
            [f"{base}_dq"],
            axis=0,
            name=f"{base}_DequantizeLinear",
        )
        position = list(model.graph.node).index(node)
        model.graph.node.insert(position, dq)
        node.input[2] = f"{base}_dq"
        done += 1
    _drop_unused_initializers(model)
    return done


def _drop_unused_initializers(model: Any) -> None:
    used = {name for node in model.graph.node for name in node.input}
    used |= {out.name for out in model.graph.output}
    keep = [init for init in model.graph.initializer if init.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)


def finalize_qdq(path: Path | str, int4_layers: Iterable[str] = ()) -> dict[str, int]:
    """Fold weight QuantizeLinear nodes into int8 initializers (INT4 for the torch modules named
    in ``int4_layers``: :mod:`malak_pipe.deploy.qdq_int4`) and quantize biases to int32, in place."""
    import onnx

    from malak_pipe.deploy.qdq_int4 import store_int4_weights

    model = onnx.load(str(path))
    folded = fold_constant_quantize(model)
    int4_layers = list(int4_layers)
    model = store_int4_weights(model, int4_layers)
    biases = quantize_biases(model)
    onnx.save_model(model, str(path), save_as_external_data=False)
    return {"int8_weights": folded - len(int4_layers), "int4_weights": len(int4_layers), "int32_biases": biases}
