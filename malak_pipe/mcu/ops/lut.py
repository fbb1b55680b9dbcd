"""Exact int8 lookup tables: activations, requantizations and clamps of one int8 tensor.

IR ``lut``: one input; array ``table`` int8 (256,), the output code for each input code q at
``table[q + 128]``. The output has the input's storage shape and its own scale and zero point.
The lowering makes one whenever a function of an int8 tensor (an activation, a chain such as
x * sigmoid(x), a QuantizeLinear to new parameters) must become an int8 tensor again
(:mod:`malak_pipe.mcu.lower`, :mod:`malak_pipe.mcu.ops.activations`): the table is computed once
from the input and output scales, in the float arithmetic of the QDQ graph, so the golden
reference and the firmware read the same 256 bytes (the TFLite Micro way).

Kernel (firmware/include/kernels/mk_lut.h): the table reordered by the unsigned byte of the
code, four values per word load and store.
"""

from __future__ import annotations

import numpy as np

from malak_pipe.mcu.codegen_options import CodegenOptions
from malak_pipe.mcu.ir import IntGraph, Layer
from malak_pipe.mcu.kernels import KernelSpec, Step, single_step
from malak_pipe.mcu.ops.registry import IntOp, OpFamily

TABLE_OP = "lut"
LUT = KernelSpec("lut", "mk_lut", ("in", "out"), (("table", "int8_t"),), ("n",))


def lut_golden(graph: IntGraph, layer: Layer, x: np.ndarray) -> np.ndarray:
    return layer.arrays["table"][x.astype(np.int64) + 128].astype(np.int8)


def by_byte(table: np.ndarray) -> np.ndarray:
    """A table indexed by q + 128 reordered to be indexed by the byte of q (q & 255)."""
    return np.roll(np.asarray(table, dtype=np.int8), 128)


def lut_step(graph: IntGraph, layer: Layer, options: CodegenOptions) -> Step:
    ints = {"n": graph.tensors[layer.output].size}
    consts = {"table": by_byte(layer.arrays["table"])}
    return single_step(LUT, graph, layer, ints, consts=consts, reason="256-entry table, 4 values per word")


FAMILY = OpFamily(
    name="lut",
    int_ops=(IntOp(TABLE_OP, lut_golden, lut_step),),
    kernels=(LUT,),
    headers=("kernels/mk_lut.h",),
)
