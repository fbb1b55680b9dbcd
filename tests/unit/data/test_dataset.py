"""Dataset: splits, subsets, normalization, augmentation, batching, calibration, the artifact."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import malak_pipe.data.fashion_mnist as fashion_module
from malak_pipe.data import DATASET, DATASET_NAMES, READERS, DataConfig, load_dataset, stratified_pick
from malak_pipe.data.augment import augment_batch
from malak_pipe.data.synthetic import read_synthetic
from malak_pipe.errors import ArtifactError

from .conftest import write_fashion

torch.set_num_threads(1)

SYNTHETIC = DataConfig(name="synthetic", num_classes=4, channels=2, image_size=8, n_train=400, n_test=100, seed=1)


def _rows(x: torch.Tensor) -> set[bytes]:
    return {row.numpy().tobytes() for row in x}


def test_registry_covers_every_name():
    assert set(READERS) == set(DATASET_NAMES)


def test_stratified_pick_is_deterministic_disjoint_and_balanced():
    labels = np.repeat(np.arange(5), [100, 50, 50, 20, 30])
    picked, rest = stratified_pick(labels, 50, seed=3)
    again, _ = stratified_pick(labels, 50, seed=3)
    other, _ = stratified_pick(labels, 50, seed=4)
    assert np.array_equal(picked, again) and not np.array_equal(picked, other)
    assert len(picked) == 50 and np.intersect1d(picked, rest).size == 0
    assert np.array_equal(np.sort(np.concatenate([picked, rest])), np.arange(len(labels)))
    assert np.bincount(labels[picked]).tolist() == [20, 10, 10, 4, 6]


def test_splits_are_disjoint_deterministic_and_sized():
    ds = load_dataset(SYNTHETIC)
    assert ds.sizes() == {"train": 360, "val": 40, "test": 100}
    assert not _rows(ds.train.x) & _rows(ds.val.x)
    assert not (_rows(ds.train.x) | _rows(ds.val.x)) & _rows(ds.test.x)
    assert np.bincount(ds.val.y.numpy()).tolist() == [10] * 4
    assert load_dataset(SYNTHETIC) is ds  # memoized
    other_seed = load_dataset(SYNTHETIC.model_copy(update={"split_seed": 1}))
    assert _rows(other_seed.val.x) != _rows(ds.val.x)
    assert ds.fingerprint != other_seed.fingerprint


def test_subsets_are_stratified_and_deterministic():
    cfg = SYNTHETIC.model_copy(update={"max_train": 100, "max_val": 20, "max_test": 8})
    ds = load_dataset(cfg)
    assert ds.sizes() == {"train": 100, "val": 20, "test": 8}
    assert np.bincount(ds.train.y.numpy()).tolist() == [25] * 4
    assert np.bincount(ds.test.y.numpy()).tolist() == [2] * 4
    raw_subset = load_dataset(cfg.model_copy(update={"normalize": False}))
    raw_full = load_dataset(SYNTHETIC.model_copy(update={"normalize": False}))
    assert _rows(raw_subset.val.x) <= _rows(raw_full.val.x)  # drawn from the same val split
    assert _rows(raw_subset.train.x) <= _rows(raw_full.train.x)


def test_normalization_statistics():
    raw = read_synthetic(SYNTHETIC)
    plain = load_dataset(SYNTHETIC.model_copy(update={"normalize": False, "val_fraction": 0.0}))
    assert plain.mean == (0.0, 0.0) and plain.std == (1.0, 1.0)
    assert torch.allclose(plain.train.x, torch.from_numpy(raw.train_x).float() / 255.0)
    normalized = load_dataset(SYNTHETIC.model_copy(update={"val_fraction": 0.0}))
    expected_mean = (raw.train_x / 255.0).mean(axis=(0, 2, 3))
    expected_std = (raw.train_x / 255.0).std(axis=(0, 2, 3))
    assert np.allclose(normalized.mean, expected_mean, atol=1e-5)
    assert np.allclose(normalized.std, expected_std, atol=1e-5)
    per_channel = normalized.train.x.transpose(0, 1).reshape(2, -1)
    assert torch.allclose(per_channel.mean(1), torch.zeros(2), atol=1e-4)
    assert torch.allclose(per_channel.std(1, correction=0), torch.ones(2), atol=1e-4)
    # test images use the train statistics
    std, mean = torch.tensor(normalized.std).view(1, 2, 1, 1), torch.tensor(normalized.mean).view(1, 2, 1, 1)
    assert torch.allclose(normalized.test.x * std + mean, plain.test.x, atol=1e-5)


def _shifted(image: torch.Tensor, dy: int, dx: int, fill: float) -> torch.Tensor:
    size = image.shape[-1]
    out = torch.full_like(image, fill)
    src = image[:, max(0, dy) : size + min(0, dy), max(0, dx) : size + min(0, dx)]
    out[:, max(0, -dy) : size + min(0, -dy), max(0, -dx) : size + min(0, -dx)] = src
    return out


@pytest.mark.parametrize("hflip", [False, True])
def test_augmentation_is_a_padded_shift_or_flip(hflip):
    x = torch.arange(16 * 1 * 8 * 8, dtype=torch.float32).reshape(16, 1, 8, 8)
    fill = torch.tensor([-1.0])
    out = augment_batch(x, padding=1, hflip=hflip, fill=fill, generator=torch.Generator().manual_seed(0))
    again = augment_batch(x, padding=1, hflip=hflip, fill=fill, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.equal(out, again)
    flips = (True, False) if hflip else (False,)
    moved = 0
    for image, result in zip(x, out, strict=True):
        candidates = [
            _shifted(image.flip(-1) if flip else image, dy, dx, -1.0)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            for flip in flips
        ]
        assert any(torch.equal(result, c) for c in candidates)
        moved += not torch.equal(result, image)
    assert moved > 8


def test_dataset_augment_uses_its_padding_and_zero_pixel_fill():
    ds = load_dataset(SYNTHETIC)
    out = ds.augment(ds.train.x[:64], torch.Generator().manual_seed(1))
    assert out.shape == (64, 2, 8, 8)
    zero_pixel = torch.tensor([-m / s for m, s in zip(ds.mean, ds.std, strict=True)])
    border = out[:, :, 0, :].transpose(0, 1).reshape(2, -1)
    assert ((border == zero_pixel[:, None]).float().mean(1) > 0.1).all()


def test_loader_and_calibration_batches():
    ds = load_dataset(SYNTHETIC)
    loader = ds.loader("train", 64, shuffle=True, seed=3)
    first = [y for _, y in loader]
    second = [y for _, y in loader]
    assert len(loader) == len(first) == 6
    assert sorted(torch.cat(first).tolist()) == sorted(ds.train.y.tolist())
    assert not torch.equal(torch.cat(first), torch.cat(second))  # every pass reshuffles
    xs, ys = zip(*ds.loader("test", 30), strict=True)
    assert torch.equal(torch.cat(xs), ds.test.x) and [len(y) for y in ys] == [30, 30, 30, 10]
    batches = ds.calibration_batches(3, 16, seed=2)
    assert [len(b) for b in batches] == [16, 16, 16]
    assert _rows(torch.cat(batches)) <= _rows(ds.train.x)
    assert all(torch.equal(a, b) for a, b in zip(batches, ds.calibration_batches(3, 16, seed=2), strict=True))
    assert len(ds.calibration_batches(100, 64)) == 6  # capped by the train split


def test_dataset_artifact_round_trip(tmp_path):
    ds = load_dataset(SYNTHETIC)
    path = tmp_path / "dataset.json"
    DATASET.save(ds, path)
    saved = json.loads(path.read_text())
    assert saved["sizes"] == ds.sizes() and saved["input_shape"] == [2, 8, 8]
    assert DATASET.load(path) is ds


def test_dataset_artifact_refuses_changed_data(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_module, "SYSTEM_DIR", tmp_path / "none")
    write_fashion(tmp_path, seed=1)
    ds = load_dataset(DataConfig(name="fashion_mnist", root=str(tmp_path)))
    path = tmp_path / "dataset.json"
    DATASET.save(ds, path)
    write_fashion(tmp_path, seed=2)
    with pytest.raises(ArtifactError, match="changed since") as info:
        DATASET.load(path)
    assert str(path) in str(info.value)
    path.write_text("{not json")
    with pytest.raises(ArtifactError, match="not a dataset artifact"):
        DATASET.load(path)
