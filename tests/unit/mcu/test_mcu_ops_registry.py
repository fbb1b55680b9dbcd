"""The operator registry is consistent: every operator is lowered, has a golden reference and a
kernel, every kernel is defined in its family's C header, and the drivers name no operator."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from malak_pipe.mcu.golden import run_layer
from malak_pipe.mcu.kernels import plan_steps
from malak_pipe.mcu.ops import FAMILIES, REGISTRY
from malak_pipe.mcu.ops.lut import TABLE_OP
from malak_pipe.mcu.ops.registry import OnnxOp, OpFamily, OpRegistry
from tests.helpers.mcu_kernel_cases import CASE_OPTIONS, RANDOM_OPS, random_layer_graph

ROOT = Path(__file__).resolve().parents[3]
INCLUDE = ROOT / "firmware" / "include"


def test_every_lowering_emits_registered_operators_and_every_operator_is_reachable():
    produced = {op for onnx_op in REGISTRY.onnx_ops.values() for op in onnx_op.produces}
    # the driver itself emits lookup tables (activations, requantizations)
    assert produced | {TABLE_OP} == set(REGISTRY.int_ops)
    assert {"Sigmoid", "Tanh", "HardSwish", "LeakyRelu", "Mul", "Add"} <= set(REGISTRY.elementwise)


def test_every_operator_has_a_golden_reference_and_a_registered_kernel_on_random_layers():
    rng = np.random.default_rng(0)
    seen_ops, seen_kernels = set(), set()
    for kind in RANDOM_OPS:
        for _ in range(20):
            graph, inputs = random_layer_graph(rng, kind)
            values = {
                name: rng.integers(-128, 128, size=(2, *graph.tensors[name].shape)).astype(np.int8) for name in inputs
            }
            for layer in graph.layers:
                out = run_layer(graph, layer, *[values[name] for name in layer.inputs])
                assert out.dtype == np.int8 and out.shape == (2, *graph.tensors[layer.output].shape)
                values[layer.output] = out
                seen_ops.add(layer.op)
            for step in plan_steps(graph, CASE_OPTIONS):  # slow blocks too: every kernel
                assert REGISTRY.kernels[step.kernel] is step.spec
                assert step.reason, f"{step.kernel} step without a reason"
                step.int_args()  # every int argument of the C signature is filled in
                seen_kernels.add(step.kernel)
    assert seen_ops == set(REGISTRY.int_ops), "the random kernel cases must cover every operator"
    assert seen_kernels == set(REGISTRY.kernels), "the random kernel cases must reach every kernel"


def _defined_functions(header: Path) -> set[str]:
    return set(re.findall(r"^MK_INLINE\s+[\w\s\*]+?\b(mk_\w+)\(", header.read_text(), flags=re.MULTILINE))


@pytest.mark.parametrize("family", FAMILIES, ids=[f.name for f in FAMILIES])
def test_each_kernel_is_defined_in_its_family_header(family: OpFamily):
    defined = (
        set().union(*(_defined_functions(INCLUDE / header) for header in family.headers)) if family.headers else set()
    )
    assert {spec.function for spec in family.kernels} <= defined
    assert bool(family.kernels) == bool(family.headers)


def test_the_umbrella_header_includes_every_kernel_header():
    umbrella = (INCLUDE / "mk_kernels.h").read_text()
    included = set(re.findall(r'^#include "(kernels/[\w.]+)"', umbrella, flags=re.MULTILINE))
    on_disk = {f"kernels/{p.name}" for p in (INCLUDE / "kernels").glob("*.h")}
    assert included == on_disk
    assert {h for f in FAMILIES for h in f.headers} <= on_disk


def test_the_drivers_dispatch_through_the_registry():
    """lower.py, golden.py, kernels.py, codegen.py and ir.py name no operator."""
    names = set(REGISTRY.int_ops) | set(REGISTRY.onnx_ops)
    for module in ("lower.py", "golden.py", "kernels.py", "codegen.py", "ir.py"):
        text = (ROOT / "malak_pipe" / "mcu" / module).read_text()
        quoted = {name for name in names if f'"{name}"' in text}
        assert not quoted, f"malak_pipe/mcu/{module} names operators {sorted(quoted)}"


def test_a_name_declared_twice_is_refused():
    twice = OpFamily("again", onnx_ops=(OnnxOp("Add", lambda lw, node: None),))
    with pytest.raises(ValueError, match="'Add' is declared by two operator families"):
        OpRegistry([*FAMILIES, twice])


def test_unknown_operator_in_a_graph_names_the_layer():
    from malak_pipe.errors import ArtifactError
    from malak_pipe.mcu.ir import Layer

    with pytest.raises(ArtifactError, match=r"layer 'odd': 'layer_norm' is not an MCU operator \(known: conv2d"):
        REGISTRY.int_op(Layer("odd", "layer_norm", ["x"], "y"))


def test_every_mcu_package_is_declared_in_pyproject():
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "malak_pipe" / "mcu").rglob("__init__.py")
        if "firmware" not in p.parts
    }
    assert packages <= declared, sorted(packages - declared)
