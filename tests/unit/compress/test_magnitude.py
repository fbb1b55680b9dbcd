"""Magnitude pruning: schedules, exact sparsity (local and global), masks that hold, sparse size."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from malak_pipe.compress import MagnitudePruneConfig, MagnitudePruner, polynomial_schedule, sparse_size_bytes
from malak_pipe.compress.magnitude import dense_size_bytes
from malak_pipe.training import FitSettings


def test_polynomial_schedule_is_the_cubic_of_zhu_and_gupta():
    steps = polynomial_schedule(0.1, 0.9, 4)
    expected = [0.9 + (0.1 - 0.9) * (1 - t / 4) ** 3 for t in range(1, 5)]
    assert steps == pytest.approx(expected)
    assert steps[-1] == pytest.approx(0.9)
    assert all(a < b for a, b in zip(steps, steps[1:], strict=False))
    assert steps[0] - 0.1 > steps[-1] - steps[-2]  # big steps first, small ones last


@pytest.mark.parametrize("scope", ["local", "global"])
def test_one_shot_sparsity_is_within_one_percent(trained, scope):
    pruner = MagnitudePruner(MagnitudePruneConfig(sparsity=0.6, scope=scope))
    biases = {name: p.detach().clone() for name, p in trained.named_parameters() if name.endswith("bias")}
    pruner.prune(trained)
    report = pruner.sparsity(trained)
    assert abs(report["overall"] - 0.6) < 0.01
    assert set(report["layers"]) == {"conv1", "conv2", "conv3", "fc1", "fc2"}
    if scope == "local":
        assert all(abs(s - 0.6) < 0.01 for s in report["layers"].values())
    else:  # one ranking: layers end up with different sparsities
        assert max(report["layers"].values()) - min(report["layers"].values()) > 0.05
    pruner.remove_masks(trained)
    assert not any(name.endswith("_orig") for name, _ in trained.named_parameters())
    assert abs(pruner.sparsity(trained)["overall"] - 0.6) < 0.01
    for name, p in trained.named_parameters():
        if name.endswith("bias"):
            assert torch.equal(p, biases[name])


def test_global_pruning_removes_the_smallest_weights_of_all_layers():
    model = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.arange(16.0).view(4, 4) + 1)  # 1..16
        model[1].weight.copy_(torch.arange(16.0).view(4, 4) + 17)  # 17..32
    pruner = MagnitudePruner(MagnitudePruneConfig(sparsity=0.5, scope="global"))
    pruner.prune(model)
    assert pruner.sparsity(model)["layers"] == {"0": 1.0, "1": 0.0}


def test_skip_first_last_and_exclude(trained):
    pruner = MagnitudePruner(MagnitudePruneConfig(skip_first=True, skip_last=True, exclude=("conv2",)))
    assert [name for name, _ in pruner.layers(trained)] == ["conv3", "fc1"]
    pruner.prune(trained)
    assert not (trained.conv1.weight == 0).any() and not (trained.fc2.weight == 0).any()
    only_linear = MagnitudePruner(MagnitudePruneConfig(layer_kinds=("linear",)))
    assert [name for name, _ in only_linear.layers(trained)] == ["fc1", "fc2"]


def test_gradual_pruning_with_fine_tuning_keeps_pruned_weights_at_zero(trained, dataset):
    config = MagnitudePruneConfig(sparsity=0.7, schedule="gradual", steps=3, epochs_per_step=1)
    pruner = MagnitudePruner(config)
    seen = []
    original_prune = pruner.prune

    def recording_prune(model, sparsity=None):
        if seen:  # weights pruned at the previous step are still zero after fine-tuning
            assert (model.fc1.weight == 0).float().mean() >= seen[-1] - 0.01
        seen.append(sparsity)
        original_prune(model, sparsity)

    pruner.prune = recording_prune
    results = pruner.run(trained, dataset, FitSettings(epochs=1, batch_size=32, lr=1e-3))
    assert seen == pytest.approx(polynomial_schedule(0.0, 0.7, 3))
    assert len(results) == 3  # two steps of fine-tuning between, one after the last
    pruner.remove_masks(trained)
    assert abs(pruner.sparsity(trained)["overall"] - 0.7) < 0.01


def test_sparse_size_counts_a_bitmask_and_the_nonzero_values():
    layer = nn.Linear(10, 8)  # weight 80 elements, bias 8
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[:, :3] = 1.0  # 24 nonzero
    assert sparse_size_bytes(layer) == math.ceil(80 / 8) + 24 * 4 + 8 * 4
    assert dense_size_bytes(layer) == 80 * 4 + 8 * 4


def test_sparse_size_of_a_masked_model_uses_the_mask(trained):
    dense = dense_size_bytes(trained)
    pruner = MagnitudePruner(MagnitudePruneConfig(sparsity=0.75))
    pruner.prune(trained)
    pruner.remove_masks(trained)
    assert dense_size_bytes(trained) == dense
    assert sparse_size_bytes(trained) < 0.4 * dense
