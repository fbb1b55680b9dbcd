"""The user's own data: image folders, array files and factories, read, split, checked, fingerprinted."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from malak_pipe.data import DATASET, DataConfig, load_dataset, source_fingerprint
from malak_pipe.data.artifact import describe
from malak_pipe.errors import ConfigError, DataError
from tests.helpers.user_data import signals, write_factory_module, write_image_tree

torch.set_num_threads(1)


def _folder_cfg(root, **fields) -> DataConfig:
    return DataConfig(name="image_folder", root=str(root), **fields)


def _rows(x: torch.Tensor) -> set[bytes]:
    return {row.numpy().tobytes() for row in x}


# -- image folders -------------------------------------------------------------------------------


def test_split_trees_give_their_own_splits_and_the_class_list(tmp_path):
    write_image_tree(tmp_path / "train", per_class=10)
    write_image_tree(tmp_path / "val", per_class=2, seed=1)
    write_image_tree(tmp_path / "test", classes=("cat", "owl"), per_class=3, seed=2)
    ds = load_dataset(_folder_cfg(tmp_path))
    assert ds.class_names == ("cat", "dog", "owl")
    assert ds.sizes() == {"train": 30, "val": 6, "test": 6}
    assert ds.input_shape == (1, 12, 12)
    assert sorted(set(ds.test.y.tolist())) == [0, 2]  # the test tree's classes keep the train indices
    raw_train = np.stack([np.asarray(Image.open(p)) for p in sorted((tmp_path / "train").rglob("*.png"))])
    assert ds.mean[0] == pytest.approx(raw_train.mean() / 255.0, abs=1e-5)
    assert float(ds.train.x.mean()) == pytest.approx(0.0, abs=1e-5)  # normalized with train statistics
    saved = describe(ds)
    assert saved["class_names"] == ["cat", "dog", "owl"] and saved["mean"] == list(ds.mean)


def test_one_tree_is_split_deterministically(tmp_path):
    write_image_tree(tmp_path, per_class=10)
    cfg = _folder_cfg(tmp_path, val_fraction=0.2, test_fraction=0.3)
    ds = load_dataset(cfg)
    assert ds.sizes() == {"train": 17, "val": 4, "test": 9}
    assert np.bincount(ds.test.y.numpy()).tolist() == [3, 3, 3]
    assert not (_rows(ds.train.x) & _rows(ds.test.x)) and not (_rows(ds.val.x) & _rows(ds.test.x))
    from malak_pipe.data import clear_memo

    clear_memo()
    again = load_dataset(cfg)
    assert torch.equal(again.test.x, ds.test.x) and torch.equal(again.train.y, ds.train.y)


def test_rgb_jpeg_and_bmp_are_resized_and_converted(tmp_path):
    write_image_tree(tmp_path / "a", classes=("x",), per_class=4, channels=3, suffix=".jpg", size=(10, 14))
    write_image_tree(tmp_path / "a", classes=("y",), per_class=4, channels=3, suffix=".bmp", size=9)
    rgb = load_dataset(_folder_cfg(tmp_path / "a", image_size=6, val_fraction=0.0))
    assert rgb.input_shape == (3, 6, 6) and rgb.class_names == ("x", "y")
    gray = load_dataset(_folder_cfg(tmp_path / "a", image_size=6, channels=1, val_fraction=0.0))
    assert gray.input_shape == (1, 6, 6)


def test_fingerprint_follows_content_not_place(tmp_path):
    write_image_tree(tmp_path / "one", per_class=4)
    first = source_fingerprint(_folder_cfg(tmp_path / "one"))
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    assert source_fingerprint(_folder_cfg(tmp_path / "two")) == first
    write_image_tree(tmp_path / "two", classes=("cat",), per_class=1, seed=9)  # rewrites cat/000.png
    assert source_fingerprint(_folder_cfg(tmp_path / "two")) != first
    (tmp_path / "two" / "dog").rename(tmp_path / "two" / "wolf")  # a renamed class is other data
    assert source_fingerprint(_folder_cfg(tmp_path / "two")) != first


def test_folder_errors_name_the_folder_or_file(tmp_path):
    with pytest.raises(DataError, match="does not exist") as missing:
        source_fingerprint(_folder_cfg(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in str(missing.value)
    with pytest.raises(DataError, match="data.root: no image folder is set"):
        source_fingerprint(DataConfig(name="image_folder"))
    write_image_tree(tmp_path / "empty", per_class=3)
    (tmp_path / "empty" / "fox").mkdir()
    (tmp_path / "empty" / "fox" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="holds no image") as empty:
        source_fingerprint(_folder_cfg(tmp_path / "empty"))
    assert str(tmp_path / "empty" / "fox") in str(empty.value)
    write_image_tree(tmp_path / "mixed", classes=("a",), per_class=2, size=12)
    write_image_tree(tmp_path / "mixed", classes=("b",), per_class=2, size=10)
    with pytest.raises(DataError, match="no resize is set") as mixed:
        source_fingerprint(_folder_cfg(tmp_path / "mixed"))
    assert "mixed/b/000.png" in str(mixed.value)
    assert load_dataset(_folder_cfg(tmp_path / "mixed", image_size=8, val_fraction=0.0)).input_shape == (1, 8, 8)
    write_image_tree(tmp_path / "split" / "train", per_class=2)
    write_image_tree(tmp_path / "split" / "test", classes=("bat",), per_class=2)
    with pytest.raises(DataError, match="no folder in the train tree"):
        source_fingerprint(_folder_cfg(tmp_path / "split"))
    (tmp_path / "flat").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        source_fingerprint(_folder_cfg(tmp_path / "flat"))
    with pytest.raises(DataError, match="data.channels"):
        load_dataset(_folder_cfg(tmp_path / "mixed", image_size=8, channels=2))


def test_declared_class_count_is_checked(tmp_path):
    write_image_tree(tmp_path, per_class=3)
    with pytest.raises(DataError, match="data.num_classes is 10 but image_folder has num_classes=3"):
        load_dataset(_folder_cfg(tmp_path, num_classes=10))


# -- arrays --------------------------------------------------------------------------------------


def test_npz_images_in_both_layouts(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 3, 6, 6), dtype=np.uint8)
    y = np.arange(40) % 4
    np.savez(tmp_path / "nchw.npz", x_train=x, y_train=y, x_test=x[:8], y_test=y[:8], x_val=x[:4], y_val=y[:4])
    np.savez(tmp_path / "nhwc.npz", x_train=x.transpose(0, 2, 3, 1), y_train=y, x_test=x[:8].transpose(0, 2, 3, 1),
             y_test=y[:8], x_val=x[:4].transpose(0, 2, 3, 1), y_val=y[:4])  # fmt: skip
    nchw = load_dataset(DataConfig(name="arrays", root=str(tmp_path / "nchw.npz")))
    nhwc = load_dataset(DataConfig(name="arrays", root=str(tmp_path / "nhwc.npz")))
    assert nchw.sizes() == {"train": 40, "val": 4, "test": 8} and nchw.input_shape == (3, 6, 6)
    assert torch.equal(nchw.train.x, nhwc.train.x) and nchw.fingerprint == nhwc.fingerprint
    assert nchw.class_names == ("0", "1", "2", "3")
    expected = x.astype(np.float64).transpose(1, 0, 2, 3).reshape(3, -1).mean(axis=1) / 255.0
    assert np.allclose(nchw.mean, expected, atol=1e-6)


def test_signals_from_npy_files_with_class_names(tmp_path):
    x, y = signals(60, channels=2, length=20)
    np.save(tmp_path / "x_train.npy", x.transpose(0, 2, 1))  # N x L x C
    np.save(tmp_path / "y_train.npy", y)
    np.save(tmp_path / "class_names.npy", np.array(["walk", "run", "sit", "stand"]))
    ds = load_dataset(DataConfig(name="arrays", root=str(tmp_path), layout="nlc", val_fraction=0.1))
    assert ds.input_shape == (2, 20) and ds.class_names == ("walk", "run", "sit", "stand")
    assert ds.sizes() == {"train": 43, "val": 5, "test": 12}  # a fixed 20% held out as test
    assert len(ds.calibration_batches(2, 8)[0].shape) == 3
    assert tuple(ds.mean) == pytest.approx(tuple(x[:, c].mean() for c in range(2)), abs=0.05)
    reloaded = DATASET.load(_saved(ds, tmp_path))
    assert torch.equal(reloaded.test.x, ds.test.x)


def _saved(ds, tmp_path):
    path = tmp_path / "dataset.json"
    DATASET.save(ds, path)
    return path


def test_array_errors_name_file_key_and_sample(tmp_path):
    x, y = signals(30)
    bad = x.copy()
    bad[7, 1, 3] = np.nan
    np.savez(tmp_path / "nan.npz", x_train=bad, y_train=y)
    with pytest.raises(DataError, match="sample 7") as nan:
        source_fingerprint(DataConfig(name="arrays", root=str(tmp_path / "nan.npz")))
    assert f"{tmp_path / 'nan.npz'}:x_train" in str(nan.value)
    np.savez(tmp_path / "labels.npz", x_train=x, y_train=y, x_test=x[:5], y_test=np.array([0, 1, 9, 2, 3]))
    with pytest.raises(DataError, match="label 9 of sample 2 is out of range") as labels:
        source_fingerprint(DataConfig(name="arrays", root=str(tmp_path / "labels.npz"), num_classes=4))
    assert "labels.npz:y_test" in str(labels.value)
    np.savez(tmp_path / "negative.npz", x_train=x, y_train=-y)
    with pytest.raises(DataError, match="out of range"):
        source_fingerprint(DataConfig(name="arrays", root=str(tmp_path / "negative.npz")))
    np.savez(tmp_path / "nolabels.npz", x_train=x)
    with pytest.raises(DataError, match="'y_train' is missing"):
        source_fingerprint(DataConfig(name="arrays", root=str(tmp_path / "nolabels.npz")))
    np.savez(tmp_path / "typo.npz", x_train=x, y_train=y, x_tst=x)
    with pytest.raises(DataError, match="unknown array"):
        source_fingerprint(DataConfig(name="arrays", root=str(tmp_path / "typo.npz")))
    np.savez(tmp_path / "shapes.npz", x_train=x, y_train=y, x_test=x[:, :, :10], y_test=y)
    with pytest.raises(DataError, match="test samples have shape"):
        source_fingerprint(DataConfig(name="arrays", root=str(tmp_path / "shapes.npz")))
    with pytest.raises(DataError, match="does not exist"):
        source_fingerprint(DataConfig(name="arrays", root=str(tmp_path / "absent.npz")))
    np.savez(tmp_path / "ints.npz", x_train=x.astype(np.int32), y_train=y)
    with pytest.raises(DataError, match="dtype int32"):
        source_fingerprint(DataConfig(name="arrays", root=str(tmp_path / "ints.npz")))


# -- factories -----------------------------------------------------------------------------------

FACTORY = """
import torch
from torch.utils.data import TensorDataset


class Named(TensorDataset):
    classes = ["left", "right", "up"]


def make(count=30, seed=0, label_offset=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(count, 1, 8, 8, generator=g)
    y = torch.arange(count) % 3 + label_offset
    return Named(x, y), Named(x[:6], y[:6]), None
"""


def test_factory_datasets_are_read_split_and_named(tmp_path):
    module = write_factory_module(tmp_path, "user_data_factory", FACTORY)
    cfg = DataConfig(name="factory", factory=f"{module}:make", kwargs={"count": 30})
    assert cfg.code_modules() == [module]
    ds = load_dataset(cfg)
    assert ds.class_names == ("left", "right", "up")
    assert ds.sizes() == {"train": 24, "val": 6, "test": 6}  # own val, test held out of train
    assert ds.input_shape == (1, 8, 8)
    other = source_fingerprint(cfg.model_copy(update={"kwargs": {"count": 30, "seed": 1}}))
    assert source_fingerprint(cfg) != other


def test_factory_errors(tmp_path):
    module = write_factory_module(tmp_path, "user_data_factory_bad", FACTORY)
    with pytest.raises(DataError, match="label 3 of sample 2 is out of range"):
        source_fingerprint(DataConfig(name="factory", factory=f"{module}:make", kwargs={"label_offset": 1}))
    with pytest.raises(ConfigError, match="cannot import module") as missing:
        source_fingerprint(DataConfig(name="factory", factory="no_such_module_here:make"))
    assert missing.value.path == "data.factory"
    with pytest.raises(ConfigError, match="data.kwargs"):
        source_fingerprint(DataConfig(name="factory", factory=f"{module}:make", kwargs={"colour": 1}))
    with pytest.raises(ConfigError, match="needs data.factory"):
        source_fingerprint(DataConfig(name="factory"))
    with pytest.raises(ValueError, match="name=factory only"):
        DataConfig(name="digits", factory=f"{module}:make")
