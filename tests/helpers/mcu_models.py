"""Small trained QDQ models for the MCU tests, built with the project's own code.

The zoo's SimpleCNN (:mod:`malak_pipe.models`) and a small MixedNet (depthwise, residual add,
pools: the operators SimpleCNN lacks) are trained on the real digits dataset
(:mod:`malak_pipe.data`) with :func:`malak_pipe.training.fit`, exported as the export_onnx
stage does (:func:`malak_pipe.deploy.onnx_export.export_onnx`, the dynamo exporter) and
quantized as the quantize_onnx stage does (:func:`malak_pipe.deploy.onnx_quant.quantize_ort_static`:
QDQ, per-channel symmetric int8 weights, int32 biases, per-tensor int8 or uint8 activations,
calibrated on batches of the train split). torch and onnxruntime are imported lazily.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from malak_pipe.data import DataConfig

DIGITS = DataConfig(name="digits", channels=1, image_size=8, num_classes=10)
CALIBRATION_BATCHES = 8
CALIBRATION_BATCH_SIZE = 32
MODEL_CACHE_VERSION = "v3"


def digits_dataset() -> Any:
    """The digits Dataset (8x8x1, normalized, train/val/test splits) as the data stage loads it."""
    from malak_pipe.data import load_dataset

    return load_dataset(DIGITS)


def simple_cnn(image_size: int = 8) -> Any:
    """The zoo's SimpleCNN for one-channel inputs and 10 classes."""
    from malak_pipe.models import ModelConfig, build_model

    return build_model(ModelConfig(name="simple_cnn", in_channels=1, num_classes=10, image_size=image_size))


def mixed_net(in_channels: int = 1, width: int = 16) -> Any:
    """Depthwise (stride 1 and 2, multipliers 1 and 2), 1x1, residual add, relu6, avg-pool,
    a mean over H, W (global average pool), a 1x1 head and a linear layer."""
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
            # the mean feeds a convolution: onnxruntime quantizes a mean's output only when its
            # reader is an operator it quantizes, and the MCU lowering needs that quantization
            self.head = nn.Sequential(nn.Conv2d(2 * width, 2 * width, 1), nn.ReLU())
            self.fc = nn.Linear(2 * width, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.stem(x)
            y = y + self.pw1(self.dw1(y))
            y = self.conv5(self.dw2(y))
            y = self.head(self.pool(y).mean((2, 3), keepdim=True))
            return self.fc(torch.flatten(y, 1))

    return MixedNet()


def user_net(in_channels: int = 1, classes: int = 10) -> Any:
    """A user-style model: depthwise-separable residual blocks of odd widths (24, 40), SiLU, a
    squeeze-and-excitation block, ``nn.AdaptiveAvgPool2d(1)`` then ``torch.flatten``, a linear head."""
    import torch
    from torch import nn

    def separable(cin: int, cout: int, stride: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False),
            nn.BatchNorm2d(cin),
            nn.SiLU(),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )

    class SqueezeExcite(nn.Module):
        def __init__(self, channels: int, reduced: int):
            super().__init__()
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.reduce, self.expand = nn.Conv2d(channels, reduced, 1), nn.Conv2d(reduced, channels, 1)
            self.act = nn.SiLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * torch.sigmoid(self.expand(self.act(self.reduce(self.pool(x)))))

    class UserNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            stem = nn.Conv2d(in_channels, 24, 3, padding=1, bias=False)
            self.stem = nn.Sequential(stem, nn.BatchNorm2d(24), nn.SiLU())
            self.block1 = separable(24, 24, 1)
            self.down = separable(24, 40, 2)
            self.block2 = separable(40, 40, 1)
            self.se = SqueezeExcite(40, 10)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(40, classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.stem(x)
            y = y + self.block1(y)
            y = self.down(y)
            y = nn.functional.silu(y + self.block2(y))
            y = self.se(y)
            return self.fc(torch.flatten(self.pool(y), 1))

    return UserNet()


def train(module: Any, dataset: Any, epochs: int, *, lr: float = 3e-3, seed: int = 0) -> Any:
    """``epochs`` of Adam through :func:`malak_pipe.training.fit` (best val epoch kept); eval mode."""
    from malak_pipe.training import FitSettings, fit

    fit(module, dataset, FitSettings(epochs=epochs, lr=lr, optimizer="adam", seed=seed))
    return module.eval()


def calibration(dataset: Any, seed: int = 0) -> np.ndarray:
    """The calibration images (N x C x H x W) the quantize_onnx stage would draw from the train split."""
    batches = dataset.calibration_batches(CALIBRATION_BATCHES, CALIBRATION_BATCH_SIZE, seed=seed)
    return np.concatenate([batch.numpy() for batch in batches])


def export_fp32(module: Any, sample_shape: tuple[int, ...], path: Path) -> Any:
    """``module`` exported to ONNX at ``path`` with export_onnx's defaults (the OnnxModel)."""
    from malak_pipe.deploy.onnx_export import export_onnx

    return export_onnx(module.eval(), sample_shape, path)


def quantize_qdq(fp32: Any, images: np.ndarray, path: Path, activation_type: str = "int8") -> Path:
    """The float OnnxModel ``fp32`` quantized to QDQ at ``path``, calibrated on ``images`` (N x C x H x W)."""
    from malak_pipe.deploy.configs import OrtQuantConfig
    from malak_pipe.deploy.onnx_quant import quantize_ort_static

    batches = [images[i : i + CALIBRATION_BATCH_SIZE] for i in range(0, len(images), CALIBRATION_BATCH_SIZE)]
    quantize_ort_static(fp32, batches, path, OrtQuantConfig(activation_type=activation_type))
    return Path(path)


def export_qdq(module: Any, images: np.ndarray, path: Path, activation_type: str = "int8") -> Path:
    """``module`` exported to ONNX and quantized to QDQ at ``path``, calibrated on ``images``."""
    with tempfile.TemporaryDirectory(prefix="mk-qdq-") as tmp:
        fp32 = export_fp32(module, tuple(images.shape[1:]), Path(tmp) / "fp32.onnx")
        return quantize_qdq(fp32, images, path, activation_type)


def model_cache_dir(request: Any) -> Path:
    """pytest's cache dir when the cache plugin is on (models survive runs), else a temp dir."""
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        return cache.mkdir("malak-mcu-models")
    return request.getfixturevalue("tmp_path_factory").mktemp("malak-mcu-models")


_built: dict[str, dict[str, Path]] = {}  # this process's models, whichever cache_dir asked first


def digits_qdq_models(cache_dir: Path) -> dict[str, Path]:
    """Trained digits SimpleCNN and MixedNet, quantized with int8 and uint8 activations.

    Keys: cnn_int8, cnn_uint8, mixed_int8, mixed_uint8, and the user-style model (:func:`user_net`)
    by both routes: user_ort_int8 (ONNX Runtime static quantization), user_ptq and user_qat (the
    torch int8 model, QAT fine-tuned for 2 epochs, written as QDQ). Kept in ``cache_dir`` across
    runs and built at most once per process.
    """
    if MODEL_CACHE_VERSION in _built and all(p.exists() for p in _built[MODEL_CACHE_VERSION].values()):
        return _built[MODEL_CACHE_VERSION]
    cache_dir = Path(cache_dir) / MODEL_CACHE_VERSION
    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = {f"{m}_{a}": cache_dir / f"{m}_{a}.onnx" for m in ("cnn", "mixed") for a in ("int8", "uint8")}
    paths.update({f"user_{r}": cache_dir / f"user_{r}.onnx" for r in USER_ROUTES})
    if not all(p.exists() for p in paths.values()):
        _build_digits_models(paths)
    _built[MODEL_CACHE_VERSION] = paths
    return paths


def _build_digits_models(paths: dict[str, Path]) -> None:
    import torch

    dataset = digits_dataset()
    torch.manual_seed(0)
    models = {"cnn": train(simple_cnn(), dataset, epochs=6), "mixed": train(mixed_net(), dataset, epochs=12)}
    images = calibration(dataset)
    with tempfile.TemporaryDirectory(prefix="mk-digits-") as tmp:
        for name, module in models.items():
            fp32 = export_fp32(module, dataset.input_shape, Path(tmp) / f"{name}.onnx")
            for act in ("int8", "uint8"):
                path = paths[f"{name}_{act}"]
                quantize_qdq(fp32, images, path.with_suffix(".tmp.onnx"), act).replace(path)
        _build_user_models(dataset, images, paths, Path(tmp))


USER_ROUTES = ("ort_int8", "ptq", "qat")


def _build_user_models(dataset: Any, images: np.ndarray, paths: dict[str, Path], tmp: Path) -> None:
    """The user-style model trained on digits, quantized by ONNX Runtime, torch static PTQ and QAT."""
    from malak_pipe.compress import QAT, QATConfig
    from malak_pipe.deploy.configs import TorchQDQConfig
    from malak_pipe.deploy.torch_int8 import quantized_engine
    from malak_pipe.deploy.torch_qdq import export_torch_int8_qdq
    from malak_pipe.training import FitSettings
    from tests.helpers.mcu_pipeline import quantize_route

    module = train(user_net(), dataset, epochs=15)
    for route in ("ort_int8", "ptq"):
        quantize_route(module, route, images, tmp / f"user_{route}.onnx", tmp).replace(paths[f"user_{route}"])
    qat = QAT(QATConfig())
    prepared = qat.prepare(module)
    qat.train(prepared, dataset, FitSettings(epochs=2, lr=1e-4, optimizer="adam", seed=0))
    sample = dataset.calibration_batches(1, CALIBRATION_BATCH_SIZE, seed=0)[0]
    with quantized_engine("x86"):
        int8 = qat.convert(prepared)
        config = TorchQDQConfig(activation_type="uint8")
        export_torch_int8_qdq(int8, dataset.input_shape, tmp / "user_qat.onnx", config, calibration_sample=sample)
    (tmp / "user_qat.onnx").replace(paths["user_qat"])


ZOO = ("mobilenet_v2", "resnet18", "resnet50", "efficientnet_b0")
ZOO_ROUTES = ("ort_int8", "qat")
ZOO_WIDTH = 0.25
ZOO_SHAPE = (3, 32, 32)
ZOO_CACHE_VERSION = "zoo-v1"


def zoo_inputs(count: int, seed: int = 0) -> np.ndarray:
    """Gaussian N x 3 x 32 x 32 inputs (the zoo models' QDQ graphs are compared on these)."""
    return np.random.default_rng(seed).normal(size=(count, *ZOO_SHAPE)).astype(np.float32)


def zoo_qdq_models(cache_dir: Path) -> dict[str, Path]:
    """The zoo's models at width 0.25 for 32 x 32 x 3 inputs, untrained but with well-spread
    activations (BatchNorm statistics of the calibration inputs), quantized by both routes.

    Keys: "<model>/<route>" for the models of :data:`ZOO` and the routes of :data:`ZOO_ROUTES`
    (tests/helpers/mcu_pipeline.py). Kept in ``cache_dir`` across runs.
    """
    import torch

    from malak_pipe.models import ModelConfig, build_model
    from malak_pipe.models.random_net import calibrate_net
    from tests.helpers.mcu_pipeline import quantize_route

    cache_dir = Path(cache_dir) / ZOO_CACHE_VERSION
    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = {f"{m}/{r}": cache_dir / f"{m}_{r}.onnx" for m in ZOO for r in ZOO_ROUTES}
    calibration = zoo_inputs(64, seed=1)
    for name in ZOO:
        if all(paths[f"{name}/{r}"].exists() for r in ZOO_ROUTES):
            continue
        torch.manual_seed(0)
        config = ModelConfig(name=name, in_channels=3, num_classes=10, image_size=32, width_mult=ZOO_WIDTH)
        module = calibrate_net(build_model(config).eval(), calibration)
        for route in ZOO_ROUTES:
            with tempfile.TemporaryDirectory(prefix="mk-zoo-") as tmp:
                staged = quantize_route(module, route, calibration, Path(tmp) / "int8.onnx", Path(tmp))
                staged.replace(paths[f"{name}/{route}"])
    return paths
