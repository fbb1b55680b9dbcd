"""C code generation: model_data.c/.h (constants in flash), model.c/.h (arena and calls), plan.json.

The generated ``mk_model_run`` is straight-line code: one call per :class:`Step` to an
always-inline kernel of ``mk_kernels.h`` (one header per operator family under
``firmware/include/kernels/``) with every shape as a literal, so the compiler emits a
copy of each kernel specialized for its layer. Tensors live at fixed offsets of one static
arena planned by :mod:`malak_pipe.mcu.arena`. Between calls the generated code reads the
platform timer (``MK_TIMER_NOW``) and adds each layer's ticks to ``ticks[i]``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from malak_pipe.mcu.arena import ArenaPlan, Buffer, align_up, check_plan, plan_arena
from malak_pipe.mcu.codegen_options import CodegenOptions
from malak_pipe.mcu.ir import IntGraph
from malak_pipe.mcu.kernels import Step, plan_steps
from malak_pipe.mcu.ops import REGISTRY, int4

ARENA_ALIGN = 8
PLAN_FILE = "plan.json"


@dataclass
class GeneratedModel:
    """What :func:`generate` wrote and the numbers the memory report needs."""

    directory: Path
    steps: list[Step]
    arena: ArenaPlan
    param_bytes: int
    macs: int

    def summary(self) -> dict:
        return json.loads((self.directory / PLAN_FILE).read_text())


def tensor_bytes(graph: IntGraph, name: str) -> int:
    """Bytes a tensor takes in the arena (rounded up to 4: kernels read whole words)."""
    return align_up(graph.tensors[name].size, 4)


def plan_buffers(graph: IntGraph, steps: list[Step]) -> list[Buffer]:
    """Every tensor and scratch area with the steps it is live for."""
    last_read: dict[str, int] = {}
    for index, step in enumerate(steps):
        for name in step.inputs:
            last_read[name] = index
        last_read[step.output] = max(last_read.get(step.output, index), index)  # parts written later
    end = len(steps) - 1
    buffers = [Buffer(graph.input, tensor_bytes(graph, graph.input), 0, max(0, last_read.get(graph.input, 0)))]
    written = {graph.input}
    for index, step in enumerate(steps):
        last = end if step.output == graph.output else last_read[step.output]
        if step.output not in written:  # a layer run in parts (concat) writes its output from its first step on
            buffers.append(Buffer(step.output, tensor_bytes(graph, step.output), index, last))
            written.add(step.output)
        if step.scratch_bytes:
            buffers.append(Buffer(f"scratch:{index}", step.scratch_bytes, index, index))
    return buffers


def generate(graph: IntGraph, directory: Path, options: CodegenOptions | None = None) -> GeneratedModel:
    """Write the C sources, plan.json and the golden graph (graph.json) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    steps = plan_steps(graph, options)
    arena = plan_arena(plan_buffers(graph, steps), alignment=ARENA_ALIGN)
    check_plan(arena)
    data_c, param_bytes = _model_data_c(steps)
    (directory / "model_data.c").write_text(data_c)
    (directory / "model_data.h").write_text(_model_data_h(steps))
    (directory / "model.h").write_text(_model_h(graph, steps, arena))
    (directory / "model.c").write_text(_model_c(graph, steps, arena))
    graph.save(directory)
    macs = sum(step.macs for step in steps)
    plan = {
        "input": {"name": graph.input, "shape": list(graph.input_tensor.shape), "offset": arena.offsets[graph.input]},
        "output": {
            "name": graph.output,
            "shape": list(graph.output_tensor.shape),
            "offset": arena.offsets[graph.output],
        },
        "arena": arena.to_json(),
        "param_bytes": param_bytes,
        "macs": macs,
        "layers": [_step_json(index, step) for index, step in enumerate(steps)],
    }
    (directory / PLAN_FILE).write_text(json.dumps(plan, indent=1))
    return GeneratedModel(directory, steps, arena, param_bytes, macs)


def _step_json(index: int, step: Step) -> dict:
    return {
        "index": index,
        "name": step.name,
        "kernel": step.kernel,
        "reason": step.reason,
        "ops": step.ops,
        "macs": step.macs,
        "param_bytes": int(sum(a.nbytes for a in step.consts.values())),
        **int4.weight_info(step),
        "scratch_bytes": step.scratch_bytes,
        "fast_requant": bool(step.ints.get("fast", 0)),
        "args": step.ints,
    }


# ------------------------------------------------------------------------ C text


def c_identifier(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", text)


def c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _c_array(values: np.ndarray, per_line: int = 24) -> str:
    flat = [str(int(v)) for v in np.asarray(values).ravel()]
    lines = [", ".join(flat[i : i + per_line]) for i in range(0, len(flat), per_line)]
    return "    " + ",\n    ".join(lines)


def const_name(index: int, key: str) -> str:
    return f"mk_l{index}_{key}"


def _model_data_c(steps: list[Step]) -> tuple[str, int]:
    parts = ['/* Generated by malak_pipe.mcu.codegen: model constants (flash). */\n#include "model_data.h"\n']
    total = 0
    for index, step in enumerate(steps):
        for key, ctype in step.spec.consts:
            array = step.consts[key]
            total += array.nbytes
            name = const_name(index, key)
            if ctype == "mk_chan_t":
                rows = ",\n".join("    {" + ", ".join(str(int(v)) for v in row) + "}" for row in array)
                parts.append(f"/* {step.name}: bias, mult, off, shift per channel */\n")
                parts.append(f"const mk_chan_t {name}[{len(array)}] MK_ALIGN(8) = {{\n{rows}\n}};\n")
            else:
                parts.append(f"/* {step.name}: {key} {tuple(array.shape)} */\n")
                parts.append(f"const {ctype} {name}[{array.size}] MK_ALIGN(8) = {{\n{_c_array(array)}\n}};\n")
    return "".join(parts), total


def _model_data_h(steps: list[Step]) -> str:
    lines = [
        "/* Generated by malak_pipe.mcu.codegen. */",
        "#ifndef MK_MODEL_DATA_H",
        "#define MK_MODEL_DATA_H",
        '#include "mk_requant.h"',
    ]
    for index, step in enumerate(steps):
        for key, ctype in step.spec.consts:
            array = step.consts[key]
            count = len(array) if ctype == "mk_chan_t" else array.size
            lines.append(f"extern const {ctype} {const_name(index, key)}[{count}];")
    lines.append("#endif")
    return "\n".join(lines) + "\n"


def _model_h(graph: IntGraph, steps: list[Step], arena: ArenaPlan) -> str:
    x, y = graph.input_tensor, graph.output_tensor
    return f"""/* Generated by malak_pipe.mcu.codegen: the model's interface. */
#ifndef MK_MODEL_H
#define MK_MODEL_H
#include <stdint.h>

#define MK_INPUT_SIZE {x.size}   /* int8, H x W x C = {" x ".join(map(str, x.shape))} */
#define MK_OUTPUT_SIZE {y.size}
#define MK_NUM_LAYERS {len(steps)}
#define MK_ARENA_SIZE {arena.size}

/* the input tensor (write MK_INPUT_SIZE int8 values here), the output tensor */
int8_t *mk_model_input(void);
const int8_t *mk_model_output(void);
/* run one inference; adds each layer's timer ticks to ticks[0..MK_NUM_LAYERS-1] */
void mk_model_run(uint32_t *ticks);
extern const char *const mk_layer_names[MK_NUM_LAYERS];
#endif
"""


def _call(index: int, step: Step, arena: ArenaPlan) -> str:
    pointers = []
    for role in step.spec.buffers:
        if role == "scratch":
            key = f"scratch:{index}"
            pointers.append(f"(void *)(mk_arena + {arena.offsets[key]})" if key in arena.offsets else "(void *)0")
        elif role == "out":
            pointers.append(f"mk_arena + {arena.offsets[step.output]}")
        else:
            tensor = step.inputs[0] if role == "in" else step.inputs[1]
            pointers.append(f"mk_arena + {arena.offsets[tensor]}")
    consts = [const_name(index, key) for key, _ in step.spec.consts]
    ints = [f"/*{name}*/ {value}" for name, value in zip(step.spec.ints, step.int_args(), strict=True)]
    args = ",\n        ".join([", ".join(pointers + consts), *_chunks(ints, 6)])
    return (
        f"    /* {index}: {step.name} ({', '.join(step.ops)}), {step.macs} MACs */\n    {step.spec.function}({args});\n"
    )


def _chunks(items: list[str], size: int) -> list[str]:
    return [", ".join(items[i : i + size]) for i in range(0, len(items), size)]


def _model_c(graph: IntGraph, steps: list[Step], arena: ArenaPlan) -> str:
    calls = []
    for index, step in enumerate(steps):
        calls.append(_call(index, step, arena))
        calls.append(f"    t1 = MK_TIMER_NOW();\n    ticks[{index}] += MK_TIMER_DIFF(t0, t1);\n    t0 = t1;\n")
    names = ",\n    ".join(c_string(step.name) for step in steps)
    return f"""/* Generated by malak_pipe.mcu.codegen: the inference, straight-line calls to specialized kernels. */
#include "model.h"
#include "model_data.h"
#include "mk_kernels.h"
#include "mk_platform.h"

static int8_t mk_arena[MK_ARENA_SIZE] MK_ALIGN(8) __attribute__((section(".bss.mk_arena")));

int8_t *mk_model_input(void) {{ return mk_arena + {arena.offsets[graph.input]}; }}
const int8_t *mk_model_output(void) {{ return mk_arena + {arena.offsets[graph.output]}; }}

const char *const mk_layer_names[MK_NUM_LAYERS] = {{
    {names}
}};

void mk_model_run(uint32_t *ticks)
{{
    uint32_t t0 = MK_TIMER_NOW(), t1;
{"".join(calls)}    (void)t1;
}}
"""


# -------------------------------------------------------------- host harness


def harness_source(pool_bytes: int = 1 << 20) -> str:
    """A program running kernel steps from ``cases.bin`` into ``out.bin`` (host or target).

    Records: u32 kernel id, u32 n_ints, n_ints x i32, then for each constant and input a u32
    byte count and the bytes, then u32 output bytes and u32 scratch bytes. It uses the runner's
    I/O layer (stdio on the host, semihosting on the target) and a static pool of ``pool_bytes``.
    """
    cases = []
    specs = REGISTRY.kernels
    for kernel_id, (name, spec) in enumerate(specs.items()):
        pointers = [
            {"in": "in[0]", "in2": "in[1]", "out": "out", "scratch": "(void *)scratch"}[r] for r in spec.buffers
        ]
        consts = [f"(const {ctype} *)cst[{i}]" for i, (_, ctype) in enumerate(spec.consts)]
        ints = [f"I[{i}]" for i in range(len(spec.ints))]
        cases.append(
            f"    case {kernel_id}: /* {name} */\n"
            f"        if (n_ints != {len(spec.ints)}) return 0;\n"
            f"        {spec.function}({', '.join(pointers + consts + ints)});\n        return 1;\n"
        )
    n_consts = "{" + ", ".join(str(len(s.consts)) for s in specs.values()) + "}"
    n_inputs = "{" + ", ".join(str(sum(r in ("in", "in2") for r in s.buffers)) for s in specs.values()) + "}"
    return (
        HARNESS_TEMPLATE.replace("@CASES@", "".join(cases))
        .replace("@NCONST@", n_consts)
        .replace("@NIN@", n_inputs)
        .replace("@POOL@", str(pool_bytes))
    )


HARNESS_TEMPLATE = r"""/* Generated by malak_pipe.mcu.codegen: runs kernel steps from cases.bin into out.bin. */
#include "mk_kernels.h"
#include "mk_platform.h"

static const int n_consts[] = @NCONST@;
static const int n_inputs[] = @NIN@;
static uint8_t pool[@POOL@] __attribute__((aligned(8)));
static uint32_t used;

#define GUARD 16u
#define GUARD_BYTE 0xA5u

/* size bytes followed by GUARD guard bytes (checked after the kernel ran: exit 7 on overrun) */
static void *take(uint32_t size)
{
    uint8_t *p = pool + used;
    used += (size + GUARD + 7u) & ~7u;
    if (used > sizeof pool) mk_exit(6);
    for (uint32_t i = 0; i < GUARD; i++) p[size + i] = GUARD_BYTE;
    return p;
}

static void check_guard(const void *p, uint32_t size)
{
    for (uint32_t i = 0; i < GUARD; i++) {
        if (((const uint8_t *)p)[size + i] != GUARD_BYTE) mk_exit(7);
    }
}

static void *blob(int f)
{
    uint32_t size;
    if (mk_io_read(f, &size, 4) != 0) mk_exit(4);
    void *p = take(size);
    if (size && mk_io_read(f, p, size) != 0) mk_exit(4);
    return p;
}

static int run(uint32_t id, const int32_t *I, uint32_t n_ints, void **cst, int8_t **in, int8_t *out, void *scratch)
{
    switch (id) {
@CASES@
    }
    return 0;
}

int main(void)
{
    mk_timer_start();
    int f = mk_io_open("cases.bin", 0), o = mk_io_open("out.bin", 1);
    if (f < 0 || o < 0) mk_exit(2);
    uint32_t head[2];
    while (mk_io_read(f, head, 8) == 0) {
        used = 0;
        if (head[0] >= sizeof n_consts / sizeof n_consts[0]) mk_exit(3);
        int32_t *I = take(4 * head[1]);
        if (head[1] && mk_io_read(f, I, 4 * head[1]) != 0) mk_exit(4);
        void *cst[4] = {0};
        int8_t *in[2] = {0};
        for (int i = 0; i < n_consts[head[0]]; i++) cst[i] = blob(f);
        for (int i = 0; i < n_inputs[head[0]]; i++) in[i] = blob(f);
        uint32_t sizes[2];
        if (mk_io_read(f, sizes, 8) != 0) mk_exit(4);
        int8_t *out = take(sizes[0]);
        void *scratch = take(sizes[1]);
        if (!run(head[0], I, head[1], cst, in, out, scratch)) mk_exit(3);
        check_guard(out, sizes[0]);
        check_guard(scratch, sizes[1]);
        if (sizes[0] && mk_io_write(o, out, sizes[0]) != 0) mk_exit(5);
    }
    mk_io_close(o);
    mk_io_close(f);
    mk_exit(0);
}
"""
