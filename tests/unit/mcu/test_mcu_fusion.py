"""Block fusion found in a user-written module (not the zoo), refused where it must be, bit-exact in C.

The module has depthwise-separable pairs (one after a 3x3 stem, one reading the projection of
the block before, one whose widening pointwise does not pay), an inverted-residual block with
its residual add, a stride-2 block with a 5x5 depthwise and channels that are not multiples of
4, an expanded tensor read twice (its expand must stay a layer of its own) and a depthwise
output read twice (no block at all).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from malak_pipe.mcu.buffers import shared_outputs
from malak_pipe.mcu.codegen import generate
from malak_pipe.mcu.codegen_options import CodegenOptions
from malak_pipe.mcu.fusion import block_decisions
from malak_pipe.mcu.ir import IntGraph, Layer, QTensor
from malak_pipe.mcu.kernels import plan_steps
from malak_pipe.mcu.lower import lower_onnx
from tests.helpers.mcu_kernel_cases import random_layer_graph


def _user_module():
    import torch
    from torch import nn

    class UserBlocks(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU())
            self.separable = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU(), nn.Conv2d(16, 8, 1))
            self.residual = nn.Sequential(
                nn.Conv2d(8, 24, 1),
                nn.ReLU6(),
                nn.Conv2d(24, 24, 3, padding=1, groups=24),
                nn.ReLU6(),
                nn.Conv2d(24, 8, 1),
            )
            self.down = nn.Sequential(
                nn.Conv2d(8, 20, 1),
                nn.ReLU(),
                nn.Conv2d(20, 20, 5, stride=2, padding=2, groups=20),
                nn.ReLU(),
                nn.Conv2d(20, 12, 1),
            )
            self.narrow = nn.Sequential(nn.Conv2d(12, 12, 3, padding=1, groups=12), nn.ReLU(), nn.Conv2d(12, 4, 1))
            self.widen = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.ReLU(), nn.Conv2d(4, 16, 1))
            self.expand = nn.Sequential(nn.Conv2d(16, 32, 1), nn.ReLU())
            self.depthwise = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.ReLU())
            self.project = nn.Conv2d(32, 16, 1)
            self.side = nn.Conv2d(32, 16, 1)
            self.shared_dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
            self.left, self.right = nn.Conv2d(16, 16, 1), nn.Conv2d(16, 16, 1)
            self.head = nn.Linear(16, 10)

        def forward(self, x):
            x = self.separable(self.stem(x))
            x = x + self.residual(x)
            x = self.widen(self.narrow(self.down(x)))
            h = self.expand(x)  # read by the depthwise and by side: the expand cannot stream
            x = self.project(self.depthwise(h)) + self.side(h)
            d = self.shared_dw(x)  # read by two convolutions: no block
            x = self.left(d) + self.right(d)
            return self.head(torch.flatten(x.mean(dim=(2, 3)), 1))

    torch.manual_seed(0)
    return UserBlocks().eval()


@pytest.fixture(scope="module")
def user_graph(tmp_path_factory):
    from tests.helpers.mcu_models import export_qdq

    x = np.random.default_rng(0).normal(size=(64, 3, 12, 12)).astype(np.float32)
    return lower_onnx(export_qdq(_user_module(), x, tmp_path_factory.mktemp("fusion") / "user.onnx"))


def test_blocks_are_found_in_a_user_module_and_refused_where_they_must_be(user_graph):
    graph = user_graph
    decisions = block_decisions(graph, CodegenOptions())
    ops = {layer.name: layer.op for layer in graph.layers}
    found = [[ops[name] for name in d.layers] if d.block else None for d in decisions]
    assert found == [
        ["depthwise_conv2d", "conv2d"],  # depthwise separable after a 3x3 stem
        ["conv2d", "depthwise_conv2d", "conv2d", "add"],  # inverted residual with its add
        ["conv2d", "depthwise_conv2d", "conv2d"],  # stride 2, 5x5, 20 channels: no residual
        ["depthwise_conv2d", "conv2d"],  # its input is the projection of the block before
        ["depthwise_conv2d", "conv2d"],  # a widening pointwise on a 6x6 map: pays since mk_pw's weight scratch
        ["depthwise_conv2d", "conv2d"],  # its expand is read twice
        None,  # the depthwise output is read twice
    ]
    reasons = [d.to_json()["reason"] for d in decisions]
    assert "no expand" in reasons[0]
    assert "already ends the block before" in reasons[3]
    assert "856 B live instead of 1184 B" in reasons[4]  # fused only because it pays
    assert "expand" in reasons[5] and "read by 2 layers" in reasons[5]
    assert "not fused" in reasons[6] and "read by 2 layers" in reasons[6]
    assert decisions[2].block.depthwise.attrs["stride"] == [2, 2]

    steps = plan_steps(graph)
    refused_expand = next(layer for layer in graph.layers if layer.output == decisions[5].block.input)
    assert [step.layers for step in steps if refused_expand.name in step.layers] == [[refused_expand.name]]
    assert sum(step.kernel == "block" for step in steps) == 6
    off = plan_steps(graph, CodegenOptions(fuse_blocks=False))
    assert not any(step.kernel == "block" for step in off)
    assert all(
        not d.block and "fuse_blocks is off" in d.reason
        for d in block_decisions(graph, CodegenOptions(fuse_blocks=False))
    )


def test_fused_c_is_bit_exact_and_needs_less_ram(user_graph, tmp_path):
    from tests.helpers.mcu_pipeline import host_bit_exact

    graph = user_graph
    images = np.random.default_rng(1).integers(-128, 128, size=(16, *graph.input_tensor.shape)).astype(np.int8)
    assert host_bit_exact(graph, images, tmp_path / "fused") == 1.0
    plan = json.loads((tmp_path / "fused" / "src" / "plan.json").read_text())
    unfused = generate(graph, tmp_path / "unfused", CodegenOptions(fuse_blocks=False))
    assert plan["arena"]["lower_bound_bytes"] < unfused.arena.lower_bound
    assert plan["arena"]["arena_bytes"] < unfused.arena.size
    assert len(plan["arena"]["aliases"]) == 1  # the residual block writes over its input
    fused_blocks = [b for b in plan["blocks"] if b["fused"]]
    assert len(fused_blocks) == 6
    assert all(b["ram_after_bytes"] <= b["ram_before_bytes"] for b in fused_blocks)
    assert sum(b["ram_after_bytes"] < b["ram_before_bytes"] for b in fused_blocks) >= 4
    assert all(b["ram_after_bytes"] == b["ram_before_bytes"] for b in plan["blocks"] if not b["fused"])


@pytest.mark.parametrize("model", ["mobilenet_v2", "efficientnet_b0"])
def test_zoo_blocks_stream_and_the_arena_bound_drops(zoo_models, tmp_path, model):
    """Every inverted residual of MobileNetV2 streams; in EfficientNet a SiLU table and a
    squeeze-and-excitation gate follow each depthwise, so its blocks stay layers (with the reason)."""
    graph = lower_onnx(zoo_models[f"{model}/ort_int8"])
    decisions = block_decisions(graph, CodegenOptions())
    fused = generate(graph, tmp_path / "fused")
    unfused = generate(graph, tmp_path / "unfused", CodegenOptions(fuse_blocks=False))
    if model == "mobilenet_v2":
        assert len(decisions) == 17 and all(d.block is not None for d in decisions)
        for d in decisions:  # the residual add joins exactly the blocks whose output has the input's shape
            same = graph.tensors[d.block.input].shape == graph.tensors[d.block.project.output].shape
            assert (d.block.add is not None) == same
        assert fused.arena.lower_bound * 3 < unfused.arena.lower_bound
        assert fused.param_bytes < unfused.param_bytes  # no plain depthwise biases on the 4-channel path
    else:  # depthwise -> SiLU table -> squeeze-and-excitation -> project: the gate needs the whole map
        assert decisions and all(d.block is None and "is a lut, not a 1x1 convolution" in d.reason for d in decisions)
        assert fused.arena.lower_bound == unfused.arena.lower_bound


def _residual_block_after_a_table(seed: int) -> IntGraph:
    """A random residual block whose input is made by a table layer (so it is not the graph input)."""
    rng = np.random.default_rng(seed)
    while True:
        graph, _ = random_layer_graph(rng, "block")
        if graph.layers[-1].op == "add":
            break
    x = graph.tensors["x"]
    graph.tensors["x0"] = QTensor("x0", x.shape, x.scale, x.zero_point)
    table = rng.integers(-128, 128, size=256).astype(np.int8)
    graph.layers.insert(0, Layer("table", "lut", ["x0"], "x", {}, {"table": table}))
    graph.input = "x0"
    return graph


def test_a_residual_block_writes_over_its_input_only_when_nothing_reads_it_later(tmp_path):
    from tests.helpers.mcu_pipeline import host_bit_exact

    for seed in range(3):
        graph = _residual_block_after_a_table(seed)
        assert shared_outputs(graph, plan_steps(graph)) == {"y": "x"}
        images = np.random.default_rng(seed).integers(-128, 128, size=(4, *graph.input_tensor.shape)).astype(np.int8)
        assert host_bit_exact(graph, images, tmp_path / f"case{seed}") == 1.0
        plan = json.loads((tmp_path / f"case{seed}" / "src" / "plan.json").read_text())
        assert plan["arena"]["aliases"] == {"y": "x"}
        offsets = {b["name"]: b["offset"] for b in plan["arena"]["buffers"]}
        assert plan["output"]["offset"] == offsets["x"]
        graph.layers.append(Layer("later", "lut", ["x"], "z", {}, {"table": graph.layers[0].arrays["table"]}))
        graph.tensors["z"] = QTensor("z", graph.tensors["x"].shape, 1.0, 0)
        assert shared_outputs(graph, plan_steps(graph)) == {}
