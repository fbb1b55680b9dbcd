"""From integer layers to kernel calls: fusion, weight layout and per-channel constants.

A :class:`Step` is one call of a C kernel of ``firmware/include/mk_kernels.h`` with its
integer arguments (shapes, zero points, clamps: literal constants in the generated code) and
its constant arrays in the layout the kernel reads. The code generator emits the steps as C;
the host test harness feeds the same steps to the same kernels, so both exercise one path.

Decisions taken here:

* a 2x2 stride-2 max-pool that is the only reader of a convolution is fused into it (the
  kernel requantizes the largest of the four accumulators; exact because requantization
  is monotonic when the accumulator cannot overflow the left shift, which is checked);
* the input zero point of conv and fully connected layers is folded into the bias;
* the fast requantization (SMMULR) is chosen per layer when the accumulator bound proves it
  exact (see mk_requant.h), otherwise the exact 64-bit form is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from malak_pipe.errors import ArtifactError
from malak_pipe.mcu.ir import IntGraph, Layer

_LIMIT = 2**31


@dataclass(frozen=True)
class KernelSpec:
    """The C signature of a kernel: pointer arguments, constant arrays, then int arguments."""

    function: str
    buffers: tuple[str, ...]
    consts: tuple[tuple[str, str], ...]
    ints: tuple[str, ...]


_WINDOW = ("kh", "kw", "sh", "sw", "pt", "pl")
KERNEL_SPECS: dict[str, KernelSpec] = {
    "conv": KernelSpec(
        "mk_conv",
        ("in", "out", "scratch"),
        (("weights", "int8_t"), ("chan", "mk_chan_t")),
        (
            "in_h",
            "in_w",
            "in_c",
            "out_h",
            "out_w",
            "out_c",
            *_WINDOW,
            "in_zp",
            "out_zp",
            "act_min",
            "act_max",
            "pool",
            "fast",
            "lsh",
        ),
    ),
    "conv1": KernelSpec(
        "mk_conv1",
        ("in", "out", "scratch"),
        (("weights", "int16_t"), ("chan", "mk_chan_t")),
        (
            "in_h",
            "in_w",
            "out_h",
            "out_w",
            "out_c",
            *_WINDOW,
            "in_zp",
            "out_zp",
            "act_min",
            "act_max",
            "pool",
            "fast",
            "lsh",
        ),
    ),
    "dwconv": KernelSpec(
        "mk_dwconv",
        ("in", "out", "scratch"),
        (("weights", "int8_t"), ("chan", "mk_chan_t"), ("bias", "int32_t")),
        (
            "in_h",
            "in_w",
            "in_c",
            "out_h",
            "out_w",
            "out_c",
            *_WINDOW,
            "mult",
            "in_zp",
            "out_zp",
            "act_min",
            "act_max",
            "fast",
            "lsh",
        ),
    ),
    "fc": KernelSpec(
        "mk_fc",
        ("in", "out", "scratch"),
        (("weights", "int8_t"), ("chan", "mk_chan_t")),
        ("k4", "out_c", "out_zp", "act_min", "act_max", "fast", "lsh"),
    ),
    "maxpool": KernelSpec(
        "mk_maxpool",
        ("in", "out"),
        (),
        ("in_h", "in_w", "c", "out_h", "out_w", *_WINDOW, "act_min", "act_max"),
    ),
    "avgpool": KernelSpec(
        "mk_avgpool",
        ("in", "out"),
        (),
        ("in_h", "in_w", "c", "out_h", "out_w", *_WINDOW, "in_zp", "out_zp", "mult", "shift", "act_min", "act_max"),
    ),
    "add": KernelSpec(
        "mk_add",
        ("in", "in2", "out"),
        (),
        (
            "n",
            "zp_a",
            "zp_b",
            "out_zp",
            "mult_a",
            "shift_a",
            "mult_b",
            "shift_b",
            "mult_out",
            "shift_out",
            "left_shift",
            "act_min",
            "act_max",
        ),
    ),
}


@dataclass
class Step:
    """One kernel call: which layers it runs, its tensors, arguments and constants."""

    kernel: str
    layers: list[str]
    ops: list[str]
    inputs: list[str]
    output: str
    ints: dict[str, int]
    consts: dict[str, np.ndarray] = field(default_factory=dict)
    scratch_bytes: int = 0
    macs: int = 0

    @property
    def spec(self) -> KernelSpec:
        return KERNEL_SPECS[self.kernel]

    def int_args(self) -> list[int]:
        return [int(self.ints[name]) for name in self.spec.ints]

    @property
    def name(self) -> str:
        return "+".join(self.layers)


def plan_steps(graph: IntGraph, *, fuse_pool: bool = True) -> list[Step]:
    """The kernel calls that run ``graph``, in order."""
    steps: list[Step] = []
    fused: set[str] = set()
    for layer in graph.layers:
        if layer.name in fused:
            continue
        if layer.op == "conv2d":
            pool = _fusable_pool(graph, layer) if fuse_pool else None
            steps.append(_conv_step(graph, layer, pool))
            if pool is not None:
                fused.add(pool.name)
            continue
        builder = _BUILDERS.get(layer.op)
        if builder is None:
            raise ArtifactError(f"layer '{layer.name}': no MCU kernel for operator '{layer.op}'")
        steps.append(builder(graph, layer))
    return steps


# ------------------------------------------------------------------ constants


def _k4(k: int) -> int:
    return (k + 3) // 4 * 4


def _pad_rows(weights: np.ndarray, k4: int) -> np.ndarray:
    rows = weights.reshape(weights.shape[0], -1).astype(np.int8)
    out = np.zeros((rows.shape[0], k4), dtype=np.int8)
    out[:, : rows.shape[1]] = rows
    return out


def interleave_rows(rows: np.ndarray, block: int) -> np.ndarray:
    """Rows in blocks of ``block`` interleaved by 4 bytes (what one wide load feeds); the rest plain."""
    out_c, k4 = rows.shape
    full = out_c - out_c % block
    blocks = rows[:full].reshape(full // block, block, k4 // 4, 4).transpose(0, 2, 1, 3)
    return np.concatenate([blocks.reshape(-1), rows[full:].reshape(-1)]).astype(np.int8)


def _fold_zero_point(layer: Layer, rows: np.ndarray, in_zp: int) -> np.ndarray:
    bias = layer.arrays["bias"].astype(np.int64) - in_zp * rows.astype(np.int64).sum(axis=1)
    if np.any(np.abs(bias) >= _LIMIT):
        raise ArtifactError(f"layer '{layer.name}': the bias with the input zero point folded in overflows int32")
    return bias


def channel_constants(
    bias: np.ndarray, mult: np.ndarray, shift: np.ndarray, out_zp: int, acc_bound: np.ndarray
) -> tuple[np.ndarray, bool, int]:
    """The (C, 4) int32 records of mk_chan_t, whether the fast requantization is exact, and lsh."""
    shift = shift.astype(np.int64)
    right = -shift
    fast = bool(np.all((right >= 1) & (right <= 22)) and np.all(acc_bound * 2 < _LIMIT))
    chan = np.zeros((len(bias), 4), dtype=np.int64)
    chan[:, 0] = bias
    chan[:, 1] = mult
    if fast:
        chan[:, 2] = (1 << (right - 1)) + (np.int64(out_zp) << right)
        chan[:, 3] = right
    else:
        chan[:, 3] = shift
    return chan.astype(np.int32), fast, 1 if fast else 0


def _monotonic(layer: Layer, acc_bound: np.ndarray, fast: bool) -> bool:
    """Requantization is non-decreasing in the accumulator (needed to max-pool accumulators)."""
    left = np.maximum(layer.arrays["shift"].astype(np.int64), 0)
    return fast or bool(np.all(acc_bound * (1 << left) < _LIMIT))


def compose_clamps(first: tuple[int, int], second: tuple[int, int]) -> tuple[int, int]:
    """One clamp equal to clamping to ``first`` then to ``second``."""
    lo, hi = max(first[0], second[0]), min(first[1], second[1])
    if lo <= hi:
        return lo, hi
    value = second[0] if first[1] < second[0] else second[1]
    return value, value


def _window_ints(layer: Layer) -> dict[str, int]:
    kh, kw = layer.attrs["kernel"]
    sh, sw = layer.attrs["stride"]
    pt, pl = layer.attrs["pads"][:2]
    return {"kh": kh, "kw": kw, "sh": sh, "sw": sw, "pt": pt, "pl": pl}


def _io(graph: IntGraph, layer: Layer) -> dict[str, int]:
    x = graph.tensors[layer.inputs[0]]
    y = graph.tensors[layer.output]
    ints = {"in_zp": x.zero_point, "out_zp": y.zero_point}
    ints.update({"act_min": layer.attrs["act_min"], "act_max": layer.attrs["act_max"]})
    if len(x.shape) == 3:
        ints.update({"in_h": x.shape[0], "in_w": x.shape[1], "in_c": x.shape[2]})
    if len(y.shape) == 3:
        ints.update({"out_h": y.shape[0], "out_w": y.shape[1], "out_c": y.shape[2]})
    return ints


# ---------------------------------------------------------------------- steps


def _fusable_pool(graph: IntGraph, conv: Layer) -> Layer | None:
    readers = graph.consumers(conv.output)
    if len(readers) != 1 or conv.output == graph.output:
        return None
    pool = readers[0]
    if pool.op != "max_pool" or pool.attrs["kernel"] != [2, 2] or pool.attrs["stride"] != [2, 2]:
        return None
    return pool if not any(pool.attrs["pads"]) else None


def _conv_step(graph: IntGraph, layer: Layer, pool: Layer | None) -> Step:
    ints = _io(graph, layer)
    ints.update(_window_ints(layer))
    weights = layer.arrays["weights"]
    k = int(np.prod(weights.shape[1:]))
    k4 = _k4(k)
    rows = _pad_rows(weights, k4)
    bias = _fold_zero_point(layer, rows, ints["in_zp"])
    bound = np.abs(bias) + 128 * np.abs(rows.astype(np.int64)).sum(axis=1)
    out_zp = graph.tensors[layer.output].zero_point
    chan, fast, lsh = channel_constants(bias, layer.arrays["multiplier"], layer.arrays["shift"], out_zp, bound)
    if pool is not None and not _monotonic(layer, bound, fast):
        pool = None
    output, layers, ops = layer.output, [layer.name], [layer.op]
    if pool is not None:
        output, layers, ops = pool.output, [layer.name, pool.name], [layer.op, pool.op]
        clamp = compose_clamps((ints["act_min"], ints["act_max"]), (pool.attrs["act_min"], pool.attrs["act_max"]))
        ints["act_min"], ints["act_max"] = clamp
    ints.update({"pool": int(pool is not None), "fast": int(fast), "lsh": lsh})
    macs = layer.macs(graph) + (pool.macs(graph) if pool is not None else 0)
    if ints["in_c"] == 1 and k <= MAX_CONV1_TAPS:
        return _conv1_step(layer, layers, ops, output, ints, weights, chan, macs)
    return Step(
        "conv",
        layers,
        ops,
        [layer.inputs[0]],
        output,
        ints,
        {"weights": interleave_rows(rows, 2), "chan": chan},
        scratch_bytes=(4 if pool is not None else 2) * k4 * 2,
        macs=macs,
    )


MAX_CONV1_TAPS = 64
MAX_DW_KERNEL_ROWS = 16


def _conv1_step(
    layer: Layer,
    layers: list[str],
    ops: list[str],
    output: str,
    ints: dict[str, int],
    weights: np.ndarray,
    chan: np.ndarray,
    macs: int,
) -> Step:
    """A one-channel input (first layer): q15 weights, rows of q15 columns streamed through scratch."""
    out_c = weights.shape[0]
    k = int(np.prod(weights.shape[1:]))
    k2 = k + (k & 1)
    rows = np.zeros((out_c, k2), dtype=np.int16)
    rows[:, :k] = weights.reshape(out_c, k)
    pixels = 2 * 2 * (ints["out_w"] // 2) if ints["pool"] else ints["out_w"]
    return Step(
        "conv1",
        layers,
        ops,
        [layer.inputs[0]],
        output,
        ints,
        {"weights": rows.reshape(-1), "chan": chan},
        scratch_bytes=pixels * k2 * 2,
        macs=macs,
    )


def _dwconv_step(graph: IntGraph, layer: Layer) -> Step:
    ints = _io(graph, layer)
    ints.update(_window_ints(layer))
    ints["mult"] = layer.attrs["depth_multiplier"]
    weights = layer.arrays["weights"].astype(np.int8)  # KH, KW, Cout
    bias = layer.arrays["bias"].astype(np.int64)
    taps = weights.astype(np.int64).sum(axis=(0, 1))
    folded = bias - ints["in_zp"] * taps  # where every tap is inside: sum of x * w plus this
    if np.any(np.abs(folded) >= _LIMIT):
        raise ArtifactError(f"layer '{layer.name}': the bias with the input zero point folded in overflows int32")
    abs_w = np.abs(weights.astype(np.int64)).sum(axis=(0, 1))
    bound = np.maximum(np.abs(bias) + 255 * abs_w, np.abs(folded) + 128 * abs_w)
    chan, fast, lsh = channel_constants(
        folded, layer.arrays["multiplier"], layer.arrays["shift"], ints["out_zp"], bound
    )
    ints.update({"fast": int(fast), "lsh": lsh})
    consts = {"weights": np.ascontiguousarray(weights), "chan": chan, "bias": bias.astype(np.int32)}
    ring = 0
    if ints["mult"] == 1 and ints["in_c"] % 4 == 0:
        if ints["kh"] > MAX_DW_KERNEL_ROWS:
            raise ArtifactError(f"layer '{layer.name}': depthwise kernels taller than {MAX_DW_KERNEL_ROWS} rows")
        ring = ints["kh"] * ((ints["out_w"] - 1) * ints["sw"] + ints["kw"]) * ints["in_c"]
    return Step(
        "dwconv",
        [layer.name],
        [layer.op],
        [layer.inputs[0]],
        layer.output,
        ints,
        consts,
        scratch_bytes=ring,
        macs=layer.macs(graph),
    )


def _fc_step(graph: IntGraph, layer: Layer) -> Step:
    ints = _io(graph, layer)
    weights = layer.arrays["weights"]
    k4 = _k4(weights.shape[1])
    rows = _pad_rows(weights, k4)
    bias = _fold_zero_point(layer, rows, ints["in_zp"])
    bound = np.abs(bias) + 128 * np.abs(rows.astype(np.int64)).sum(axis=1)
    chan, fast, lsh = channel_constants(bias, layer.arrays["multiplier"], layer.arrays["shift"], ints["out_zp"], bound)
    ints.update({"k4": k4, "out_c": weights.shape[0], "fast": int(fast), "lsh": lsh})
    consts = {"weights": interleave_rows(rows, 4), "chan": chan}
    return Step(
        "fc",
        [layer.name],
        [layer.op],
        [layer.inputs[0]],
        layer.output,
        ints,
        consts,
        scratch_bytes=2 * k4,
        macs=layer.macs(graph),
    )


def _maxpool_step(graph: IntGraph, layer: Layer) -> Step:
    ints = _io(graph, layer)
    ints.update(_window_ints(layer))
    ints["c"] = ints["in_c"]
    return Step("maxpool", [layer.name], [layer.op], [layer.inputs[0]], layer.output, ints, macs=layer.macs(graph))


def _avgpool_step(graph: IntGraph, layer: Layer) -> Step:
    ints = _io(graph, layer)
    if layer.op == "global_avg_pool":
        ints.update({"kh": ints["in_h"], "kw": ints["in_w"], "sh": 1, "sw": 1, "pt": 0, "pl": 0})
    else:
        ints.update(_window_ints(layer))
    ints.update({"c": ints["in_c"], "mult": int(layer.arrays["multiplier"][0]), "shift": int(layer.arrays["shift"][0])})
    return Step("avgpool", [layer.name], [layer.op], [layer.inputs[0]], layer.output, ints, macs=layer.macs(graph))


def _add_step(graph: IntGraph, layer: Layer) -> Step:
    a, b = (graph.tensors[name] for name in layer.inputs)
    out = graph.tensors[layer.output]
    mult, shift = layer.arrays["multiplier"], layer.arrays["shift"]
    ints = {
        "n": out.size,
        "zp_a": a.zero_point,
        "zp_b": b.zero_point,
        "out_zp": out.zero_point,
        "mult_a": int(mult[0]),
        "shift_a": int(shift[0]),
        "mult_b": int(mult[1]),
        "shift_b": int(shift[1]),
        "mult_out": int(mult[2]),
        "shift_out": int(shift[2]),
        "left_shift": layer.attrs["left_shift"],
        "act_min": layer.attrs["act_min"],
        "act_max": layer.attrs["act_max"],
    }
    return Step("add", [layer.name], [layer.op], list(layer.inputs), layer.output, ints, macs=layer.macs(graph))


_BUILDERS: dict[str, Callable[[IntGraph, Layer], Step]] = {
    "depthwise_conv2d": _dwconv_step,
    "fully_connected": _fc_step,
    "max_pool": _maxpool_step,
    "avg_pool": _avgpool_step,
    "global_avg_pool": _avgpool_step,
    "add": _add_step,
}
