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


def ort_logits(path: Path, x: np.ndarray) -> np.ndarray:
    """ONNX Runtime outputs of a model on float inputs (one thread: deterministic, polite)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i : i + 256]})[0] for i in range(0, len(x), 256)])
