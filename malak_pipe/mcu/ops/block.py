"""The streamed block kernel (mk_block): [1x1 expand ->] depthwise -> 1x1 project [-> residual add].

Not an integer operator of its own: :mod:`malak_pipe.mcu.fusion` finds the layers a block
runs, and :func:`block_step` builds one :class:`~malak_pipe.mcu.kernels.Step` for them from the
steps each layer would run alone (the same constants, zero points, clamps and requantization
choices: the fused C does the arithmetic of the unfused kernels, row by row).

Kernel (firmware/include/kernels/mk_block.h): inputs the block input and the residual operand
(the block input again without an add), the output, a scratch of the mk_conv columns, the ring
of ``kh`` padded dw input rows, one depthwise row and (with an add) one projected row.
Constants: expand weights and records (4 zero bytes and one zero record without an expand), the
depthwise weights, records and plain bias (one zero word on the 4-channel path, which reads the
folded bias of the records), the projection's weights and records.
"""

from __future__ import annotations

import numpy as np

from malak_pipe.mcu.codegen_options import CodegenOptions
from malak_pipe.mcu.fusion import Block, streamed_step
from malak_pipe.mcu.ir import IntGraph, Layer
from malak_pipe.mcu.kernels import WINDOW_INTS, KernelSpec, Step, k4_of, window_ints
from malak_pipe.mcu.ops.add import ADD
from malak_pipe.mcu.ops.binary import STRIDE_INTS
from malak_pipe.mcu.ops.registry import OpFamily

SHAPE_INTS = ("in_h", "in_w", "in_c", "mid_c", "dw_c", "out_h", "out_w", "out_c")
EXPAND_INTS = ("expand", "e_in_zp", "e_act_min", "e_act_max", "e_fast", "e_lsh")
DEPTHWISE_INTS = ("mid_zp", "d_out_zp", "d_act_min", "d_act_max", "d_fast", "d_lsh", "ring4")
PROJECT_INTS = ("p_out_zp", "p_act_min", "p_act_max", "p_fast", "p_lsh")
ADD_ARGS = tuple(name for name in ADD.ints if name not in STRIDE_INTS)  # mk_add's, after its strides
ADD_INTS = ("residual", "res_first", *(f"add_{name}" for name in ADD_ARGS))
BLOCK = KernelSpec(
    "block",
    "mk_block",
    ("in", "in2", "out", "scratch"),
    (
        ("ew", "int8_t"),
        ("ech", "mk_chan_t"),
        ("dw", "int8_t"),
        ("dch", "mk_chan_t"),
        ("dbias", "int32_t"),
        ("pw", "int8_t"),
        ("pch", "mk_chan_t"),
    ),
    (*SHAPE_INTS, *WINDOW_INTS, "mult", *EXPAND_INTS, *DEPTHWISE_INTS, *PROJECT_INTS, *ADD_INTS),
)


def _alone(graph: IntGraph, layer: Layer, options: CodegenOptions) -> Step:
    return streamed_step(graph, layer, options)  # fusion checked it runs on the routines mk_block calls


def _stage_ints(prefix: str, step: Step) -> dict[str, int]:
    """A conv or dwconv step's output arithmetic as ``{prefix}_...`` arguments of mk_block."""
    ints = step.ints
    return {
        f"{prefix}_act_min": ints["act_min"],
        f"{prefix}_act_max": ints["act_max"],
        f"{prefix}_fast": ints["fast"],
        f"{prefix}_lsh": ints["lsh"],
    }


def _expand_part(graph: IntGraph, block: Block, options: CodegenOptions) -> tuple[dict, dict, int]:
    if block.expand is None:
        ints = {"expand": 0, "e_in_zp": graph.tensors[block.input].zero_point, "e_act_min": -128, "e_act_max": 127}
        consts = {"ew": np.zeros(4, dtype=np.int8), "ech": np.zeros((1, 4), dtype=np.int32)}
        return {**ints, "e_fast": 0, "e_lsh": 0}, consts, 0
    step = _alone(graph, block.expand, options)
    ints = {"expand": 1, "e_in_zp": step.ints["in_zp"], **_stage_ints("e", step)}
    return ints, {"ew": step.consts["weights"], "ech": step.consts["chan"]}, step.macs


def _add_part(graph: IntGraph, block: Block, options: CodegenOptions) -> dict[str, int]:
    if block.add is None:
        return {name: 0 for name in ADD_INTS} | {"add_act_min": -128, "add_act_max": 127}
    ints = _alone(graph, block.add, options).ints
    res_first = int(block.add.inputs[0] != block.project.output)
    return {"residual": 1, "res_first": res_first, **{f"add_{name}": int(ints[name]) for name in ADD_ARGS}}


def _over_input(graph: IntGraph, block: Block) -> bool:
    """Whether mk_block may write the output over its input: a residual add of the input itself at
    stride 1 with the input's shape, so output row oy lands on input row oy once the ring holds it
    (rows up to oy + kh - 1 - pt >= oy) and after the add read it."""
    dw = block.depthwise
    same = graph.tensors[block.input].shape == graph.tensors[block.output].shape
    return (
        same
        and block.residual == block.input
        and dw.attrs["stride"][0] == 1
        and dw.attrs["pads"][0] < dw.attrs["kernel"][0]
    )


def block_step(graph: IntGraph, block: Block, options: CodegenOptions) -> Step:
    """The mk_block step running ``block``'s layers (see the module docstring)."""
    dws = _alone(graph, block.depthwise, options)
    proj = _alone(graph, block.project, options)
    x, mid = graph.tensors[block.input], graph.tensors[block.depthwise.inputs[0]]
    dwt, y = graph.tensors[block.depthwise.output], graph.tensors[block.output]
    ints = dict(zip(SHAPE_INTS, (*x.shape, mid.shape[2], dwt.shape[2], *y.shape), strict=True))
    ints.update(window_ints(block.depthwise))
    ints["mult"] = dws.ints["mult"]
    expand_ints, consts, expand_macs = _expand_part(graph, block, options)
    ints.update(expand_ints)
    ring4 = int(ints["mult"] == 1 and ints["mid_c"] % 4 == 0)
    ints.update({"mid_zp": dws.ints["in_zp"], "d_out_zp": dws.ints["out_zp"], **_stage_ints("d", dws)})
    ints.update({"ring4": ring4, "p_out_zp": proj.ints["out_zp"], **_stage_ints("p", proj)})
    ints.update(_add_part(graph, block, options))
    consts.update({"dw": dws.consts["weights"], "dch": dws.consts["chan"], "pw": proj.consts["weights"]})
    consts["dbias"] = np.zeros(1, dtype=np.int32) if ring4 else dws.consts["bias"]
    consts["pch"] = proj.consts["chan"]
    wp = (ints["out_w"] - 1) * ints["sw"] + ints["kw"]
    ring = ints["kh"] * wp * ints["mid_c"]
    rows = k4_of(ints["out_w"] * ints["dw_c"]) + (ints["out_w"] * ints["out_c"] if block.add else 0)
    scratch = 4 * k4_of(max(ints["in_c"], ints["dw_c"])) + ring + rows
    layers = block.layers
    inputs = [block.input, block.residual or block.input]
    reason = (
        f"streamed block: ring of {ints['kh']} rows x {wp} x {ints['mid_c']} ({ring} B) instead of the "
        f"{(mid.size if block.expand else 0) + dwt.size} B of the {'expanded and ' if block.expand else ''}"
        "depthwise tensors; "
        f"{'4 channels per SXTB16 pair' if ring4 else 'one channel at a time'} in the depthwise"
    )
    return Step(
        BLOCK,
        [layer.name for layer in layers],
        [layer.op for layer in layers],
        inputs,
        block.output,
        ints,
        consts,
        scratch,
        expand_macs + dws.macs + proj.macs,
        reason,
        writes_over_input=_over_input(graph, block),
    )


FAMILY = OpFamily(name="block", kernels=(BLOCK,), headers=("kernels/mk_block.h",))
