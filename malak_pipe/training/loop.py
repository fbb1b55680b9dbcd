"""The training loop: best epoch chosen on validation, over in-memory tensors or any DataLoader.

For an in-memory Dataset, batches are cut from the split tensors with a seeded ``randperm``
(faster than a DataLoader); any other data is iterated as a DataLoader of ``(inputs, labels)``
batches (see :mod:`malak_pipe.training.sources`). Per-batch statistics stay on the device and are read once per epoch;
the loss is checked for NaN/inf every ``FINITE_CHECK_EVERY`` batches and at the end of each
epoch, so the loop costs no more host syncs than a plain hand-written one.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from malak_pipe.data.batches import is_in_memory
from malak_pipe.errors import ConfigError, StageFailed
from malak_pipe.training.evaluation import evaluate
from malak_pipe.training.schedule import lr_at, make_optimizer, set_lr
from malak_pipe.training.seeding import seed_everything
from malak_pipe.training.settings import FitSettings
from malak_pipe.training.sources import steps_per_epoch, train_batches, validation_data

FINITE_CHECK_EVERY = 50

LossOutput = torch.Tensor | tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], LossOutput]


@dataclass
class FitResult:
    """Outcome of :func:`fit`. Epochs are numbered from 1.

    ``history`` has one dict per epoch: epoch, train_loss, train_top1 (None when a custom
    loss_fn returns no logits), val_top1 (None without a val split), lr, seconds.
    ``train_seconds`` is the time spent in training steps (validation excluded), so
    ``samples_per_second`` = training samples / ``train_seconds`` compares with a plain loop;
    ``total_seconds`` is the wall time of the whole fit, validation and weight copies included.
    """

    best_epoch: int
    best_val_top1: float | None
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    samples_per_second: float = 0.0
    total_seconds: float = 0.0

    @property
    def loss_curve(self) -> list[float]:
        return [entry["train_loss"] for entry in self.history]

    @property
    def val_curve(self) -> list[float | None]:
        return [entry["val_top1"] for entry in self.history]


def total_steps(dataset: Any, settings: FitSettings) -> int | None:
    """Batches of the whole fit, for a progress bar (None for a loader without a length)."""
    if is_in_memory(dataset):
        return settings.epochs * steps_per_epoch(len(dataset.train.y), settings)
    length = len(dataset) if hasattr(dataset, "__len__") else None
    if length is None:
        return None
    cap = settings.max_batches_per_epoch
    return settings.epochs * (length if cap is None else min(length, cap))


def cross_entropy_loss(label_smoothing: float = 0.0) -> LossFn:
    """The default loss: cross-entropy of ``module(x)``, returned with the logits."""

    def loss_fn(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> LossOutput:
        logits = module(x)
        return F.cross_entropy(logits, y, label_smoothing=label_smoothing), logits

    return loss_fn


@contextlib.contextmanager
def _torch_settings(settings: FitSettings) -> Iterator[None]:
    """Threads and determinism for the fit; the previous values come back afterwards."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    if settings.num_threads is not None:
        torch.set_num_threads(settings.num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def fit(
    module: nn.Module,
    dataset: Any,
    settings: FitSettings | None = None,
    *,
    val: Any = None,
    loss_fn: LossFn | None = None,
    on_epoch_start: Callable[[int, nn.Module], None] | None = None,
    progress: Any = None,
) -> FitResult:
    """Train ``module`` and keep the epoch with the best validation top-1.

    ``dataset`` is an in-memory Dataset (its train split, validated on its val split) or the
    training data as a DataLoader / re-iterable of ``(inputs, labels)`` batches, validated on
    ``val`` (any data :func:`~malak_pipe.training.evaluate` takes; None: no validation).
    ``settings`` default to :class:`FitSettings`; with a loader its ``batch_size`` is the
    loader's business. ``loss_fn(module, x, y)`` returns the loss, or ``(loss, logits)`` to
    also get train accuracy (distillation and QAT plug in here). ``on_epoch_start(epoch,
    module)`` runs before each epoch (epoch from 1). ``progress.advance()`` is called once per
    batch. The test split is never looked at. Ties on val top-1 go to the earlier epoch;
    without validation data the last epoch is kept.
    """
    settings = settings or FitSettings()
    with _torch_settings(settings):
        seed_everything(settings.seed, settings.deterministic)
        loss = loss_fn or cross_entropy_loss(settings.label_smoothing)
        trainer = _Trainer(module, dataset, validation_data(dataset, val), settings, loss)
        return trainer.run(on_epoch_start, progress)


class _Trainer:
    """State of one fit: the optimizer, the shuffling generator, the best weights."""

    def __init__(self, module: nn.Module, dataset: Any, val: Any, settings: FitSettings, loss_fn: LossFn):
        self.module = module
        self.val = val
        self.settings = settings
        self.loss_fn = loss_fn
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.batches = train_batches(dataset, settings, self.generator)
        if settings.warmup_epochs and self.batches.steps is None:
            raise ConfigError(
                "warmup_epochs ramps the learning rate batch by batch and needs the loader's length",
                path="warmup_epochs",
                hint="pass a DataLoader (it has a length) or set warmup_epochs: 0",
            )
        self.has_val = val is not None
        param = next(module.parameters(), None)
        self.device = param.device if param is not None else torch.device("cpu")
        self.optimizer = make_optimizer([p for p in module.parameters() if p.requires_grad], settings)
        self.step_seconds = 0.0
        self.samples = 0

    def run(self, on_epoch_start: Callable[[int, nn.Module], None] | None, progress: Any) -> FitResult:
        started = time.perf_counter()
        result = FitResult(best_epoch=0, best_val_top1=None)
        best_state: dict[str, torch.Tensor] | None = None
        for epoch in range(1, self.settings.epochs + 1):
            if on_epoch_start is not None:
                on_epoch_start(epoch, self.module)
            epoch_started = time.perf_counter()
            train_loss, train_top1 = self._train_epoch(epoch, progress)
            val_top1 = evaluate(self.module, self.val, "val").top1 if self.has_val else None
            if progress is not None and val_top1 is not None:
                progress.advance(0, epoch=epoch, val_top1=val_top1)  # a search may stop a poor trial here
            result.history.append(
                {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "train_top1": train_top1,
                    "val_top1": val_top1,
                    "lr": self.optimizer.param_groups[0]["lr"],
                    "seconds": time.perf_counter() - epoch_started,
                }
            )
            if not self.has_val:
                result.best_epoch = epoch
            elif result.best_val_top1 is None or (val_top1 is not None and val_top1 > result.best_val_top1):
                result.best_epoch, result.best_val_top1 = epoch, val_top1
                best_state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        if best_state is not None:
            self.module.load_state_dict(best_state)
        result.total_seconds = time.perf_counter() - started
        result.train_seconds = self.step_seconds
        result.samples_per_second = self.samples / self.step_seconds if self.step_seconds > 0 else 0.0
        return result

    def _train_epoch(self, epoch: int, progress: Any) -> tuple[float, float | None]:
        settings = self.settings
        in_warmup = epoch - 1 < settings.warmup_epochs
        if not in_warmup:
            set_lr(self.optimizer, lr_at(settings, epoch - 1))
        self.module.train()
        started = time.perf_counter()
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        has_logits = True
        seen = step = 0
        pending: list[torch.Tensor] = []
        for step, (x_batch, y_batch) in enumerate(self.batches.epoch()):
            if in_warmup:
                set_lr(self.optimizer, lr_at(settings, epoch - 1, step, self.batches.steps or 1))
            x, y = x_batch.to(self.device, non_blocking=True), y_batch.to(self.device, non_blocking=True)
            loss, logits = self._step(x, y)
            loss_sum += loss * len(y)
            if logits is None:
                has_logits = False
            else:
                correct += (logits.argmax(dim=1) == y).sum()
            pending.append(loss)
            if len(pending) == FINITE_CHECK_EVERY:
                _check_finite(pending, epoch, step + 1)
                pending = []
            seen += len(y)
            if progress is not None:
                progress.advance(1)
        _check_finite(pending, epoch, step + 1)
        self.step_seconds += time.perf_counter() - started
        self.samples += seen
        return float(loss_sum) / seen, (int(correct) / seen if has_logits else None)

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        output = self.loss_fn(self.module, x, y)
        loss, logits = output if isinstance(output, tuple) else (output, None)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach(), (logits.detach() if logits is not None else None)


def _check_finite(losses: list[torch.Tensor], epoch: int, last_step: int) -> None:
    """Raise StageFailed naming the first non-finite loss among ``losses`` (steps up to ``last_step``)."""
    if not losses:
        return
    stacked = torch.stack(losses)
    finite = torch.isfinite(stacked)
    if bool(finite.all()):
        return
    first = int((~finite).nonzero()[0, 0])
    value = float(stacked[first])
    kind = "nan" if value != value else "inf"
    step = last_step - len(losses) + first + 1
    raise StageFailed(
        f"loss became {kind} at epoch {epoch} step {step}",
        hint="lower the learning rate (lr), add warmup_epochs, or check the inputs for nan/inf",
    )
