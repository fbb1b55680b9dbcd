"""The arena buffers of a schedule: every tensor and scratch area with the steps it is live for.

A tensor is live from the step that writes it (its first part, for a layer run in parts) to the
last step that reads it; the graph output to the end. A step whose kernel may write its output
over its first input (:attr:`~malak_pipe.mcu.kernels.Step.writes_over_input`, a streamed block
with its residual add) shares that input's bytes when nothing reads the input later: the two
tensors are one buffer, live from the input's first step to the output's last.
"""

from __future__ import annotations

from malak_pipe.mcu.arena import Buffer, align_up
from malak_pipe.mcu.ir import IntGraph
from malak_pipe.mcu.kernels import Step


def tensor_bytes(graph: IntGraph, name: str) -> int:
    """Bytes a tensor takes in the arena (rounded up to 4: kernels read whole words)."""
    return align_up(graph.tensors[name].size, 4)


def _last_reads(steps: list[Step]) -> dict[str, int]:
    last_read: dict[str, int] = {}
    for index, step in enumerate(steps):
        for name in step.inputs:
            last_read[name] = index
        last_read[step.output] = max(last_read.get(step.output, index), index)  # parts written later
    return last_read


def shared_outputs(graph: IntGraph, steps: list[Step]) -> dict[str, str]:
    """Outputs written over their step's first input, each with the buffer whose bytes it takes."""
    last_read = _last_reads(steps)
    shared: dict[str, str] = {}
    for index, step in enumerate(steps):
        x = step.inputs[0]
        if not step.writes_over_input or x in (graph.input, graph.output) or last_read[x] != index:
            continue
        if tensor_bytes(graph, x) == tensor_bytes(graph, step.output):
            shared[step.output] = shared.get(x, x)
    return shared


def plan_buffers(graph: IntGraph, steps: list[Step]) -> list[Buffer]:
    """Every tensor (an output sharing its input's bytes: with that buffer) and scratch area."""
    last_read = _last_reads(steps)
    shared = shared_outputs(graph, steps)
    end = len(steps) - 1
    spans = {graph.input: [tensor_bytes(graph, graph.input), 0, max(0, last_read.get(graph.input, 0))]}
    scratch = []
    for index, step in enumerate(steps):
        last = end if step.output == graph.output else last_read[step.output]
        name = shared.get(step.output, step.output)
        if name in spans:  # a layer run in parts (concat), or an output in its input's bytes
            spans[name][2] = max(spans[name][2], last)
        else:
            spans[name] = [tensor_bytes(graph, step.output), index, last]
        if step.scratch_bytes:
            scratch.append(Buffer(f"scratch:{index}", step.scratch_bytes, index, index))
    return [Buffer(name, size, first, last) for name, (size, first, last) in spans.items()] + scratch
