"""Block fusion: which [1x1 expand ->] depthwise -> 1x1 project [-> add] chains run streamed.

An inverted-residual block (MobileNetV2: expand, depthwise, project, residual add) or a
depthwise-separable one (MobileNetV1, DS-CNN: depthwise, pointwise) runs as one kernel
(``mk_block``, :mod:`malak_pipe.mcu.ops.block`) that keeps a ring of the expanded rows the
depthwise windows need and writes the output row by row: the expanded and depthwise tensors
never exist whole, and nothing is computed twice.

The pattern is searched in the integer graph, whatever produced it: every depthwise layer is a
candidate, and :func:`block_decisions` says for each whether it is fused, with which neighbours
and why (plan.json records it). A neighbour joins only where streaming it is exact and frees
memory: the tensor between it and the depthwise has no other reader and is not the graph
output, the pointwise layers are 1x1 stride-1 unpadded group-1 convolutions run by ``mk_conv``
alone (no fused pool), the add does not broadcast and its other operand exists before the block
starts, and no layer has 4-bit weights (the block kernels' row routines read int8 weights; a
4-bit layer runs alone on its int4 kernel, :mod:`malak_pipe.mcu.ops.int4`). A block always
needs its projection; the expand and the add are optional. A block is fused only where it pays:
the bytes live while it runs (its input, residual operand, output and
scratch: the ring) are at most those of its layers run one by one (a depthwise-separable pair
whose pointwise widens a small map keeps its layers: the ring would cost more than it frees),
and it runs as fast as its layers one by one: on mk_block3 (mk_pw and mk_dwconv3's routines) with
the 1x1 weights laid out once, or on mk_block where its layers alone would run on mk_conv and
mk_dwconv too. ``fuse_slow_blocks`` streams the others as well (the least RAM, slower).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from malak_pipe.mcu.arena import Buffer, align_up, live_bytes
from malak_pipe.mcu.buffers import tensor_bytes
from malak_pipe.mcu.codegen_options import CodegenOptions
from malak_pipe.mcu.ir import IntGraph, Layer
from malak_pipe.mcu.kernels import Step

DEPTHWISE_OP = "depthwise_conv2d"
POINTWISE_OP = "conv2d"
ADD_OP = "add"
STREAMED_KERNELS = {DEPTHWISE_OP: "dwconv", POINTWISE_OP: "conv"}  # the kernels whose row form mk_block calls
MAX_RING_ROWS = 16  # mk_block's row pointers: const int8_t *row[16]
ALIGN = 8  # the arena's alignment (codegen.ARENA_ALIGN), for the bytes a block keeps live


@dataclass(frozen=True)
class Block:
    """The layers one streamed kernel runs: the depthwise and its projection, maybe an expand and an add."""

    depthwise: Layer
    project: Layer
    expand: Layer | None = None
    add: Layer | None = None

    @property
    def layers(self) -> list[Layer]:
        return [layer for layer in (self.expand, self.depthwise, self.project, self.add) if layer is not None]

    @property
    def input(self) -> str:
        return (self.expand or self.depthwise).inputs[0]

    @property
    def output(self) -> str:
        return (self.add or self.project).output

    @property
    def residual(self) -> str | None:
        """The add's other operand (read row by row), if the block ends with an add."""
        if self.add is None:
            return None
        return next(name for name in self.add.inputs if name != self.project.output)


@dataclass(frozen=True)
class BlockDecision:
    """One depthwise layer: the block it heads (``None``: not fused) and why, in words."""

    depthwise: str
    block: Block | None
    reason: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    step: Step | None = field(default=None, compare=False, repr=False)  # the kernel call running the block

    @property
    def layers(self) -> list[str]:
        return [layer.name for layer in self.block.layers] if self.block else [self.depthwise]

    def to_json(self) -> dict:
        return {
            "depthwise": self.depthwise,
            "fused": self.block is not None,
            "layers": self.layers,
            "reason": "; ".join([self.reason, *self.notes]),
        }


# ------------------------------------------------------------------ detection


def _sole_reader(graph: IntGraph, tensor: str) -> tuple[Layer | None, str]:
    """The only layer reading ``tensor`` (not the graph output), or None and why not."""
    if tensor == graph.output:
        return None, f"'{tensor}' is the graph output"
    readers = graph.consumers(tensor)
    if len(readers) != 1:
        return None, f"'{tensor}' is read by {len(readers)} layers (streamed rows would have to be kept or recomputed)"
    return readers[0], ""


def _pointwise_problem(layer: Layer) -> str:
    """Why ``layer`` is not a 1x1 stride-1 unpadded group-1 convolution ('' if it is one)."""
    if layer.op != POINTWISE_OP:
        return f"'{layer.name}' is a {layer.op}, not a 1x1 convolution"
    if layer.attrs["kernel"] != [1, 1] or layer.attrs["stride"] != [1, 1] or any(layer.attrs["pads"]):
        return f"'{layer.name}' is a {layer.attrs['kernel']} stride {layer.attrs['stride']} convolution, not 1x1/1"
    if layer.attrs.get("groups", 1) != 1:
        return f"'{layer.name}' is a grouped convolution"
    return ""


def unfused_steps(graph: IntGraph, layer: Layer, options: CodegenOptions) -> list[Step]:
    """The steps ``layer`` runs as when it is not fused into a block."""
    from malak_pipe.mcu.ops import REGISTRY  # the operator modules import this package's kernels

    built = REGISTRY.int_op(layer).build_step(graph, layer, options)
    return built if isinstance(built, list) else [built]


def streamed_step(graph: IntGraph, layer: Layer, options: CodegenOptions) -> Step:
    """The step of ``layer`` in the layout mk_block's row routines read (mk_conv's im2col pairs,
    mk_dwconv's int8 ring), whichever kernel a convolution would run on alone; another layer
    (the residual add) as it runs alone."""
    from malak_pipe.mcu.ops.conv import im2col_conv_step  # the operator modules import this package
    from malak_pipe.mcu.ops.depthwise import ring_dwconv_step

    builders = {DEPTHWISE_OP: ring_dwconv_step, POINTWISE_OP: im2col_conv_step}
    if layer.op in builders:
        return builders[layer.op](graph, layer, options)
    return unfused_steps(graph, layer, options)[0]


def _bits_problem(layer: Layer) -> str:
    """Why ``layer``'s weights cannot be streamed ('' if they can): mk_block reads int8 weights only."""
    from malak_pipe.mcu.ops import int4  # the operator modules import this package

    bits = int4.weight_bits(layer)
    return f"'{layer.name}' has {bits}-bit weights (mk_block reads int8 weights)" if bits != 8 else ""


def _depthwise_problem(dw: Layer) -> str:
    """Why the depthwise ``dw`` cannot head a streamed block ('' if it can)."""
    if dw.attrs["kernel"][0] > MAX_RING_ROWS:
        return f"a ring of more than {MAX_RING_ROWS} rows"
    return _bits_problem(dw)


def _kernel_problem(graph: IntGraph, layer: Layer, options: CodegenOptions) -> str:
    """Why ``layer`` cannot be streamed by mk_block's row routines ('' if it can)."""
    why = _bits_problem(layer)
    if why:
        return why
    steps = [streamed_step(graph, layer, options)]
    want = STREAMED_KERNELS[layer.op]
    if len(steps) != 1 or steps[0].kernel != want or steps[0].layers != [layer.name]:
        return f"'{layer.name}' runs on {steps[0].kernel} ({steps[0].reason}), not {want} alone"
    return ""


def _live(graph: IntGraph, tensors: set[str], scratch: int) -> int:
    return sum(align_up(tensor_bytes(graph, name), ALIGN) for name in tensors) + align_up(scratch, ALIGN)


def _bytes_live(graph: IntGraph, block: Block, step: Step, options: CodegenOptions) -> tuple[int, int]:
    """The bytes live while ``block`` runs as ``step`` and, at the worst step, while its layers run one by one."""
    kept = {block.residual} if block.residual else set()  # read by the add, live from the start
    unfused = 0
    for layer in block.layers:
        for alone in unfused_steps(graph, layer, options):
            unfused = max(unfused, _live(graph, kept | set(layer.inputs) | {layer.output}, alone.scratch_bytes))
    return _live(graph, kept | {block.input, block.output}, step.scratch_bytes), unfused


def _project(graph: IntGraph, dw: Layer, options: CodegenOptions) -> tuple[Layer | None, str]:
    reader, why = _sole_reader(graph, dw.output)
    if reader is None:
        return None, why
    why = _pointwise_problem(reader) or _kernel_problem(graph, reader, options)
    return (None, why) if why else (reader, "")


def _expand(graph: IntGraph, dw: Layer, claimed: set[str], options: CodegenOptions) -> tuple[Layer | None, str]:
    producer = next((layer for layer in graph.layers if layer.output == dw.inputs[0]), None)
    if producer is None:
        return None, "no expand: the depthwise reads the graph input"
    why = _pointwise_problem(producer)
    if why:
        return None, f"no expand: {why}"
    if producer.name in claimed:
        return None, f"no expand: '{producer.name}' already ends the block before"
    reader, why = _sole_reader(graph, dw.inputs[0])
    if reader is None:
        return None, f"expand '{producer.name}' not fused: {why}"
    why = _kernel_problem(graph, producer, options)
    return (None, f"expand not fused: {why}") if why else (producer, "")


def _add(graph: IntGraph, project: Layer, first: Layer) -> tuple[Layer | None, str]:
    reader, why = _sole_reader(graph, project.output)
    if reader is None or reader.op != ADD_OP:
        return None, f"no residual add: {why or f'the reader of the projection is a {reader.op}'}"
    attrs = reader.attrs
    if not attrs["a_shape"] == attrs["b_shape"] == attrs["shape"] or reader.inputs[0] == reader.inputs[1]:
        return None, f"residual add '{reader.name}' not fused: it broadcasts or adds the projection to itself"
    other = next(name for name in reader.inputs if name != project.output)
    position = {layer.output: index for index, layer in enumerate(graph.layers)}
    if other != graph.input and position[other] >= graph.layers.index(first):
        return None, f"residual add '{reader.name}' not fused: '{other}' is computed after the block starts"
    return reader, ""


def _choose(graph: IntGraph, block: Block, options: CodegenOptions) -> tuple[Step | None, str, str]:
    """The first form of ``block`` (mk_block3, then mk_block) that pays in RAM and, unless
    ``fuse_slow_blocks``, runs as fast as the layers one by one: (step, what it keeps live, how it
    is slower); no step and why not where none does."""
    from malak_pipe.mcu.ops.block import block_forms, block_slowdown  # the block kernels' module imports this one

    refusals = []
    for step in block_forms(graph, block, options):
        fused, unfused = _bytes_live(graph, block, step, options)  # in-place not counted
        live = f"{fused} B live instead of {unfused} B"
        if fused > unfused:
            refusals.append(f"on {step.kernel} streaming would keep {fused} B live, its layers one by one {unfused} B")
            continue
        slow = block_slowdown(graph, block, step, options)
        if slow and not options.fuse_slow_blocks:
            refusals.append(f"slower streamed on {step.kernel}, {slow} (fuse_slow_blocks: {live})")
            continue
        return step, live, slow
    return None, "; ".join(refusals), ""


def _decide(graph: IntGraph, dw: Layer, claimed: set[str], options: CodegenOptions) -> BlockDecision:
    if not options.fuse_blocks:
        return BlockDecision(dw.name, None, "not fused: fuse_blocks is off")
    why = _depthwise_problem(dw)
    if why:
        return BlockDecision(dw.name, None, f"not fused: {why}")
    project, why = _project(graph, dw, options)
    if project is None:
        return BlockDecision(dw.name, None, f"not fused: {why}")
    expand, expand_note = _expand(graph, dw, claimed, options)
    add, add_note = _add(graph, project, expand or dw)
    block = Block(dw, project, expand, add)
    notes = tuple(note for note in (expand_note, add_note) if note)
    step, live, slow = _choose(graph, block, options)
    if step is None:
        return BlockDecision(dw.name, None, f"not fused: {live}", notes)
    mid = graph.tensors[dw.inputs[0]].shape
    what = "expand -> " if expand else ""
    reason = (
        f"streamed on {step.kernel}{' (slower: ' + slow + ')' if slow else ''}: {what}depthwise "
        f"{dw.attrs['kernel']}/{dw.attrs['stride'][0]} on a ring of {dw.attrs['kernel'][0]} rows of "
        f"{mid[1]}x{mid[2]}, project{' + residual add' if add else ''}, one output row at a time: {live}"
    )
    return BlockDecision(dw.name, block, reason, notes, step)


def block_decisions(graph: IntGraph, options: CodegenOptions) -> list[BlockDecision]:
    """For every depthwise layer in order: the block it heads, or why it runs unfused."""
    decisions: list[BlockDecision] = []
    claimed: set[str] = set()
    for layer in graph.layers:
        if layer.op != DEPTHWISE_OP:
            continue
        decision = _decide(graph, layer, claimed, options)
        if decision.block is not None:
            claimed.update(decision.layers)
        decisions.append(decision)
    return decisions


def block_builders(graph: IntGraph, options: CodegenOptions) -> dict[str, Callable[..., Step]]:
    """The step builder of each fused block, by the name of the block's first layer."""
    builders = {}
    for decision in block_decisions(graph, options):
        if decision.block is not None:

            def build(graph: IntGraph, layer: Layer, options: CodegenOptions, step: Step = decision.step) -> Step:
                return step

            builders[decision.block.layers[0].name] = build
    return builders


# --------------------------------------------------------------------- memory


def _peak_over(steps: list[Step], buffers: list[Buffer], layers: set[str], alignment: int) -> int:
    """The largest total of live buffers at the steps running any of ``layers``."""
    indices = [index for index, step in enumerate(steps) if layers & set(step.layers)]
    return max((live_bytes(buffers, index, alignment) for index in indices), default=0)


def block_report(
    decisions: list[BlockDecision],
    unfused: tuple[list[Step], list[Buffer]],
    fused: tuple[list[Step], list[Buffer]],
    alignment: int,
) -> list[dict]:
    """plan.json's ``blocks``: each decision with the arena bytes live while its layers run,
    unfused (``ram_before_bytes``) and as planned (``ram_after_bytes``)."""
    report = []
    for decision in decisions:
        names = set(decision.layers)
        entry = decision.to_json()
        entry["ram_before_bytes"] = _peak_over(*unfused, names, alignment)
        entry["ram_after_bytes"] = _peak_over(*fused, names, alignment)
        report.append(entry)
    return report
