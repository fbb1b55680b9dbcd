"""Learning rates per epoch and step, and the optimizer registry."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

from malak_pipe.training.settings import FitSettings


def lr_at(settings: FitSettings, epoch: int, step: int = 0, steps_per_epoch: int = 1) -> float:
    """The learning rate for ``step`` (0-based, within the epoch) of ``epoch`` (0-based).

    Warm-up is linear per step over ``warmup_epochs``; after it the schedule is per epoch.
    """
    warmup = settings.warmup_epochs
    if epoch < warmup:
        done = epoch * steps_per_epoch + step + 1
        return settings.lr * done / (warmup * steps_per_epoch)
    return settings.lr * _SCHEDULES[settings.schedule](settings, epoch - warmup, settings.epochs - warmup)


def _constant(_settings: FitSettings, _epoch: int, _epochs: int) -> float:
    return 1.0


def _cosine(_settings: FitSettings, epoch: int, epochs: int) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


def _step(settings: FitSettings, epoch: int, _epochs: int) -> float:
    return settings.gamma ** (epoch // settings.step_size)


_SCHEDULES: dict[str, Callable[[FitSettings, int, int], float]] = {
    "none": _constant,
    "cosine": _cosine,
    "step": _step,
}


def _sgd(params: Iterable[torch.nn.Parameter], s: FitSettings) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay, nesterov=s.nesterov)


def _adam(params: Iterable[torch.nn.Parameter], s: FitSettings) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=s.lr, weight_decay=s.weight_decay)


def _adamw(params: Iterable[torch.nn.Parameter], s: FitSettings) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay)


OPTIMIZERS: dict[str, Callable[[Iterable[torch.nn.Parameter], FitSettings], torch.optim.Optimizer]] = {
    "sgd": _sgd,
    "adam": _adam,
    "adamw": _adamw,
}


def make_optimizer(params: Iterable[torch.nn.Parameter], settings: FitSettings) -> torch.optim.Optimizer:
    """The optimizer named by ``settings.optimizer`` over ``params``."""
    return OPTIMIZERS[settings.optimizer](params, settings)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr
