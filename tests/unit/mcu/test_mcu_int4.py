"""4-bit weights on the MCU: nibble layouts, firmware bytes, and a torch 4/8-bit model through
INT4 QDQ ONNX (ONNX Runtime), the lowering, the golden reference and the host C."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from malak_pipe.errors import ArtifactError, StageFailed
from malak_pipe.mcu.ir import Layer
from malak_pipe.mcu.ops import int4

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def test_row_pairs_put_the_even_row_in_the_low_nibble():
    rows = np.array([[1, -8, 7, 0], [-1, 2, -3, 4], [5, 6, -7, -2]], dtype=np.int8)  # an odd last row
    pairs = int4.pack_pairs(rows).view(np.uint8)
    assert pairs.shape == (2, 4)
    assert pairs[0].tolist() == [0xF1, 0x28, 0xD7, 0x40]  # (-1 << 4 | 1), (2 << 4 | -8)...
    assert pairs[1].tolist() == [0x05, 0x06, 0x09, 0x0E]  # paired with zeros
    assert int4.pack_nibbles(np.array([-8, 7, 3], dtype=np.int8)).view(np.uint8).tolist() == [0x78, 0x03]


def test_fully_connected_blocks_alternate_the_pair_words():
    rows = np.arange(6 * 8).reshape(6, 8) % 16 - 8  # 6 rows of k4 = 8: one 4-row block, one pair
    pairs = int4.pack_pairs(rows.astype(np.int8))
    layout = int4.fc_layout(rows.astype(np.int8))
    # group 0 of pair 0, group 0 of pair 1, group 1 of pair 0, group 1 of pair 1, then pair 2 plain
    expected = np.concatenate([pairs[0, :4], pairs[1, :4], pairs[0, 4:], pairs[1, 4:], pairs[2]])
    assert np.array_equal(layout, expected)


@pytest.mark.parametrize(
    ("kind", "shape", "groups", "int8", "int4_bytes"),
    [
        ("conv", (32, 1, 3, 3), 1, 32 * 10 * 2, 16 * 12),  # first layer: q15 at 8 bits, row pairs at 4
        ("conv", (64, 32, 3, 3), 1, 64 * 288, 32 * 288),
        ("conv", (6, 2, 3, 3), 2, 6 * 20, 2 * 2 * 20),  # 3 channels a group: a pair and a half
        ("linear", (10, 128), 1, 10 * 128, 5 * 128),
        ("depthwise", (64, 1, 3, 3), 64, 64 * 3 * 4, 288),  # 3 wide at 8 bits: mk_dwconv3's (w0, w2, w1, 0) words
        ("depthwise", (64, 1, 5, 5), 64, 64 * 25, 64 * 25 // 2),
    ],
)
def test_firmware_weight_bytes(kind, shape, groups, int8, int4_bytes):
    assert int4.firmware_weight_bytes(kind, shape, groups, 8) == int8
    assert int4.firmware_weight_bytes(kind, shape, groups, 4) == int4_bytes


def test_the_golden_reference_refuses_a_four_bit_layer_out_of_range():
    from tests.helpers.mcu_kernel_cases import random_layer_graph

    graph, _ = random_layer_graph(np.random.default_rng(0), "fully_connected_s4")
    layer = graph.layers[0]
    layer.arrays["weights"] = layer.arrays["weights"].copy()
    layer.arrays["weights"][0, 0] = 9
    from malak_pipe.mcu.golden import run_layer

    with pytest.raises(ArtifactError, match="marked 4-bit but has weights outside"):
        run_layer(graph, layer, np.zeros((1, *graph.input_tensor.shape), dtype=np.int8))
    assert int4.weight_bits(Layer("x", "conv2d", [], "y")) == 8


@pytest.fixture(scope="module")
def mixed_cnn(tmp_path_factory):
    """The digits SimpleCNN with conv2 and fc2 at 4 bits (PTQ) as QDQ ONNX, and its int8 twin."""
    import torch

    from malak_pipe.compress import StaticPTQ, StaticPTQConfig
    from malak_pipe.compress.precision import WeightBitsConfig
    from malak_pipe.deploy.configs import TorchQDQConfig
    from malak_pipe.deploy.torch_qdq import export_torch_int8_qdq
    from tests.helpers.mcu_models import digits_dataset, simple_cnn, train

    data = digits_dataset()
    torch.manual_seed(0)
    model = train(simple_cnn(), data, epochs=4)
    tmp = tmp_path_factory.mktemp("int4")
    sample = data.calibration_batches(1, 32)[0]
    paths = {}
    for name, layers in (("mixed", {"conv2": 4, "fc2": 4}), ("int8", {})):
        quantizer = StaticPTQ(StaticPTQConfig(calibration_batches=4, calibration_batch_size=32))
        quantizer = quantizer.with_weight_bits(WeightBitsConfig(layers=layers))
        int8 = quantizer.quantize(model, data)
        paths[name] = tmp / f"{name}.onnx"
        config, export = TorchQDQConfig(activation_type="int8"), {"calibration_sample": sample, "int4_layers": layers}
        export_torch_int8_qdq(int8, data.input_shape, paths[name], config, **export)
        paths[f"{name}_torch"] = int8
    return data, paths, tmp


def test_the_qdq_model_stores_int4_weights_that_onnx_runtime_runs(mixed_cnn):
    from malak_pipe.deploy.ort_runtime import OrtPredictor

    data, paths, _ = mixed_cnn
    model = onnx.load(str(paths["mixed"]))
    assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 21
    int4_inits = [init.name for init in model.graph.initializer if init.data_type == onnx.TensorProto.INT4]
    assert len(int4_inits) == 4  # two weights and their zero points
    x = data.test.x.numpy()
    ort = OrtPredictor(paths["mixed"])(x).argmax(1)
    torch_int8 = paths["mixed_torch"](data.test.x).argmax(1).numpy()
    assert (ort == torch_int8).mean() >= 0.99
    assert paths["mixed"].stat().st_size < paths["int8"].stat().st_size


def test_the_lowering_reads_int4_and_the_golden_reference_and_host_c_match(mixed_cnn):
    from malak_pipe.deploy.artifact import load_onnx
    from malak_pipe.deploy.ort_runtime import OrtPredictor
    from malak_pipe.mcu.codegen import generate
    from malak_pipe.mcu.golden import quantize_input, run_golden
    from malak_pipe.mcu.lower import lower_onnx
    from malak_pipe.mcu.selfcheck import host_check

    data, paths, tmp = mixed_cnn
    graph = lower_onnx(load_onnx(paths["mixed"]))
    bits = [int4.weight_bits(layer) for layer in graph.layers if "weights" in layer.arrays]
    assert bits == [8, 4, 8, 8, 4]  # conv1, conv2, conv3, fc1, fc2
    x = data.test.x.numpy()
    golden = run_golden(graph, quantize_input(graph, x)).reshape(len(x), -1).argmax(1)
    assert np.array_equal(golden, OrtPredictor(paths["mixed"])(x).argmax(1))
    generated = generate(graph, tmp / "src")
    assert host_check(graph, tmp / "src", 16, 0) == 1.0
    plan = json.loads((tmp / "src" / "plan.json").read_text())
    int8_plan = generate(lower_onnx(load_onnx(paths["int8"])), tmp / "src8").summary()
    steps = {layer["kernel"] + str(layer["weight_bits"]): layer for layer in plan["layers"]}
    # conv1 (one channel), conv2 at 4 bits, conv3 (3 pixels a pass), fc1 (blocks of six), fc2 at 4 bits
    assert set(steps) == {"conv18", "conv4", "conv3px8", "fc68", "fc4"} and "4-bit weights" in steps["fc4"]["reason"]
    saved = int8_plan["param_bytes"] - generated.param_bytes
    pairs = zip(int8_plan["layers"], plan["layers"], strict=True)
    assert saved == sum(a["weight_bytes"] - b["weight_bytes"] for a, b in pairs)
    assert saved == 64 * 288 // 2 + 10 * 128 // 2  # half of conv2's and fc2's weight bytes


def test_a_four_bit_layer_missing_from_the_export_is_an_error(mixed_cnn):
    from malak_pipe.deploy.qdq_int4 import store_int4_weights

    with pytest.raises(StageFailed, match=r"no weight DequantizeLinear for the 4-bit layers \['fc9'\]"):
        store_int4_weights(onnx.load(str(mixed_cnn[1]["int8"])), ["fc9"])




def _block_s4_with_expand(seed: int, eight_bit: tuple[str, ...]):
    """A random expand (pw_e) -> depthwise (dw_d) -> project (pw_p) [-> add] block that streams at
    8 bits, every layer at 4 but those of ``eight_bit``; with the depthwise and the projection at 8
    bits, one whose block pays without its expand."""
    from malak_pipe.mcu.codegen_options import CodegenOptions
    from malak_pipe.mcu.fusion import block_decisions
    from tests.helpers.mcu_kernel_cases import random_layer_graph

    rng = np.random.default_rng(seed)
    while True:
        graph, _ = random_layer_graph(rng, "block_s4")
        if graph.layers[0].name != "pw_e":
            continue
        for layer in graph.layers:
            if layer.name in eight_bit:  # weights in [-8, 7] are int8 weights too
                del layer.attrs["weight_bits"]
        if "pw_p" not in eight_bit or block_decisions(graph, CodegenOptions())[0].block is not None:
            return graph


@pytest.mark.parametrize("eight_bit", [(), ("dw_d", "pw_p"), ("pw_e", "dw_d")])
def test_block_fusion_keeps_four_bit_layers_out_of_blocks_and_stays_bit_exact(eight_bit, tmp_path):
    from malak_pipe.mcu.codegen_options import CodegenOptions
    from malak_pipe.mcu.fusion import block_decisions
    from malak_pipe.mcu.kernels import plan_steps
    from tests.helpers.mcu_pipeline import host_bit_exact

    graph = _block_s4_with_expand(len(eight_bit), eight_bit)
    [decision] = block_decisions(graph, CodegenOptions())
    steps = plan_steps(graph)
    if not eight_bit:  # the depthwise at 4 bits: no block
        assert decision.block is None
        assert decision.reason == "not fused: 'dw_d' has 4-bit weights (mk_block reads int8 weights)"
    elif "pw_p" in eight_bit:  # the expand at 4 bits runs alone, the rest streams
        assert decision.block is not None and decision.block.expand is None
        assert "expand not fused: 'pw_e' has 4-bit weights" in decision.to_json()["reason"]
        assert steps[0].kernel == "conv" and steps[1].kernel in ("block", "block3")
    else:  # the projection at 4 bits: no block
        assert decision.block is None and "not fused: 'pw_p' has 4-bit weights" in decision.reason
    four_bit = [step for step in steps if int4.weight_info(step)["weight_bits"] == 4]
    expected = [[name] for name in ("pw_e", "dw_d", "pw_p") if name not in eight_bit]
    assert [step.layers for step in four_bit] == expected
    assert all(step.kernel in ("conv", "dwconv_s4", "dwconv3_s4") and step.ints["wbits"] == 4 for step in four_bit)
    images = np.random.default_rng(7).integers(-128, 128, size=(8, *graph.input_tensor.shape)).astype(np.int8)
    assert host_bit_exact(graph, images, tmp_path) == 1.0
