"""Per-layer weight bit-widths: 4-bit PTQ (min-max and MSE clips), QAT, the recipe, the artifact."""

from __future__ import annotations

import pytest
import torch

from malak_pipe.compress import QAT, QATConfig, QuantizedModelArtifact, StaticPTQ, StaticPTQConfig, artifact_bytes
from malak_pipe.compress import _quant_backend as backend
from malak_pipe.compress.artifact import TORCH_MODEL_INT8
from malak_pipe.compress.packing import pack_nibbles, pack_state, unpack_nibbles, unpack_state
from malak_pipe.compress.precision import MixedPrecisionConfig, WeightBitsConfig
from malak_pipe.compress.weight_quant import mse_channel_scales, weight_error, weight_layers
from malak_pipe.errors import ConfigError
from malak_pipe.training import FitSettings

from .conftest import MODEL

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
PTQ = StaticPTQConfig(calibration_batches=4, calibration_batch_size=32)


def _values(module, name):
    return module.get_submodule(name).weight().int_repr()


def _ptq(trained, dataset, bits=None):
    quantizer = StaticPTQ(PTQ) if bits is None else StaticPTQ(PTQ).with_weight_bits(bits)
    return quantizer, quantizer.quantize(trained, dataset)


def test_configs_round_trip_and_check_their_budget():
    bits = WeightBitsConfig(layers={"fc1": 4, "conv1": 8}, clip_overrides={"fc1": "minmax"})
    assert WeightBitsConfig.from_json(bits.to_json()) == bits
    assert bits.four_bit() == ("fc1",) and bits.bits("conv2") == 8 and bits.clip_of("fc1") == "minmax"
    with pytest.raises(ValueError, match="budget 'flash_bytes' needs flash_bytes"):
        MixedPrecisionConfig(budget="flash_bytes")
    with pytest.raises(ValueError):
        WeightBitsConfig(layers={"fc1": 2})


def test_weight_layers_name_every_conv_depthwise_and_linear(trained):
    layers = weight_layers(trained)
    assert [(layer.name, layer.kind) for layer in layers] == [
        ("conv1", "conv"), ("conv2", "conv"), ("conv3", "conv"), ("fc1", "linear"), ("fc2", "linear")
    ]
    assert layers[3].params == trained.fc1.weight.numel()
    depthwise = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3, groups=4))
    assert weight_layers(depthwise)[0].kind == "depthwise"


def test_four_bit_layers_hold_values_in_range_and_the_rest_is_plain_int8(trained, dataset):
    _, int8 = _ptq(trained, dataset)
    quantizer, mixed = _ptq(trained, dataset, WeightBitsConfig(layers={"conv2": 4, "fc1": 4}, clip="minmax"))
    for name in ("conv2", "fc1"):
        values = _values(mixed, name)
        assert values.min() >= -8 and values.max() <= 7 and values.max() == 7  # FX lowering rounds 7.5 to 8: clamped
    for name in ("conv1", "conv3", "fc2"):
        assert torch.equal(_values(mixed, name), _values(int8, name))
    recipe = quantizer.recipe(trained, dataset.input_shape)
    assert recipe.weight_bits == {"conv2": 4, "fc1": 4} and recipe.weight_clips == {"conv2": "minmax", "fc1": "minmax"}
    assert recipe.recipe_version == 2 and recipe.layer_weight_range("fc1") == (-8, 7)


def test_mse_clip_never_loses_to_min_max_and_helps_where_it_can(trained, dataset):
    _, minmax = _ptq(trained, dataset, WeightBitsConfig(layers={"fc1": 4, "conv2": 4}, clip="minmax"))
    _, mse = _ptq(trained, dataset, WeightBitsConfig(layers={"fc1": 4, "conv2": 4}, clip="mse"))
    prepared = StaticPTQ(PTQ).prepare(trained)
    for name in ("fc1", "conv2"):
        weight = backend.float_weight(prepared, name)
        err_minmax = weight_error(weight, minmax.get_submodule(name).weight().dequantize())
        err_mse = weight_error(weight, mse.get_submodule(name).weight().dequantize())
        assert err_mse < err_minmax  # a trained layer's outliers are worth clipping at 4 bits
    weight = torch.randn(8, 50)
    base = weight.abs().amax(dim=1) / 7.5
    scales = mse_channel_scales(weight, base, -8, 7)
    for c in range(8):
        row = weight[c : c + 1]
        assert weight_error(row, _fake(row, scales[c])) <= weight_error(row, _fake(row, base[c])) + 1e-12


def _fake(row, scale):
    return torch.clamp(torch.round(row / scale), -8, 7) * scale


def test_one_calibration_converts_at_any_bit_width(trained, dataset):
    quantizer = StaticPTQ(PTQ)
    prepared = quantizer.prepare(trained)
    quantizer.calibrate(prepared, quantizer.calibration_batches(dataset))
    bits = WeightBitsConfig(layers={"fc1": 4}, clip="minmax")
    again = quantizer.with_weight_bits(bits).convert(prepared)
    direct = _ptq(trained, dataset, bits)[1]
    assert torch.equal(_values(again, "fc1"), _values(direct, "fc1"))
    assert torch.equal(_values(quantizer.convert(prepared), "fc1"), _values(_ptq(trained, dataset)[1], "fc1"))


def test_qat_fake_quantizes_each_layer_at_its_bits(trained, dataset):
    qat = QAT(QATConfig()).with_weight_bits(WeightBitsConfig(layers={"fc1": 4}))
    prepared = qat.prepare(trained)
    assert (prepared.fc1.weight_fake_quant.quant_min, prepared.fc1.weight_fake_quant.quant_max) == (-8, 7)
    assert prepared.conv2.weight_fake_quant.quant_max == 127
    qat.train(prepared, dataset, FitSettings(epochs=1, batch_size=32, lr=1e-4))
    int8 = qat.convert(prepared)
    values = _values(int8, "fc1")
    assert int(values.min()) >= -8 and int(values.max()) <= 7
    assert qat.recipe(trained, dataset.input_shape).weight_clips == {}  # QAT learns its ranges


def test_unknown_layers_and_per_tensor_four_bit_are_refused(trained):
    with pytest.raises(ConfigError, match=r"\['fc9'\] are not conv, depthwise or linear layers"):
        StaticPTQ(PTQ).with_weight_bits(WeightBitsConfig(layers={"fc9": 4})).prepare(trained)
    with pytest.raises(ConfigError, match="per output channel"):
        StaticPTQ(StaticPTQConfig(per_channel=False)).with_weight_bits(WeightBitsConfig(layers={"fc1": 4}))


def test_nibbles_pack_and_unpack_exactly():
    values = torch.arange(-8, 8, dtype=torch.int8).repeat(3)[:-1]  # odd count
    packed = pack_nibbles(values)
    assert packed.dtype == torch.uint8 and packed.numel() == (values.numel() + 1) // 2
    assert int(packed[0]) == (0x8 | (0x9 << 4))  # -8 then -7, low nibble first
    assert torch.equal(unpack_nibbles(packed, values.numel()), values)
    with pytest.raises(ValueError, match="outside"):
        pack_nibbles(torch.tensor([8], dtype=torch.int8))


def test_the_artifact_reloads_bit_exactly_with_half_bytes_for_four_bit_layers(trained, dataset, tmp_path):
    quantizer, mixed = _ptq(trained, dataset, WeightBitsConfig(layers={"fc1": 4, "conv2": 4}))
    artifact = QuantizedModelArtifact(MODEL, quantizer.recipe(trained, dataset.input_shape), mixed)
    TORCH_MODEL_INT8.save(artifact, tmp_path / "mixed.pt")
    loaded = TORCH_MODEL_INT8.load(tmp_path / "mixed.pt")
    assert loaded.recipe == artifact.recipe
    assert torch.load(tmp_path / "mixed.pt", weights_only=True)["format"] == 3
    for name in ("conv1", "conv2", "fc1", "fc2"):
        assert torch.equal(_values(loaded.module, name), _values(mixed, name))
    x = dataset.test.x[:32]
    assert torch.equal(loaded.module(x), mixed(x))
    _, int8 = _ptq(trained, dataset)
    int8_artifact = QuantizedModelArtifact(MODEL, StaticPTQ(PTQ).recipe(trained, dataset.input_shape), int8)
    saved = trained.fc1.weight.numel() // 2 + trained.conv2.weight.numel() // 2
    assert artifact_bytes(TORCH_MODEL_INT8, int8_artifact) - artifact_bytes(TORCH_MODEL_INT8, artifact) >= 0.9 * saved
    state = unpack_state(pack_state(mixed.state_dict()))
    assert "nibbles" in pack_state(mixed.state_dict())["pools"]
    assert torch.equal(state["conv2.weight"].int_repr(), _values(mixed, "conv2"))
