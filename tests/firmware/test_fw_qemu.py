"""Firmware in QEMU (mps2-an500, Cortex-M7): timer calibration, DSP kernels, end-to-end bit-exactness."""

from __future__ import annotations

import numpy as np
import pytest

from malak_pipe.errors import StageFailed
from tests.helpers.mcu_kernel_cases import RANDOM_OPS, mismatches, random_kernel_cases

pytestmark = pytest.mark.firmware

# random layer kinds (tests/helpers/mcu_kernel_cases.py) -> the kernel most of their cases must plan
LITERAL_KINDS = {"depthwise3": "dwconv3", "pointwise": "pw", "conv1_pool": "conv1"}


@pytest.fixture(scope="module")
def harness_elf(arm_tools, mps2_target, tmp_path_factory):
    from malak_pipe.mcu.build import build_harness_firmware

    return build_harness_firmware(tmp_path_factory.mktemp("harness-fw"), mps2_target)


@pytest.fixture(scope="module")
def mixed_firmware(digits_models, mps2_target, arm_tools, tmp_path_factory):
    """The digits MixedNet (uint8 activations: depthwise, residual add, pools) as firmware."""
    from malak_pipe.mcu.build import build_firmware
    from malak_pipe.mcu.codegen import generate
    from malak_pipe.mcu.lower import lower_onnx

    tmp = tmp_path_factory.mktemp("mixed")
    graph = lower_onnx(digits_models["mixed_uint8"])
    generated = generate(graph, tmp / "src")
    build_firmware(tmp / "src", tmp / "fw", mps2_target)
    return graph, generated, tmp / "fw" / "firmware.elf"


def test_timer_counts_one_tick_per_40_instructions(mixed_firmware):
    from malak_pipe.mcu import qemu

    for iterations in (250_000, 1_000_000):
        instructions, ticks = qemu.calibrate(mixed_firmware[2], iterations)
        # the loop plus a handful of instructions around it, at 40 instructions per tick
        assert 0 <= ticks * 40 - instructions <= 80, (instructions, ticks)


def test_hung_firmware_is_stopped_with_a_clear_error(mixed_firmware):
    from malak_pipe.mcu import qemu

    with pytest.raises(StageFailed, match="did not finish within 1 s"):
        qemu.calibrate(mixed_firmware[2], 2**31, timeout_s=1.0)


def test_dsp_kernels_are_bit_exact_in_qemu(harness_elf):
    """A sample of the random kernel cases, on the DSP path (SMLAD/SXTB16 assembly loops)."""
    from malak_pipe.mcu import qemu
    from malak_pipe.mcu.hosttest import encode_cases, split_outputs

    cases, expected = [], []
    for op in RANDOM_OPS:
        c, e = random_kernel_cases(op, 12, seed=100 + RANDOM_OPS.index(op))
        cases += c
        expected += e
    outputs = split_outputs(qemu.run_cases(harness_elf, encode_cases(cases)), cases)
    assert not mismatches(outputs, expected, cases)


def test_mixed_net_uint8_is_bit_exact_in_qemu(mixed_firmware):
    from malak_pipe.mcu import qemu
    from malak_pipe.mcu.golden import quantize_input, run_golden
    from tests.helpers.mcu_models import digits_dataset

    graph, generated, elf = mixed_firmware
    images = quantize_input(graph, digits_dataset().test.x.numpy())
    out = qemu.run_images(elf, images, graph.output_tensor.size, len(generated.steps))
    np.testing.assert_array_equal(out.logits, run_golden(graph, images).reshape(len(images), -1))
    assert out.stack_used > 0 and (out.ticks > 0).all()


def test_stm32h743_build_fits_and_uses_the_mailbox(digits_models, arm_tools, tmp_path):
    from pathlib import Path

    import yaml

    from malak_pipe.mcu.build import build_firmware
    from malak_pipe.mcu.codegen import generate
    from malak_pipe.mcu.lower import lower_onnx
    from malak_pipe.mcu.target import TargetConfig

    conf = Path(__file__).resolve().parents[2] / "conf" / "target" / "stm32h743.yaml"
    target = TargetConfig(**yaml.safe_load(conf.read_text()))
    generate(lower_onnx(digits_models["cnn_int8"]), tmp_path / "src")
    report = build_firmware(tmp_path / "src", tmp_path / "fw", target)
    assert report["flash_bytes"] <= target.flash_bytes and report["ram_bytes"] <= target.ram_bytes
    assert "io_mailbox.o" in (tmp_path / "fw" / "firmware.map").read_text()


def _run_in_qemu(graph, tmp_path, mps2_target, images):
    """``graph`` generated, built for mps2-an500 and run on int8 ``images`` in QEMU: (outputs, golden)."""
    from malak_pipe.mcu import qemu
    from malak_pipe.mcu.build import build_firmware
    from malak_pipe.mcu.codegen import generate
    from malak_pipe.mcu.golden import run_golden

    generated = generate(graph, tmp_path / "src")
    build_firmware(tmp_path / "src", tmp_path / "fw", mps2_target)
    out = qemu.run_images(tmp_path / "fw" / "firmware.elf", images, graph.output_tensor.size, len(generated.steps))
    return out.logits, run_golden(graph, images).reshape(len(images), -1)


@pytest.mark.parametrize("seed,route", [(2, "ort_int8"), (11, "qat"), (20, "ptq")])
def test_random_nets_are_bit_exact_in_qemu(arm_tools, mps2_target, tmp_path, seed, route):
    """A sample of the random networks (malak_pipe/models/random_net.py) on the DSP path."""
    from malak_pipe.mcu.golden import quantize_input
    from malak_pipe.mcu.lower import lower_onnx
    from malak_pipe.models.random_net import calibrate_net, random_net
    from tests.helpers.mcu_pipeline import quantize_route

    module, spec = random_net(seed)
    rng = np.random.default_rng(seed)
    calibration = rng.normal(size=(96, *spec.input_shape)).astype(np.float32)
    calibrate_net(module, calibration)
    graph = lower_onnx(quantize_route(module, route, calibration, tmp_path / "int8.onnx", tmp_path))
    images = quantize_input(graph, rng.normal(size=(16, *spec.input_shape)).astype(np.float32))
    got, want = _run_in_qemu(graph, tmp_path, mps2_target, images)
    np.testing.assert_array_equal(got, want, err_msg=spec.describe())


@pytest.mark.parametrize("route", ["ort_int8", "qat"])
def test_user_model_is_bit_exact_in_qemu(digits_models, arm_tools, mps2_target, tmp_path, route):
    """The user-style model (separable residual blocks, SiLU, squeeze-excitation) on the digits test set."""
    from malak_pipe.mcu.golden import quantize_input
    from malak_pipe.mcu.lower import lower_onnx
    from tests.helpers.mcu_models import digits_dataset

    graph = lower_onnx(digits_models[f"user_{route}"])
    images = quantize_input(graph, digits_dataset().test.x.numpy()[:100])
    got, want = _run_in_qemu(graph, tmp_path, mps2_target, images)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("kind", list(LITERAL_KINDS))
def test_kernels_with_literal_shapes_are_bit_exact_in_qemu(arm_tools, mps2_target, tmp_path, kind):
    """Random layers as generated models: the paths that need the layer's literal shapes (the
    assembly loops of mk_dwconv3 take them as immediates) run only there, not in the harness."""
    from malak_pipe.mcu.kernels import plan_steps
    from tests.helpers.mcu_kernel_cases import random_layer_graph

    rng = np.random.default_rng(list(LITERAL_KINDS).index(kind))
    kernels = []
    for index in range(8):
        graph, _ = random_layer_graph(rng, kind)
        images = rng.integers(-128, 128, size=(3, *graph.input_tensor.shape)).astype(np.int8)
        got, want = _run_in_qemu(graph, tmp_path / str(index), mps2_target, images)
        np.testing.assert_array_equal(got, want, err_msg=f"{kind} case {index}: {graph.layers[0].attrs}")
        kernels.append(plan_steps(graph)[0].kernel)
    assert kernels.count(LITERAL_KINDS[kind]) >= 6, kernels
