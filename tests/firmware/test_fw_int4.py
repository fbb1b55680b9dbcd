"""4-bit kernels in QEMU against the int8 ones at the same shape: flash saved, instructions per MAC."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.mcu_int4_cases import one_layer_graph

pytestmark = pytest.mark.firmware

INSTRUCTION_RATIO_LIMIT = 1.3
UNPACK_CODE_BYTES = 128


def _measure(graph, directory, target):
    from malak_pipe.mcu import qemu
    from malak_pipe.mcu.build import build_firmware
    from malak_pipe.mcu.codegen import generate
    from malak_pipe.mcu.golden import run_golden

    generated = generate(graph, directory / "src")
    report = build_firmware(directory / "src", directory / "fw", target)
    images = np.random.default_rng(1).integers(-128, 128, size=(2, *graph.input_tensor.shape)).astype(np.int8)
    out = qemu.run_images(directory / "fw" / "firmware.elf", images, graph.output_tensor.size, len(generated.steps))
    np.testing.assert_array_equal(out.logits, run_golden(graph, images).reshape(len(images), -1))
    instructions = int(out.ticks.reshape(-1)[0]) * target.instructions_per_tick  # the first image's one step
    return report, instructions / generated.macs


@pytest.mark.parametrize("op", ["conv2d", "fully_connected", "depthwise_conv2d"])
def test_int4_kernels_save_half_the_weights_within_1_3x_instructions(op, arm_tools, mps2_target, tmp_path):
    int8, int8_per_mac = _measure(one_layer_graph(op, 8), tmp_path / "int8", mps2_target)
    int4, int4_per_mac = _measure(one_layer_graph(op, 4), tmp_path / "int4", mps2_target)
    [w8], [w4] = ([layer["weight_bytes"] for layer in report["layers"]] for report in (int8, int4))
    values = one_layer_graph(op, 4).layers[0].arrays["weights"].size
    # half a byte per weight; the int8 layout may pad (mk_dwconv3: 4 bytes per 3 taps)
    assert w4 * 2 == values <= w8 and [layer["weight_bits"] for layer in int4["layers"]] == [4]
    # flash drops by the weight bytes saved, less the unpacking code (measured: mk_dwconv3_s4 costs
    # 100 bytes over mk_dwconv3; conv and fc save more than their weights: mk_conv3px / mk_fc6 are larger)
    assert int8["flash_bytes"] - int4["flash_bytes"] >= (w8 - w4) - UNPACK_CODE_BYTES
    assert int4_per_mac <= INSTRUCTION_RATIO_LIMIT * int8_per_mac, (op, int8_per_mac, int4_per_mac)
