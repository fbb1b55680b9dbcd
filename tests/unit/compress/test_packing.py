"""The packed int8 state: exact round trips, float64 kept where float32 is not exact, compact files."""

from __future__ import annotations

import io
from collections import OrderedDict

import pytest
import torch

from malak_pipe.compress import QuantizedModelArtifact, StaticPTQ, StaticPTQConfig, artifact_bytes
from malak_pipe.compress.artifact import TORCH_MODEL_INT8
from malak_pipe.compress.packing import pack_state, unpack_state
from malak_pipe.errors import ArtifactError
from malak_pipe.models import ModelConfig, build_model
from malak_pipe.models.artifact import TORCH_MODEL, ModelArtifact

from .conftest import MODEL

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def _same(a, b) -> bool:
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if not torch.is_tensor(a):
        return a == b
    if a.is_quantized:
        if not (b.is_quantized and a.dtype == b.dtype and torch.equal(a.int_repr(), b.int_repr())):
            return False
        if a.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
            return a.q_scale() == b.q_scale() and a.q_zero_point() == b.q_zero_point()
        return (
            torch.equal(a.q_per_channel_scales(), b.q_per_channel_scales())
            and torch.equal(a.q_per_channel_zero_points(), b.q_per_channel_zero_points())
            and a.q_per_channel_axis() == b.q_per_channel_axis()
        )
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)


def _through_torch_save(packed):
    buffer = io.BytesIO()
    torch.save(packed, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_pack_unpack_is_exact_for_every_kind_of_entry():
    weight = torch.randn(6, 3, 3, 3)
    exact_scales = torch.tensor([0.5, 0.25, 0.125, 2.0**-10, 3.0, 0.75], dtype=torch.float64)
    inexact_scales = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)  # not float32-representable
    state = OrderedDict(
        symmetric=torch.quantize_per_channel(weight, exact_scales, torch.zeros(6, dtype=torch.int64), 0, torch.qint8),
        affine=torch.quantize_per_channel(torch.randn(3, 4), inexact_scales, torch.tensor([1, -2, 0]), 0, torch.qint8),
        per_tensor=torch.quantize_per_tensor(torch.randn(5), 0.1, 3, torch.quint8),
        bias=torch.randn(6),
        scale=torch.tensor(0.0123),
        zero_point=torch.tensor(17),
        packed=(torch.quantize_per_tensor(torch.randn(2, 2), 0.05, 0, torch.qint8), None),
        dtype=torch.qint8,
    )
    state._metadata = OrderedDict({"": {"version": 1}, "fc": {"version": 3}})
    packed = _through_torch_save(pack_state(state))
    assert set(packed["pools"]) == {"int8", "uint8", "float32", "float64", "int64"}
    assert packed["pools"]["float64"].numel() == 3  # only the inexact scales stay float64
    assert packed["pools"]["int64"].numel() == 1 + 3  # the scalar zero point and the nonzero zero points
    unpacked = unpack_state(packed)
    assert list(unpacked) == list(state)
    for name, value in state.items():
        assert _same(value, unpacked[name]), name
    assert unpacked._metadata == state._metadata


def test_unpack_rejects_malformed_states():
    packed = pack_state(OrderedDict(w=torch.randn(4)))
    packed["index"] = [("w", ("t", ("float32", 2, [4])))]  # offset past the end of the pool
    with pytest.raises(ValueError, match="past the end"):
        unpack_state(packed)
    with pytest.raises(ValueError, match="malformed"):
        unpack_state({"pools": {}})


def _simple_cnn_int8():
    cfg = ModelConfig(name="simple_cnn")  # 28x28, 458k parameters
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    ptq = StaticPTQ(StaticPTQConfig(observer="minmax"))
    prepared = ptq.prepare(model)
    ptq.calibrate(prepared, [torch.randn(2, 1, 28, 28)])
    return cfg, model, QuantizedModelArtifact(cfg, ptq.recipe(model, (1, 28, 28)), ptq.convert(prepared))


def test_int8_artifact_file_is_at_least_3_9_times_smaller_than_the_fp32_file(tmp_path):
    cfg, model, artifact = _simple_cnn_int8()
    fp32_bytes = artifact_bytes(TORCH_MODEL, ModelArtifact(cfg, model))
    int8_bytes = artifact_bytes(TORCH_MODEL_INT8, artifact)
    assert fp32_bytes / int8_bytes >= 3.9
    TORCH_MODEL_INT8.save(artifact, tmp_path / "int8.pt")
    # torch.save names the zip records after the file, so only that name's length differs
    assert abs((tmp_path / "int8.pt").stat().st_size - int8_bytes) < 100
    raw = torch.load(tmp_path / "int8.pt", weights_only=True)
    assert raw["format"] == 2 and set(raw["packed"]["pools"]) == {"int8", "float32", "int64"}
    loaded = TORCH_MODEL_INT8.load(tmp_path / "int8.pt").module
    x = torch.randn(16, 1, 28, 28)
    assert torch.equal(loaded(x), artifact.module(x))
    original = artifact.module.state_dict()
    for name, value in loaded.state_dict().items():
        assert _same(value, original[name]), name


@pytest.fixture(scope="module")
def small_int8(_trained, dataset):
    ptq = StaticPTQ(StaticPTQConfig(observer="minmax", calibration_batches=2, calibration_batch_size=16))
    return QuantizedModelArtifact(MODEL, ptq.recipe(_trained, dataset.input_shape), ptq.quantize(_trained, dataset))


def test_format_1_int8_files_still_load(small_int8, dataset, tmp_path):
    int8, recipe = small_int8.module, small_int8.recipe
    path = tmp_path / "old.pt"
    torch.save(
        {
            "format": 1,
            "config": MODEL.model_dump(mode="json"),
            "recipe": recipe.model_dump(mode="json"),
            "state_dict": int8.state_dict(),
        },
        path,
    )
    x = dataset.test.x[:8]
    assert torch.equal(TORCH_MODEL_INT8.load(path).module(x), int8(x))


def test_corrupt_packed_state_raises_artifact_error(small_int8, tmp_path):
    path = tmp_path / "int8.pt"
    TORCH_MODEL_INT8.save(small_int8, path)
    raw = torch.load(path, weights_only=True)
    raw["packed"]["pools"]["int8"] = raw["packed"]["pools"]["int8"][:10]
    torch.save(raw, path)
    with pytest.raises(ArtifactError, match="corrupt"):
        TORCH_MODEL_INT8.load(path)
