"""Distillation: the KD loss against a hand computation, a frozen teacher, FitNets hints."""

from __future__ import annotations

import math

import pytest
import torch

from malak_pipe.compress import DistillConfig, FeatureHint, KnowledgeDistiller, kd_loss
from malak_pipe.errors import ConfigError
from malak_pipe.models import build_model
from malak_pipe.training import FitSettings, evaluate

from .conftest import MODEL

STUDENT = MODEL.model_copy(update={"width_mult": 0.25})


def _softmax(row, temperature):
    exps = [math.exp(v / temperature) for v in row]
    return [e / sum(exps) for e in exps]


def test_kd_loss_equals_a_hand_computation():
    student = [[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]]
    teacher = [[3.0, 0.0, -2.0], [1.0, 1.0, 1.0]]
    labels = [0, 2]
    alpha, temperature = 0.3, 2.5
    kl = 0.0  # sum over classes of p_t * (log p_t - log p_s), averaged over the batch
    ce = 0.0
    for s_row, t_row, label in zip(student, teacher, labels, strict=True):
        p_s, p_t = _softmax(s_row, temperature), _softmax(t_row, temperature)
        kl += sum(t * (math.log(t) - math.log(s)) for s, t in zip(p_s, p_t, strict=True))
        ce += -math.log(_softmax(s_row, 1.0)[label])
    expected = alpha * temperature**2 * kl / 2 + (1 - alpha) * ce / 2
    got = kd_loss(
        torch.tensor(student), torch.tensor(teacher), torch.tensor(labels), alpha=alpha, temperature=temperature
    )
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_kd_loss_limits():
    s, t, y = torch.randn(4, 5), torch.randn(4, 5), torch.randint(0, 5, (4,))
    assert torch.allclose(kd_loss(s, t, y, alpha=0.0, temperature=3.0), torch.nn.functional.cross_entropy(s, y))
    assert float(kd_loss(t, t, y, alpha=1.0, temperature=3.0)) == pytest.approx(0.0, abs=1e-6)


def test_distillation_trains_the_student_and_leaves_the_teacher_alone(trained, dataset):
    torch.manual_seed(0)
    student = build_model(STUDENT)
    teacher_state = {k: v.clone() for k, v in trained.state_dict().items()}
    distiller = KnowledgeDistiller(DistillConfig(alpha=0.5, temperature=2.0))
    result = distiller.fit(student, trained, dataset, FitSettings(epochs=4, batch_size=32, lr=3e-3))
    assert result.loss_curve[-1] < result.loss_curve[0]
    assert evaluate(student, dataset).top1 > 0.6  # 4 classes: chance is 0.25
    assert all(torch.equal(v, teacher_state[k]) for k, v in trained.state_dict().items())
    assert all(p.requires_grad for p in trained.parameters())


def test_feature_hints_train_an_adapter(trained, dataset):
    torch.manual_seed(0)
    student = build_model(STUDENT)
    hint = FeatureHint(student_layer="conv2", teacher_layer="conv2", weight=0.5)
    distiller = KnowledgeDistiller(DistillConfig(hints=(hint,)))
    adapters = []
    original = distiller._adapters

    def keep(*args):
        found = original(*args)
        adapters.append((found, found[0].weight.detach().clone()))
        return found

    distiller._adapters = keep
    distiller.fit(student, trained, dataset, FitSettings(epochs=1, batch_size=32, lr=1e-3))
    (adapter,), initial = adapters[0]
    assert not torch.equal(adapter.weight, initial)  # the hint loss trained it
    assert isinstance(adapter, torch.nn.Conv2d) and adapter.kernel_size == (1, 1)
    assert (adapter.in_channels, adapter.out_channels) == (student.conv2.out_channels, trained.conv2.out_channels)
    assert not student.conv2._forward_hooks and not trained.conv2._forward_hooks  # taps removed


def test_unknown_hint_layer_is_a_config_error(trained, dataset):
    distiller = KnowledgeDistiller(DistillConfig(hints=(FeatureHint(student_layer="nope", teacher_layer="conv2"),)))
    with pytest.raises(ConfigError, match="student has no layer"):
        distiller.fit(build_model(STUDENT), trained, dataset, FitSettings(epochs=1))


def test_precomputed_teacher_logits_train_the_same_student_as_the_online_teacher(trained, dataset):
    settings = FitSettings(epochs=2, batch_size=32, lr=3e-3)
    students = []
    for precompute in (False, True):
        torch.manual_seed(0)
        student = build_model(STUDENT)
        result = KnowledgeDistiller(DistillConfig(alpha=0.7, temperature=4.0)).fit(
            student, trained, dataset, settings, precompute=precompute
        )
        students.append((student, result))
    (online, online_result), (cached, cached_result) = students
    assert online_result.loss_curve == pytest.approx(cached_result.loss_curve, rel=1e-4)
    for name, value in online.state_dict().items():
        assert torch.allclose(value, cached.state_dict()[name], atol=1e-4), name
    assert not trained.training and all(p.requires_grad for p in trained.parameters())


def test_teacher_logits_are_eval_mode_and_gradient_free(trained, dataset):
    from malak_pipe.compress.distill import teacher_logits

    trained.train()
    logits = teacher_logits(trained, dataset.train.x[:70], batch_size=32)
    assert not trained.training and not logits.requires_grad
    with torch.no_grad():
        assert torch.allclose(logits, trained(dataset.train.x[:70]), atol=1e-5)


def test_precompute_is_refused_with_augmentation(trained, dataset):
    student = build_model(STUDENT)
    with pytest.raises(ConfigError, match="precomputed"):
        KnowledgeDistiller().fit(
            student, trained, dataset, FitSettings(epochs=1, augment=True, max_batches_per_epoch=1), precompute=True
        )
