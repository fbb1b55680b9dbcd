"""The prune-then-fine-tune loop both pruners share: fine-tuning between and after the steps."""

from __future__ import annotations

import pytest

from malak_pipe.compress import MagnitudePruneConfig, MagnitudePruner, StructuredPruneConfig, StructuredPruner
from malak_pipe.training import FitSettings

SETTINGS = FitSettings(epochs=2, batch_size=32, lr=1e-3)


class _Batches:
    """A progress bar that counts the training batches it is told about."""

    def __init__(self):
        self.count = 0

    def advance(self, steps: int = 1, **fields: object) -> None:  # the Progress protocol (epoch ends add fields)
        self.count += steps


PRUNERS = {
    "magnitude_gradual": MagnitudePruner(
        MagnitudePruneConfig(sparsity=0.6, schedule="gradual", steps=3, epochs_per_step=1)
    ),
    "magnitude_between_none": MagnitudePruner(
        MagnitudePruneConfig(sparsity=0.6, schedule="gradual", steps=3, epochs_per_step=0)
    ),
    "structured_iterative": StructuredPruner(StructuredPruneConfig(ratio=0.3, iterative_steps=2, epochs_per_step=1)),
}


@pytest.mark.parametrize("name", list(PRUNERS))
def test_fine_tuning_runs_between_steps_and_after_the_last(name, trained, dataset):
    pruner = PRUNERS[name]
    bar = _Batches()
    results = pruner.run(trained, dataset, SETTINGS, progress=bar)
    between = pruner.step_count() - 1 if pruner.config.epochs_per_step else 0
    assert [len(result.history) for result in results] == [pruner.config.epochs_per_step] * between + [2]
    assert bar.count == pruner.finetune_batches(len(dataset.train.y), SETTINGS) > 0


def test_no_settings_prunes_without_training(trained, dataset):
    pruner = MagnitudePruner(MagnitudePruneConfig(sparsity=0.5, schedule="gradual", steps=2))
    assert pruner.run(trained, dataset, None) == []
    assert pruner.finetune_batches(len(dataset.train.y), None) == 0
    assert abs(pruner.sparsity(trained)["overall"] - 0.5) < 0.01
