"""Int8 ONNX: ORT static QDQ (route a), QDQ export of the torch int8 model (route b), the stage."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from malak_pipe.deploy.configs import OrtQuantConfig, TorchQDQConfig
from malak_pipe.deploy.fake_quant_twin import QParams
from malak_pipe.deploy.onnx_export import export_onnx
from malak_pipe.deploy.onnx_quant import chunk_for_model, quantize_ort_static
from malak_pipe.deploy.ort_runtime import OrtPredictor, agreement
from malak_pipe.deploy.torch_int8 import int8_logits
from malak_pipe.deploy.torch_qdq import export_torch_int8_qdq
from malak_pipe.engine.standalone import run_stage
from malak_pipe.errors import ConfigError
from malak_pipe.stages.export_onnx import ExportONNX
from malak_pipe.stages.quantize_onnx import QuantizeONNX

torch.set_num_threads(1)


def _qdq_layout(path):
    """(conv/gemm weight dtypes and scale ranks, bias dtypes, activation zero-point dtypes)."""
    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producer = {out: node for node in model.graph.node for out in node.output}
    weights, biases = [], []
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm"):
            w_dq = producer[node.input[1]]
            assert w_dq.op_type == "DequantizeLinear"
            weights.append((inits[w_dq.input[0]].dtype, inits[w_dq.input[1]].ndim, inits[w_dq.input[2]].any()))
            if len(node.input) > 2:
                biases.append(inits[producer[node.input[2]].input[0]].dtype)
    act_zp = {inits[n.input[2]].dtype for n in model.graph.node if n.op_type == "QuantizeLinear"}
    return weights, biases, act_zp


def test_chunking_follows_the_frozen_batch():
    batches = [np.ones((3, 1, 2, 2)), np.ones((4, 1, 2, 2))]
    assert [len(c) for c in chunk_for_model(batches, 2)] == [2, 2, 2]
    assert [len(c) for c in chunk_for_model(batches, None)] == [3, 4]


def test_ort_static_qdq_is_per_channel_int8_with_int32_bias(tmp_path, trained, digits):
    fp32 = export_onnx(trained, (1, 8, 8), tmp_path / "fp32.onnx")
    calibration = [b.numpy() for b in digits.calibration_batches(4, 32)]
    qdq, qop = quantize_ort_static(
        fp32, calibration, tmp_path / "qdq.onnx", qoperator_path=tmp_path / "qop.onnx",
        config=OrtQuantConfig(calibrate_method="minmax"),
    )  # fmt: skip
    weights, biases, act_zp = _qdq_layout(qdq.path)
    assert len(weights) == 5 and all(w == (np.int8, 1, False) for w in weights)  # symmetric per-channel int8
    assert biases and all(b == np.int32 for b in biases)
    assert act_zp == {np.dtype(np.uint8)}  # the default: U8S8
    assert "QLinearConv" in qop.op_types and "Conv" not in qop.op_types
    x, y = digits.test.x.numpy(), digits.test.y.numpy()
    fp32_logits, int8 = OrtPredictor(fp32.path)(x), OrtPredictor(qdq.path)(x)
    assert agreement(int8, fp32_logits) > 0.97 and (int8.argmax(1) == y).mean() > 0.9
    assert qdq.size_bytes < 0.5 * fp32.size_bytes


def test_qparams_int8_shift_is_exact():
    q = QParams(0.05, 10, 0, 255)
    assert q.as_type("int8") == QParams(0.05, -118, -128, 127)
    assert q.as_type("int8").as_type("uint8") == q


def test_torch_int8_export_agrees_with_torch_on_digits(tmp_path, int8_artifact, digits):
    path = tmp_path / "torch_qdq.onnx"
    sample = digits.calibration_batches(1, 32)[0]
    export_torch_int8_qdq(
        int8_artifact.module, (1, 8, 8), path, TorchQDQConfig(activation_type="int8"), calibration_sample=sample
    )
    weights, biases, act_zp = _qdq_layout(path)
    assert len(weights) == 5 and all(w == (np.int8, 1, False) for w in weights)
    assert biases and all(b == np.int32 for b in biases)
    assert act_zp == {np.dtype(np.int8)}
    x = digits.test.x.numpy()
    ort_logits, torch_logits = OrtPredictor(path)(x), int8_logits(int8_artifact, x)
    assert agreement(ort_logits, torch_logits) >= 0.99
    out_scale = int8_artifact.module.fc2.scale
    assert np.abs(ort_logits - torch_logits).max() <= 2.01 * out_scale  # at most 2 LSB of the output


def test_stage_ort_static_and_torch_routes(artifacts, tmp_path):
    export, exported = run_stage(
        ExportONNX, {}, {"model": artifacts["torch_model"], "data": artifacts["dataset"]}, tmp_path, node="export"
    )
    inputs = {"model": exported["model"], "data": artifacts["dataset"], "torch_int8": artifacts["torch_model_int8"]}
    result, outputs = run_stage(QuantizeONNX, {"calibration_batches": 4}, inputs, tmp_path, node="qa")
    m = result.metrics
    assert m["source"] == "ort_static" and m["test_top1"] > 0.9 and m["agreement_with_fp32_top1"] > 0.97
    assert m["compression_vs_fp32_onnx"] > 2.0 and m["size_bytes"] == outputs["model"].stat().st_size
    assert 0.9 <= m["agreement_with_torch_int8_top1"] <= 1.0 and m["qop_agreement_with_qdq_top1"] > 0.97
    assert set(outputs) == {"model", "model_qop"}

    inputs = {"model_int8": artifacts["torch_model_int8"], "data": artifacts["dataset"], "model": exported["model"]}
    result, outputs = run_stage(QuantizeONNX, {"source": "torch_int8"}, inputs, tmp_path, node="qb")
    m = result.metrics
    assert m["source"] == "torch_int8" and m["agreement_with_torch_int8_top1"] >= 0.99
    assert m["qop_agreement_with_torch_int8_top1"] >= 0.99 and m["test_top1"] > 0.9
    assert "QLinearConv" in {n.op_type for n in onnx.load(str(outputs["model_qop"])).graph.node}


def test_stage_refuses_a_route_without_its_input(artifacts, tmp_path):
    with pytest.raises(ConfigError, match="needs the input 'model_int8'"):
        run_stage(QuantizeONNX, {"source": "torch_int8"}, {"data": artifacts["dataset"]}, tmp_path)


def _activation_scales(path):
    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return np.array([float(inits[n.input[1]]) for n in model.graph.node if n.op_type == "QuantizeLinear"])


def test_entropy_calibration_clips_ranges(tmp_path, trained, digits):
    fp32 = export_onnx(trained, (1, 8, 8), tmp_path / "fp32.onnx")
    calibration = [b.numpy() for b in digits.calibration_batches(2, 32)]
    minmax, _ = quantize_ort_static(fp32, calibration, tmp_path / "minmax.onnx")
    config = OrtQuantConfig(calibrate_method="entropy", entropy_bins=512)
    entropy, _ = quantize_ort_static(fp32, calibration, tmp_path / "entropy.onnx", config)
    wide, narrow = _activation_scales(minmax.path), _activation_scales(entropy.path)
    assert wide.shape == narrow.shape and (narrow <= wide * 1.0001).all() and (narrow < 0.95 * wide).any()
