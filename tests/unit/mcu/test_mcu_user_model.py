"""A user-style model (depthwise-separable residual blocks of widths 24 and 40, SiLU, a
squeeze-and-excitation block, nn.AdaptiveAvgPool2d(1) then torch.flatten) trained on digits,
quantized by ONNX Runtime, torch static PTQ and QAT: each lowers, its golden reference agrees
with ONNX Runtime's top-1 on the test split, and the generated C is bit-exact on the host."""

from __future__ import annotations

import pytest

from tests.helpers.mcu_models import USER_ROUTES


@pytest.mark.parametrize("route", USER_ROUTES)
def test_user_model_lowers_agrees_with_onnxruntime_and_is_bit_exact_on_the_host(
    digits_models, digits_split, tmp_path, route
):
    from malak_pipe.mcu.lower import lower_onnx
    from tests.helpers.mcu_pipeline import compare_with_ort, host_bit_exact, layerwise_lsb

    _, _, x_test, y_test = digits_split
    path = digits_models[f"user_{route}"]
    graph = lower_onnx(path)
    assert {"conv2d", "depthwise_conv2d", "add", "mul", "lut", "global_avg_pool", "fully_connected"} <= {
        layer.op for layer in graph.layers
    }
    images, figures = compare_with_ort(graph, path, x_test)
    print(f"user model {route}: top-1 agreement with ONNX Runtime {figures['agreement']:.4f} on {len(x_test)} images")
    assert figures["agreement"] >= 0.99
    assert layerwise_lsb(path, x_test[:4])[0] <= 1.0
    assert host_bit_exact(graph, images, tmp_path) == 1.0
