"""Small QDQ models for the MCU tests and benchmarks (torch and onnxruntime imported lazily).

``export_qdq`` does what the quantize_onnx stage does: torch.onnx.export with a dynamic batch,
onnxruntime's ``quant_pre_process`` and ``quantize_static`` (QDQ, per-channel symmetric int8
weights, int32 biases, asymmetric per-tensor int8 or uint8 activations).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def simple_cnn(in_channels: int = 1, image_size: int = 8, widths: tuple[int, ...] = (32, 64, 64, 128)) -> Any:
    """conv3x3-relu-maxpool2 x2, conv3x3-relu, flatten, fc-relu, fc (the paper's SimpleCNN)."""
    from torch import nn

    c1, c2, c3, hidden = widths
    pooled = image_size // 4
    return nn.Sequential(
        nn.Conv2d(in_channels, c1, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c2, c3, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(c3 * pooled * pooled, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 10),
    )


def mixed_net(in_channels: int = 1, width: int = 16) -> Any:
    """Depthwise (stride 1 and 2), 1x1, residual add, relu6, avg-pool, global avg-pool, fc."""
    import torch
    from torch import nn

    class MixedNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU6())
            self.dw1 = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, groups=width), nn.ReLU6())
            self.pw1 = nn.Conv2d(width, width, 1)
            self.dw2 = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, groups=width), nn.ReLU())
            self.conv5 = nn.Sequential(nn.Conv2d(2 * width, 2 * width, (1, 3), padding=(0, 1)), nn.ReLU())
            self.pool = nn.AvgPool2d(2)
            self.fc = nn.Linear(2 * width, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.stem(x)
            y = y + self.pw1(self.dw1(y))
            y = self.conv5(self.dw2(y))
            y = nn.functional.adaptive_avg_pool2d(self.pool(y), 1)
            return self.fc(torch.flatten(y, 1))

    return MixedNet()


def digits_data(image_size: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn digits as normalized float32 N x 1 x 8 x 8: (x_train, y_train, x_test, y_test)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0 - 0.5) / 0.5
    if image_size != 8:
        x = np.kron(x, np.ones((image_size // 8, image_size // 8), dtype=np.float32))
    x = x[:, None]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    cut = int(0.8 * len(x))
    return x[:cut], y[:cut], x[cut:], y[cut:]


def train(model: Any, x: np.ndarray, y: np.ndarray, epochs: int = 8, seed: int = 0, lr: float = 3e-3) -> Any:
    """A few epochs of Adam on CPU; enough for the tests to have a real classifier."""
    import torch

    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt)).split(64):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    return model.eval()


def export_qdq(model: Any, calibration: np.ndarray, path: Path, activation_type: str = "int8") -> Path:
    """Export ``model`` to ONNX and quantize it to QDQ at ``path``; returns ``path``."""
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"input": calibration[i : i + 32]} for i in range(0, len(calibration), 32)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    model = model.eval()
    with tempfile.TemporaryDirectory(prefix="mk-qdq-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        prepared = Path(tmp) / "prepared.onnx"
        example = torch.from_numpy(calibration[:1])
        torch.onnx.export(
            model,
            (example,),
            str(fp32),
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
        quant_pre_process(str(fp32), str(prepared))
        act = QuantType.QUInt8 if activation_type == "uint8" else QuantType.QInt8
        quantize_static(
            str(prepared),
            str(path),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=act,
            weight_type=QuantType.QInt8,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
    return Path(path)


MODEL_CACHE_VERSION = "v1"


def digits_qdq_models(cache_dir: Path) -> dict[str, Path]:
    """Trained digits SimpleCNN and MixedNet, quantized with int8 and uint8 activations (cached on disk).

    Keys: cnn_int8, cnn_uint8, mixed_int8, mixed_uint8.
    """
    import torch

    cache_dir = Path(cache_dir) / MODEL_CACHE_VERSION
    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = {f"{m}_{a}": cache_dir / f"{m}_{a}.onnx" for m in ("cnn", "mixed") for a in ("int8", "uint8")}
    if all(p.exists() for p in paths.values()):
        return paths
    torch.manual_seed(0)
    x_train, y_train, _, _ = digits_data()
    models = {"cnn": train(simple_cnn(), x_train, y_train, epochs=6), "mixed": train(mixed_net(), x_train, y_train, 12)}
    for key, path in paths.items():
        name, act = key.split("_")
        tmp = path.with_suffix(".tmp.onnx")
        export_qdq(models[name], x_train[:256], tmp, act)
        tmp.replace(path)
    return paths


def ort_logits(path: Path, x: np.ndarray) -> np.ndarray:
    """ONNX Runtime outputs of a model on float inputs (one thread: deterministic, polite)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    first = session.get_inputs()[0]
    step = first.shape[0] if isinstance(first.shape[0], int) and first.shape[0] > 0 else 256
    return np.concatenate([session.run(None, {first.name: x[i : i + step]})[0] for i in range(0, len(x), step)])


# ------------------------------------------------------------- random layers

RANDOM_OPS = (
    "conv2d",
    "conv_pool",
    "depthwise_conv2d",
    "fully_connected",
    "max_pool",
    "avg_pool",
    "global_avg_pool",
    "add",
)


def _clamp(rng: np.random.Generator, zp: int, scale: float) -> tuple[int, int]:
    kind = rng.integers(0, 3)
    if kind == 0:
        return -128, 127
    if kind == 1:
        return max(-128, zp), 127  # relu
    return max(-128, zp), min(127, zp + int(round(6.0 / scale)))  # relu6


def _requant(real: np.ndarray) -> dict[str, np.ndarray]:
    from malak_pipe.mcu.fixedpoint import quantize_multipliers

    mult, shift = quantize_multipliers(real)
    return {"multiplier": mult, "shift": shift}


def random_layer_graph(rng: np.random.Generator, op: str):
    """A one-layer (conv+pool: two-layer) integer graph with random shapes, zero points and scales.

    Returns (graph, names of the layer's input tensors). Used to test the kernels against the
    golden reference on many shapes, strides, paddings, zero points and per-channel scales.
    """
    from malak_pipe.mcu.ir import IntGraph, Layer, QTensor

    c = int(rng.choice([1, 2, 3, 4, 8, 12, 16]))
    h, w = int(rng.integers(1, 10)), int(rng.integers(1, 10))
    if op in ("conv_pool",):
        h, w = int(rng.integers(2, 10)), int(rng.integers(2, 10))
    x = QTensor("x", (h, w, c), float(rng.uniform(0.005, 0.05)), int(rng.integers(-128, 128)))
    tensors = {"x": x}
    builder = {
        "conv2d": _random_conv,
        "conv_pool": _random_conv,
        "depthwise_conv2d": _random_depthwise,
        "fully_connected": _random_fc,
        "max_pool": _random_pool,
        "avg_pool": _random_pool,
        "global_avg_pool": _random_gap,
        "add": _random_add,
    }[op]
    layers, inputs = builder(rng, op, x, tensors, QTensor, Layer)
    graph = IntGraph(tensors, layers, "x", layers[-1].output)
    return graph, inputs


def _window(rng: np.random.Generator, h: int, w: int, max_k: int = 5) -> tuple[list[int], list[int], list[int]]:
    kh, kw = int(rng.integers(1, max_k + 1)), int(rng.integers(1, max_k + 1))
    pads = [int(rng.integers(0, kh)), int(rng.integers(0, kw)), int(rng.integers(0, kh)), int(rng.integers(0, kw))]
    kh = min(kh, h + pads[0] + pads[2])
    kw = min(kw, w + pads[1] + pads[3])
    pads = [min(pads[0], kh - 1), min(pads[1], kw - 1), min(pads[2], kh - 1), min(pads[3], kw - 1)]
    return [kh, kw], [int(rng.integers(1, 4)), int(rng.integers(1, 4))], pads


def _out_hw(h: int, w: int, kernel: list[int], stride: list[int], pads: list[int]) -> tuple[int, int]:
    return (h + pads[0] + pads[2] - kernel[0]) // stride[0] + 1, (w + pads[1] + pads[3] - kernel[1]) // stride[1] + 1


def _weights_and_scales(rng: np.random.Generator, shape: tuple[int, ...], out_c: int, k: int, x) -> tuple:
    weights = rng.integers(-127, 128, size=shape).astype(np.int8)
    w_scale = rng.uniform(0.002, 0.02, size=out_c)
    bias = rng.integers(-(2**14), 2**14, size=out_c).astype(np.int32)
    out_scale = float(x.scale * w_scale.mean() * np.sqrt(k) * 75.0 / 40.0 * rng.uniform(0.3, 3.0))
    if rng.random() < 0.1:  # a multiplier above 0.5: the exact (non-SMMULR) requantization path
        out_scale = float(x.scale * w_scale.min() / 2.0)
    return weights, w_scale, bias, out_scale


def _random_conv(rng, op, x, tensors, QTensor, Layer):
    h, w, c = x.shape
    kernel, stride, pads = _window(rng, h, w)
    out_c = int(rng.integers(1, 20))
    oh, ow = _out_hw(h, w, kernel, stride, pads)
    if op == "conv_pool":
        stride = [1, 1]
        oh, ow = _out_hw(h, w, kernel, stride, pads)
    k = kernel[0] * kernel[1] * c
    weights, w_scale, bias, out_scale = _weights_and_scales(rng, (out_c, kernel[0], kernel[1], c), out_c, k, x)
    y = QTensor("y", (oh, ow, out_c), out_scale, int(rng.integers(-128, 128)))
    tensors["y"] = y
    lo, hi = _clamp(rng, y.zero_point, y.scale)
    attrs = {"kernel": kernel, "stride": stride, "pads": pads, "act_min": lo, "act_max": hi}
    arrays = {"weights": weights, "bias": bias, **_requant(x.scale * w_scale / out_scale)}
    layers = [Layer("conv", "conv2d", ["x"], "y", attrs, arrays)]
    if op == "conv_pool" and oh >= 2 and ow >= 2:
        tensors["z"] = QTensor("z", (oh // 2, ow // 2, out_c), y.scale, y.zero_point)
        plo, phi = _clamp(rng, y.zero_point, y.scale)
        pool_attrs = {"kernel": [2, 2], "stride": [2, 2], "pads": [0, 0, 0, 0], "act_min": plo, "act_max": phi}
        layers.append(Layer("pool", "max_pool", ["y"], "z", pool_attrs, {}))
    return layers, ["x"]


def _random_depthwise(rng, op, x, tensors, QTensor, Layer):
    h, w, c = x.shape
    kernel, stride, pads = _window(rng, h, w)
    mult = 1 if rng.random() < 0.6 else int(rng.integers(2, 4))
    out_c = c * mult
    oh, ow = _out_hw(h, w, kernel, stride, pads)
    k = kernel[0] * kernel[1]
    weights, w_scale, bias, out_scale = _weights_and_scales(rng, (kernel[0], kernel[1], out_c), out_c, k, x)
    y = QTensor("y", (oh, ow, out_c), out_scale, int(rng.integers(-128, 128)))
    tensors["y"] = y
    lo, hi = _clamp(rng, y.zero_point, y.scale)
    attrs = {"kernel": kernel, "stride": stride, "pads": pads, "act_min": lo, "act_max": hi, "depth_multiplier": mult}
    arrays = {"weights": weights, "bias": bias, **_requant(x.scale * w_scale / out_scale)}
    return [Layer("dw", "depthwise_conv2d", ["x"], "y", attrs, arrays)], ["x"]


def _random_fc(rng, op, x, tensors, QTensor, Layer):
    k = x.size
    out_c = int(rng.integers(1, 24))
    weights, w_scale, bias, out_scale = _weights_and_scales(rng, (out_c, k), out_c, k, x)
    y = QTensor("y", (out_c,), out_scale, int(rng.integers(-128, 128)))
    tensors["y"] = y
    lo, hi = _clamp(rng, y.zero_point, y.scale)
    arrays = {"weights": weights, "bias": bias, **_requant(x.scale * w_scale / out_scale)}
    return [Layer("fc", "fully_connected", ["x"], "y", {"act_min": lo, "act_max": hi}, arrays)], ["x"]


def _random_pool(rng, op, x, tensors, QTensor, Layer):
    h, w, c = x.shape
    kernel, stride, pads = _window(rng, h, w, max_k=4)
    oh, ow = _out_hw(h, w, kernel, stride, pads)
    same = op == "max_pool"
    y = QTensor(
        "y",
        (oh, ow, c),
        x.scale if same else x.scale * rng.uniform(0.5, 2.0),
        x.zero_point if same else int(rng.integers(-128, 128)),
    )
    tensors["y"] = y
    lo, hi = _clamp(rng, y.zero_point, y.scale)
    attrs = {"kernel": kernel, "stride": stride, "pads": pads, "act_min": lo, "act_max": hi}
    arrays = {} if same else _requant(np.array([x.scale / (y.scale * kernel[0] * kernel[1])]))
    return [Layer("pool", op, ["x"], "y", attrs, arrays)], ["x"]


def _random_gap(rng, op, x, tensors, QTensor, Layer):
    h, w, c = x.shape
    y = QTensor("y", (1, 1, c), x.scale * rng.uniform(0.3, 2.0), int(rng.integers(-128, 128)))
    tensors["y"] = y
    lo, hi = _clamp(rng, y.zero_point, y.scale)
    arrays = _requant(np.array([x.scale / (y.scale * h * w)]))
    return [Layer("gap", "global_avg_pool", ["x"], "y", {"act_min": lo, "act_max": hi}, arrays)], ["x"]


def _random_add(rng, op, x, tensors, QTensor, Layer):
    from malak_pipe.mcu.fixedpoint import quantize_multiplier
    from malak_pipe.mcu.ops.add import ADD_LEFT_SHIFT

    b = QTensor("b", x.shape, float(rng.uniform(0.005, 0.05)), int(rng.integers(-128, 128)))
    y = QTensor("y", x.shape, float(max(x.scale, b.scale) * rng.uniform(0.8, 2.5)), int(rng.integers(-128, 128)))
    tensors.update({"b": b, "y": y})
    twice = 2 * max(x.scale, b.scale)
    pairs = [
        quantize_multiplier(r) for r in (x.scale / twice, b.scale / twice, twice / ((1 << ADD_LEFT_SHIFT) * y.scale))
    ]
    arrays = {
        "multiplier": np.array([p[0] for p in pairs], np.int32),
        "shift": np.array([p[1] for p in pairs], np.int32),
    }
    lo, hi = _clamp(rng, y.zero_point, y.scale)
    attrs = {"left_shift": ADD_LEFT_SHIFT, "act_min": lo, "act_max": hi}
    return [Layer("add", "add", ["x", "b"], "y", attrs, arrays)], ["x", "b"]


def random_kernel_cases(op: str, count: int, seed: int) -> tuple[list, list[np.ndarray]]:
    """(harness cases, golden outputs) for ``count`` random layers of kind ``op`` (see hosttest)."""
    from malak_pipe.mcu.golden import run_layer
    from malak_pipe.mcu.kernels import plan_steps

    rng = np.random.default_rng(seed)
    cases, expected = [], []
    for _ in range(count):
        graph, inputs = random_layer_graph(rng, op)
        steps = plan_steps(graph)
        if len(steps) != 1:
            raise AssertionError(f"a random {op} layer planned into {len(steps)} steps")
        xs = [rng.integers(-128, 128, size=(1, *graph.tensors[n].shape)).astype(np.int8) for n in inputs]
        values = dict(zip(inputs, xs, strict=True))
        for layer in graph.layers:
            values[layer.output] = run_layer(graph, layer, *[values[n] for n in layer.inputs])
        want = values[graph.output].ravel()
        cases.append((steps[0], [x[0] for x in xs], want.size))
        expected.append(want)
    return cases, expected
