"""Per-layer time, MACs and parameter counts: torch via forward hooks, ONNX Runtime via its profiler.

Torch: every leaf module is timed between a forward pre-hook and a forward hook (so the
layer's own kernels only), averaged over ``runs`` calls after one warm-up call. ONNX Runtime:
the session's profiler JSON (``*_kernel_time`` node events) of the same optimised graph that
the latency measurement runs, averaged over ``runs`` calls; MACs of a node come from its
weight initializer in the optimised graph (saved by the same session) and its output shape.
MACs are for one call at the profiled batch size (multiply-accumulates of conv / linear /
matmul layers; 0 for the rest).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class LayerStat:
    """One layer: ``time_ms`` per call, MACs per call, parameters (elements), calls seen per run."""

    name: str
    op: str
    time_ms: float
    macs: int
    params: int
    share: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _with_shares(layers: list[LayerStat]) -> list[LayerStat]:
    total = sum(layer.time_ms for layer in layers)
    for layer in layers:
        layer.share = layer.time_ms / total if total > 0 else 0.0
    return sorted(layers, key=lambda layer: layer.time_ms, reverse=True)


# -- torch -------------------------------------------------------------------------------------


def _weight_shape(module: Any) -> tuple[int, ...] | None:
    weight = getattr(module, "weight", None)
    if callable(weight):  # torch.ao quantized modules expose weight() as a method
        try:
            weight = weight()
        except (RuntimeError, TypeError):
            return None
    shape = getattr(weight, "shape", None)
    return tuple(shape) if shape is not None else None


def _torch_params(module: Any) -> int:
    own = sum(p.numel() for p in module.parameters(recurse=False))
    if own:
        return int(own)
    shape = _weight_shape(module)
    if shape is None:
        return 0
    bias = getattr(module, "bias", None)
    bias = bias() if callable(bias) else bias
    return int(np.prod(shape)) + (int(bias.numel()) if bias is not None else 0)


def _torch_macs(module: Any, output: Any) -> int:
    shape = _weight_shape(module)
    if shape is None or len(shape) < 2 or not hasattr(output, "numel"):
        return 0
    kind = type(module).__name__.lower()
    if "conv" not in kind and "linear" not in kind:
        return 0
    return int(output.numel()) * int(np.prod(shape[1:]))


def torch_layer_profile(
    module: Any, x: np.ndarray, *, runs: int, threads: int, engine: str | None = None
) -> list[LayerStat]:
    """Per-leaf-module time and MACs of ``module`` on ``x`` with ``threads`` threads (slowest first)."""
    import torch

    from malak_pipe.deploy.torch_int8 import quantized_engine

    leaves = {name: m for name, m in module.named_modules() if name and not list(m.children())}
    times: dict[str, float] = defaultdict(float)
    macs: dict[str, int] = {}
    starts: dict[str, float] = {}
    handles = []
    for name, leaf in leaves.items():

        def pre(_m: Any, _i: Any, n: str = name) -> None:
            starts[n] = time.perf_counter()

        def post(_m: Any, _i: Any, out: Any, n: str = name, leaf: Any = leaf) -> None:
            times[n] += time.perf_counter() - starts[n]
            macs[n] = _torch_macs(leaf, out)

        handles += [leaf.register_forward_pre_hook(pre), leaf.register_forward_hook(post)]
    tensor = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with quantized_engine(engine), torch.inference_mode():
            module.eval()(tensor)
            times.clear()
            for _ in range(runs):
                module(tensor)
    finally:
        torch.set_num_threads(previous_threads)
        for handle in handles:
            handle.remove()
    layers = [
        LayerStat(
            name, type(leaves[name]).__name__, 1e3 * times[name] / runs, macs.get(name, 0), _torch_params(leaves[name])
        )
        for name in times
    ]
    return _with_shares(layers)


# -- ONNX Runtime ------------------------------------------------------------------------------

_WEIGHT_INPUT = {"Conv": 1, "FusedConv": 1, "ConvInteger": 1, "QLinearConv": 3, "NhwcFusedConv": 1}
_MATMUL_OPS = {
    "Gemm",
    "MatMul",
    "QGemm",
    "MatMulInteger",
    "QLinearMatMul",
    "FusedGemm",
    "FusedMatMul",
    "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat",
}


def _initializer_shapes(path: Path) -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    import onnx

    model = onnx.load(str(path))
    nodes = {node.name: node for node in model.graph.node}
    shapes = {init.name: tuple(init.dims) for init in model.graph.initializer}
    return nodes, shapes


def _onnx_macs(node: Any, op: str, out_shape: list[int], in_shapes: list[list[int]], shapes: dict) -> int:
    out = int(np.prod(out_shape)) if out_shape else 0
    if op in _WEIGHT_INPUT and node is not None and len(node.input) > _WEIGHT_INPUT[op]:
        weight = shapes.get(node.input[_WEIGHT_INPUT[op]])
        return out * int(np.prod(weight[1:])) if weight and len(weight) > 1 else 0
    if op in _MATMUL_OPS and in_shapes and in_shapes[0]:
        return out * int(in_shapes[0][-1])
    return 0


def _node_params(node: Any, shapes: dict[str, tuple[int, ...]]) -> int:
    if node is None:
        return 0
    return int(sum(int(np.prod(shapes[name])) for name in node.input if name in shapes and len(shapes[name]) > 0))


def _shape_of(entry: list[dict[str, list[int]]], index: int) -> list[int]:
    if len(entry) <= index:
        return []
    return next(iter(entry[index].values()), [])


def ort_layer_profile(path: Path | str, x: np.ndarray, *, runs: int, threads: int) -> list[LayerStat]:
    """Per-node time and MACs of an ONNX model in ONNX Runtime on ``x`` (sorted, slowest first)."""
    from malak_pipe.deploy.ort_runtime import make_session

    with tempfile.TemporaryDirectory(prefix="malak-ortprof-") as tmp:
        optimized = Path(tmp) / "optimized.onnx"
        session = make_session(
            path, threads=threads, profile_prefix=str(Path(tmp) / "ort"), optimized_path=str(optimized)
        )
        feed = {session.get_inputs()[0].name: np.ascontiguousarray(x, dtype=np.float32)}
        session.run(None, feed)
        for _ in range(runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
        nodes, shapes = _initializer_shapes(optimized) if optimized.exists() else ({}, {})
    durations: dict[str, list[float]] = defaultdict(list)
    info: dict[str, tuple[str, int, int]] = {}
    for event in events:
        if event.get("cat") != "Node" or not str(event.get("name", "")).endswith("_kernel_time"):
            continue
        name = event["name"][: -len("_kernel_time")]
        durations[name].append(float(event.get("dur", 0)) / 1e3)
        if name not in info:
            args = event.get("args", {})
            op = str(args.get("op_name", "?"))
            in_shapes = [_shape_of(args.get("input_type_shape", []), i) for i in range(2)]
            out_shape = _shape_of(args.get("output_type_shape", []), 0)
            node = nodes.get(name)
            info[name] = (op, _onnx_macs(node, op, out_shape, in_shapes, shapes), _node_params(node, shapes))
    layers = []
    for name, times in durations.items():
        per_run = max(1, len(times) // (runs + 1))  # calls of this node in one run
        measured = times[per_run:]  # the first run is the warm-up
        op, macs, params = info[name]
        layers.append(LayerStat(name, op, sum(measured) / runs, macs, params))
    return _with_shares(layers)
