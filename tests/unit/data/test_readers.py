"""Readers on files written in the real formats: IDX (Fashion-MNIST), pickles (CIFAR-10), digits."""

from __future__ import annotations

import gzip
import importlib.util
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

import malak_pipe.data.fashion_mnist as fashion_module
from malak_pipe.data import DataConfig, load_dataset, source_fingerprint
from malak_pipe.data.idx import read_idx
from malak_pipe.errors import DataError

from .conftest import write_cifar, write_fashion, write_idx

SYSTEM_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def no_system_fashion(monkeypatch, tmp_path):
    monkeypatch.setattr(fashion_module, "SYSTEM_DIR", tmp_path / "no-system-copy")


@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip(tmp_path, compress):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / "x-idx3-ubyte", array, compress=compress)
    assert np.array_equal(read_idx(path), array)


def test_idx_errors_name_the_file(tmp_path):
    good = write_idx(tmp_path / "a-idx3-ubyte", np.zeros((4, 5, 5), np.uint8), compress=False)
    truncated = tmp_path / "truncated-idx3-ubyte"
    truncated.write_bytes(good.read_bytes()[:-7])
    with pytest.raises(DataError, match="truncated") as info:
        read_idx(truncated)
    assert "truncated-idx3-ubyte" in str(info.value)
    wrong = tmp_path / "wrong.gz"
    wrong.write_bytes(gzip.compress(b"PK\x03\x04 not idx"))
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(wrong)
    broken = tmp_path / "broken.gz"
    broken.write_bytes(gzip.compress(good.read_bytes())[:30])
    with pytest.raises(DataError, match="broken.gz"):
        read_idx(broken)


@pytest.mark.parametrize("layout", ["root", "torchvision"])
def test_fashion_mnist_from_idx_files(tmp_path, no_system_fashion, layout):
    folder = tmp_path if layout == "root" else tmp_path / "FashionMNIST" / "raw"
    arrays = write_fashion(folder, compress=layout == "root")
    ds = load_dataset(DataConfig(name="fashion_mnist", root=str(tmp_path), val_fraction=0.0, normalize=False))
    assert ds.input_shape == (1, 28, 28) and ds.num_classes == 10
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert ds.sizes() == {"train": 60, "val": 0, "test": 20}
    expected = arrays["train-images-idx3-ubyte"].astype(np.float32) / 255.0
    assert np.allclose(ds.train.x[:, 0].numpy(), expected)
    assert ds.test.y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()


def test_fashion_mnist_label_count_mismatch(tmp_path, no_system_fashion):
    write_fashion(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(7, np.uint8))
    with pytest.raises(DataError, match="20 images but 7 labels"):
        load_dataset(DataConfig(name="fashion_mnist", root=str(tmp_path)))


def test_missing_fashion_mnist_lists_every_place(tmp_path, no_system_fashion):
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(name="fashion_mnist", root=str(tmp_path / "empty")))
    message = str(info.value)
    for place in fashion_module.search_places(DataConfig(name="fashion_mnist", root=str(tmp_path / "empty"))):
        assert str(place.resolve()) in message
    assert str(tmp_path / "no-system-copy") in message
    assert "apt-get install dataset-fashion-mnist" in message and "data.download=true" in message
    assert info.value.path == "data.root"


@pytest.mark.skipif(not SYSTEM_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_the_debian_package(tmp_path):
    cfg = DataConfig(name="fashion_mnist", root=str(tmp_path), max_train=500, max_val=100, max_test=200)
    ds = load_dataset(cfg)
    assert ds.sizes() == {"train": 500, "val": 100, "test": 200}
    assert ds.input_shape == (1, 28, 28)
    assert np.bincount(ds.train.y.numpy(), minlength=10).tolist() == [50] * 10
    assert 0.25 < ds.mean[0] < 0.32  # the published Fashion-MNIST mean is 0.286


def test_cifar10_from_pickle_batches(tmp_path):
    batches = write_cifar(tmp_path / "cifar-10-batches-py")
    ds = load_dataset(DataConfig(name="cifar10", root=str(tmp_path), val_fraction=0.0, normalize=False))
    assert ds.input_shape == (3, 32, 32) and ds.sizes() == {"train": 50, "val": 0, "test": 20}
    assert ds.class_names[:2] == ("plane", "car")
    assert ds.hflip and ds.crop_padding == 4
    first = batches["data_batch_1"][b"data"][0]
    # rows are R, G, B planes of 32x32 (1024 values each)
    assert round(float(ds.train.x[0, 1, 0, 0]) * 255) == first[1024]
    assert round(float(ds.train.x[0, 2, 31, 31]) * 255) == first[3071]
    assert ds.train.y[:10].tolist() == batches["data_batch_1"][b"labels"]


def test_cifar10_refuses_pickles_that_would_run_code(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder)
    (folder / "data_batch_3").write_bytes(pickle.dumps(OrderedDict(a=1)))  # any non-numpy global
    with pytest.raises(DataError, match="refusing to load collections.OrderedDict") as info:
        load_dataset(DataConfig(name="cifar10", root=str(tmp_path)))
    assert "data_batch_3" in str(info.value)


def test_missing_cifar10_lists_places_and_how_to_get_it(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(name="cifar10", root=str(tmp_path)))
    message = str(info.value)
    assert str((tmp_path / "cifar-10-batches-py").resolve()) in message
    assert "data.download=true" in message and "cifar-10-python.tar.gz" in message


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None, reason="torchvision is installed")
def test_download_without_torchvision_says_so(tmp_path):
    with pytest.raises(DataError, match="needs torchvision") as info:
        load_dataset(DataConfig(name="cifar10", root=str(tmp_path), download=True))
    assert info.value.path == "data.download"


def test_download_only_for_downloadable_datasets():
    with pytest.raises(ValidationError, match="data.download"):
        DataConfig(name="digits", download=True)


def test_digits_split_is_stratified_and_fixed():
    ds = load_dataset(DataConfig(name="digits", split_seed=5, normalize=False))
    other = load_dataset(DataConfig(name="digits", split_seed=6, normalize=False))
    assert ds.input_shape == (1, 8, 8) and ds.num_classes == 10 and not ds.hflip
    assert len(ds.test) == round(0.2 * 1797)
    assert len(ds.train) + len(ds.val) + len(ds.test) == 1797
    assert abs(len(ds.val) - round(0.1 * (1797 - len(ds.test)))) <= 1
    assert torch.equal(ds.test.x, other.test.x)  # the test split does not move with split_seed
    assert not torch.equal(ds.val.x, other.val.x)
    assert ds.train.x.max() == 1.0 and ds.train.x.min() == 0.0  # 0..16 scaled to [0, 1]


def test_declared_shape_must_match_the_data():
    with pytest.raises(DataError, match="data.channels is 3") as info:
        load_dataset(DataConfig(name="digits", channels=3))
    assert info.value.path == "data.channels"
    with pytest.raises(DataError, match="data.num_classes"):
        load_dataset(DataConfig(name="digits", num_classes=100))
    with pytest.raises(DataError, match="data.image_size"):
        load_dataset(DataConfig(name="digits", image_size=28))


def test_source_fingerprints(tmp_path, no_system_fashion):
    write_fashion(tmp_path, seed=1)
    cfg = DataConfig(name="fashion_mnist", root=str(tmp_path))
    before = source_fingerprint(cfg)
    assert source_fingerprint(cfg.model_copy(update={"max_train": 10})) == before  # split params: not source
    write_fashion(tmp_path, seed=2)
    assert source_fingerprint(cfg) != before
    synthetic = DataConfig(name="synthetic")
    assert source_fingerprint(synthetic) == source_fingerprint(DataConfig(name="synthetic"))
    assert source_fingerprint(synthetic) != source_fingerprint(DataConfig(name="synthetic", seed=1))
    assert len(source_fingerprint(DataConfig(name="digits"))) == 64


def test_synthetic_signals_are_one_dimensional_and_keyed_apart_from_images():
    images = DataConfig(name="synthetic", channels=3, image_size=20, num_classes=4, n_train=40, n_test=8)
    signals = images.model_copy(update={"layout": "ncl"})
    data = load_dataset(signals)
    assert data.input_shape == (3, 20)
    assert tuple(data.train.x.shape[1:]) == (3, 20)
    assert load_dataset(images).input_shape == (3, 20, 20)
    assert source_fingerprint(signals) != source_fingerprint(images)


def test_synthetic_refuses_a_channels_last_layout():
    with pytest.raises(ValidationError, match="does not apply to synthetic"):
        DataConfig(name="synthetic", layout="nhwc")
