"""Random one-layer integer graphs and their kernel cases: the C kernels against the golden reference.

Every kind of :data:`RANDOM_OPS` draws shapes, strides, paddings, zero points, per-channel
scales and clamps; ``conv_pool`` is a convolution followed by the 2x2/2 max-pool the planner
fuses into it; ``add`` and ``mul`` broadcast (squeeze-and-excitation gates, single values) or
not, ``depthwise3`` is a depthwise layer three wide (the shapes of mk_dwconv3: strides 1 and
2, any padding, odd channel counts, widths not multiples of its 4-pixel block), ``pointwise`` a
1x1 convolution (mk_pw: odd input and output channel counts, odd pixel counts), ``conv1_pool``
a 3x3 convolution of a one-channel input with the max-pool after it (mk_conv1's assembly rows),
``concat`` joins 2 to 4 inputs on a random axis (one kernel call per input: each case checks the
part it writes); ``block`` is a [1x1 expand ->] depthwise -> 1x1 project [-> add] chain the
planner streams as one kernel (strides 1 to 3, any channels, multipliers 1 and 2). The cases go
through the same step planning as the code generator, so the host harness (and the firmware
harness in QEMU) run exactly the C that generated models call.
"""

from __future__ import annotations

import numpy as np

from malak_pipe.mcu.codegen_options import CodegenOptions
from malak_pipe.mcu.fusion import block_decisions
from malak_pipe.mcu.golden import run_layer
from malak_pipe.mcu.ir import IntGraph, Layer, QTensor
from malak_pipe.mcu.kernels import plan_steps
from malak_pipe.mcu.ops.add import ADD_LEFT_SHIFT, add_rescale
from malak_pipe.mcu.ops.onnx_params import requant
from malak_pipe.mcu.ops.softmax import exp_table
from malak_pipe.mcu.values import CODES, dequantize, quantize
from tests.helpers.mcu_int4_cases import S4_OPS, S4_SUFFIX, with_4bit_weights

CASE_OPTIONS = CodegenOptions(fuse_slow_blocks=True)  # a random block runs as one step, slow or not

RANDOM_OPS = (
    "conv2d",
    "conv_pool",
    "depthwise_conv2d",
    "depthwise3",
    "pointwise",
    "conv1_pool",
    "fully_connected",
    "max_pool",
    "avg_pool",
    "global_avg_pool",
    "add",
    "mul",
    "lut",
    "concat",
    "pad",
    "softmax",
    "block",
    "block3",
    *S4_OPS,
)


def _clamp(rng: np.random.Generator, zp: int, scale: float) -> tuple[int, int]:
    kind = rng.integers(0, 3)
    if kind == 0:
        return -128, 127
    if kind == 1:
        return max(-128, zp), 127  # relu
    return max(-128, zp), min(127, zp + int(round(6.0 / scale)))  # relu6


def random_layer_graph(rng: np.random.Generator, op: str):
    """A one-layer (conv+pool: two-layer) integer graph with random shapes, zero points and scales.

    Returns (graph, names of the layer's input tensors). Used to test the kernels against the
    golden reference on many shapes, strides, paddings, zero points and per-channel scales.
    ``<op>_s4``: the same layer with 4-bit weights (tests/helpers/mcu_int4_cases.py); ``block_s4``
    (not in :data:`RANDOM_OPS`): a block that streams at 8 bits with every layer at 4 bits.
    """
    four_bit, op = op.endswith(S4_SUFFIX), op.removesuffix(S4_SUFFIX)
    c = int(rng.choice([1, 2, 3, 4, 8, 12, 16] if op not in ("block", "block3") else [2, 3, 4, 8, 12, 16]))
    h, w = int(rng.integers(1, 10)), int(rng.integers(1, 10))
    if op in ("conv_pool",):
        h, w = int(rng.integers(2, 10)), int(rng.integers(2, 10))
    if op == "depthwise3":
        c, h, w = int(rng.choice([1, 3, 5, 8, 12, 24])), int(rng.integers(1, 8)), int(rng.integers(1, 24))
    if op == "pointwise":
        c, h, w = int(rng.integers(2, 48)), int(rng.integers(4, 9)), int(rng.integers(8, 12))
    if op == "block3":  # maps of 32 pixels or more: the layers alone run on mk_pw and mk_dwconv3
        h, w = int(rng.integers(2, 13)), int(rng.integers(8, 25))
        h = max(h, -(-32 // w))
    if op == "conv1_pool":
        c, h, w = 1, int(rng.integers(2, 12)), int(rng.integers(2, 16))
    x = QTensor("x", (h, w, c), float(rng.uniform(0.005, 0.05)), int(rng.integers(-128, 128)))
    tensors = {"x": x}
    builder = {
        "conv2d": _random_conv,
        "conv_pool": _random_conv,
        "depthwise_conv2d": _random_depthwise,
        "depthwise3": _random_depthwise,
        "pointwise": _random_conv,
        "conv1_pool": _random_conv,
        "fully_connected": _random_fc,
        "max_pool": _random_pool,
        "avg_pool": _random_pool,
        "global_avg_pool": _random_gap,
        "add": _random_add,
        "mul": _random_mul,
        "lut": _random_lut,
        "concat": _random_concat,
        "pad": _random_pad,
        "softmax": _random_softmax,
        "block": _random_block,
        "block3": _random_block,
    }[op]
    layers, inputs = builder(rng, op, x, tensors)
    graph = IntGraph(tensors, layers, "x", layers[-1].output)
    if op == "block" and block_decisions(graph, CASE_OPTIONS)[0].block is None:
        # a block that does not pay runs unfused: draw another (block_s4: one that would stream at 8 bits)
        return random_layer_graph(rng, op + (S4_SUFFIX if four_bit else ""))
    if op == "block3" and plan_steps(graph, CASE_OPTIONS)[0].kernel != "block3":
        return random_layer_graph(rng, op + (S4_SUFFIX if four_bit else ""))  # a layer alone off mk_pw / mk_dwconv3
    if four_bit:
        with_4bit_weights(rng, layers)
    return graph, inputs


def _window(rng: np.random.Generator, h: int, w: int, max_k: int = 5) -> tuple[list[int], list[int], list[int]]:
    kh, kw = int(rng.integers(1, max_k + 1)), int(rng.integers(1, max_k + 1))
    pads = [int(rng.integers(0, kh)), int(rng.integers(0, kw)), int(rng.integers(0, kh)), int(rng.integers(0, kw))]
    kh = min(kh, h + pads[0] + pads[2])
    kw = min(kw, w + pads[1] + pads[3])
    pads = [min(pads[0], kh - 1), min(pads[1], kw - 1), min(pads[2], kh - 1), min(pads[3], kw - 1)]
    return [kh, kw], [int(rng.integers(1, 4)), int(rng.integers(1, 4))], pads


def _out_hw(h: int, w: int, kernel: list[int], stride: list[int], pads: list[int]) -> tuple[int, int]:
    return (h + pads[0] + pads[2] - kernel[0]) // stride[0] + 1, (w + pads[1] + pads[3] - kernel[1]) // stride[1] + 1


def _weights_and_scales(rng: np.random.Generator, shape: tuple[int, ...], out_c: int, k: int, x) -> tuple:
    weights = rng.integers(-127, 128, size=shape).astype(np.int8)
    w_scale = rng.uniform(0.002, 0.02, size=out_c)
    bias = rng.integers(-(2**14), 2**14, size=out_c).astype(np.int32)
    out_scale = float(x.scale * w_scale.mean() * np.sqrt(k) * 75.0 / 40.0 * rng.uniform(0.3, 3.0))
    if rng.random() < 0.1:  # a multiplier above 0.5: the exact (non-SMMULR) requantization path
        out_scale = float(x.scale * w_scale.min() / 2.0)
    return weights, w_scale, bias, out_scale


def _random_conv(rng, op, x, tensors):
    h, w, c = x.shape
    kernel, stride, pads = _window(rng, h, w)
    divisors = [g for g in (2, 3, 4) if c % g == 0]
    groups = int(rng.choice(divisors)) if rng.random() < 0.25 and divisors else 1
    out_c = groups * int(rng.integers(1, 20 // groups + 1))
    if op == "pointwise":
        kernel, stride, pads, groups, out_c = [1, 1], [1, 1], [0, 0, 0, 0], 1, int(rng.integers(1, 40))
    if op == "block3":  # maps of 32 pixels or more: the layers alone run on mk_pw and mk_dwconv3
        h, w = int(rng.integers(2, 13)), int(rng.integers(8, 25))
        h = max(h, -(-32 // w))
    if op == "conv1_pool":
        kernel, pads = [min(3, h + pads[0] + pads[2]), min(3, w + pads[1] + pads[3])], [1, 1, 1, 1]
    oh, ow = _out_hw(h, w, kernel, stride, pads)
    if op in ("conv_pool", "conv1_pool"):
        stride = [1, 1]
        oh, ow = _out_hw(h, w, kernel, stride, pads)
    k = kernel[0] * kernel[1] * c // groups
    shape = (out_c, kernel[0], kernel[1], c // groups)
    weights, w_scale, bias, out_scale = _weights_and_scales(rng, shape, out_c, k, x)
    y = QTensor("y", (oh, ow, out_c), out_scale, int(rng.integers(-128, 128)))
    tensors["y"] = y
    lo, hi = _clamp(rng, y.zero_point, y.scale)
    attrs = {"kernel": kernel, "stride": stride, "pads": pads, "act_min": lo, "act_max": hi}
    attrs.update({"groups": groups} if groups > 1 else {})
    arrays = {"weights": weights, "bias": bias, **requant(x.scale * w_scale / out_scale)}
    layers = [Layer("conv", "conv2d", ["x"], "y", attrs, arrays)]
    if op in ("conv_pool", "conv1_pool") and oh >= 2 and ow >= 2:
        tensors["z"] = QTensor("z", (oh // 2, ow // 2, out_c), y.scale, y.zero_point)
        plo, phi = _clamp(rng, y.zero_point, y.scale)
        pool_attrs = {"kernel": [2, 2], "stride": [2, 2], "pads": [0, 0, 0, 0], "act_min": plo, "act_max": phi}
        layers.append(Layer("pool", "max_pool", ["y"], "z", pool_attrs, {}))
    return layers, ["x"]


def _depthwise_layer(rng, x, out, tensors, window, mult) -> Layer:
    """A random depthwise layer ``x`` -> tensor ``out`` with ``window`` (kernel, stride, pads)."""
    h, w, c = x.shape
    kernel, stride, pads = window
    out_c = c * mult
    oh, ow = _out_hw(h, w, kernel, stride, pads)
    k = kernel[0] * kernel[1]
    weights, w_scale, bias, out_scale = _weights_and_scales(rng, (kernel[0], kernel[1], out_c), out_c, k, x)
    y = QTensor(out, (oh, ow, out_c), out_scale, int(rng.integers(-128, 128)))
    tensors[out] = y
    lo, hi = _clamp(rng, y.zero_point, y.scale)
    attrs = {"kernel": kernel, "stride": stride, "pads": pads, "act_min": lo, "act_max": hi, "depth_multiplier": mult}
    arrays = {"weights": weights, "bias": bias, **requant(x.scale * w_scale / out_scale)}
    return Layer(f"dw_{out}", "depthwise_conv2d", [x.name], out, attrs, arrays)


def _random_depthwise(rng, op, x, tensors):
    h, w, _ = x.shape
    kernel, stride, pads = _window(rng, h, w)
    mult = 1 if rng.random() < 0.6 else int(rng.integers(2, 4))
    if op == "depthwise3":
        kernel[1], pads[1], pads[3] = 3, int(rng.integers(0, 3)), int(rng.integers(0, 3))
        stride[1] = int(rng.integers(1, 3)) if rng.random() < 0.9 else 3
        kernel[1] = min(3, w + pads[1] + pads[3])
        kernel[0], mult = int(rng.choice([3, 3, 1, 2, 5])), 1
        pads[0], pads[2] = min(pads[0], kernel[0] - 1), min(pads[2], kernel[0] - 1)
        kernel[0] = min(kernel[0], h + pads[0] + pads[2])
    return [_depthwise_layer(rng, x, "y", tensors, (kernel, stride, pads), mult)], ["x"]


def _pointwise_layer(rng, x, out, out_c, tensors) -> Layer:
    """A random 1x1 convolution ``x`` -> tensor ``out`` of ``out_c`` channels."""
    c = x.shape[2]
    weights, w_scale, bias, out_scale = _weights_and_scales(rng, (out_c, 1, 1, c), out_c, c, x)
    y = QTensor(out, (*x.shape[:2], out_c), out_scale, int(rng.integers(-128, 128)))
    tensors[out] = y
    lo, hi = _clamp(rng, y.zero_point, y.scale)
    attrs = {"kernel": [1, 1], "stride": [1, 1], "pads": [0, 0, 0, 0], "act_min": lo, "act_max": hi}
    arrays = {"weights": weights, "bias": bias, **requant(x.scale * w_scale / out_scale)}
    return Layer(f"pw_{out}", "conv2d", [x.name], out, attrs, arrays)


def _random_block(rng, op, x, tensors):
    """[1x1 expand ->] depthwise -> 1x1 project [-> residual add of the block input]."""
    h, w, c = x.shape
    residual = rng.random() < 0.5
    layers = []
    if rng.random() < 0.7:
        layers.append(_pointwise_layer(rng, x, "e", int(rng.choice([2, 3, 4, 5, 8, 12, 16, 24])), tensors))
    mid = tensors[layers[-1].output] if layers else x
    if residual:  # a "same" window at stride 1: the output has the input's shape
        k = int(rng.choice([1, 3, 5] if op == "block" else [3]))
        window, mult = ([k, k], [1, 1], [k // 2] * 4), 1
    elif op == "block3":  # three wide, multiplier 1, stride 1 or 2, any rows and padding
        kh, s = int(rng.choice([1, 3, 5])), int(rng.integers(1, 3))
        pads = [int(rng.integers(0, kh)), int(rng.integers(0, 2)), int(rng.integers(0, kh)), int(rng.integers(0, 2))]
        kh = min(kh, h + pads[0] + pads[2])
        pads = [min(pads[0], kh - 1), pads[1], min(pads[2], kh - 1), pads[3]]
        window, mult = ([kh, 3], [s, s], pads), 1
    else:
        window, mult = _window(rng, h, w), 1 if rng.random() < 0.7 else 2
    layers.append(_depthwise_layer(rng, mid, "d", tensors, window, mult))
    d = tensors["d"]
    layers.append(_pointwise_layer(rng, d, "p", c if residual else int(rng.integers(1, 20)), tensors))
    if residual:
        p = tensors["p"]
        y = QTensor("y", p.shape, float(max(x.scale, p.scale) * rng.uniform(0.8, 2.5)), int(rng.integers(-128, 128)))
        tensors["y"] = y
        lo, hi = _clamp(rng, y.zero_point, y.scale)
        operands = ["x", "p"] if rng.random() < 0.5 else ["p", "x"]
        a, b = (tensors[name] for name in operands)
        attrs = {"a_shape": list(p.shape), "b_shape": list(p.shape), "shape": list(p.shape), "sub": 0}
        attrs.update({"left_shift": ADD_LEFT_SHIFT, "act_min": lo, "act_max": hi})
        layers.append(Layer("add", "add", operands, "y", attrs, add_rescale(a, b, y)))
    return layers, ["x"]


def _random_fc(rng, op, x, tensors):
    k = x.size
    out_c = int(rng.integers(1, 24))
    weights, w_scale, bias, out_scale = _weights_and_scales(rng, (out_c, k), out_c, k, x)
    y = QTensor("y", (out_c,), out_scale, int(rng.integers(-128, 128)))
    tensors["y"] = y
    lo, hi = _clamp(rng, y.zero_point, y.scale)
    arrays = {"weights": weights, "bias": bias, **requant(x.scale * w_scale / out_scale)}
    return [Layer("fc", "fully_connected", ["x"], "y", {"act_min": lo, "act_max": hi}, arrays)], ["x"]


def _random_pool(rng, op, x, tensors):
    h, w, c = x.shape
    kernel, stride, pads = _window(rng, h, w, max_k=4)
    oh, ow = _out_hw(h, w, kernel, stride, pads)
    same = op == "max_pool"
    y = QTensor(
        "y",
        (oh, ow, c),
        x.scale if same else x.scale * rng.uniform(0.5, 2.0),
        x.zero_point if same else int(rng.integers(-128, 128)),
    )
    tensors["y"] = y
    lo, hi = _clamp(rng, y.zero_point, y.scale)
    attrs = {"kernel": kernel, "stride": stride, "pads": pads, "act_min": lo, "act_max": hi}
    arrays = {} if same else requant(np.array([x.scale / (y.scale * kernel[0] * kernel[1])]))
    return [Layer("pool", op, ["x"], "y", attrs, arrays)], ["x"]


def _random_gap(rng, op, x, tensors):
    h, w, c = x.shape
    y = QTensor("y", (1, 1, c), x.scale * rng.uniform(0.3, 2.0), int(rng.integers(-128, 128)))
    tensors["y"] = y
    lo, hi = _clamp(rng, y.zero_point, y.scale)
    arrays = requant(np.array([x.scale / (y.scale * h * w)]))
    return [Layer("gap", "global_avg_pool", ["x"], "y", {"act_min": lo, "act_max": hi}, arrays)], ["x"]


def _operand_shape(rng: np.random.Generator, shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """The second operand of a binary op: the same map, a (1, 1, C) gate, a (H, W, 1) map or one value."""
    h, w, c = shape
    return [shape, shape, (1, 1, c), (h, w, 1), (1, w, c), (1, 1, 1)][int(rng.integers(0, 6))]


def _random_binary_inputs(rng, x, tensors):
    b_shape = _operand_shape(rng, x.shape)
    b = QTensor("b", b_shape, float(rng.uniform(0.005, 0.05)), int(rng.integers(-128, 128)))
    if rng.random() < 0.5:  # the broadcast operand first
        tensors["x"], b = QTensor("x", b_shape, x.scale, x.zero_point), QTensor("b", x.shape, b.scale, b.zero_point)
    a = tensors["x"]
    tensors["b"] = b
    out = tuple(max(p, q) for p, q in zip(a.shape, b.shape, strict=True))
    attrs = {"a_shape": list(a.shape), "b_shape": list(b.shape), "shape": list(out)}
    return a, b, out, attrs


def _random_add(rng, op, x, tensors):
    a, b, out, attrs = _random_binary_inputs(rng, x, tensors)
    y = QTensor("y", out, float(max(a.scale, b.scale) * rng.uniform(0.8, 2.5)), int(rng.integers(-128, 128)))
    tensors["y"] = y
    lo, hi = _clamp(rng, y.zero_point, y.scale)
    attrs.update({"sub": int(rng.random() < 0.3), "left_shift": ADD_LEFT_SHIFT, "act_min": lo, "act_max": hi})
    return [Layer("add", "add", ["x", "b"], "y", attrs, add_rescale(a, b, y))], ["x", "b"]


def _random_mul(rng, op, x, tensors):
    a, b, out, attrs = _random_binary_inputs(rng, x, tensors)
    y = QTensor("y", out, float(a.scale * b.scale * 128 * rng.uniform(0.2, 3.0)), int(rng.integers(-128, 128)))
    if rng.random() < 0.1:  # a multiplier above 0.5: the exact requantization
        y = QTensor("y", out, float(a.scale * b.scale * rng.uniform(0.3, 1.5)), y.zero_point)
    tensors["y"] = y
    lo, hi = _clamp(rng, y.zero_point, y.scale)
    attrs.update({"act_min": lo, "act_max": hi})
    arrays = requant(np.array([a.scale * b.scale / y.scale]))
    return [Layer("mul", "mul", ["x", "b"], "y", attrs, arrays)], ["x", "b"]


def _random_lut(rng, op, x, tensors):
    tensors["y"] = QTensor("y", x.shape, float(rng.uniform(0.005, 0.05)), int(rng.integers(-128, 128)))
    table = rng.integers(-128, 128, size=256).astype(np.int8)
    return [Layer("lut", "lut", ["x"], "y", {}, {"table": table})], ["x"]


def _random_concat(rng, op, x, tensors):
    h, w, c = x.shape
    axis = int(rng.integers(0, 4))  # 0..2: a storage axis of maps, 3: flat vectors
    shapes = []
    for _ in range(int(rng.integers(2, 5))):
        size = int(rng.integers(1, 6))
        shapes.append([(size, w, c), (h, size, c), (h, w, size), (size * 7,)][axis])
    names = ["x"] + [f"x{i}" for i in range(1, len(shapes))]
    for name, shape in zip(names, shapes, strict=True):
        tensors[name] = QTensor(name, shape, float(rng.uniform(0.005, 0.05)), int(rng.integers(-128, 128)))
    out_shape = list(shapes[0])
    out_shape[0 if axis == 3 else axis] = sum(s[0 if axis == 3 else axis] for s in shapes)
    y = QTensor("y", tuple(out_shape), float(rng.uniform(0.005, 0.05)), int(rng.integers(-128, 128)))
    tensors["y"] = y
    lo, hi = _clamp(rng, y.zero_point, y.scale)
    outer = 1 if axis == 3 else int(np.prod(out_shape[:axis]))
    inners = [int(np.prod(s if axis == 3 else s[axis:])) for s in shapes]
    tables = []
    for name in names:  # one input keeps the output's parameters: a plain copy
        t = tensors[name] if name != "x" or rng.random() < 0.5 else QTensor("x", shapes[0], y.scale, y.zero_point)
        tensors[name] = t
        tables.append(np.clip(quantize(dequantize(CODES, t.scale, t.zero_point), y.scale, y.zero_point), lo, hi))
    attrs = {"outer": outer, "inners": inners, "act_min": lo, "act_max": hi}
    return [Layer("cat", "concat", names, "y", attrs, {"tables": np.stack(tables).astype(np.int8)})], names


def _random_pad(rng, op, x, tensors):
    h, w, c = x.shape
    channel_pads = [int(rng.integers(0, 3)) * (rng.random() < 0.3) for _ in range(2)]
    pads = [int(rng.integers(0, 3)) for _ in range(4)] + channel_pads
    pt, pl, pb, pr, cf, cb = pads
    tensors["y"] = QTensor("y", (h + pt + pb, w + pl + pr, c + cf + cb), x.scale, x.zero_point)
    lo, hi = _clamp(rng, x.zero_point, x.scale)
    value = x.zero_point if rng.random() < 0.7 else int(rng.integers(-128, 128))
    attrs = {"pads": pads, "value": value, "act_min": lo, "act_max": hi}
    return [Layer("pad", "pad", ["x"], "y", attrs, {})], ["x"]


def _random_softmax(rng, op, x, tensors):
    h, w, c = x.shape
    if rng.random() < 0.5:  # a vector of logits
        n = int(rng.integers(2, 40))
        tensors["x"] = x = QTensor("x", (n,), x.scale * rng.uniform(1, 8), x.zero_point)
        rows = 1
    else:  # the channels of every pixel
        n, rows = c, h * w
    scale = 1.0 / 256.0 if rng.random() < 0.7 else float(rng.uniform(0.002, 0.01))
    zero_point = -128 if scale == 1.0 / 256.0 else int(rng.integers(-128, 0))
    tensors["y"] = QTensor("y", x.shape, scale, zero_point)
    attrs = {"rows": rows, "n": n, "frac": 16, "mult": int(round((1 << 16) / scale)), "act_min": -128, "act_max": 127}
    return [Layer("softmax", "softmax", ["x"], "y", attrs, {"exp": exp_table(x.scale, n)})], ["x"]


def random_kernel_cases(op: str, count: int, seed: int) -> tuple[list, list[tuple[np.ndarray, np.ndarray]]]:
    """(harness cases, expected) for ``count`` random layers of kind ``op`` (see hosttest).

    ``expected[i]`` is (golden output, mask of the bytes case i writes): a concatenation is one
    case per input, each writing its part of the output.
    """
    rng = np.random.default_rng(seed)
    cases, expected = [], []
    for _ in range(count):
        graph, inputs = random_layer_graph(rng, op)
        steps = plan_steps(graph, CASE_OPTIONS)
        xs = {n: rng.integers(-128, 128, size=(1, *graph.tensors[n].shape)).astype(np.int8) for n in inputs}
        values = dict(xs)
        for layer in graph.layers:
            values[layer.output] = run_layer(graph, layer, *[values[n] for n in layer.inputs])
        want = values[graph.output].ravel()
        if len(steps) != 1 and op != "concat":
            raise AssertionError(f"a random {op} layer planned into {len(steps)} steps")
        for step in steps:
            cases.append((step, [xs[n][0] for n in step.inputs], want.size))
            expected.append((want, _written(step, want.size)))
    return cases, expected


def _written(step, size: int) -> np.ndarray:
    """The output bytes a step writes: all of them, or one input's part of a concatenation."""
    mask = np.ones(size, dtype=bool)
    if step.kernel == "concat":
        rows = np.arange(size).reshape(step.ints["outer"], step.ints["out_inner"])
        columns = np.zeros(step.ints["out_inner"], dtype=bool)
        columns[step.ints["offset"] : step.ints["offset"] + step.ints["inner"]] = True
        mask = np.broadcast_to(columns, rows.shape).ravel()
    return mask


def mismatches(outputs: list[np.ndarray], expected: list, cases: list) -> list[str]:
    """The cases whose written bytes differ from the golden reference, described."""
    bad = []
    for index, (got, (want, mask), (step, _, _)) in enumerate(zip(outputs, expected, cases, strict=True)):
        if not np.array_equal(got[mask], want[mask]):
            bad.append(f"case {index}: {step.kernel} {step.ints}")
    return bad
