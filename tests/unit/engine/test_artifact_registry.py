"""Artifact types are plugins: entry points of the installed packages, or registered in-process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from malak_pipe.artifacts import ArtifactType, get_type, is_known, known_types, register_artifact_type
from malak_pipe.engine.config import parse_run_config
from malak_pipe.engine.graph import build_graph
from malak_pipe.engine.registry import register_stage
from malak_pipe.engine.standalone import run_stage
from malak_pipe.errors import ArtifactError, ConfigError
from malak_pipe.stage import Stage, StageResult
from tests.unit.engine import toy_stages  # noqa: F401  (registers the toy stages)


def test_the_project_types_come_from_entry_points_without_importing_them():
    for name in ("dataset", "torch_model", "onnx_model_int8", "c_sources", "firmware_elf", "json"):
        assert is_known(name)
    probe = (
        "import sys; from malak_pipe.artifacts import is_known; "
        "assert is_known('c_sources') and is_known('torch_model'); "
        "print(sorted(m for m in sys.modules if m.startswith(('malak_pipe.mcu', 'malak_pipe.models', 'torch'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert get_type("json").suffix == ".json"


def test_unknown_type_names_the_registered_ones():
    with pytest.raises(ArtifactError, match="unknown artifact type 'tflite'") as info:
        get_type("tflite")
    assert "malak_pipe.artifacts" in info.value.render()
    assert "dataset" in info.value.render()


def test_a_stage_declaring_an_unregistered_type_is_a_config_error():
    @register_stage
    class MakesTflite(Stage):
        name = "toy_makes_tflite"
        outputs = {"model": "tflite_flatbuffer"}

    cfg = parse_run_config({"pipeline": {"t": {"stage": "toy_makes_tflite"}}})
    with pytest.raises(ConfigError, match="unregistered artifact type") as info:
        build_graph(cfg)
    assert info.value.path == "pipeline.t.stage"


def test_an_in_process_type_saves_and_loads_through_the_context(tmp_path):
    def save(obj, path):
        path.write_text(json.dumps({"lines": obj}))

    def load(path):
        return json.loads(path.read_text())["lines"]

    register_artifact_type(ArtifactType(name="toy_lines", suffix=".lines", save=save, load=load))
    assert "toy_lines" in known_types()

    @register_stage
    class Lines(Stage):
        name = "toy_lines_writer"
        outputs = {"text": "toy_lines"}

        def run(self, cfg, ctx):
            ctx.save("text", ["a", "b"])
            return StageResult()

    build_graph(parse_run_config({"pipeline": {"w": {"stage": "toy_lines_writer"}}}))
    _, outputs = run_stage(Lines, {}, {}, tmp_path)
    assert outputs["text"].name == "toy_lines.text.lines"
    assert get_type("toy_lines").load(outputs["text"]) == ["a", "b"]
