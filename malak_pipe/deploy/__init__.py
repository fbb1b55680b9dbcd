"""Deployment: ONNX export and parity, int8 ONNX, latency/memory profiling, data drift.

Modules (each imports torch / onnxruntime only where it needs them):

- ``configs``: one pydantic config per technique (export, int8 ONNX, profiling, drift), which
  the library functions take and the stage configs subclass;
- ``artifact``: the ``onnx_model``, ``onnx_model_int8`` and ``drift_reference`` artifact types;
- ``onnx_export``: torch -> ONNX (dynamo exporter, BN folded) and the parity check;
- ``ort_runtime``: ONNX Runtime sessions, batched prediction over frozen-batch models;
- ``onnx_quant``: ORT static quantization to QDQ (and QOperator) from TRAIN calibration;
- ``torch_qdq``: the project's torch.ao int8 model -> an equivalent QDQ graph, through its
  fake-quant twin (``fake_quant_twin``) and ONNX post-processing (``qdq_finalize``);
- ``torch_int8``: running torch int8 models on their quantized engine;
- ``latency``, ``profiler``, ``layer_profile``, ``memprobe``: timing, per-layer tables, peak memory;
- ``drift_reference``, ``drift``, ``drift_stats``, ``drift_shifts``, ``drift_inputs``: the drift
  reference, the check, its statistics, synthetic shifts and input files (``malak-drift`` is
  :mod:`malak_pipe.cli.drift`).
"""
