"""Lowering int8 QDQ ONNX to the integer graph, and the golden reference against ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest

from malak_pipe.deploy.ort_runtime import OrtPredictor
from malak_pipe.errors import ArtifactError
from malak_pipe.mcu.golden import quantize_input, run_golden
from malak_pipe.mcu.ir import IntGraph
from malak_pipe.mcu.lower import lower_onnx


def ort_logits(path, x: np.ndarray) -> np.ndarray:
    """ONNX Runtime's outputs of a QDQ model on float inputs (one thread)."""
    return OrtPredictor(path, threads=1)(x)


@pytest.mark.parametrize("act", ["int8", "uint8"])
def test_simple_cnn_golden_agrees_with_onnxruntime(digits_models, digits_split, act):
    _, _, x_test, y_test = digits_split
    path = digits_models[f"cnn_{act}"]
    graph = lower_onnx(path)
    assert [layer.op for layer in graph.layers] == [
        "conv2d",
        "max_pool",
        "conv2d",
        "max_pool",
        "conv2d",
        "fully_connected",
        "fully_connected",
    ]
    assert graph.meta["activation_dtype"] == act
    golden = run_golden(graph, quantize_input(graph, x_test))
    ort = ort_logits(path, x_test)
    agreement = (golden.argmax(axis=1) == ort.argmax(axis=1)).mean()
    assert agreement >= 0.99
    assert (golden.argmax(axis=1) == y_test).mean() > 0.9
    out = graph.output_tensor
    dequantized = (golden.astype(np.float64) - out.zero_point) * out.scale
    assert np.abs(dequantized - ort).max() <= 2.01 * out.scale  # a couple of LSBs at most


def test_uint8_activations_convert_exactly(digits_models, digits_split):
    """uint8 (q - 128, zp - 128) lowers to the same integer graph as int8 calibration gives."""
    _, _, x_test, _ = digits_split
    g8 = lower_onnx(digits_models["cnn_int8"])
    gu = lower_onnx(digits_models["cnn_uint8"])
    for name in (g8.input, g8.output):
        assert g8.tensors[name].zero_point == gu.tensors[name].zero_point
    np.testing.assert_array_equal(quantize_input(g8, x_test), quantize_input(gu, x_test))
    np.testing.assert_array_equal(
        run_golden(g8, quantize_input(g8, x_test)), run_golden(gu, quantize_input(gu, x_test))
    )


def test_mixed_ops_lower_and_save_roundtrip(digits_models, digits_split, tmp_path):
    _, _, x_test, _ = digits_split
    graph = lower_onnx(digits_models["mixed_uint8"])
    ops = {layer.op for layer in graph.layers}
    assert {"conv2d", "depthwise_conv2d", "add", "avg_pool", "global_avg_pool", "fully_connected"} <= ops
    assert any(layer.attrs.get("depth_multiplier") == 2 for layer in graph.layers)
    graph.save(tmp_path)
    again = IntGraph.load(tmp_path)
    q = quantize_input(graph, x_test[:50])
    np.testing.assert_array_equal(run_golden(graph, q), run_golden(again, q))
    golden = run_golden(graph, quantize_input(graph, x_test))
    ort = ort_logits(digits_models["mixed_uint8"], x_test)
    assert (golden.argmax(axis=1) == ort.argmax(axis=1)).mean() >= 0.97


def _qdq_model_with(op_builder, tmp_path, channels=2):
    """A tiny QDQ model: input -> Q -> DQ -> <op> -> Q -> DQ -> output."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("QuantizeLinear", ["input", "s", "z"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"]),
        *op_builder("dq", "y"),
        helper.make_node("QuantizeLinear", ["y", "s", "z"], ["qy"]),
        helper.make_node("DequantizeLinear", ["qy", "s", "z"], ["out"]),
    ]
    inits = [
        helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]),
        helper.make_tensor("z", TensorProto.INT8, [], [0]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, channels, 4, 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    return path


def test_unsupported_operator_names_node_and_type(tmp_path):
    from onnx import helper

    path = _qdq_model_with(lambda x, y: [helper.make_node("Erf", [x], [y], name="my_erf")], tmp_path)
    with pytest.raises(ArtifactError) as info:
        lower_onnx(path)
    message = str(info.value)
    assert "my_erf" in message and "'Erf'" in message and "not supported" in message
    assert "Sigmoid" in message and "Concat" in message  # the supported list


def test_grouped_convolution_is_refused_with_the_node_name(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    def conv(x, y):
        return [
            helper.make_node("DequantizeLinear", ["wq", "ws"], ["w"], axis=0),
            helper.make_node("Conv", [x, "w"], [y], name="grouped", group=2, kernel_shape=[1, 1]),
        ]

    path = _qdq_model_with(conv, tmp_path, channels=4)
    model = onnx.load(str(path))
    model.graph.initializer.extend(
        [
            helper.make_tensor("wq", TensorProto.INT8, [4, 2, 1, 1], [1, 2, 3, 4, 5, 6, 7, 8]),
            helper.make_tensor("ws", TensorProto.FLOAT, [4], [0.1] * 4),
        ]
    )
    onnx.save(model, str(path))
    with pytest.raises(ArtifactError, match=r"grouped.*Conv.*group=2, 4 input channels"):
        lower_onnx(path)


def test_not_a_qdq_model_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["input"], ["out"])],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
    )
    path = tmp_path / "f.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(ArtifactError, match="not quantized"):
        lower_onnx(path)


def test_model_ending_in_a_view_lowers_and_generates(tmp_path):
    """conv -> average pool over the whole map -> flatten as the output: the output is a view of the pool."""
    import torch
    from torch import nn

    from malak_pipe.mcu.codegen import generate
    from malak_pipe.mcu.selfcheck import host_check
    from tests.helpers.mcu_models import export_qdq

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(6), nn.Flatten())
    x = np.random.default_rng(0).normal(size=(64, 3, 6, 6)).astype(np.float32)
    graph = lower_onnx(export_qdq(model, x, tmp_path / "m.onnx"))
    assert [layer.op for layer in graph.layers] == ["conv2d", "avg_pool"]
    assert graph.output == graph.layers[-1].output and graph.output in graph.tensors
    generate(graph, tmp_path / "src")
    assert host_check(graph, tmp_path / "src", 8) in (None, 1.0)
