"""Random small networks built from the blocks the MCU path supports: generality, tested.

The MCU path claims to take ordinary PyTorch code, so it is checked on networks nobody tuned it
to. :func:`random_net` draws, from a seed, a 2-D (N x C x H x W) or 1-D (N x C x L) network of:
convolutions with random kernel, stride, padding and groups (dense, grouped, depthwise, with
or without BatchNorm), depthwise-separable blocks, residual adds, two-branch concatenations,
squeeze-and-excitation blocks (nn.AdaptiveAvgPool2d(1) or a mean, a 1x1 conv or a linear
bottleneck, a sigmoid or hard-sigmoid gate multiplied in), zero padding, max and average pools,
every activation the MCU lowering knows (ReLU, ReLU6, LeakyReLU, Sigmoid, HardSigmoid,
HardSwish, SiLU, Tanh, GELU), odd channel counts (3, 5, 24, 40...) and odd spatial sizes, and a
head: a global mean (pooling module, ``mean`` or ``AdaptiveAvgPool`` + ``torch.flatten``) or a
flatten of the map, an optional hidden linear layer, a linear classifier and sometimes a final
softmax. The modules are plain ``nn.Module`` code, traceable by torch.export and torch.fx.

:func:`calibrate_net` gives the untrained net well-spread activations (BatchNorm statistics and
a classifier scale from the calibration data), so that comparing int8 outputs is meaningful.

:func:`build` is the same generator as a factory model for the engine (the firmware
conformance sweep, benchmarks/random_nets.py, runs it through ``malak-run``):

    malak-run pipeline=firmware_routes model.name=factory \
        model.factory=malak_pipe.models.random_net:build model.kwargs.seed=7 \
        data=synthetic data.channels=3 data.image_size=13 data.num_classes=10
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

SPREAD = 0.5  # BatchNorm affines drawn in 1 +- SPREAD
CHANNELS = (3, 5, 8, 12, 16, 24, 40)
SIZES_2D = (7, 9, 11, 12, 13, 16)
SIZES_1D = (15, 25, 31, 40)
ACTIVATIONS = ("relu", "relu6", "leaky_relu", "sigmoid", "hardsigmoid", "hardswish", "silu", "tanh", "gelu", "none")
BLOCKS = ("conv", "grouped", "dwsep", "residual", "concat", "se", "pool", "pad")


@dataclass
class NetSpec:
    """What :func:`random_net` drew: enough to describe a failing net in a report."""

    seed: int
    dims: int
    input_shape: tuple[int, ...]
    blocks: list[str] = field(default_factory=list)
    head: str = ""
    softmax: bool = False

    def describe(self) -> str:
        shape = "x".join(map(str, self.input_shape))
        return f"seed {self.seed}: {self.dims}-D {shape} | {' > '.join(self.blocks)} | {self.head}"


def _activation(name: str) -> Any:
    factories = {
        "relu": nn.ReLU,
        "relu6": nn.ReLU6,
        "leaky_relu": lambda: nn.LeakyReLU(0.1),
        "sigmoid": nn.Sigmoid,
        "hardsigmoid": nn.Hardsigmoid,
        "hardswish": nn.Hardswish,
        "silu": nn.SiLU,
        "tanh": nn.Tanh,
        "gelu": nn.GELU,
        "none": nn.Identity,
    }
    return factories[name]()


class _Layers:
    """The torch layer classes of one dimensionality (Conv1d/Conv2d, BatchNorm1d/2d, pools...)."""

    def __init__(self, dims: int):
        self.dims = dims
        self.conv = nn.Conv2d if dims == 2 else nn.Conv1d
        self.bn = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
        self.max_pool = nn.MaxPool2d if dims == 2 else nn.MaxPool1d
        self.avg_pool = nn.AvgPool2d if dims == 2 else nn.AvgPool1d
        self.adaptive = nn.AdaptiveAvgPool2d if dims == 2 else nn.AdaptiveAvgPool1d
        self.zero_pad = nn.ZeroPad2d if dims == 2 else nn.ConstantPad1d
        self.axes = (2, 3) if dims == 2 else (2,)


class ConvBNAct(nn.Sequential):
    """A convolution (any kernel, stride, padding, groups), an optional BatchNorm, an activation."""

    def __init__(self, t: _Layers, cin: int, cout: int, k: int, stride: int, pad: int, groups: int, bn: bool,
                 act: str):  # fmt: skip
        layers = [t.conv(cin, cout, k, stride=stride, padding=pad, groups=groups, bias=not bn)]
        layers += [t.bn(cout)] if bn else []
        super().__init__(*layers, _activation(act))


class Residual(nn.Module):
    """x + body(x), then an activation."""

    def __init__(self, body: nn.Module, post: str):
        super().__init__()
        self.body, self.post = body, _activation(post)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(x + self.body(x))


class Concat(nn.Module):
    """Two branches concatenated on the channel axis."""

    def __init__(self, left: nn.Module, right: nn.Module):
        super().__init__()
        self.left, self.right = left, right

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.left(x), self.right(x)], 1)


class SqueezeExcite(nn.Module):
    """x times a per-channel gate from its global mean (1x1 convolutions or a linear bottleneck)."""

    def __init__(self, t: _Layers, c: int, r: int, act: str, gate: str, pool: str, linear: bool):
        super().__init__()
        self.axes, self.pool_kind, self.linear = t.axes, pool, linear
        self.pool = t.adaptive(1)
        if linear:
            self.reduce, self.expand = nn.Linear(c, r), nn.Linear(r, c)
        else:
            self.reduce, self.expand = t.conv(c, r, 1), t.conv(r, c, 1)
        self.act, self.gate = _activation(act), _activation(gate)
        self.view = (-1, c, 1, 1) if len(t.axes) == 2 else (-1, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.linear:
            s = torch.flatten(self.pool(x), 1)
            s = self.gate(self.expand(self.act(self.reduce(s)))).reshape(self.view)
        else:
            s = self.pool(x) if self.pool_kind == "adaptive" else x.mean(self.axes, keepdim=True)
            s = self.gate(self.expand(self.act(self.reduce(s))))
        return x * s


class Head(nn.Module):
    """A global mean (pooling module or ``mean``) or a flatten, then linear layers, maybe a softmax."""

    def __init__(self, t: _Layers, features: int, kind: str, hidden: int, act: str, classes: int, softmax: bool):
        super().__init__()
        self.kind, self.axes = kind, t.axes
        self.pool = t.adaptive(1)
        layers: list[nn.Module] = []
        if hidden:
            layers += [nn.Linear(features, hidden), _activation(act), nn.Dropout(0.1)]
        layers.append(nn.Linear(hidden or features, classes))
        layers += [nn.Softmax(dim=1)] if softmax else []
        self.classifier = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "adaptive":
            x = torch.flatten(self.pool(x), 1)
        elif self.kind == "mean":  # keepdim: torch's x86 int8 mean without it fails on channels-last inputs
            x = torch.flatten(x.mean(self.axes, keepdim=True), 1)
        else:
            x = torch.flatten(x, 1)
        return self.classifier(x)


class _Builder:
    """Draws blocks while tracking the map's channels and spatial size."""

    def __init__(self, rng: np.random.Generator, spec: NetSpec):
        self.rng, self.spec = rng, spec
        self.t = _Layers(spec.dims)
        self.c = spec.input_shape[0]
        self.size = list(spec.input_shape[1:])
        self.layers: list[Any] = []

    def pick(self, options: tuple) -> Any:
        return options[int(self.rng.integers(0, len(options)))]

    def conv(self, cout: int, k: int, stride: int, groups: int = 1, pad: int | None = None, act: str | None = None):
        pad = self.pick((0, k // 2, k // 2)) if pad is None else pad
        k = min(k, min(self.size) + 2 * pad)
        act = act or self.pick(ACTIVATIONS)
        bn = bool(self.rng.random() < 0.6)
        layer = ConvBNAct(self.t, self.c, cout, k, stride, pad, groups, bn, act)
        self.size = [(n + 2 * pad - k) // stride + 1 for n in self.size]
        self.c = cout
        return layer, f"conv{k}/{stride} p{pad} g{groups} {self.c}{' bn' if bn else ''} {act}"

    def add(self, kind: str) -> None:
        layer, label = getattr(self, f"_{kind}")()
        self.layers.append(layer)
        self.spec.blocks.append(label)

    def _conv(self):
        return self.conv(self.pick(CHANNELS), self.pick((1, 3, 3, 5)), self.pick((1, 1, 2)))

    def _grouped(self):
        groups = self.pick(tuple(g for g in (2, 3, 4, 5) if self.c % g == 0) or (1,))
        cout = groups * self.pick((1, 2, 3, 4))
        if self.rng.random() < 0.5:  # depthwise, channel multiplier 1 or 2
            groups, cout = self.c, self.c * self.pick((1, 1, 2))
        layer, label = self.conv(cout, self.pick((3, 3, 5)), self.pick((1, 2)), groups=groups)
        return layer, label

    def _dwsep(self):
        dw, a = self.conv(self.c, self.pick((3, 5)), self.pick((1, 2)), groups=self.c, pad=None)
        pw, b = self.conv(self.pick(CHANNELS), 1, 1, pad=0, act=self.pick(("none", "relu6", "hardswish")))
        return nn.Sequential(dw, pw), f"dwsep[{a} | {b}]"

    def _residual(self):
        c, k1, k2 = self.c, self.pick((1, 3)), self.pick((1, 3))
        first, a = self.conv(self.pick(CHANNELS), k1, 1, pad=k1 // 2)  # odd kernels, "same" padding
        second, b = self.conv(c, k2, 1, pad=k2 // 2, act="none")
        body = nn.Sequential(first, second)
        post = self.pick(("none", "relu", "relu6"))
        return Residual(body, post), f"res[{a} | {b}] {post}"

    def _concat(self):
        c, size = self.c, list(self.size)
        left, a = self.conv(self.pick(CHANNELS), 1, 1, pad=0)
        c_left = self.c
        self.c, self.size = c, list(size)
        right, b = self.conv(self.pick(CHANNELS), 3, 1, pad=1)
        self.c += c_left
        return Concat(left, right), f"cat[{a} | {b}]"

    def _se(self):
        r = max(1, self.c // self.pick((2, 4)))
        act, gate = self.pick(("relu", "silu", "hardswish")), self.pick(("sigmoid", "hardsigmoid"))
        pool, linear = self.pick(("adaptive", "mean")), bool(self.rng.random() < 0.3)
        layer = SqueezeExcite(self.t, self.c, r, act, gate, pool, linear)
        return layer, f"se{r} {act} {gate} {'linear' if linear else pool}"

    def _pool(self):
        kind = self.pick(("max2", "avg2", "max3", "avg3"))
        k, stride, pad = {"max2": (2, 2, 0), "avg2": (2, 2, 0), "max3": (3, 2, 1), "avg3": (3, 1, 1)}[kind]
        cls = self.t.max_pool if kind.startswith("max") else self.t.avg_pool
        self.size = [(n + 2 * pad - k) // stride + 1 for n in self.size]
        return cls(k, stride, pad), kind

    def _pad(self):
        amounts = [int(self.rng.integers(0, 3)) for _ in range(2 * self.t.dims)]
        pad = self.t.zero_pad(tuple(amounts)) if self.t.dims == 2 else self.t.zero_pad(tuple(amounts), 0.0)
        if self.t.dims == 2:
            self.size = [self.size[0] + amounts[2] + amounts[3], self.size[1] + amounts[0] + amounts[1]]
        else:
            self.size = [self.size[0] + amounts[0] + amounts[1]]
        conv, label = self.conv(self.pick(CHANNELS), 3, 1, pad=0)
        return nn.Sequential(pad, conv), f"pad{amounts} {label}"

    def allowed(self) -> tuple[str, ...]:
        small = min(self.size)
        return tuple(b for b in BLOCKS if b not in ("pool",) or small >= 4) if small >= 3 else ("se", "conv")


def draw_input_shape(rng: np.random.Generator) -> tuple[int, ...]:
    """A random input shape: (C, H, W) three times in four, else a 1-D (C, L)."""
    dims = 1 if rng.random() < 0.25 else 2
    channels = int((1, 3, 3, 4)[int(rng.integers(0, 4))])
    if dims == 2:
        side = int(SIZES_2D[int(rng.integers(0, len(SIZES_2D)))])
        return (channels, side, side + int(rng.integers(0, 3)))
    return (channels, int(SIZES_1D[int(rng.integers(0, len(SIZES_1D)))]))


def random_net(seed: int, num_classes: int = 10, input_shape: tuple[int, ...] | None = None) -> tuple[Any, NetSpec]:
    """A random network of supported blocks (eval mode, untrained: see :func:`calibrate_net`)
    for ``input_shape`` ((C, H, W) or (C, L); None: drawn from the seed too)."""
    rng = np.random.default_rng(seed)
    shape = tuple(input_shape) if input_shape is not None else draw_input_shape(rng)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"input_shape {list(shape)} is neither (C, H, W) nor (C, L)")
    dims = len(shape) - 1
    spec = NetSpec(seed, dims, shape)
    torch.manual_seed(seed)
    builder = _Builder(rng, spec)
    stem, label = builder.conv(builder.pick(CHANNELS), builder.pick((3, 5)), builder.pick((1, 2)))
    builder.layers.append(stem)
    spec.blocks.append(f"stem {label}")
    for _ in range(int(rng.integers(2, 6))):
        builder.add(builder.pick(builder.allowed()))
    features = builder.c * int(np.prod(builder.size))
    kind = builder.pick(("adaptive", "mean", "flatten")) if features <= 640 else builder.pick(("adaptive", "mean"))
    features = features if kind == "flatten" else builder.c
    hidden = builder.pick((0, 0, 24, 40))
    act = builder.pick(("relu", "hardswish", "silu"))
    spec.softmax = bool(rng.random() < 0.1)
    spec.head = f"{kind} {features}{f' > fc{hidden} {act}' if hidden else ''} > fc{num_classes}"
    spec.head += " > softmax" if spec.softmax else ""
    head = Head(builder.t, features, kind, hidden, act, num_classes, spec.softmax)
    return nn.Sequential(*builder.layers, head).eval(), spec


def calibrate_net(module: Any, x: np.ndarray, logit_std: float = 3.0) -> Any:
    """Random BatchNorm affines, BatchNorm statistics of ``x``, and the classifier scaled so the
    logits spread (std ``logit_std``); eval mode."""
    generator = torch.Generator().manual_seed(0)
    batch_norms = [m for m in module.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    for bn in batch_norms:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average over the batches
        with torch.no_grad():
            bn.weight.uniform_(1 - SPREAD, 1 + SPREAD, generator=generator)
            bn.bias.normal_(0.0, 0.4 * SPREAD, generator=generator)
    module.train()
    with torch.no_grad():
        for start in range(0, len(x), 32):
            module(torch.as_tensor(x[start : start + 32]))
    module.eval()
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if not linears:
        return module
    classifier = linears[-1]
    seen: list[torch.Tensor] = []
    hook = classifier.register_forward_hook(lambda _m, _i, out: seen.append(out))
    with torch.no_grad():
        module(torch.as_tensor(x[:64]))
        hook.remove()
        std = float(seen[0].std()) or 1.0
        classifier.weight.mul_(logit_std / std)
        classifier.bias.mul_(logit_std / std)
    return module


def build(seed: int = 0, input_shape: tuple[int, ...] = (1, 12, 12), num_classes: int = 10) -> Any:
    """The random network of ``seed`` for ``input_shape`` as a trainable module (train mode):
    the factory-model entry point (``model.factory=malak_pipe.models.random_net:build``)."""
    module, _ = random_net(int(seed), int(num_classes), tuple(int(n) for n in input_shape))
    return module.train()


def describe(seed: int, input_shape: tuple[int, ...], num_classes: int = 10) -> str:
    """One line saying what :func:`build` draws for these arguments."""
    return random_net(seed, num_classes, input_shape)[1].describe()
