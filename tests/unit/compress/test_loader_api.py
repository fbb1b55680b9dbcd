"""Every technique on DataLoaders gives the numbers of the in-memory Dataset path on the same data.

The Dataset's own loader (``dataset.loader("train", batch_size, shuffle=True, seed=...)``)
yields exactly the batches the fast path cuts, so training on it must reproduce the fast path
bit for bit; plain ``torch.utils.data.DataLoader`` objects over the same tensors must give the
same evaluations and calibrations.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from malak_pipe.compress import (
    QAT,
    DistillConfig,
    KnowledgeDistiller,
    MagnitudePruneConfig,
    MagnitudePruner,
    QATConfig,
    StaticPTQ,
    StaticPTQConfig,
    StructuredPruneConfig,
    StructuredPruner,
)
from malak_pipe.errors import ConfigError, DataError
from malak_pipe.models import ModelConfig, build_model
from malak_pipe.training import FitSettings, evaluate, fit

SETTINGS = FitSettings(epochs=2, batch_size=32, lr=2e-3, max_batches_per_epoch=4, seed=3)


def _train_loader(dataset, settings=SETTINGS):
    return dataset.loader("train", settings.batch_size, shuffle=True, seed=settings.seed)


def _plain(split, batch_size=37):
    return DataLoader(TensorDataset(split.x, split.y), batch_size=batch_size)


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_fit_on_the_datasets_loader_reproduces_the_fast_path(trained, dataset):
    fast, slow = copy.deepcopy(trained), copy.deepcopy(trained)
    expected = fit(fast, dataset, SETTINGS)
    got = fit(slow, _train_loader(dataset), SETTINGS, val=_plain(dataset.val))
    assert got.loss_curve == expected.loss_curve and got.val_curve == expected.val_curve
    assert got.best_epoch == expected.best_epoch
    assert _same_state(fast, slow)


def test_evaluate_on_a_plain_loader_matches_the_split(trained, dataset):
    expected = evaluate(trained, dataset, "test")
    got = evaluate(trained, _plain(dataset.test), num_classes=dataset.num_classes)
    assert got.top1 == expected.top1 and got.n == expected.n
    assert got.loss == pytest.approx(expected.loss, rel=1e-5)
    assert got.per_class_top1 == expected.per_class_top1
    pairs = [(x, y) for x, y in _plain(dataset.test, 16)]  # a list of batches works as well
    assert evaluate(trained, pairs).top1 == expected.top1


def test_qat_five_lines_on_loaders_match_the_dataset_path(trained, dataset):
    reference = QAT(QATConfig(backend="x86"))
    prepared = reference.prepare(trained)
    result = reference.fit(prepared, dataset, SETTINGS)
    expected = reference.convert(prepared)

    qat = QAT(QATConfig(backend="x86"))
    model = qat.prepare(trained)
    model = qat.train(model, _train_loader(dataset), _plain(dataset.val), settings=SETTINGS)
    int8 = qat.convert(model)
    assert qat.last_fit.loss_curve == result.loss_curve
    x = dataset.test.x[:32]
    assert torch.equal(int8(x), expected(x))
    assert evaluate(int8, _plain(dataset.test)).top1 == evaluate(expected, dataset).top1


def test_qat_train_takes_epochs_and_refuses_an_unprepared_model(trained, dataset):
    qat = QAT()
    model = qat.train(qat.prepare(trained), _plain(dataset.train, 32), epochs=1, max_batches_per_epoch=2)
    assert len(qat.last_fit.history) == 1 and qat.last_fit.history[0]["val_top1"] is None
    assert qat.convert(model)(dataset.test.x[:4]).shape == (4, dataset.num_classes)
    with pytest.raises(ConfigError, match="qat.prepare"):
        qat.train(copy.deepcopy(trained), _plain(dataset.train), epochs=1)
    legacy = QAT().train(QAT().prepare(trained), dataset, FitSettings(epochs=1, max_batches_per_epoch=1))
    assert legacy.best_epoch == 1  # the earlier form (settings third) returns the FitResult


def test_static_ptq_calibrates_on_a_loader_like_on_the_dataset(trained, dataset):
    config = StaticPTQConfig(calibration_batches=3, calibration_batch_size=16, seed=2)
    expected = StaticPTQ(config).quantize(trained, dataset)
    batches = dataset.calibration_batches(3, 16, seed=2)
    loader = DataLoader(TensorDataset(torch.cat(batches), torch.zeros(48, dtype=torch.long)), batch_size=16)
    got = StaticPTQ(config).quantize(trained, loader)
    x = dataset.test.x[:32]
    assert torch.equal(got(x), expected(x))
    longer = DataLoader(TensorDataset(torch.cat([*batches, dataset.train.x[:64]])), batch_size=16)
    assert torch.equal(StaticPTQ(config).quantize(trained, longer)(x), expected(x))  # only the first 3 batches


def test_pruners_fine_tune_on_loaders_like_on_the_dataset(trained, dataset):
    settings = SETTINGS.model_copy(update={"epochs": 1})
    magnitude = MagnitudePruner(MagnitudePruneConfig(sparsity=0.5))
    fast, slow = copy.deepcopy(trained), copy.deepcopy(trained)
    expected = magnitude.run(fast, dataset, settings)
    got = magnitude.run(slow, _train_loader(dataset, settings), settings, val=_plain(dataset.val))
    assert [r.loss_curve for r in got] == [r.loss_curve for r in expected]
    assert _same_state(fast, slow) and magnitude.sparsity(slow)["overall"] == pytest.approx(0.5, abs=0.01)

    structured = StructuredPruner(StructuredPruneConfig(ratio=0.3))
    fast, slow = copy.deepcopy(trained), copy.deepcopy(trained)
    expected = structured.run(fast, dataset, settings)
    loader = _train_loader(dataset, settings)
    got = structured.run(slow, loader, settings, input_shape=dataset.input_shape, val=_plain(dataset.val))
    assert [r.loss_curve for r in got] == [r.loss_curve for r in expected]
    assert _same_state(fast, slow)
    peeked = copy.deepcopy(trained)  # without input_shape, the shape comes from the loader's first batch
    structured.run(peeked, _plain(dataset.train, 32), settings)
    assert {k: v.shape for k, v in peeked.state_dict().items()} == {k: v.shape for k, v in slow.state_dict().items()}


def test_distiller_on_loaders_matches_the_dataset_path(trained, dataset):
    student_config = ModelConfig(name="simple_cnn", in_channels=1, num_classes=4, image_size=8, width_mult=0.25)
    torch.manual_seed(1)
    student = build_model(student_config)
    fast, slow, precomputed = copy.deepcopy(student), copy.deepcopy(student), copy.deepcopy(student)
    distiller = KnowledgeDistiller(DistillConfig(alpha=0.7, temperature=4.0))
    expected = distiller.fit(fast, trained, dataset, SETTINGS, precompute=False)
    got = distiller.train(slow, trained, _train_loader(dataset), _plain(dataset.val), settings=SETTINGS)
    assert got is slow and distiller.last_fit.loss_curve == expected.loss_curve
    assert _same_state(fast, slow)
    cached = distiller.fit(precomputed, trained, dataset, SETTINGS)  # teacher logits computed once
    assert np.allclose(cached.loss_curve, expected.loss_curve, rtol=1e-4)
    with pytest.raises(ConfigError, match="in-memory Dataset"):
        distiller.fit(copy.deepcopy(student), trained, _train_loader(dataset), SETTINGS, precompute=True)


def test_loader_mistakes_are_named(trained, dataset):
    with pytest.raises(ConfigError, match="augment"):
        fit(copy.deepcopy(trained), _plain(dataset.train), SETTINGS.model_copy(update={"augment": True}))
    with pytest.raises(ConfigError, match="iterator"):
        fit(copy.deepcopy(trained), iter(_plain(dataset.train)), SETTINGS)
    with pytest.raises(DataError, match="without labels"):
        fit(copy.deepcopy(trained), [dataset.train.x[:8]], SETTINGS.model_copy(update={"epochs": 1}))
    with pytest.raises(DataError, match="no batch of two"):
        fit(
            copy.deepcopy(trained),
            [(dataset.train.x[:1], dataset.train.y[:1])],
            SETTINGS.model_copy(update={"epochs": 1}),
        )
