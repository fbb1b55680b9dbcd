"""Every default is written once: each conf/stage/<name>/default.yaml equals its config class.

For every stage of the ``malak_pipe.stages`` entry-point group, the YAML is compared with the
stage's config class field by field, recursively into nested configs (``finetune:``, a
FitSettings):

- every key in the YAML is a field of the class;
- every field with a default appears in the YAML with that value (so the YAML shows every
  knob the class has); a field whose type admits a single value (``config_version``,
  ``kind``) is a constant, not a setting, and may be left out;
- a field without a default (``model``, ``target``) is an interpolation of a config group
  in the YAML (``${model}``, ``${target}``): its value exists only in a composed run.

Interpolations of a scalar of conf/config.yaml (``seed: ${seed}``) are resolved against that
file and compared like any value: the run-level seed is the one place a default run's seed
is written, and with it at 0 every stage runs at its class default. Interpolations of a
config group are accepted for any field: the group option is the run's choice (the class
cannot know the run's model), so there is nothing in the class to compare it with.

A stage without conf/stage/<name>/ is configured by the group of its name (``data``:
``config: ${data}``, one file per dataset); each option of that group must validate. The
boards of conf/target/ state every TargetConfig field.
"""

from __future__ import annotations

import re
import types
import typing
from importlib.metadata import entry_points
from importlib.resources import files
from typing import Any, Literal

import pytest
import yaml
from omegaconf import OmegaConf
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from malak_pipe.mcu.target import TargetConfig

CONF = files("malak_pipe.conf")
STAGES = {ep.name: ep for ep in entry_points(group="malak_pipe.stages")}
INTERPOLATION = re.compile(r"^\$\{([A-Za-z_][\w.]*)\}$")
ROOT = yaml.safe_load((CONF / "config.yaml").read_text())
ROOT_SCALARS = {key: value for key, value in ROOT.items() if not isinstance(value, dict | list)}
NO_DEFAULT = object()


def _is_group(name: str) -> bool:
    return (CONF / name).is_dir() and any(p.name.endswith(".yaml") for p in (CONF / name).iterdir())


def _is_constant(field: FieldInfo) -> bool:
    """A field whose type admits one value (a version or kind tag) is no setting."""
    return typing.get_origin(field.annotation) is Literal and len(typing.get_args(field.annotation)) == 1


def _model_class(annotation: Any) -> type[BaseModel] | None:
    """The config class a field holds (``FitSettings``, ``FitSettings | None``), if any."""
    candidates = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    return next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)


def _class_defaults(cls: type[BaseModel]) -> dict[str, Any]:
    return {
        name: NO_DEFAULT if field.is_required() else field.get_default(call_default_factory=True)
        for name, field in cls.model_fields.items()
    }


def _differences(cls: type[BaseModel], raw: dict, defaults: dict[str, Any], path: str) -> list[str]:
    """What in ``raw`` (a YAML mapping) disagrees with ``defaults`` (the fields of ``cls``)."""
    problems = [f"{path}{key}: not a field of {cls.__name__}" for key in raw if key not in cls.model_fields]
    for name, field in cls.model_fields.items():
        where, default = f"{path}{name}", defaults[name]
        if name not in raw:
            if not _is_constant(field):
                shown = "an interpolation of a group" if default is NO_DEFAULT else repr(default)
                problems.append(f"{where}: missing (the class wants {shown})")
            continue
        problems += _field_differences(field, raw[name], default, where)
    return problems


def _field_differences(field: FieldInfo, value: Any, default: Any, where: str) -> list[str]:
    match = INTERPOLATION.match(value) if isinstance(value, str) else None
    if match and _is_group(match.group(1)):
        return []  # the run's option of a config group: nothing in the class to compare with
    if match:
        if match.group(1) not in ROOT_SCALARS:
            return [f"{where}: {value} names neither a scalar of conf/config.yaml nor a config group"]
        value = ROOT_SCALARS[match.group(1)]
    if default is NO_DEFAULT:
        return [f"{where}: the class has no default, so the YAML must interpolate a group (e.g. ${{model}})"]
    nested = _model_class(field.annotation)
    if nested is not None and isinstance(value, dict):
        if not isinstance(default, BaseModel):
            return [f"{where}: the YAML sets a {nested.__name__} where the class default is {default!r}"]
        return _differences(nested, value, dict(default), f"{where}.")
    try:
        validated = TypeAdapter(field.annotation).validate_python(value)
    except ValidationError as exc:
        return [f"{where}: YAML {value!r} is not a valid value ({exc.errors()[0]['msg']})"]
    return [] if validated == default else [f"{where}: YAML {value!r}, class default {default!r}"]


def _stage_config(name: str) -> type[BaseModel]:
    return STAGES[name].load().Config


def test_every_stage_is_checked():
    assert {"data", "train", "ptq_static", "distill", "codegen", "firmware_build", "sim_run"} <= set(STAGES)


@pytest.mark.parametrize("name", sorted(n for n in STAGES if (CONF / "stage" / n / "default.yaml").is_file()))
def test_stage_default_yaml_equals_the_config_class(name):
    cls = _stage_config(name)
    raw = yaml.safe_load((CONF / "stage" / name / "default.yaml").read_text()) or {}
    problems = _differences(cls, raw, _class_defaults(cls), "")
    assert not problems, f"conf/stage/{name}/default.yaml vs {cls.__qualname__}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("name", sorted(n for n in STAGES if not (CONF / "stage" / n).is_dir()))
def test_a_stage_without_defaults_is_configured_by_its_group(name):
    assert _is_group(name), f"stage '{name}' has neither conf/stage/{name}/default.yaml nor a conf/{name}/ group"
    cls = _stage_config(name)
    for option in sorted(p.name for p in (CONF / name).iterdir() if p.name.endswith(".yaml")):
        raw = OmegaConf.to_container(OmegaConf.create((CONF / name / option).read_text()), resolve=True)
        cls.model_validate(raw)


def _target_fields(option: str) -> dict:
    """A target file's fields, with those of the board it extends (``defaults: [mps2_an500]``)."""
    raw = yaml.safe_load((CONF / "target" / option).read_text())
    merged: dict = {}
    for base in raw.pop("defaults", []):
        if base != "_self_":
            merged.update(_target_fields(f"{base}.yaml"))
    return {**merged, **raw}


@pytest.mark.parametrize("option", sorted(p.name for p in (CONF / "target").iterdir() if p.name.endswith(".yaml")))
def test_every_target_states_every_field(option):
    raw = _target_fields(option)
    fields = set(TargetConfig.model_fields)
    assert set(raw) == fields, f"conf/target/{option}: missing {fields - set(raw)}, unknown {set(raw) - fields}"
    assert TargetConfig.model_validate(raw).name == option[: -len(".yaml")]


def test_the_checker_sees_a_disagreement():
    """The comparison itself: a wrong value, an unknown key, a missing knob, a literal required field."""
    from malak_pipe.stages.firmware_build import FirmwareBuildConfig

    raw = {"target": "${target}", "opt_level": "O3", "stack_bytes": 4096, "extra_cflags": [], "cflags": []}
    problems = _differences(FirmwareBuildConfig, raw, _class_defaults(FirmwareBuildConfig), "")
    assert any("stack_bytes: YAML 4096" in p for p in problems)
    assert any("cflags: not a field" in p for p in problems)
    del raw["opt_level"]
    raw["target"] = {"name": "board"}
    problems = _differences(FirmwareBuildConfig, raw, _class_defaults(FirmwareBuildConfig), "")
    assert any(p.startswith("opt_level: missing") for p in problems)
    assert any(p.startswith("target: the class has no default") for p in problems)


def test_nested_configs_and_root_interpolations_are_compared():
    from malak_pipe.stages.qat import QATStageConfig

    raw = yaml.safe_load((CONF / "stage" / "qat" / "default.yaml").read_text())
    raw["finetune"]["lr"] = 0.5
    raw["finetune"]["seed"] = "${name}"
    problems = _differences(QATStageConfig, raw, _class_defaults(QATStageConfig), "")
    assert "finetune.lr: YAML 0.5, class default 0.0001" in problems
    assert any(p.startswith("finetune.seed: YAML 'default'") for p in problems)
