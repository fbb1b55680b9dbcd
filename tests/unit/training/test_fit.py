"""fit / evaluate: learning, best-epoch choice on val, NaN detection, determinism, schedules."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from malak_pipe.data import DataConfig, load_dataset
from malak_pipe.errors import StageFailed
from malak_pipe.models import ModelConfig, build_model
from malak_pipe.training import FitSettings, evaluate, fit, lr_at, steps_per_epoch, total_steps

torch.set_num_threads(1)

DATA = DataConfig(name="synthetic", num_classes=4, channels=1, image_size=8, n_train=320, n_test=80, seed=3)
MODEL = ModelConfig(name="simple_cnn", in_channels=1, num_classes=4, image_size=8, width_mult=0.25)


@pytest.fixture(scope="module")
def dataset():
    return load_dataset(DATA)


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(MODEL)


class _NoTest:
    """A dataset whose test split cannot be touched: proves fit never looks at it."""

    def __init__(self, dataset):
        self._dataset = dataset
        self.train, self.val, self.num_classes = dataset.train, dataset.val, dataset.num_classes
        self.augment = dataset.augment

    @property
    def test(self):
        raise AssertionError("fit looked at the test split")


def test_fit_learns_and_reports_history(dataset):
    model = _model()
    before = evaluate(model, dataset, "test").top1
    settings = FitSettings(epochs=4, batch_size=32, lr=3e-3)
    result = fit(model, _NoTest(dataset), settings)
    after = evaluate(model, dataset, "test")
    assert after.top1 > 0.8 > before + 0.2
    assert len(result.history) == 4 and [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    assert result.loss_curve[-1] < result.loss_curve[0]
    assert result.history[-1]["train_top1"] > 0.5
    assert result.samples_per_second > 0 and result.train_seconds > 0
    assert evaluate(model, dataset, "val").top1 == result.best_val_top1


def test_best_epoch_is_chosen_on_val_and_its_weights_come_back(dataset):
    """Epochs 1-3 learn; from epoch 4 the loss trains towards wrong labels, so val top-1 falls."""
    sabotage = {"on": False}

    def loss_fn(module, x, y):
        logits = module(x)
        target = (y + 1) % 4 if sabotage["on"] else y
        return nn.functional.cross_entropy(logits, target), logits

    def on_epoch_start(epoch, module):
        sabotage["on"] = epoch >= 4

    model = _model()
    settings = FitSettings(epochs=6, batch_size=32, lr=3e-3)
    result = fit(model, dataset, settings, loss_fn=loss_fn, on_epoch_start=on_epoch_start)
    val_curve = result.val_curve
    assert val_curve[-1] < max(val_curve) - 0.3
    assert result.best_epoch == 1 + val_curve.index(max(val_curve)) <= 3
    assert evaluate(model, dataset, "val").top1 == pytest.approx(max(val_curve))


@pytest.mark.parametrize(("bad", "kind"), [(float("nan"), "nan"), (float("inf"), "inf")])
def test_non_finite_loss_fails_with_epoch_and_step(dataset, bad, kind):
    calls = {"n": 0}
    settings = FitSettings(epochs=3, batch_size=32)
    bad_call = steps_per_epoch(len(dataset.train), settings) + 3  # epoch 2, step 3

    def loss_fn(module, x, y):
        calls["n"] += 1
        loss = nn.functional.cross_entropy(module(x), y)
        return loss * bad if calls["n"] == bad_call else loss

    with pytest.raises(StageFailed, match=f"loss became {kind} at epoch 2 step 3") as info:
        fit(_model(), dataset, settings, loss_fn=loss_fn)
    assert "learning rate" in info.value.hint


def test_same_seed_same_weights(dataset):
    settings = FitSettings(epochs=2, batch_size=32, augment=True, seed=7, deterministic=True)
    first, second, other = _model(), _model(), _model()
    history_a = fit(first, dataset, settings).history
    history_b = fit(second, dataset, settings).history
    fit(other, dataset, settings.model_copy(update={"seed": 8}))
    assert [h["train_loss"] for h in history_a] == [h["train_loss"] for h in history_b]
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert not all(torch.equal(a, c) for a, c in zip(first.parameters(), other.parameters(), strict=True))
    assert not torch.are_deterministic_algorithms_enabled()  # restored after the fit


def test_custom_loss_without_logits_and_step_limit(dataset):
    settings = FitSettings(epochs=1, batch_size=16, max_batches_per_epoch=3, optimizer="sgd", lr=0.01)
    seen = []

    def loss_fn(module, x, y):
        seen.append(len(y))
        return nn.functional.cross_entropy(module(x), y)

    result = fit(_model(), dataset, settings, loss_fn=loss_fn)
    assert seen == [16, 16, 16]
    assert result.history[0]["train_top1"] is None
    assert total_steps(dataset, settings) == 3


def test_progress_advances_once_per_batch(dataset):
    class Counter:
        steps = 0

        def advance(self, steps=1, **fields):
            self.steps += steps

    counter = Counter()
    settings = FitSettings(epochs=2, batch_size=64)
    fit(_model(), dataset, settings, progress=counter)
    assert counter.steps == total_steps(dataset, settings) == 2 * math.ceil(len(dataset.train) / 64)


def test_steps_per_epoch_skips_a_lone_last_sample():
    settings = FitSettings(batch_size=10)
    assert steps_per_epoch(100, settings) == 10
    assert steps_per_epoch(101, settings) == 10
    assert steps_per_epoch(102, settings) == 11


def test_evaluate_per_class_accuracy():
    class AlwaysZero(nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(torch.tensor([5.0, 0.0, 0.0]))

        def forward(self, x):
            return self.bias.expand(len(x), 3)

    from malak_pipe.data.dataset import Split

    split = Split(torch.zeros(6, 1, 2, 2), torch.tensor([0, 0, 1, 1, 1, 0]))
    result = evaluate(AlwaysZero(), split, return_predictions=True)
    assert result.top1 == 0.5 and result.n == 6
    assert result.per_class_top1 == [1.0, 0.0]
    assert result.predictions.tolist() == [0] * 6
    expected_loss = nn.functional.cross_entropy(torch.tensor([[5.0, 0.0, 0.0]] * 6), split.y).item()
    assert result.loss == pytest.approx(expected_loss, rel=1e-5)


def test_learning_rate_schedules():
    cosine = FitSettings(epochs=5, lr=1.0, schedule="cosine", warmup_epochs=1)
    assert lr_at(cosine, 0, 0, 4) == pytest.approx(0.25)
    assert lr_at(cosine, 0, 3, 4) == pytest.approx(1.0)
    assert lr_at(cosine, 1) == pytest.approx(1.0)
    assert lr_at(cosine, 3) == pytest.approx(0.5)
    step = FitSettings(epochs=10, lr=1.0, schedule="step", step_size=3, gamma=0.5)
    assert [lr_at(step, e) for e in (0, 2, 3, 6)] == [1.0, 1.0, 0.5, 0.25]
    assert lr_at(FitSettings(lr=0.1), 9) == 0.1


@pytest.mark.parametrize(
    "fields",
    [
        {"epochs": 2, "warmup_epochs": 2},
        {"optimizer": "adam", "nesterov": True},
        {"optimizer": "rmsprop"},
        {"lr": 0},
        {"epoch": 3},
    ],
)
def test_fit_settings_reject_bad_values(fields):
    with pytest.raises(ValidationError):
        FitSettings(**fields)


def test_without_a_val_split_the_last_epoch_is_kept():
    no_val = load_dataset(DATA.model_copy(update={"val_fraction": 0.0}))
    result = fit(_model(), no_val, FitSettings(epochs=2, batch_size=64))
    assert result.best_epoch == 2 and result.best_val_top1 is None
    assert result.val_curve == [None, None]
    assert result.total_seconds >= result.train_seconds > 0
