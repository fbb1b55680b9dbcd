"""Deployment: ONNX export and parity, int8 ONNX, latency/memory profiling, data drift.

Modules (each imports torch / onnxruntime only where it needs them):

- ``artifact``: the ``onnx_model``, ``onnx_model_int8`` and ``drift_reference`` artifact types;
- ``onnx_export``: torch -> ONNX (dynamo exporter, BN folded) and the parity check;
- ``ort_runtime``: ONNX Runtime sessions, batched prediction over frozen-batch models;
- ``onnx_quant``: ORT static quantization to QDQ (and QOperator) from TRAIN calibration;
- ``torch_qdq``: the project's torch.ao int8 model -> an equivalent QDQ graph;
- ``torch_int8``: running torch int8 models on their quantized engine;
- ``latency``, ``profiler``, ``layer_profile``, ``memprobe``: timing, per-layer tables, peak memory;
- ``drift``, ``drift_inputs``, ``drift_cli``: drift reference, checks, and ``malak-drift``.
"""
