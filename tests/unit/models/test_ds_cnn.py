"""The 1-D zoo model (DS-CNN for keyword spotting) and model shapes that follow the data."""

from __future__ import annotations

import pytest
import torch

from malak_pipe.errors import ConfigError
from malak_pipe.models import ModelConfig, build_model, check_model_fits_data, count_macs, count_parameters

torch.set_num_threads(1)


def _ds_cnn_params(features: int, classes: int, width: int, blocks: int = 4, stem: int = 10) -> int:
    """Conv weights (no bias) + BN (scale, shift) per conv, then the linear classifier."""
    stem_params = features * width * stem + 2 * width
    block = (width * 3 + 2 * width) + (width * width + 2 * width)  # depthwise k=3, pointwise 1x1
    return stem_params + blocks * block + width * classes + classes


def test_ds_cnn_on_speech_commands_features():
    model = build_model(ModelConfig(name="ds_cnn", in_channels=10, num_classes=12, image_size=49))
    assert count_parameters(model) == 25_484 == _ds_cnn_params(10, 12, 64)
    # stem: 25 steps x 64 x (10 x 10); each block: depthwise 25 x 64 x 3 + pointwise 25 x 64 x 64; fc 64 x 12
    assert count_macs(model, (10, 49)) == 25 * 64 * 100 + 4 * (25 * 64 * 3 + 25 * 64 * 64) + 64 * 12
    assert model(torch.zeros(2, 10, 49)).shape == (2, 12)
    assert not any(isinstance(m, torch.nn.Conv2d) for m in model.modules())


@pytest.mark.parametrize(("features", "length", "classes", "width_mult"), [(3, 128, 6, 1.0), (40, 98, 35, 0.5)])
def test_ds_cnn_follows_its_config(features, length, classes, width_mult):
    model = build_model(
        ModelConfig(name="ds_cnn", in_channels=features, num_classes=classes, image_size=length, width_mult=width_mult)
    )
    assert count_parameters(model) == _ds_cnn_params(features, classes, int(64 * width_mult))
    assert model(torch.zeros(3, features, length)).shape == (3, classes)


def test_shape_fields_left_null_follow_the_data():
    cfg = ModelConfig(name="ds_cnn", in_channels=None, num_classes=None, image_size=None)
    with pytest.raises(ConfigError, match="model.in_channels is not set"):
        build_model(cfg)
    filled = cfg.for_data((6, 32), 5)
    assert (filled.in_channels, filled.num_classes, filled.image_size) == (6, 5, 32)
    assert build_model(filled)(torch.zeros(1, 6, 32)).shape == (1, 5)
    image = ModelConfig(name="simple_cnn", in_channels=None, num_classes=3, image_size=None).for_data((3, 16, 16), 7)
    assert (image.in_channels, image.num_classes, image.image_size) == (3, 3, 16)  # only the null fields
    assert ModelConfig(name="simple_cnn", image_size=None).for_data((1, 10, 12), 2).image_size is None  # not square


def test_models_refuse_the_other_kind_of_sample():
    with pytest.raises(ConfigError, match="does not take the dataset's 1-D signals"):
        check_model_fits_data(
            ModelConfig(name="simple_cnn", in_channels=3, num_classes=4, image_size=32), (3, 32), 4, "model"
        )
    with pytest.raises(ConfigError, match=r"does not take the dataset's images \(C, H, W\)"):
        check_model_fits_data(
            ModelConfig(name="ds_cnn", in_channels=1, num_classes=4, image_size=8), (1, 8, 8), 4, "model"
        )
    check_model_fits_data(ModelConfig(name="ds_cnn", in_channels=3, num_classes=4, image_size=32), (3, 32), 4, "model")
