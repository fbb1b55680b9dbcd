"""Knowledge distillation (Hinton et al. 2015) with optional FitNets feature hints.

    distiller = KnowledgeDistiller(DistillConfig(alpha=0.7, temperature=4.0))
    distiller.fit(student, teacher, data, FitSettings(epochs=10))
    student = distiller.train(student, teacher, train_loader, val_loader, epochs=10)

The loss on a batch (x, y), with student logits s, teacher logits t and temperature T::

    alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, y)
        + sum over hints h of weight_h * MSE(adapter_h(student_feature_h), teacher_feature_h)

KL is ``F.kl_div(log_softmax(s/T), softmax(t/T), reduction="batchmean")``: the teacher's
distribution is the target, the student's log-probabilities the input, summed over classes
and averaged over the batch. T^2 keeps the soft-target gradients on the scale of the hard
ones when T changes. The teacher is frozen (eval mode, no gradients); it may be an int8 model.

The teacher sees exactly the batch the student sees. When training batches are not augmented
and no hints are used, its logits do not depend on the epoch, so they are computed once over
the train split (eval mode, no gradients) and carried along with the images instead of
running the teacher on every batch of every epoch: the same targets, at a fraction of the cost.
That holds for the in-memory Dataset; on a DataLoader (whose transforms are its own) the
teacher runs on every batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from malak_pipe.compress.configs import DistillConfig, FeatureHint
from malak_pipe.data.batches import is_in_memory, sample_shape
from malak_pipe.errors import ConfigError
from malak_pipe.training.settings import FitSettings, fit_settings


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    alpha: float,
    temperature: float,
) -> torch.Tensor:
    """alpha * T^2 * KL(p_teacher^T || p_student^T) (batchmean) + (1 - alpha) * CE(student, targets)."""
    soft = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=1),
        F.softmax(teacher_logits / temperature, dim=1),
        reduction="batchmean",
    )
    hard = F.cross_entropy(student_logits, targets)
    return alpha * temperature**2 * soft + (1.0 - alpha) * hard


class _FeatureTap:
    """Keeps the latest output of named layers (forward hooks) until removed."""

    def __init__(self, model: nn.Module, names: Sequence[str], role: str):
        modules = dict(model.named_modules())
        missing = [name for name in names if name not in modules]
        if missing:
            raise ConfigError(
                f"the {role} has no layer named {missing}",
                path=f"hints.{role}_layer",
                hint=f"use module paths from {role}.named_modules(), e.g. {list(modules)[1:6]}",
            )
        self.outputs: dict[str, torch.Tensor] = {}
        self.handles = [modules[name].register_forward_hook(self._hook(name)) for name in names]

    def _hook(self, name: str) -> Any:
        def hook(_layer: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            self.outputs[name] = output.dequantize() if output.is_quantized else output

        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


_ADAPTERS: dict[int, type[nn.Module]] = {4: nn.Conv2d, 3: nn.Conv1d}


def _adapter(student_shape: torch.Size, teacher_shape: torch.Size) -> nn.Module:
    """1x1 conv (2-D or 1-D feature maps) or linear (vectors) from student to teacher channels."""
    rank = len(student_shape)
    if rank == len(teacher_shape) and rank in _ADAPTERS:
        return _ADAPTERS[rank](student_shape[1], teacher_shape[1], kernel_size=1, bias=False)
    if rank == 2 and len(teacher_shape) == 2:
        return nn.Linear(student_shape[1], teacher_shape[1], bias=False)
    raise ConfigError(
        f"a hint needs features of the same rank, got student {tuple(student_shape)} and teacher "
        f"{tuple(teacher_shape)}",
        path="hints",
        hint="pair two conv feature maps (N,C,H,W or N,C,L) or two vectors (N,F)",
    )


def _hint_loss(adapted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if adapted.dim() == 4 and adapted.shape[-2:] != target.shape[-2:]:
        adapted = F.adaptive_avg_pool2d(adapted, target.shape[-2:])
    elif adapted.dim() == 3 and adapted.shape[-1] != target.shape[-1]:
        adapted = F.adaptive_avg_pool1d(adapted, target.shape[-1])
    return F.mse_loss(adapted, target)


class _Trainee(nn.Module):
    """The student plus its hint adapters, so one optimizer trains both."""

    def __init__(self, student: nn.Module, adapters: nn.ModuleList):
        super().__init__()
        self.student = student
        self.adapters = adapters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.student(x)


TEACHER_BATCH = 256


@contextmanager
def _frozen(teacher: nn.Module) -> Iterator[None]:
    """The teacher in eval mode with no gradients for the block; its trainable flags come back after."""
    teacher.eval()
    trainable = [param for param in teacher.parameters() if param.requires_grad]
    for param in trainable:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param in trainable:
            param.requires_grad_(True)


def teacher_logits(teacher: nn.Module, x: torch.Tensor, batch_size: int = TEACHER_BATCH) -> torch.Tensor:
    """The frozen teacher's logits (float32) on every row of ``x``, in eval mode without gradients."""
    param = next(teacher.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    teacher.eval()
    with torch.no_grad():
        parts = [teacher(x[start : start + batch_size].to(device)) for start in range(0, len(x), batch_size)]
    return torch.cat([(part.dequantize() if part.is_quantized else part).float().cpu() for part in parts])


@dataclass(frozen=True)
class _Rows:
    """A train split whose rows are [flattened image, teacher logits]."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


class _WithTeacherLogits:
    """A dataset whose train images carry the teacher's logits: rows of ``[flattened image, logits]``.

    Everything but ``train`` (val, test, num_classes...) is the wrapped dataset's. The training
    loop slices rows by index, so each batch brings the logits of exactly its own images.
    """

    def __init__(self, data: Any, logits: torch.Tensor):
        self._data = data
        x = data.train.x
        self.image_shape = tuple(x.shape[1:])
        self.image_size = x[0].numel() if len(x) else 0
        self.train = _Rows(torch.cat([x.reshape(len(x), -1), logits], dim=1), data.train.y)

    def __getattr__(self, name: str) -> Any:
        if name == "_data":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self._data, name)

    def split_batch(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, teacher logits) of a batch of rows."""
        images = rows[:, : self.image_size].reshape(len(rows), *self.image_shape)
        return images, rows[:, self.image_size :]


class KnowledgeDistiller:
    """Trains a student against a frozen teacher, driven by a :class:`DistillConfig`."""

    def __init__(self, config: DistillConfig | None = None):
        self.config = config or DistillConfig()
        self.last_fit: Any = None

    def loss(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The Hinton KD loss with this config's alpha and temperature."""
        return kd_loss(
            student_logits, teacher_logits, targets, alpha=self.config.alpha, temperature=self.config.temperature
        )

    def train(
        self,
        student: nn.Module,
        teacher: nn.Module,
        train: Any,
        val: Any = None,
        *,
        epochs: int | None = None,
        settings: FitSettings | None = None,
        progress: Any = None,
        **fit_fields: Any,
    ) -> nn.Module:
        """Distill ``teacher`` into ``student`` on ``train`` (best epoch on ``val``); returns the student.

        ``train``/``val`` are DataLoaders (or any (inputs, labels) batches), or ``train`` is an
        in-memory Dataset. ``epochs`` and other FitSettings fields override ``settings``
        (default FitSettings()). The FitResult is kept as ``self.last_fit``.
        """
        chosen = fit_settings(settings, epochs=epochs, **fit_fields)
        self.last_fit = self.fit(student, teacher, train, chosen, val=val, progress=progress)
        return student

    def fit(
        self,
        student: nn.Module,
        teacher: nn.Module,
        data: Any,
        settings: Any,
        *,
        val: Any = None,
        progress: Any = None,
        precompute: bool | None = None,
    ) -> Any:
        """Distill ``teacher`` into ``student`` (trained in place); returns the FitResult.

        ``data``: an in-memory Dataset, or a DataLoader of (inputs, labels) validated on ``val``.
        ``precompute``: compute the teacher's train logits once (None: whenever the data is an
        in-memory Dataset whose batches are not augmented and there are no hints; True is
        refused in the other cases).
        """
        can_precompute = is_in_memory(data) and not settings.augment and not self.config.hints
        if precompute and not can_precompute:
            raise ConfigError(
                "teacher logits can be precomputed only for an in-memory Dataset, without augmentation and hints",
                path="train.augment",
                hint="leave precompute unset: the teacher then runs on every (augmented) batch",
            )
        if can_precompute if precompute is None else precompute:
            return self._fit_precomputed(student, teacher, data, settings, progress)
        return self._fit_online(student, teacher, data, settings, progress, val)

    def _fit_precomputed(self, student: nn.Module, teacher: nn.Module, data: Any, settings: Any, progress: Any) -> Any:
        from malak_pipe.training import fit

        with _frozen(teacher):
            wrapped = _WithTeacherLogits(data, teacher_logits(teacher, data.train.x))

        def loss_fn(module: nn.Module, rows: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x, targets = wrapped.split_batch(rows)
            student_logits = module(x)
            return self.loss(student_logits, targets, y), student_logits

        return fit(student, wrapped, settings, loss_fn=loss_fn, progress=progress)

    def _fit_online(
        self, student: nn.Module, teacher: nn.Module, data: Any, settings: Any, progress: Any, val: Any = None
    ) -> Any:
        from malak_pipe.training import fit

        hints: tuple[FeatureHint, ...] = self.config.hints
        student_tap = _FeatureTap(student, [h.student_layer for h in hints], "student")
        teacher_tap = _FeatureTap(teacher, [h.teacher_layer for h in hints], "teacher")
        try:
            with _frozen(teacher):
                adapters = self._adapters(student, teacher, student_tap, teacher_tap, data)
                trainee = _Trainee(student, adapters)

                def loss_fn(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                    with torch.no_grad():
                        targets = teacher(x)
                    student_logits = module(x)
                    loss = self.loss(student_logits, targets, y)
                    for hint, adapter in zip(hints, module.adapters, strict=True):
                        adapted = adapter(student_tap.outputs[hint.student_layer])
                        loss = loss + hint.weight * _hint_loss(adapted, teacher_tap.outputs[hint.teacher_layer])
                    return loss, student_logits

                return fit(trainee, data, settings, val=val, loss_fn=loss_fn, progress=progress)
        finally:
            student_tap.remove()
            teacher_tap.remove()

    def _adapters(
        self,
        student: nn.Module,
        teacher: nn.Module,
        student_tap: _FeatureTap,
        teacher_tap: _FeatureTap,
        data: Any,
    ) -> nn.ModuleList:
        if not self.config.hints:
            return nn.ModuleList()
        probe = torch.zeros((2, *sample_shape(data)))
        was_training = student.training
        student.eval()
        with torch.no_grad():
            student(probe)
            teacher(probe)
        student.train(was_training)
        return nn.ModuleList(
            _adapter(student_tap.outputs[h.student_layer].shape, teacher_tap.outputs[h.teacher_layer].shape)
            for h in self.config.hints
        )
