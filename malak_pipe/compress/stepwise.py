"""The prune-then-fine-tune loop that magnitude and structured pruning share.

A pruner cuts its target in one or more steps. Between two steps it fine-tunes for the
config's ``epochs_per_step`` epochs (none when 0); after the last step it fine-tunes with the
given settings (none when they are None). The pruners differ only in what one step does.
Fine-tuning data is an in-memory Dataset or a DataLoader of (inputs, labels) batches with an
optional ``val`` loader (see :func:`malak_pipe.training.fit`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from malak_pipe.compress.configs import MagnitudePruneConfig, StructuredPruneConfig


class StepwisePruner:
    """Base of the pruners: the step loop with its fine-tuning, and its length in batches."""

    config: MagnitudePruneConfig | StructuredPruneConfig

    def step_count(self) -> int:
        """How many pruning steps :meth:`run` takes."""
        raise NotImplementedError

    def finetune_batches(self, n_train: int | None, settings: Any | None) -> int:
        """Training batches of all the fine-tuning (between steps and after the last); 0 without settings."""
        from malak_pipe.training import steps_per_epoch

        if settings is None or n_train is None:
            return 0
        epochs = settings.epochs + self.config.epochs_per_step * (self.step_count() - 1)
        return epochs * steps_per_epoch(n_train, settings)

    def _prune_in_steps(
        self,
        steps: Sequence[Callable[[], None]],
        model: nn.Module,
        data: Any,
        settings: Any | None,
        progress: Any,
        val: Any = None,
    ) -> list[Any]:
        """Run each step, fine-tuning ``model`` between steps and after the last; the FitResults in order."""
        from malak_pipe.training import fit

        results = []
        for index, step in enumerate(steps):
            step()
            if settings is None:
                continue
            if index == len(steps) - 1:
                results.append(fit(model, data, settings, val=val, progress=progress))
            elif self.config.epochs_per_step > 0:
                between = settings.model_copy(update={"epochs": self.config.epochs_per_step})
                results.append(fit(model, data, between, val=val, progress=progress))
        return results
