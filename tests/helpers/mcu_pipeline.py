"""A float nn.Module through the real MCU path, by both quantization routes, measured.

:func:`run_route`: export (:func:`malak_pipe.deploy.onnx_export.export_onnx`, the dynamo
exporter the export_onnx stage uses) -> int8 QDQ ONNX by one route ->
:func:`malak_pipe.mcu.lower.lower_onnx` -> the golden reference against ONNX Runtime on the
same inputs -> the generated C compiled for the host, bit for bit against the golden reference.
Routes (what quantize_onnx does):

* ``ort_int8`` / ``ort_uint8``: ONNX Runtime static quantization (``source: ort_static``);
* ``ptq`` / ``qat``: the project's torch int8 model (static PTQ, or QAT: prepared, a few
  training steps, converted) written as QDQ (``source: torch_int8``,
  :func:`malak_pipe.deploy.torch_qdq.export_torch_int8_qdq`).

Agreement: the golden reference's top-1 against ONNX Runtime's on every input, and on the
inputs where ONNX Runtime's top two outputs are at least ``DECISIVE_LSB`` output steps apart
(a closer pair is a tie that the last bit of rounding decides either way). Layer by layer
(:func:`layerwise_lsb`): every layer of the golden graph run on ONNX Runtime's own int8 inputs
against ONNX Runtime's int8 output, in output steps: end to end, differences of one step can
grow through a deep untrained network, layer by layer they stay at one.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROUTES = ("ort_int8", "ort_uint8", "ptq", "qat")
DECISIVE_LSB = 2.0
LAYERWISE_IMAGES = 8
CALIBRATION_BATCH = 32


@dataclass
class RouteResult:
    """What one route did: the stage it failed at (with the error), or the measurements."""

    route: str
    ok: bool = False
    stage: str = ""
    error: str = ""
    layers: int = 0
    ops: dict[str, int] = field(default_factory=dict)
    images: int = 0
    agreement: float = float("nan")
    decisive_agreement: float = float("nan")
    decisive_images: int = 0
    max_abs_lsb: float = float("nan")
    layer_max_lsb: float = float("nan")
    layers_checked: int = 0
    host_bit_exact: float = float("nan")
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Calibration:
    """The slice of the Dataset API the torch quantizers read: calibration batches of the train split."""

    def __init__(self, x: np.ndarray):
        self.x = x

    def calibration_batches(self, n_batches: int, batch_size: int, seed: int = 0) -> list[Any]:
        import torch

        batches = [self.x[i : i + batch_size] for i in range(0, len(self.x), batch_size)][:n_batches]
        return [torch.as_tensor(b) for b in batches]


def quantize_route(module: Any, route: str, calibration: np.ndarray, path: Path, workdir: Path) -> Path:
    """The int8 QDQ ONNX file of ``module`` by ``route`` at ``path``."""
    from malak_pipe.deploy.configs import OrtQuantConfig, TorchQDQConfig
    from malak_pipe.deploy.onnx_export import export_onnx
    from malak_pipe.deploy.onnx_quant import quantize_ort_static
    from malak_pipe.deploy.torch_int8 import quantized_engine
    from malak_pipe.deploy.torch_qdq import export_torch_int8_qdq

    shape = tuple(calibration.shape[1:])
    batches = max(1, len(calibration) // CALIBRATION_BATCH)
    if route.startswith("ort_"):
        fp32 = export_onnx(module, shape, workdir / "fp32.onnx")
        config = OrtQuantConfig(activation_type=route[4:], calibration_batches=batches)
        chunks = [calibration[i : i + CALIBRATION_BATCH] for i in range(0, len(calibration), CALIBRATION_BATCH)]
        quantize_ort_static(fp32, chunks, path, config)
        return path
    int8 = torch_int8_model(module, route, calibration)
    sample = _Calibration(calibration).calibration_batches(1, CALIBRATION_BATCH)[0]
    with quantized_engine("x86"):
        config = TorchQDQConfig(activation_type="int8" if route == "ptq" else "uint8")
        export_torch_int8_qdq(int8, shape, path, config, calibration_sample=sample)
    return path


def torch_int8_model(module: Any, route: str, calibration: np.ndarray) -> Any:
    """The torch int8 model of ``module``: static PTQ, or QAT (a few steps on random labels)."""
    import torch

    from malak_pipe.compress import QAT, QATConfig, StaticPTQ, StaticPTQConfig

    data = _Calibration(calibration)
    batches = max(1, len(calibration) // CALIBRATION_BATCH)
    if route == "ptq":
        config = StaticPTQConfig(calibration_batches=batches, calibration_batch_size=CALIBRATION_BATCH)
        return StaticPTQ(config).quantize(module, data)
    qat = QAT(QATConfig())
    prepared = qat.prepare(module).train()
    optimizer = torch.optim.SGD(prepared.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    for batch in data.calibration_batches(batches, CALIBRATION_BATCH):
        logits = prepared(batch)
        labels = torch.randint(0, logits.shape[1], (len(batch),), generator=generator)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return qat.convert(prepared.eval())


def compare_with_ort(graph: Any, onnx_path: Path, x: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """The golden outputs on float inputs ``x`` and their agreement with ONNX Runtime's."""
    from malak_pipe.deploy.ort_runtime import OrtPredictor
    from malak_pipe.mcu.golden import quantize_input, run_golden

    images = quantize_input(graph, x)
    golden = run_golden(graph, images).reshape(len(x), -1)
    ort = np.asarray(OrtPredictor(onnx_path, threads=1)(x))
    if graph.meta.get("output_layout") == "channels_last":  # an N x C x H x W (N x C x L) output map
        ort = ort.transpose((0, 2, 3, 1) if ort.ndim == 4 else (0, 2, 1))
    ort = ort.reshape(len(x), -1)
    out = graph.output_tensor
    dequantized = (golden.astype(np.float64) - out.zero_point) * out.scale
    top2 = np.sort(ort, axis=1)[:, -2:] if ort.shape[1] > 1 else np.zeros((len(x), 2))
    decisive = (top2[:, 1] - top2[:, 0]) >= DECISIVE_LSB * out.scale
    same = golden.argmax(axis=1) == ort.argmax(axis=1)
    figures = {
        "agreement": float(same.mean()),
        "decisive_agreement": float(same[decisive].mean()) if decisive.any() else float("nan"),
        "decisive_images": int(decisive.sum()),
        "max_abs_lsb": float(np.abs(dequantized - ort).max() / out.scale),
    }
    return images, figures


def _ort_tensors(onnx_path: Path, names: list[str], x: np.ndarray) -> dict[str, np.ndarray]:
    """ONNX Runtime's values of the QuantizeLinear outputs ``names``: int8 domain, ONNX layout (N, ...)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(onnx_path))
    inits = {init.name: init.data_type for init in model.graph.initializer}
    q_types = {
        node.output[0]: inits.get(node.input[2], onnx.TensorProto.UINT8) if len(node.input) > 2 else 2
        for node in model.graph.node
        if node.op_type == "QuantizeLinear" and node.output[0] in names
    }
    present = {o.name for o in model.graph.output}
    model.graph.output.extend(
        onnx.helper.make_tensor_value_info(name, dtype, None) for name, dtype in q_types.items() if name not in present
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    wanted = [o.name for o in session.get_outputs() if o.name in q_types]
    runs = [session.run(wanted, {session.get_inputs()[0].name: x[i : i + 1]}) for i in range(len(x))]
    values = {}
    for k, name in enumerate(wanted):
        v = np.concatenate([run[k] for run in runs])
        values[name] = v.astype(np.int64) - (128 if v.dtype == np.uint8 else 0)
    return values


def layerwise_lsb(onnx_path: Path, x: np.ndarray) -> tuple[float, int]:
    """The largest difference (int8 steps) of any layer run on ONNX Runtime's own inputs, and how many
    layers had their inputs and output among ONNX Runtime's QuantizeLinear outputs.

    ONNX Runtime's tensors are put in the storage order of the integer graph through the logical
    index the lowering tracked for each ONNX tensor (a flattened map is CHW in ONNX, HWC stored).
    """
    import onnx

    from malak_pipe.mcu.golden import quantize_input, run_layer
    from malak_pipe.mcu.lower import Lowering
    from malak_pipe.mcu.onnx_graph import OnnxIndex

    lowering = Lowering(OnnxIndex(onnx.load(str(onnx_path)), str(onnx_path)))
    graph = lowering.run()
    names = {layer.output for layer in graph.layers} | {name for layer in graph.layers for name in layer.inputs}
    stored = {graph.input: quantize_input(graph, x)}
    for name, value in _ort_tensors(onnx_path, sorted(names), x).items():
        index = lowering.states[name].index.ravel()
        tensor = graph.tensors.get(name)
        if tensor is None or np.unique(index).size != tensor.size or index.size != tensor.size:
            continue
        flat = np.empty((len(x), tensor.size), dtype=np.int64)
        flat[:, index] = value.reshape(len(x), -1)
        stored[name] = flat.reshape(len(x), *tensor.shape).astype(np.int8)
    worst, checked = 0, 0
    for layer in graph.layers:
        if layer.output in stored and all(name in stored for name in layer.inputs):
            got = run_layer(graph, layer, *[stored[name] for name in layer.inputs]).astype(np.int64)
            worst = max(worst, int(np.abs(got - stored[layer.output]).max()))
            checked += 1
    return float(worst), checked


def host_bit_exact(graph: Any, images: np.ndarray, workdir: Path) -> float:
    """The fraction of ``images`` on which the generated C, built for the host, equals the golden graph."""
    from malak_pipe.mcu import hosttest
    from malak_pipe.mcu.codegen import generate
    from malak_pipe.mcu.golden import run_golden

    generated = generate(graph, workdir / "src")
    exe = hosttest.build_host_model(workdir / "src", workdir / "bin")
    out = hosttest.run_host_model(exe, images, graph.output_tensor.size, len(generated.steps))
    golden = run_golden(graph, images).reshape(len(images), -1)
    return float((out.logits == golden).all(axis=1).mean())


def run_route(module: Any, route: str, calibration: np.ndarray, x: np.ndarray, host: bool = True) -> RouteResult:
    """``module`` through ``route``, lowering, golden vs ONNX Runtime and (``host``) the host C."""
    from malak_pipe.mcu.lower import lower_onnx

    result = RouteResult(route)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"mk-{route}-") as tmp:
        workdir = Path(tmp)
        try:
            result.stage = "quantize"
            path = quantize_route(module, route, calibration, workdir / "int8.onnx", workdir)
            result.stage = "lower"
            graph = lower_onnx(path)
            ops = [layer.op for layer in graph.layers]
            result.layers, result.ops = len(ops), {op: ops.count(op) for op in sorted(set(ops))}
            result.stage = "golden"
            images, figures = compare_with_ort(graph, path, x)
            result.images = len(x)
            for key, value in figures.items():
                setattr(result, key, value)
            result.layer_max_lsb, result.layers_checked = layerwise_lsb(path, x[:LAYERWISE_IMAGES])
            if host:
                result.stage = "host"
                result.host_bit_exact = host_bit_exact(graph, images, workdir)
            result.ok, result.stage = True, ""
        except Exception as exc:  # a report of what failed where, not a crash of the sweep
            result.error = f"{type(exc).__name__}: {str(exc).strip()[:600]}"
    result.seconds = round(time.monotonic() - started, 2)
    return result
