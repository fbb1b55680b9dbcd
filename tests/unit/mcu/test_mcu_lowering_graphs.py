"""The lowering follows the graph: views, activations, softmax, 1-D models, requantizations.

Small PyTorch models exported and quantized as the pipeline does (dynamo export, ONNX Runtime
static quantization): each lowers, its golden reference matches ONNX Runtime, and its C is
bit-exact on the host. Refusals name the node, its operator and why.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from malak_pipe.errors import ArtifactError
from malak_pipe.mcu.lower import lower_onnx
from tests.helpers.mcu_pipeline import compare_with_ort, host_bit_exact, layerwise_lsb


def _lowered(module: nn.Module, shape: tuple[int, ...], tmp_path, **kwargs):
    """``module`` exported, quantized (ONNX Runtime, int8), lowered: (graph, onnx path, inputs)."""
    from malak_pipe.models.random_net import calibrate_net
    from tests.helpers.mcu_models import export_qdq

    torch.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(64, *shape)).astype(np.float32)
    calibrate_net(module.eval(), x)
    path = export_qdq(module, x, tmp_path / "m.onnx", "int8")
    return lower_onnx(path, **kwargs), path, x


def _check(graph, path, x, tmp_path, agreement: float = 0.95) -> dict:
    images, figures = compare_with_ort(graph, path, x)
    assert figures["decisive_agreement"] >= agreement
    assert layerwise_lsb(path, x[:4])[0] <= 1.0
    assert host_bit_exact(graph, images[:8], tmp_path) == 1.0
    return figures


class _Net(nn.Module):
    def __init__(self, body, head_features: int, classes: int = 6):
        super().__init__()
        self.body, self.fc = body, nn.Linear(head_features, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.body(x), 1))


def test_mean_to_reshape_without_quantize_lowers_with_its_own_rescale(tmp_path):
    """conv -> mean over H, W (no QuantizeLinear after it) -> reshape -> linear: ONNX Runtime's graph of
    mobilenet_v2 / resnet18 heads."""

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(3, 12, 3, padding=1), nn.Linear(12, 5)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).mean((2, 3), keepdim=True).reshape(x.shape[0], -1))

    graph, path, x = _lowered(Head(), (3, 7, 9), tmp_path)
    assert [layer.op for layer in graph.layers] == ["conv2d", "global_avg_pool", "fully_connected"]
    _check(graph, path, x, tmp_path)


def test_transposes_to_channels_last_and_back_move_no_bytes(tmp_path):
    """permute to N x H x W x C and back is free; a flatten of the N x H x W x C view is the storage order."""

    class Permuted(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 5, 3, padding=1), nn.Conv2d(5, 4, 1)
            self.fc = nn.Linear(4 * 6 * 7, 3)

        def forward(self, x):
            y = torch.relu(self.a(x)).permute(0, 2, 3, 1)  # N H W C
            y = self.b(torch.sigmoid(y).permute(0, 3, 1, 2))
            return self.fc(torch.flatten(y.permute(0, 2, 3, 1), 1))

    graph, path, x = _lowered(Permuted(), (3, 6, 7), tmp_path)
    assert [layer.op for layer in graph.layers] == ["conv2d", "lut", "conv2d", "fully_connected"]
    _check(graph, path, x, tmp_path)


def test_a_transpose_spatial_operators_cannot_read_is_refused_with_the_node(tmp_path):
    class Swapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3)

        def forward(self, x):
            return self.b(self.a(x).transpose(2, 3)).mean((2, 3))

    with pytest.raises(ArtifactError, match=r"\(Conv\): input .* is not a channels-last view"):
        _lowered(Swapped(), (3, 6, 8), tmp_path)


@pytest.mark.parametrize("softmax", ["int8", "host"])
def test_final_softmax_in_int8_or_left_to_the_host(tmp_path, softmax):
    body = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
    model = nn.Sequential(_Net(body, 8, classes=7), nn.Softmax(dim=1))
    graph, path, x = _lowered(model, (1, 8, 8), tmp_path, host_softmax=softmax == "host")
    ops = [layer.op for layer in graph.layers]
    assert ops[-1] == ("softmax" if softmax == "int8" else "fully_connected")
    assert graph.meta.get("host_softmax", False) == (softmax == "host")
    images, figures = compare_with_ort(graph, path, x)
    assert figures["agreement"] >= 0.95  # the host's argmax of logits = the argmax of the probabilities
    assert host_bit_exact(graph, images[:8], tmp_path) == 1.0


def test_one_dimensional_model_lowers_as_height_one(tmp_path):
    """Conv1d, MaxPool1d, AvgPool1d and a mean over L: N x C x L, a (1, L, C) map stored."""
    body = nn.Sequential(
        nn.Conv1d(3, 8, 5, stride=2, padding=2), nn.BatchNorm1d(8), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(8, 8, 3, padding=1, groups=8), nn.Hardswish(), nn.AvgPool1d(3, 1, 1), nn.Conv1d(8, 5, 1),
        nn.AdaptiveAvgPool1d(1),
    )  # fmt: skip
    graph, path, x = _lowered(_Net(body, 5), (3, 31), tmp_path)
    assert graph.input_tensor.shape == (1, 31, 3) and graph.meta["onnx_input_shape_chw"] == [3, 31]
    ops = {layer.op for layer in graph.layers}
    assert {"conv2d", "max_pool", "depthwise_conv2d", "lut", "avg_pool", "global_avg_pool"} <= ops
    _check(graph, path, x, tmp_path)


def test_quantize_to_new_parameters_without_an_operator_is_a_table(tmp_path):
    """Q -> DQ -> Q (another scale and zero point) -> DQ: one exact 256-entry table, as ONNX Runtime computes it."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("QuantizeLinear", ["input", "s1", "z1"], ["q1"]),
        helper.make_node("DequantizeLinear", ["q1", "s1", "z1"], ["d1"]),
        helper.make_node("QuantizeLinear", ["d1", "s2", "z2"], ["q2"]),
        helper.make_node("DequantizeLinear", ["q2", "s2", "z2"], ["out"]),
    ]
    inits = [
        helper.make_tensor("s1", TensorProto.FLOAT, [], [0.05]),
        helper.make_tensor("z1", TensorProto.INT8, [], [3]),
        helper.make_tensor("s2", TensorProto.FLOAT, [], [0.037]),
        helper.make_tensor("z2", TensorProto.INT8, [], [-20]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 2, 1, 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        inits,
    )
    path = tmp_path / "requant.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    import onnxruntime as ort

    from malak_pipe.mcu.golden import quantize_input, run_golden

    lowered = lower_onnx(path)
    assert [layer.op for layer in lowered.layers] == ["lut"]
    x = np.random.default_rng(0).normal(scale=4.0, size=(256, 2, 1, 3)).astype(np.float32)
    golden = run_golden(lowered, quantize_input(lowered, x)).astype(np.int64)
    options = ort.SessionOptions()  # the ONNX semantics (ORT's optimizer would drop the first Q/DQ pair)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    y = np.concatenate([session.run(None, {"input": x[i : i + 1]})[0] for i in range(len(x))])
    expected = np.rint(y.transpose(0, 2, 3, 1) / np.float32(0.037)).astype(np.int64) - 20
    np.testing.assert_array_equal(golden, expected)


def test_activation_chains_of_one_tensor_become_one_table(tmp_path):
    """x * relu6(x + 3) / 6 written by hand, x * sigmoid(x), tanh: one table each, after the convolution."""

    class Chains(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 6, 1), nn.Conv2d(6, 4, 1)

        def forward(self, x):
            y = self.a(x)
            y = y * torch.clamp(y + 3.0, 0.0, 6.0) / 6.0
            y = self.b(y)
            y = self.c(y * torch.sigmoid(y))
            return torch.tanh(y).mean((2, 3))

    graph, path, x = _lowered(Chains(), (3, 5, 5), tmp_path)
    assert [layer.op for layer in graph.layers].count("lut") == 3
    _check(graph, path, x, tmp_path, agreement=0.9)
