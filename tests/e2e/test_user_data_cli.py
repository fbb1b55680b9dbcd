"""Bad user data through the real CLI: exit 2 before anything trains, the file or folder named, no result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.e2e.test_cli import malak_run, results_files
from tests.helpers.user_data import signals, write_factory_module, write_image_tree


def _missing_folder(tmp: Path) -> tuple[list[str], str]:
    return ["data=image_folder", f"data.root={tmp / 'photos'}"], str(tmp / "photos")


def _empty_class(tmp: Path) -> tuple[list[str], str]:
    write_image_tree(tmp / "photos", per_class=3)
    (tmp / "photos" / "fox").mkdir()
    return ["data=image_folder", f"data.root={tmp / 'photos'}"], str(tmp / "photos" / "fox")


def _mixed_sizes(tmp: Path) -> tuple[list[str], str]:
    write_image_tree(tmp / "photos", classes=("a",), per_class=2, size=12)
    write_image_tree(tmp / "photos", classes=("b",), per_class=2, size=10)
    return ["data=image_folder", f"data.root={tmp / 'photos'}"], str(tmp / "photos" / "b" / "000.png")


def _labels_out_of_range(tmp: Path) -> tuple[list[str], str]:
    x, y = signals(40, classes=5)
    np.savez(tmp / "kws.npz", x_train=x, y_train=y)
    return [
        "data=arrays",
        f"data.root={tmp / 'kws.npz'}",
        "data.num_classes=4",
        "model=ds_cnn",
    ], f"{tmp / 'kws.npz'}:y_train"


def _nan_in_arrays(tmp: Path) -> tuple[list[str], str]:
    x, y = signals(40)
    x[11, 0, 5] = np.nan
    np.savez(tmp / "kws.npz", x_train=x, y_train=y)
    return ["data=arrays", f"data.root={tmp / 'kws.npz'}", "model=ds_cnn"], f"{tmp / 'kws.npz'}:x_train"


def _nan_in_factory(tmp: Path) -> tuple[list[str], str]:
    write_factory_module(
        tmp,
        "cli_bad_factory",
        """
        import torch
        from torch.utils.data import TensorDataset

        def make():
            x = torch.rand(20, 1, 8, 8)
            x[3, 0, 0, 0] = float("nan")
            return TensorDataset(x, torch.arange(20) % 2), None, None
        """,
    )
    return ["data=factory", "data.factory=cli_bad_factory:make"], "data.factory (cli_bad_factory:make) train set"


CASES = {
    "missing folder": (_missing_folder, "does not exist"),
    "empty class": (_empty_class, "holds no image"),
    "mixed sizes": (_mixed_sizes, "no resize is set"),
    "labels out of range": (_labels_out_of_range, "out of range"),
    "nan in arrays": (_nan_in_arrays, "NaN"),
    "nan in a factory": (_nan_in_factory, "NaN"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_user_data_exits_2_naming_the_file(tmp_path, case):
    make, words = CASES[case]
    overrides, where = make(tmp_path)
    out = malak_run(
        tmp_path, "pipeline=train_only", "stage.train.epochs=1", *overrides, env={"PYTHONPATH": str(tmp_path)}
    )
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    assert words in out.stderr and where in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert results_files(tmp_path) == []
    assert not list((tmp_path / "outputs").rglob("result.json")) if (tmp_path / "outputs").exists() else True
