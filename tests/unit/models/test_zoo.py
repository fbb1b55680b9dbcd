"""The model zoo: exact parameter counts, MACs, output shapes, config validation, fusion."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from malak_pipe.errors import ConfigError
from malak_pipe.models import (
    ModelConfig,
    build_model,
    check_model_fits_data,
    count_macs,
    count_parameters,
    fusion_groups,
)

torch.set_num_threads(1)


def _config(name: str, **fields) -> ModelConfig:
    return ModelConfig(name=name, **fields)


def test_simple_cnn_matches_the_paper():
    model = build_model(_config("simple_cnn", in_channels=1, num_classes=10, image_size=28))
    assert count_parameters(model) == 458_570
    assert count_macs(model, (1, 28, 28)) == 6_047_488
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize(("channels", "size", "classes"), [(3, 32, 5), (1, 8, 10), (2, 12, 3)])
def test_simple_cnn_follows_input_shape(channels, size, classes):
    model = build_model(_config("simple_cnn", in_channels=channels, num_classes=classes, image_size=size))
    pooled = size // 4
    expected = (
        (channels * 9 + 1) * 32
        + (32 * 9 + 1) * 64
        + (64 * 9 + 1) * 64
        + (64 * pooled * pooled + 1) * 128
        + (128 + 1) * classes
    )
    assert count_parameters(model) == expected
    assert model(torch.zeros(2, channels, size, size)).shape == (2, classes)


def test_simple_cnn_rejects_tiny_images():
    with pytest.raises(ConfigError, match="model.image_size"):
        build_model(_config("simple_cnn", image_size=3))


# Reference counts of the published architectures (torchvision's models with 3 input channels);
# the small-input stems change only the stem conv of the ResNets: 7x7 -> 3x3 on 3 -> 64
# channels is 64 * 3 * (49 - 9) = 7,680 fewer parameters.
@pytest.mark.parametrize(
    ("name", "classes", "params"),
    [
        ("mobilenet_v2", 1000, 3_504_872),
        ("efficientnet_b0", 1000, 5_288_548),
        ("resnet18", 1000, 11_689_512 - 7_680),
        ("resnet18", 10, 11_173_962),  # the well-known CIFAR ResNet-18
        ("resnet50", 1000, 25_557_032 - 7_680),
    ],
)
def test_reference_parameter_counts(name, classes, params):
    with torch.device("meta"):  # no memory, no init cost
        model = build_model(_config(name, in_channels=3, num_classes=classes, image_size=32))
    assert count_parameters(model) == params


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet18", "resnet50", "efficientnet_b0"])
@pytest.mark.parametrize(("channels", "size", "classes"), [(1, 8, 10), (3, 20, 7)])
def test_zoo_output_shapes(name, channels, size, classes):
    cfg = _config(name, in_channels=channels, num_classes=classes, image_size=size, width_mult=0.25)
    model = build_model(cfg).eval()
    with torch.inference_mode():
        assert model(torch.randn(2, channels, size, size)).shape == (2, classes)
    assert isinstance(list(model.modules())[-1], nn.Linear)


def test_mobilenet_uses_depthwise_convs_and_relu6():
    model = build_model(_config("mobilenet_v2", in_channels=3, width_mult=0.5))
    depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert depthwise and all(m.groups == m.in_channels == m.out_channels for m in depthwise)
    assert any(isinstance(m, nn.ReLU6) for m in model.modules())
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first.kernel_size == (3, 3) and first.stride == (1, 1)


def test_width_mult_shrinks_models():
    full = count_parameters(build_model(_config("efficientnet_b0", in_channels=3)))
    half = count_parameters(build_model(_config("efficientnet_b0", in_channels=3, width_mult=0.5)))
    assert half < full / 2


def test_fusion_groups_can_be_fused_without_changing_outputs():
    model = build_model(_config("resnet18", in_channels=3, num_classes=4, width_mult=0.25)).eval()
    groups = fusion_groups(model)
    assert ["stem.0", "stem.1", "stem.2"] in groups
    assert ["layer1.0.conv2.0", "layer1.0.conv2.1"] in groups  # no relu: it follows the add
    x = torch.randn(2, 3, 16, 16)
    with torch.inference_mode():
        expected = model(x)
        fused = torch.ao.quantization.fuse_modules(model, groups)
        assert torch.allclose(fused(x), expected, atol=1e-4)
    assert fusion_groups(build_model(_config("simple_cnn")))[0] == ["conv1", "relu1"]


def test_factory_builds_any_module():
    cfg = _config("factory", factory="torch.nn:Linear", kwargs={"in_features": 4, "out_features": 2})
    model = build_model(cfg)
    assert isinstance(model, nn.Linear) and model.out_features == 2


@pytest.mark.parametrize(
    ("factory", "kwargs", "message"),
    [
        ("no_such_pkg.mod:make", {}, "cannot import"),
        ("torch.nn:NoSuchLayer", {}, "no attribute"),
        ("torch.nn:Linear", {"bogus": 1}, "model.kwargs"),
        ("builtins:dict", {"x": 4.0}, "not a torch.nn.Module"),
    ],
)
def test_factory_errors_name_the_config_path(factory, kwargs, message):
    with pytest.raises(ConfigError, match=message) as info:
        build_model(_config("factory", factory=factory, kwargs=kwargs))
    assert "model." in str(info.value)


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "vgg16"},
        {"name": "factory"},
        {"name": "simple_cnn", "factory": "torch.nn:Linear"},
        {"name": "simple_cnn", "kwargs": {"a": 1}},
        {"name": "simple_cnn", "width": 2},
        {"name": "simple_cnn", "width_mult": 0},
    ],
)
def test_model_config_rejects_bad_fields(fields):
    with pytest.raises(ValidationError):
        ModelConfig(**fields)


def test_count_macs_restores_training_mode():
    model = build_model(_config("mobilenet_v2", in_channels=1, width_mult=0.25)).train()
    assert count_macs(model, (1, 8, 8)) > 0
    assert model.training


def test_model_fits_data_check_names_the_config_path():
    simple = ModelConfig(name="simple_cnn", in_channels=1, num_classes=10, image_size=28)
    check_model_fits_data(simple, (1, 28, 28), 10, "model")
    with pytest.raises(ConfigError, match=r"student\.image_size is 28 but the dataset has 8") as info:
        check_model_fits_data(simple, (1, 8, 8), 10, "student")
    assert info.value.path == "student.image_size"
    with pytest.raises(ConfigError, match=r"model\.num_classes is 10 but the dataset has 4"):
        check_model_fits_data(simple, (1, 28, 28), 4, "model")
    # only simple_cnn sizes its classifier for one image size; factory models are not checked
    check_model_fits_data(ModelConfig(name="mobilenet_v2", in_channels=1, image_size=32), (1, 28, 28), 10, "model")
    factory = ModelConfig(name="factory", factory="torchvision.models:resnet18", in_channels=3)
    check_model_fits_data(factory, (1, 28, 28), 4, "model")
