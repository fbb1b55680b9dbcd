"""From integer layers to kernel calls: the Step a C kernel runs, its signature, the planning loop.

A :class:`Step` is one call of a C kernel of ``firmware/include/mk_kernels.h`` with its
integer arguments (shapes, zero points, clamps: literal constants in the generated code) and
its constant arrays in the layout the kernel reads. The code generator emits the steps as C;
the host test harness feeds the same steps to the same kernels, so both exercise one path.

Each operator's step builder lives with the operator (:mod:`malak_pipe.mcu.ops`) and picks the
kernel variant from the layer's shape, recording why in :attr:`Step.reason`. A builder may take
in layers after its own (a conv takes the max-pool it fuses); :func:`plan_steps` then skips
them. A builder may also return several steps that write one output in parts (a concatenation:
one step per input). Shared here: the per-channel constants every requantizing kernel reads, with the choice
of the fast requantization (SMMULR) where the accumulator bound proves it exact (see
mk_requant.h), the weight layouts of the register blocks and the zero-point folding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from malak_pipe.errors import ArtifactError
from malak_pipe.mcu.codegen_options import CodegenOptions
from malak_pipe.mcu.ir import IntGraph, Layer

ACC_LIMIT = 2**31


@dataclass(frozen=True)
class KernelSpec:
    """The C signature of a kernel: pointer arguments, constant arrays, then int arguments.

    ``name`` is the kernel's name in plan.json and the harness; ``function`` the C function.
    """

    name: str
    function: str
    buffers: tuple[str, ...]
    consts: tuple[tuple[str, str], ...]
    ints: tuple[str, ...]


WINDOW_INTS = ("kh", "kw", "sh", "sw", "pt", "pl")


@dataclass
class Step:
    """One kernel call: which layers it runs, its tensors, arguments, constants and why this kernel."""

    spec: KernelSpec
    layers: list[str]
    ops: list[str]
    inputs: list[str]
    output: str
    ints: dict[str, int]
    consts: dict[str, np.ndarray] = field(default_factory=dict)
    scratch_bytes: int = 0
    macs: int = 0
    reason: str = ""
    writes_over_input: bool = False  # the kernel may write its output over inputs[0] (planner: when not read later)

    @property
    def kernel(self) -> str:
        return self.spec.name

    def int_args(self) -> list[int]:
        return [int(self.ints[name]) for name in self.spec.ints]

    @property
    def name(self) -> str:
        return "+".join(self.layers)


def plan_steps(graph: IntGraph, options: CodegenOptions | None = None) -> list[Step]:
    """The kernel calls that run ``graph``, in order."""
    from malak_pipe.mcu.fusion import block_builders  # fusion and the op modules build Steps
    from malak_pipe.mcu.ops import REGISTRY

    options = options or CodegenOptions()
    steps: list[Step] = []
    covered: set[str] = set()
    blocks = block_builders(graph, options)  # streamed blocks, by their first layer
    for layer in graph.layers:
        if layer.name in covered:
            continue
        build = blocks.get(layer.name) or REGISTRY.int_op(layer).build_step
        built = build(graph, layer, options)
        for step in built if isinstance(built, list) else [built]:
            covered.update(step.layers)
            steps.append(step)
    return steps


# ------------------------------------------------------------------ constants


def k4_of(k: int) -> int:
    """``k`` rounded up to a multiple of 4 (the kernels read weights and columns by words)."""
    return (k + 3) // 4 * 4


def pad_rows(weights: np.ndarray, k4: int) -> np.ndarray:
    """Weights (Cout, ...) as int8 rows of ``k4`` values, zero padded."""
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


def fold_zero_point(layer: Layer, rows: np.ndarray, in_zp: int) -> np.ndarray:
    """The layer's bias minus ``in_zp`` times each row's sum (int64); ArtifactError if it leaves int32."""
    bias = layer.arrays["bias"].astype(np.int64) - in_zp * rows.astype(np.int64).sum(axis=1)
    if np.any(np.abs(bias) >= ACC_LIMIT):
        raise ArtifactError(f"layer '{layer.name}': the bias with the input zero point folded in overflows int32")
    return bias


def row_bound(bias: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """A bound of |accumulator| per row for int8 inputs with the zero point folded into ``bias``."""
    return np.abs(bias) + 128 * np.abs(rows.astype(np.int64)).sum(axis=1)


def channel_constants(
    bias: np.ndarray, mult: np.ndarray, shift: np.ndarray, out_zp: int, acc_bound: np.ndarray
) -> tuple[np.ndarray, bool, int]:
    """The (C, 4) int32 records of mk_chan_t, whether the fast requantization is exact, and lsh."""
    shift = shift.astype(np.int64)
    right = -shift
    fast = bool(np.all((right >= 1) & (right <= 22)) and np.all(acc_bound * 2 < ACC_LIMIT))
    chan = np.zeros((len(bias), 4), dtype=np.int64)
    chan[:, 0] = bias
    chan[:, 1] = mult
    if fast:
        chan[:, 2] = (1 << (right - 1)) + (np.int64(out_zp) << right)
        chan[:, 3] = right
    else:
        chan[:, 3] = shift
    return chan.astype(np.int32), fast, 1 if fast else 0


@dataclass(frozen=True)
class RowConstants:
    """What a kernel over int8 weight rows reads: rows padded to k4 and mk_chan_t records with the
    input zero point folded into the bias; ``bound`` bounds |accumulator| per row."""

    rows: np.ndarray
    bound: np.ndarray
    chan: np.ndarray
    fast: bool
    lsh: int


def row_constants(layer: Layer, weights: np.ndarray, k4: int, in_zp: int, out_zp: int) -> RowConstants:
    """The :class:`RowConstants` of a conv or fully connected layer with ``weights`` (Cout, ...)."""
    rows = pad_rows(weights, k4)
    bias = fold_zero_point(layer, rows, in_zp)
    bound = row_bound(bias, rows)
    chan, fast, lsh = channel_constants(bias, layer.arrays["multiplier"], layer.arrays["shift"], out_zp, bound)
    return RowConstants(rows, bound, chan, fast, lsh)


def compose_clamps(first: tuple[int, int], second: tuple[int, int]) -> tuple[int, int]:
    """One clamp equal to clamping to ``first`` then to ``second``."""
    lo, hi = max(first[0], second[0]), min(first[1], second[1])
    if lo <= hi:
        return lo, hi
    value = second[0] if first[1] < second[0] else second[1]
    return value, value


def window_ints(layer: Layer) -> dict[str, int]:
    """Kernel size, stride and top/left padding of a window layer, as the kernels take them."""
    kh, kw = layer.attrs["kernel"]
    sh, sw = layer.attrs["stride"]
    pt, pl = layer.attrs["pads"][:2]
    return {"kh": kh, "kw": kw, "sh": sh, "sw": sw, "pt": pt, "pl": pl}


def io_ints(graph: IntGraph, layer: Layer) -> dict[str, int]:
    """Zero points, clamp and the map shapes of a one-input layer."""
    x = graph.tensors[layer.inputs[0]]
    y = graph.tensors[layer.output]
    ints = {"in_zp": x.zero_point, "out_zp": y.zero_point}
    ints.update({"act_min": layer.attrs["act_min"], "act_max": layer.attrs["act_max"]})
    if len(x.shape) == 3:
        ints.update({"in_h": x.shape[0], "in_w": x.shape[1], "in_c": x.shape[2]})
    if len(y.shape) == 3:
        ints.update({"out_h": y.shape[0], "out_w": y.shape[1], "out_c": y.shape[2]})
    return ints


def single_step(spec: KernelSpec, graph: IntGraph, layer: Layer, ints: dict[str, int], **extra) -> Step:
    """The Step of a kernel that runs exactly ``layer`` (its inputs in order, its output)."""
    return Step(spec, [layer.name], [layer.op], list(layer.inputs), layer.output, ints, macs=layer.macs(graph), **extra)
