"""The streamed block on the fast kernels (mk_block3): [1x1 expand ->] 3-wide depthwise -> 1x1 project [-> add].

The schedule of mk_block (:mod:`malak_pipe.mcu.ops.block`: one output row at a time, a ring of
the depthwise's input rows, nothing computed twice) where every layer of the block would run
alone on mk_pw (the pointwise layers) and mk_dwconv3 (the depthwise): the block then reads the
constants of those steps as they are (q15-widened weights per block of output channels, the
depthwise's tap-pair words, zero points folded into the biases) and calls their row routines,
so it keeps the unfused layers' speed while the expanded and depthwise tensors never exist
whole. Where a layer alone would run on another kernel (a map under mk_pw's pixel threshold,
a depthwise not three wide), the block runs on mk_block's routines instead.

Kernel (firmware/include/kernels/mk_block3.h): inputs the block input and the residual operand
(the input again without an add), the output, a scratch of mk_pw's scratch, the q15 ring, the
expanded row, the depthwise row and (with an add) the projected row. Constants: the expand's
weights and channel constants (zeros without an expand), the depthwise's, the projection's.
"""

from __future__ import annotations

import numpy as np

from malak_pipe.mcu.codegen_options import CodegenOptions
from malak_pipe.mcu.fusion import Block, unfused_steps
from malak_pipe.mcu.ir import IntGraph, Layer
from malak_pipe.mcu.kernels import CHAN_WORDS, KernelSpec, Step
from malak_pipe.mcu.ops.add import ADD_TABLE_BYTES
from malak_pipe.mcu.ops.block import ADD_INTS, add_part, over_input
from malak_pipe.mcu.ops.conv import pw_block_words, pw_scratch_bytes
from malak_pipe.mcu.ops.depthwise import dw3_ring_width
from malak_pipe.mcu.ops.registry import OpFamily

SHAPE_INTS = (
    "in_h",
    "in_w",
    "in_c",
    "mid_c",
    "out_h",
    "out_w",
    "out_c",
    "kh",
    "sh",
    "sw",
    "pt",
    "pl",
    "pws",
    "resident",
)
EXPAND_INTS = ("expand", "e_k2", "e_cb", "e_act_min", "e_act_max", "e_fast")
DEPTHWISE_INTS = ("mid_zp", "d_out_zp", "d_act_min", "d_act_max", "d_fast")
PROJECT_INTS = ("p_k2", "p_cb", "p_out_zp", "p_act_min", "p_act_max", "p_fast")
BLOCK3 = KernelSpec(
    "block3",
    "mk_block3",
    ("in", "in2", "out", "scratch"),
    (
        ("ew", "int8_t"),
        ("ech", "mk_chan_t"),
        ("dw", "int8_t"),
        ("dch", "mk_chan_t"),
        ("pw", "int8_t"),
        ("pch", "mk_chan_t"),
    ),
    (*SHAPE_INTS, *EXPAND_INTS, *DEPTHWISE_INTS, *PROJECT_INTS, *ADD_INTS),
)
FAST_KERNELS = {"conv2d": "pw", "depthwise_conv2d": "dwconv3"}  # what each layer must run on alone


def _round8(n: int) -> int:
    return (n + 7) // 8 * 8


def _fast_alone(graph: IntGraph, layer: Layer, options: CodegenOptions) -> Step | None:
    """The step ``layer`` runs as alone, if it is the one kernel mk_block3 calls for it."""
    steps = unfused_steps(graph, layer, options)
    if len(steps) != 1 or steps[0].kernel != FAST_KERNELS[layer.op] or steps[0].layers != [layer.name]:
        return None
    return steps[0]


def _stage(prefix: str, step: Step, *names: str) -> dict[str, int]:
    return {f"{prefix}_{name}": int(step.ints[name]) for name in names}


def _pointwise_scratch(steps: list[Step]) -> tuple[int, bool]:
    """The bytes of mk_block3's pointwise region and whether the weights stay laid out in it: when
    each layer's channels form one block, both blocks and one pixel pair's column; else the larger
    of the layers' mk_pw scratches (every row lays its blocks out again)."""
    if all(step.ints["cb"] == step.ints["out_c"] for step in steps):
        words = sum(pw_block_words(step.ints["out_c"], step.ints["k2"]) for step in steps)
        return 4 * (words + max(step.ints["k2"] for step in steps)), True
    return max(pw_scratch_bytes(step.ints["cb"], step.ints["k2"]) for step in steps), False


def _expand_part(graph: IntGraph, block: Block, step: Step | None) -> tuple[dict, dict]:
    if step is None:
        ints = {"expand": 0, "e_k2": 2, "e_cb": 2, "e_act_min": -128, "e_act_max": 127, "e_fast": 0}
        return ints, {"ew": np.zeros(4, dtype=np.int8), "ech": np.zeros((1, CHAN_WORDS), dtype=np.int32)}
    ints = {"expand": 1, "e_k2": step.ints["k2"], "e_cb": step.ints["cb"]}
    ints.update(_stage("e", step, "act_min", "act_max", "fast"))
    return ints, {"ew": step.consts["weights"], "ech": step.consts["chan"]}


def fast_block_step(graph: IntGraph, block: Block, options: CodegenOptions) -> Step | None:
    """The mk_block3 step running ``block``, or None where a layer alone would not run on mk_pw / mk_dwconv3."""
    alone = {
        layer.name: _fast_alone(graph, layer, options)
        for layer in (block.expand, block.depthwise, block.project)
        if layer
    }
    if None in alone.values():
        return None
    dws, proj = alone[block.depthwise.name], alone[block.project.name]
    expand = alone[block.expand.name] if block.expand else None
    x, y = graph.tensors[block.input], graph.tensors[block.output]
    in_h, in_w, in_c = x.shape
    mid_c, (out_h, out_w, out_c) = dws.ints["in_c"], y.shape
    wq = dw3_ring_width(out_w, dws.ints["sw"])
    if wq < dws.ints["pl"] + in_w:
        return None  # the ring row would not hold the padded input row
    pws, resident = _pointwise_scratch([step for step in (expand, proj) if step is not None])
    window = {name: dws.ints[name] for name in ("kh", "sh", "sw", "pt", "pl")}
    ints = {"in_h": in_h, "in_w": in_w, "in_c": in_c, "mid_c": mid_c, "out_h": out_h, "out_w": out_w, "out_c": out_c}
    ints.update({**window, "pws": pws, "resident": int(resident)})
    expand_ints, consts = _expand_part(graph, block, expand)
    ints.update(expand_ints)
    ints.update({"mid_zp": dws.ints["in_zp"], **_stage("d", dws, "out_zp", "act_min", "act_max", "fast")})
    ints.update({"p_k2": proj.ints["k2"], "p_cb": proj.ints["cb"]})
    ints.update(_stage("p", proj, "out_zp", "act_min", "act_max", "fast"))
    ints.update(add_part(graph, block, options))
    consts.update({"dw": dws.consts["weights"], "dch": dws.consts["chan"]})
    consts.update({"pw": proj.consts["weights"], "pch": proj.consts["chan"]})
    ring = mid_c * window["kh"] * wq * 2
    rows = (_round8(in_w * mid_c) if expand else 0) + _round8(out_w * mid_c)
    rows += _round8(out_w * out_c) + ADD_TABLE_BYTES if block.add else 0
    scratch = _round8(pws) + ring + rows
    layers = block.layers
    mid = graph.tensors[block.depthwise.inputs[0]]
    reason = (
        f"streamed block on mk_pw / mk_dwconv3 rows: q15 ring of {window['kh']} rows x {wq} x {mid_c} ({ring} B) "
        f"instead of the {(mid.size if expand else 0) + graph.tensors[block.depthwise.output].size} B of the "
        f"{'expanded and ' if expand else ''}depthwise tensors"
    )
    return Step(
        BLOCK3,
        [layer.name for layer in layers],
        [layer.op for layer in layers],
        [block.input, block.residual or block.input],
        block.output,
        ints,
        consts,
        scratch,
        sum(step.macs for step in alone.values()),
        reason,
        writes_over_input=over_input(graph, block),
    )


FAMILY = OpFamily(name="block3", kernels=(BLOCK3,), headers=("kernels/mk_block3.h",))
