"""Compression configs: JSON round trips, validation before anything runs, default YAMLs, light imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from pydantic import ValidationError

from malak_pipe.compress import (
    DistillConfig,
    DynamicPTQConfig,
    FeatureHint,
    MagnitudePruneConfig,
    QATConfig,
    QuantRecipe,
    StaticPTQConfig,
    StructuredPruneConfig,
)
from malak_pipe.engine.registry import get_stage

CONF = Path(__file__).resolve().parents[3] / "conf"
STAGES = ["ptq_dynamic", "ptq_static", "qat", "prune_magnitude", "prune_structured", "distill"]

CONFIGS = [
    DynamicPTQConfig(backend="qnnpack", layers=("linear",)),
    StaticPTQConfig(observer="minmax", per_channel=False, calibration_batches=3),
    QATConfig(freeze_observers_after_epoch=2, freeze_bn_after_epoch=1),
    MagnitudePruneConfig(sparsity=0.8, scope="global", schedule="gradual", initial_sparsity=0.1),
    StructuredPruneConfig(ratio=0.25, importance="bn_scale", scope="global", round_to=8),
    DistillConfig(alpha=0.5, temperature=2.0, hints=(FeatureHint(student_layer="conv2", teacher_layer="conv3"),)),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: type(c).__name__)
def test_configs_round_trip_through_json(config):
    text = config.to_json()
    assert type(config).from_json(text) == config
    assert '"config_version":1' in text


def test_recipe_round_trips_and_knows_its_schemes():
    recipe = QuantRecipe(mode="static", backend="x86", input_shape=(1, 8, 8), float_shapes={"w": (4, 1, 3, 3)})
    assert QuantRecipe.model_validate_json(recipe.model_dump_json()) == recipe
    assert recipe.weight_scheme == "per_channel_symmetric" and recipe.activation_scheme == "per_tensor_affine"


@pytest.mark.parametrize(
    ("cls", "fields"),
    [
        (MagnitudePruneConfig, {"sparsity": 1.0}),
        (MagnitudePruneConfig, {"sparsity": -0.1}),
        (MagnitudePruneConfig, {"schedule": "gradual", "initial_sparsity": 0.6, "sparsity": 0.5}),
        (MagnitudePruneConfig, {"layer_kinds": ["bn"]}),
        (StructuredPruneConfig, {"ratio": 1.0}),
        (StructuredPruneConfig, {"importance": "taylor"}),
        (StaticPTQConfig, {"backend": "tensorrt"}),
        (StaticPTQConfig, {"calibration_batches": 0}),
        (StaticPTQConfig, {"observer": "moving_average_minmax"}),
        (QATConfig, {"freeze_bn_after_epoch": -1}),
        (DynamicPTQConfig, {"layers": []}),
        (DistillConfig, {"alpha": 1.5}),
        (DistillConfig, {"temperature": 0}),
        (DistillConfig, {"unknown": 1}),
    ],
)
def test_bad_values_are_rejected(cls, fields):
    with pytest.raises(ValidationError):
        cls(**fields)


def _resolved_default(name: str) -> dict:
    """conf/stage/<name>/default.yaml with the top-level keys it interpolates filled in."""
    model = OmegaConf.load(CONF / "model" / "simple_cnn.yaml")
    root = OmegaConf.create({"seed": 3, "model": model, "data": {"channels": 1, "image_size": 8, "num_classes": 4}})
    root.stage = OmegaConf.load(CONF / "stage" / name / "default.yaml")
    return OmegaConf.to_container(root.stage, resolve=True)


@pytest.mark.parametrize("name", STAGES)
def test_default_yaml_validates_against_the_stage_config(name):
    stage = get_stage(name)
    cfg = stage.Config.model_validate(_resolved_default(name))
    assert cfg == stage.Config.model_validate(cfg.model_dump())


@pytest.mark.parametrize(
    ("name", "override"),
    [
        ("prune_magnitude", {"sparsity": 1.2}),
        ("prune_structured", {"importance": "random"}),
        ("ptq_static", {"backend": "arm"}),
        ("qat", {"finetune": {"epochs": 0}}),
        ("distill", {"temperature": -1.0}),
        ("ptq_dynamic", {"extra_key": 1}),
    ],
)
def test_stage_configs_reject_bad_values(name, override):
    values = {**_resolved_default(name), **override}
    with pytest.raises(ValidationError):
        get_stage(name).Config.model_validate(values)


def test_stage_modules_and_configs_import_no_torch():
    code = (
        "import sys\n"
        + "".join(f"import malak_pipe.stages.{name}\n" for name in STAGES)
        + "import malak_pipe.compress\n"
        "from malak_pipe.compress import QATConfig\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
